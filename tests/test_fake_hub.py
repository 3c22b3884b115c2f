"""The Hub stand-in (tests/fakehub), checked through the real huggingface_hub and transformers clients only.

These also pin down what the installed clients do when the Hub misbehaves (which exception, how
many retries, how long they wait), which the bot's error handling relies on.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx2
import huggingface_hub
import huggingface_hub.file_download
import huggingface_hub.utils._http
import pytest
import torch
from huggingface_hub import HfApi, ModelCard, constants, get_safetensors_metadata, hf_hub_download, list_models, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from tqdm import tqdm
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer, pipeline

from tests.checkpoints import BERT_EXPECTED, CAMEMBERT_EXPECTED
from tests.fakehub import FakeHub, point_clients_at

CARD = "---\nlanguage: en\nlicense: mit\ntags: [tiny]\n---\n# Tiny BERT\n\nA tiny BERT that fills in blanks.\n"


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _header_parameters(path: Path) -> dict[str, int]:
    """Parameters per dtype, read from a local safetensors header (what the Hub's count must equal)."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    counts: dict[str, int] = {}
    for name, tensor in json.loads(data[8 : 8 + length]).items():
        if name != "__metadata__":
            counts[tensor["dtype"]] = counts.get(tensor["dtype"], 0) + int(torch.Size(tensor["shape"]).numel())
    return counts


class _Time:
    """The time module as the Hub client sees it, minus the sleeping (back-off waits are recorded)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's retry sleeps, recorded instead of slept (only in its own modules: the server still sleeps)."""
    fake = _Time()
    monkeypatch.setattr(huggingface_hub.file_download, "time", fake)
    monkeypatch.setattr(huggingface_hub.utils._http, "time", fake)
    return fake.sleeps


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """A 16 KiB download chunk instead of 10 MB: the client writes (and reports) bytes a chunk at a time."""
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024)
    return 16 * 1024


# -- metadata ------------------------------------------------------------------------------------


