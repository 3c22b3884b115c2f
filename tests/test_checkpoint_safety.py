"""What ``model set`` refuses before loading anything, and how loading fails safely."""

from __future__ import annotations

import asyncio
import gc
import shutil
import weakref
from pathlib import Path

import pytest
import torch

from bot.inference.batching import BatchingModel, BusyError
from bot.inference.checkpoint_policy import CheckpointPolicy, check_allowed
from bot.inference.errors import CheckpointLoadError, CheckpointNotAllowedError
from bot.inference.loading import load_masked_lm, safetensors_parameter_count
from bot.inference.types import FillRequest


def test_parameter_count_comes_from_safetensors_headers(bert_checkpoint: Path) -> None:
    lm = load_masked_lm(str(bert_checkpoint))
    # parameters() yields tied weights (decoder = embeddings) once, as the file stores them.
    assert safetensors_parameter_count(bert_checkpoint) == sum(p.numel() for p in lm.model.parameters())


def test_too_big_a_checkpoint_is_refused_before_its_weights_load(bert_checkpoint: Path) -> None:
    count = safetensors_parameter_count(bert_checkpoint)
    assert count is not None
    with pytest.raises(CheckpointNotAllowedError, match="MAX_MODEL_PARAMETERS") as caught:
        load_masked_lm(str(bert_checkpoint), max_parameters=count - 1)
    assert "safetensors headers" in str(caught.value)
    assert load_masked_lm(str(bert_checkpoint), max_parameters=count).mask_token == "[MASK]"


@pytest.fixture(scope="module")
def pickle_checkpoint(bert_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BERT test checkpoint with its weights as a pickle file only."""
    out = tmp_path_factory.mktemp("pickle-checkpoint")
    for item in bert_checkpoint.iterdir():
        if item.suffix != ".safetensors":
            shutil.copy(item, out / item.name)
    lm = load_masked_lm(str(bert_checkpoint))
    torch.save(lm.model.state_dict(), out / "pytorch_model.bin")
    return out


def test_pickle_weights_are_refused_unless_the_owner_allows_them(pickle_checkpoint: Path) -> None:
    with pytest.raises(CheckpointLoadError, match="safetensors"):
        load_masked_lm(str(pickle_checkpoint))
    allowed = load_masked_lm(str(pickle_checkpoint), allow_pickle_weights=True)
    assert allowed.predict(FillRequest("the cat sat on the [MASK] .", 1)).masks[0][0].word == "mat"


def test_local_paths_need_the_switch_and_a_listed_directory(bert_checkpoint: Path, tmp_path: Path) -> None:
    root = bert_checkpoint.parent
    with pytest.raises(CheckpointNotAllowedError, match="turned off"):
        check_allowed(str(bert_checkpoint), CheckpointPolicy())
    with pytest.raises(CheckpointNotAllowedError, match="LOCAL_MODEL_DIRS"):
        check_allowed(str(bert_checkpoint), CheckpointPolicy(allow_local_models=True))
    inside = CheckpointPolicy(allow_local_models=True, local_roots=(root,))
    assert check_allowed(str(bert_checkpoint), inside) == str(bert_checkpoint.resolve())
    elsewhere = CheckpointPolicy(allow_local_models=True, local_roots=(tmp_path / "models",))
    with pytest.raises(CheckpointNotAllowedError, match="outside"):
        check_allowed(str(bert_checkpoint), elsewhere)
    # "..", and a symlink inside an allowed directory pointing out of it, are both refused.
    (tmp_path / "models").mkdir()
    with pytest.raises(CheckpointNotAllowedError, match="outside"):
        check_allowed(str(tmp_path / "models" / ".." / ".." / bert_checkpoint.name), elsewhere)
    (tmp_path / "models" / "sneaky").symlink_to(bert_checkpoint, target_is_directory=True)
    with pytest.raises(CheckpointNotAllowedError, match="outside"):
        check_allowed(str(tmp_path / "models" / "sneaky"), elsewhere)


@pytest.mark.parametrize(
    "reference",
    [
        "",
        "   ",
        "a" * 300,
        "a\x00b",
        "~" + "x" * 5000,
        "owner/name/extra",
        "../../etc",
        "name with spaces",
        "owner/..",
        "@everyone",
        "<@123>",
        "x`y",
    ],
)
def test_malformed_hub_ids_are_refused_in_plain_words(reference: str) -> None:
    with pytest.raises(CheckpointNotAllowedError) as caught:
        check_allowed(reference, CheckpointPolicy())
    message = str(caught.value)
    assert message and "Traceback" not in message and message.count("`") % 2 == 0


def test_hostile_local_paths_are_refused_in_plain_words(bert_checkpoint: Path) -> None:
    policy = CheckpointPolicy(allow_local_models=True, local_roots=(bert_checkpoint.parent,))
    for reference in ("~" + "x" * 5000, "/" + "a/" * 3000, "./\x00", "/etc/passwd", "~root"):
        with pytest.raises(CheckpointNotAllowedError):
            check_allowed(reference, policy)


def test_allow_list_patterns() -> None:
    policy = CheckpointPolicy(allowed_models=("camembert-base", "almanach/*"))
    assert check_allowed("almanach/camembertv2-base", policy) == "almanach/camembertv2-base"
    assert check_allowed("CamemBERT-base", policy) == "CamemBERT-base"
    with pytest.raises(CheckpointNotAllowedError, match="allowed models"):
        check_allowed("bert-base-uncased", policy)


def test_a_failed_load_leaves_nothing_in_memory(not_mlm_checkpoint: Path, bert_checkpoint: Path) -> None:
    from bot.inference.errors import NotMaskedLMError

    created: list[weakref.ref[torch.nn.Module]] = []
    original = torch.nn.Module.__init__

    def tracking_init(self: torch.nn.Module, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        created.append(weakref.ref(self))

    torch.nn.Module.__init__ = tracking_init  # type: ignore[method-assign]
    try:
        with pytest.raises(NotMaskedLMError):
            load_masked_lm(str(not_mlm_checkpoint))
        with pytest.raises(CheckpointNotAllowedError):
            load_masked_lm(str(bert_checkpoint), max_parameters=10)
    finally:
        torch.nn.Module.__init__ = original  # type: ignore[method-assign]
    gc.collect()
    assert all(ref() is None for ref in created)


async def test_a_full_queue_answers_busy_with_a_retry_time(bert_checkpoint: Path) -> None:
    served = BatchingModel(load_masked_lm(str(bert_checkpoint)), max_batch_size=2, max_queue=3)
    try:
        outcomes = await asyncio.gather(
            *(served.fill(FillRequest(f"the cat sat on the [MASK] {i} .", 1)) for i in range(10)), return_exceptions=True
        )
    finally:
        await served.aclose()
    busy = [o for o in outcomes if isinstance(o, BusyError)]
    answered = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(answered) == 3 and len(busy) == 7
    assert all("try again in" in str(b) and b.retry_after > 0 for b in busy)
    assert served.outstanding == 0


@pytest.mark.parametrize(
    "content",
    [b"", b"junk" * 10, (2**40).to_bytes(8, "little") + b"{}", (10).to_bytes(8, "little") + b"{not json}"],
    ids=["empty", "junk", "huge-header", "bad-json"],
)
def test_an_invalid_safetensors_file_is_explained(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "model.safetensors").write_bytes(content)
    with pytest.raises(CheckpointLoadError, match=r"^`model\.safetensors` is not a valid safetensors file\.$"):
        safetensors_parameter_count(tmp_path)


def test_a_folder_without_safetensors_has_no_header_count(tmp_path: Path) -> None:
    assert safetensors_parameter_count(tmp_path) is None