def test_model_info_describes_the_repo(fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    repo = fake_hub.add_repo("someone/tiny-bert", bert_checkpoint, card=CARD, downloads=42, likes=3)
    info = HfApi().model_info("someone/tiny-bert", files_metadata=True)
    assert info.id == "someone/tiny-bert" and info.sha == repo.sha and len(repo.sha) == 40
    assert info.pipeline_tag == "fill-mask" and info.mask_token == "[MASK]" and info.library_name == "transformers"
    assert info.gated is False and info.private is False and "safetensors" in (info.tags or [])
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    local = {p.name: p.stat().st_size for p in bert_checkpoint.iterdir()}
    assert sizes == {**local, "README.md": len(CARD.encode()), ".gitattributes": sizes[".gitattributes"]}
    weights = next(s for s in info.siblings or [] if s.rfilename == "model.safetensors")
    assert weights.lfs is not None and weights.lfs.sha256 == _sha256(bert_checkpoint / "model.safetensors")

    expanded = HfApi().model_info("someone/tiny-bert", expand=["safetensors", "cardData", "downloads"])
    assert expanded.safetensors is not None
    assert expanded.safetensors.parameters == _header_parameters(bert_checkpoint / "model.safetensors")
    assert expanded.safetensors.total == sum(expanded.safetensors.parameters.values())
    assert expanded.card_data is not None and expanded.card_data.language == "en" and expanded.card_data.license == "mit"
    assert expanded.downloads == 42 and expanded.siblings is None and expanded.likes is None  # only what was asked
    assert fake_hub.find(path=r"^/api/models/someone/tiny-bert$")[-1].query["expand"] == ["safetensors", "cardData", "downloads"]

    assert HfApi().model_info("someone/tiny-bert", revision=repo.sha).sha == repo.sha
    with pytest.raises(RevisionNotFoundError):
        HfApi().model_info("someone/tiny-bert", revision="v2")
    files = [f.path for f in HfApi().list_repo_tree("someone/tiny-bert", recursive=True)]
    assert sorted(files) == sorted(sizes)


def test_get_safetensors_metadata_counts_what_the_file_holds(fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    fake_hub.add_repo("someone/tiny-bert", bert_checkpoint)
    metadata = get_safetensors_metadata("someone/tiny-bert")
    assert metadata.parameter_count == _header_parameters(bert_checkpoint / "model.safetensors")
    model = AutoModelForMaskedLM.from_pretrained(str(bert_checkpoint))
    assert sum(metadata.parameter_count.values()) == model.num_parameters()
    (read,) = fake_hub.find(method="GET", path=r"model\.safetensors$")
    assert read.headers["range"] == "bytes=0-100000" and read.status == 206 and read.bytes_sent == 100_001


def test_list_models_follows_link_pages(fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    for i in range(12):
        fake_hub.add_repo(f"org{i % 3}/tiny-bert-{i}", bert_checkpoint, downloads=i * 10)
    fake_hub.add_repo("org0/tiny-bert-gpt", bert_checkpoint, pipeline_tag="text-generation", downloads=1000)
    fake_hub.add_repo("org0/other", bert_checkpoint, downloads=1000)

    found = list(list_models(pipeline_tag="fill-mask", search="TINY", sort="downloads", limit=12, expand=["downloads"]))
    assert [m.id for m in found] == [f"org{i % 3}/tiny-bert-{i}" for i in reversed(range(12))]
    assert [m.downloads for m in found] == [i * 10 for i in reversed(range(12))]
    pages = fake_hub.find(method="GET", path=r"^/api/models$")
    assert len(pages) == 3  # 5 + 5 + 2 (page_size=5)
    assert "cursor" not in pages[0].query and pages[1].query["cursor"] == ["5"]
    assert all(page.query["pipeline_tag"] == ["fill-mask"] and page.query["sort"] == ["downloads"] for page in pages)

    fake_hub.clear_requests()
    assert len(list(list_models(search="tiny", limit=3))) == 3
    assert len(fake_hub.find(path=r"^/api/models$")) == 1  # a limit under the page size: one page


# -- downloads -----------------------------------------------------------------------------------


def test_a_cut_download_resumes_with_a_range_and_the_file_is_whole(
    fake_hub: FakeHub, bert_checkpoint: Path, sleeps: list[float], small_chunks: int
) -> None:
    fake_hub.add_repo("someone/tiny-bert", bert_checkpoint)
    fake_hub.cut_short(r"/model\.safetensors$", after_bytes=200_000)
    path = hf_hub_download("someone/tiny-bert", "model.safetensors")
    assert _sha256(path) == _sha256(bert_checkpoint / "model.safetensors")
    cut, resumed = fake_hub.find(method="GET", path=r"model\.safetensors$")
    assert cut.fault == "cut_short" and cut.bytes_sent == 200_000 and "range" not in cut.headers
    # Only whole chunks reach the file: the resume starts at the last chunk boundary before the cut.
    start = 200_000 // small_chunks * small_chunks
    assert resumed.headers["range"] == f"bytes={start}-" and resumed.status == 206
    assert resumed.bytes_sent == (bert_checkpoint / "model.safetensors").stat().st_size - start
    assert sleeps == [1]  # one second between the cut and the resume


def test_a_stalled_body_times_out_and_the_retry_completes(
    fake_hub: FakeHub, bert_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    fake_hub.add_repo("someone/tiny-bert", bert_checkpoint)
    fake_hub.stall(r"/model\.safetensors$")
    started = time.monotonic()
    path = hf_hub_download("someone/tiny-bert", "model.safetensors")
    assert time.monotonic() - started >= 1  # the read timeout fired, then one second of back-off
    assert _sha256(path) == _sha256(bert_checkpoint / "model.safetensors")
    stalled, retried = fake_hub.find(method="GET", path=r"model\.safetensors$")
    assert (stalled.fault, stalled.bytes_sent, retried.fault, retried.status) == ("stall", 0, None, 200)


@pytest.mark.parametrize(
    ("arm", "error"),
    [
        (lambda hub: hub.stall(r"/model\.safetensors$", times=None), httpx2.ReadTimeout),
        (lambda hub: hub.cut_short(r"/model\.safetensors$", after_bytes=0, times=None), httpx2.RemoteProtocolError),
    ],
    ids=["stall", "cut"],
)
def test_a_body_that_never_comes_gives_up_after_six_tries(
    fake_hub: FakeHub, bert_checkpoint: Path, sleeps: list[float], monkeypatch: pytest.MonkeyPatch, arm: Any, error: type
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.3)
    fake_hub.add_repo("someone/tiny-bert", bert_checkpoint)
    arm(fake_hub)
    with pytest.raises(error):  # the transport's own exception, not a Hub error class
        hf_hub_download("someone/tiny-bert", "model.safetensors")
    assert len(fake_hub.find(method="GET", path=r"model\.safetensors$")) == 6 and sleeps == [1] * 5
    with pytest.raises(OSError, match="Can't load the model"):  # from_pretrained keeps the cause
        AutoModelForMaskedLM.from_pretrained("someone/tiny-bert")
    assert not list((Path(constants.HF_HUB_CACHE) / "models--someone--tiny-bert" / "blobs").glob("*.incomplete"))


class _ByteCounter(tqdm):
    """A tqdm_class that records every update (what a progress hook sees)."""

    bars: ClassVar[list[_ByteCounter]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["file"] = io.StringIO()  # silent
        super().__init__(*args, **kwargs)
        self.updates: list[tuple[float, float]] = []
        _ByteCounter.bars.append(self)

    def update(self, n: float | None = 1) -> bool | None:
        self.updates.append((time.monotonic(), n or 0))
        return super().update(n)


def test_snapshot_download_fetches_only_the_allowed_files_and_reports_bytes(
    fake_hub: FakeHub, bert_checkpoint: Path, small_chunks: int
) -> None:
    fake_hub.add_repo("someone/tiny-bert", bert_checkpoint, card=CARD)
    fake_hub.throttle(1_000_000)  # ~0.35 s for the weights: progress arrives over time
    _ByteCounter.bars.clear()
    folder = snapshot_download("someone/tiny-bert", allow_patterns=["*.json", "*.safetensors"], tqdm_class=_ByteCounter)
    expected = {p.name for p in bert_checkpoint.iterdir()}
    assert {p.name for p in Path(folder).iterdir()} == expected
    fetched = {r.path.rsplit("/", 1)[-1] for r in fake_hub.find(method="GET", path=r"/resolve/")}
    assert fetched == expected  # no README.md, no .gitattributes
    (transfer,) = [bar for bar in _ByteCounter.bars if bar.desc.startswith(("Downloading bytes", "Download complete"))]
    total = sum(p.stat().st_size for p in bert_checkpoint.iterdir())
    assert sum(n for _, n in transfer.updates) == total
    weights_chunks = [n for _, n in transfer.updates if n == small_chunks]
    assert len(weights_chunks) >= 10
    assert transfer.updates[-1][0] - transfer.updates[0][0] > 0.2  # spread over the throttled transfer


def test_model_card_load(fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    fake_hub.add_repo("someone/tiny-bert", bert_checkpoint, card=CARD)
    fake_hub.add_repo("someone/no-card", bert_checkpoint, language="fr")
    fake_hub.add_repo("someone/gated", bert_checkpoint, card=CARD, gated=True)
    card = ModelCard.load("someone/tiny-bert")
    assert card.data.language == "en" and card.data.tags == ["tiny"] and card.text.startswith("# Tiny BERT")
    with pytest.raises(GatedRepoError):  # a gated repo's README.md is gated too...
        ModelCard.load("someone/gated")
    assert HfApi().model_info("someone/gated", expand=["cardData"]).card_data.license == "mit"  # type: ignore[union-attr]  # ...its card data is not
    with pytest.raises(EntryNotFoundError):
        ModelCard.load("someone/no-card")
    assert HfApi().model_info("someone/no-card", expand=["cardData"]).card_data.language == "fr"  # type: ignore[union-attr]


# -- transformers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checkpoint", "expected"), [("bert_checkpoint", BERT_EXPECTED), ("camembert_checkpoint", CAMEMBERT_EXPECTED)]
)
def test_auto_classes_load_from_the_stand_in_like_from_the_folder(
    fake_hub: FakeHub, request: pytest.FixtureRequest, checkpoint: str, expected: dict[str, str]
) -> None:
    folder: Path = request.getfixturevalue(checkpoint)
    local_model = AutoModelForMaskedLM.from_pretrained(str(folder)).eval()
    local_tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert fake_hub.requests == []  # a local folder never asks the Hub
    fake_hub.add_repo("someone/tiny", folder)

    config = AutoConfig.from_pretrained("someone/tiny")
    tokenizer = AutoTokenizer.from_pretrained("someone/tiny")
    model = AutoModelForMaskedLM.from_pretrained("someone/tiny").eval()
    assert config.to_dict() == local_model.config.to_dict() | {"_name_or_path": config.to_dict()["_name_or_path"]}
    unmask = pipeline("fill-mask", model=model, tokenizer=tokenizer)
    assert {sentence: unmask(sentence)[0]["token_str"].strip() for sentence in expected} == expected
    sentence = next(iter(expected))
    with torch.no_grad():
        remote = model(**tokenizer(sentence, return_tensors="pt")).logits
        local = local_model(**local_tokenizer(sentence, return_tensors="pt")).logits
    assert torch.equal(remote, local)
    downloaded = {r.path.rsplit("/", 1)[-1] for r in fake_hub.find(method="GET", path=r"/resolve/")}
    assert "model.safetensors" in downloaded and "config.json" in downloaded
    assert all(r.status in (200, 206, 404) for r in fake_hub.requests)  # absent optional files are 404 EntryNotFound


def test_a_bin_only_repo_refuses_use_safetensors_without_fetching_pickles(fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    repo = fake_hub.add_repo("someone/bin-only", bert_checkpoint, weights="bin")
    assert "pytorch_model.bin" in repo.files and "model.safetensors" not in repo.files
    assert HfApi().model_info("someone/bin-only", expand=["safetensors"]).safetensors is None
    with pytest.raises(OSError, match=r"does not appear to have a file named model\.safetensors"):
        AutoModelForMaskedLM.from_pretrained("someone/bin-only", use_safetensors=True)
    assert fake_hub.find(path=r"\.bin$") == []
    assert fake_hub.find(path=r"/discussions|refs/pr|/commits/") == []  # no conversion bot (DISABLE_SAFETENSORS_CONVERSION=1)

    # Pickles allowed: the .bin is fetched and holds the same weights.
    model = AutoModelForMaskedLM.from_pretrained("someone/bin-only")
    local = AutoModelForMaskedLM.from_pretrained(str(bert_checkpoint))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), local.state_dict().values(), strict=True))
    assert [r.status for r in fake_hub.find(method="GET", path=r"pytorch_model\.bin$")] == [200]
    assert fake_hub.find(path=r"/discussions|refs/pr|/commits/") == []


# -- errors ------------------------------------------------------------------------------------


def test_missing_repos_revisions_and_files(fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    fake_hub.add_repo("someone/tiny-bert", bert_checkpoint)
    with pytest.raises(RepositoryNotFoundError) as missing:
        HfApi().model_info("someone/nothing")
    assert missing.value.response.status_code == 401  # anonymous: the Hub does not say "missing" or "private"
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("someone/nothing", "config.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("someone/tiny-bert", "config.json", revision="v2")
    with pytest.raises(RemoteEntryNotFoundError) as entry:
        hf_hub_download("someone/tiny-bert", "nothing.json")
    assert isinstance(entry.value, EntryNotFoundError) and entry.value.response.status_code == 404
    with pytest.raises(OSError, match="is not a local folder and is not a valid model identifier"):
        AutoModelForMaskedLM.from_pretrained("someone/nothing")
    with pytest.raises(HfHubHTTPError) as bad_token:  # an unknown token is refused, not mistaken for a missing repo
        hf_hub_download("someone/tiny-bert", "config.json", token="hf_not_a_token")
    assert bad_token.value.response.status_code == 401 and not isinstance(bad_token.value, RepositoryNotFoundError)


def test_gated_and_private_repos(fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    fake_hub.add_repo("someone/gated", bert_checkpoint, gated=True)
    fake_hub.add_repo("someone/private", bert_checkpoint, private=True)
    assert HfApi().model_info("someone/gated").gated == "auto"  # the metadata stays public
    with pytest.raises(OSError, match="gated repo") as load:
        AutoModelForMaskedLM.from_pretrained("someone/gated")
    assert isinstance(load.value.__cause__, GatedRepoError)
    with pytest.raises(GatedRepoError) as anonymous:
        hf_hub_download("someone/gated", "config.json")
    assert anonymous.value.response.status_code == 401 and "You must have access" in str(anonymous.value)
    with pytest.raises(GatedRepoError) as outsider:
        hf_hub_download("someone/gated", "config.json", token=fake_hub.outsider_token)
    assert outsider.value.response.status_code == 403
    assert Path(hf_hub_download("someone/gated", "config.json", token=fake_hub.token)).is_file()
    # Once config.json is cached, the weights' GatedRepoError is swallowed: "no such file" instead.
    with pytest.raises(OSError, match="does not appear to have a file named"):
        AutoModelForMaskedLM.from_pretrained("someone/gated")
    assert AutoModelForMaskedLM.from_pretrained("someone/gated", token=fake_hub.token) is not None
    with pytest.raises(GatedRepoError):
        HfApi().auth_check("someone/gated")
    HfApi().auth_check("someone/gated", token=fake_hub.token)

    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("someone/private")
    with pytest.raises(RepositoryNotFoundError) as outsider_private:
        HfApi(token=fake_hub.outsider_token).model_info("someone/private")
    assert outsider_private.value.response.status_code == 404  # authenticated: 404, not 401
    assert HfApi(token=fake_hub.token).model_info("someone/private").private is True
    assert [m.id for m in list_models(search="someone")] == ["someone/gated"]
    assert len(list(HfApi(token=fake_hub.token).list_models(search="someone"))) == 2
    assert fake_hub.find(path=r"^/api/models$")[0].headers.get("authorization") is None


def test_server_errors_as_the_client_surfaces_them(fake_hub: FakeHub, bert_checkpoint: Path, sleeps: list[float]) -> None:
    fake_hub.add_repo("someone/tiny-bert", bert_checkpoint)
    # model_info does not retry: the first 5xx is the answer.
    fake_hub.fail(r"^/api/models/", 503)
    with pytest.raises(HfHubHTTPError) as info:
        HfApi().model_info("someone/tiny-bert")
    assert info.value.response.status_code == 503 and sleeps == []

    # The HEAD before a download: one quick try, then 1 + 5 retries with 1-2-4-8-8 s back-off (23 s).
    fake_hub.fail(r"/config\.json$", 500, method="HEAD", times=None)
    with pytest.raises(LocalEntryNotFoundError) as head:
        hf_hub_download("someone/tiny-bert", "config.json")
    assert isinstance(head.value.__cause__, HfHubHTTPError) and head.value.__cause__.response.status_code == 500
    assert len(fake_hub.find(method="HEAD", path=r"config\.json$", status=500)) == 7 and sleeps == [1, 2, 4, 8, 8]
    fake_hub.clear_faults()
    sleeps.clear()

    # A 5xx on the body's GET is not retried at all; a 429 is, after Retry-After + 1 s.
    fake_hub.fail(r"/model\.safetensors$", 502, method="GET")
    with pytest.raises(HfHubHTTPError) as body:
        hf_hub_download("someone/tiny-bert", "model.safetensors")
    assert body.value.response.status_code == 502 and sleeps == []
    fake_hub.fail(r"/model\.safetensors$", 429, method="GET", retry_after=3)
    assert _sha256(hf_hub_download("someone/tiny-bert", "model.safetensors")) == _sha256(bert_checkpoint / "model.safetensors")
    assert sleeps == [4.0] and fake_hub.pending_faults() == []


def test_a_renamed_repo_redirects_to_its_new_name(fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    fake_hub.add_repo("someone/old-name", bert_checkpoint)
    fake_hub.rename("someone/old-name", "someone/new-name")
    assert HfApi().model_info("someone/old-name").id == "someone/new-name"
    assert Path(hf_hub_download("someone/old-name", "config.json")).is_file()
    assert AutoConfig.from_pretrained("someone/old-name").model_type == "bert"
    redirects = fake_hub.find(status=307)
    assert {r.path.split("/")[1] for r in redirects} == {"api", "someone"}  # both /api/models/... and /{repo}/resolve/...
    assert all("old-name" in r.path for r in redirects) and fake_hub.find(path="new-name", status=200)


# -- the stand-in itself -------------------------------------------------------------------------


def test_nothing_is_requested_once_offline_again(tmp_path: Path, bert_checkpoint: Path) -> None:
    assert constants.HF_HUB_OFFLINE  # the suite runs offline
    endpoint = constants.ENDPOINT
    with FakeHub() as hub:
        hub.add_repo("someone/tiny-bert", bert_checkpoint)
        with point_clients_at(hub.url, tmp_path / "hf-home"):
            assert not constants.HF_HUB_OFFLINE and hub.url == constants.ENDPOINT
            AutoModelForMaskedLM.from_pretrained("someone/tiny-bert")
            asked = len(hub.requests)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(constants, "HF_HUB_OFFLINE", True)
                AutoModelForMaskedLM.from_pretrained("someone/tiny-bert")  # from the cache, silently
                with pytest.raises(OfflineModeIsEnabled):
                    HfApi().model_info("someone/tiny-bert")
            assert len(hub.requests) == asked
        assert constants.HF_HUB_OFFLINE and endpoint == constants.ENDPOINT
        with pytest.raises(LocalEntryNotFoundError):
            hf_hub_download("someone/tiny-bert", "config.json")
        with pytest.raises(OSError):
            AutoModelForMaskedLM.from_pretrained("someone/tiny-bert")
        assert len(hub.requests) == asked
        host, port = hub.url.removeprefix("http://").split(":")
    assert host == "127.0.0.1"
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
        pass  # stopped: nothing listens there any more


@pytest.fixture
def two_hubs() -> Iterator[tuple[FakeHub, FakeHub]]:
    with FakeHub() as first, FakeHub() as second:
        yield first, second


def test_each_stand_in_has_its_own_port_and_log(two_hubs: tuple[FakeHub, FakeHub], tmp_path: Path, bert_checkpoint: Path) -> None:
    first, second = two_hubs
    assert first.url != second.url
    second.add_repo("someone/tiny-bert", bert_checkpoint)
    with point_clients_at(second.url, tmp_path / "hf-home"):
        hf_hub_download("someone/tiny-bert", "config.json")
    assert first.requests == [] and [str(r) for r in second.requests] == [
        "HEAD /someone/tiny-bert/resolve/main/config.json -> 200",
        "GET /someone/tiny-bert/resolve/main/config.json -> 200",
    ]
