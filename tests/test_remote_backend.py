"""The remote inference backend (bot.inference.remote) against stand-ins for its two servers.

"huggingface": tests/fakehfinference.py as Hugging Face's hosted inference, the mask token from
tests/fakehub. "fillmask": the same stand-in as this bot's own service (/load, /health, the core's
words in refusals). Results are compared with the in-process core on the same checkpoints.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.inference.checkpoint_policy import CheckpointPolicy
from bot.inference.errors import (
    BusyError,
    CheckpointError,
    CheckpointNotAllowedError,
    CheckpointNotFoundError,
    InferenceUnavailableError,
    InvalidRequestError,
    NoMaskError,
)
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.remote import InferenceTokenRefusedError, RemoteBackend
from bot.inference.types import FillRequest, FillResult, InferenceBackend, ModelState
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import SqliteGuildSettings
from tests.fakehfinference import FakeHFInference
from tests.fakehub import FakeHub

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_fakehub_member"  # FakeHub's valid token: Hugging Face takes the same one for the Hub and its inference
BERT = "someone/tiny-bert"
CAMEMBERT = "almanach/tiny-camembert"
GUILD = 1234


@pytest.fixture(scope="module")
def bert_lm(bert_checkpoint: Path) -> MaskedLM:
    return load_masked_lm(str(bert_checkpoint))


@pytest.fixture(scope="module")
def camembert_lm(camembert_checkpoint: Path) -> MaskedLM:
    return load_masked_lm(str(camembert_checkpoint))


@pytest.fixture
async def hf(
    fake_hub: FakeHub, bert_checkpoint: Path, camembert_checkpoint: Path, bert_lm: MaskedLM, camembert_lm: MaskedLM
) -> AsyncIterator[FakeHFInference]:
    """Hugging Face's hosted inference (a stand-in) serving both test models, which the Hub knows."""
    fake_hub.add_repo(BERT, bert_checkpoint)
    fake_hub.add_repo(CAMEMBERT, camembert_checkpoint)
    async with FakeHFInference({BERT: bert_lm, CAMEMBERT: camembert_lm}, token=TOKEN) as server:
        yield server


@pytest.fixture
async def hf_backend(hf: FakeHFInference) -> AsyncIterator[RemoteBackend]:
    backend = RemoteBackend(hf.url, api="huggingface", token=TOKEN, load_timeout=20, loading_retry_cap=0.2)
    yield backend
    await backend.aclose()


@pytest.fixture
async def service(bert_checkpoint: Path, bert_lm: MaskedLM, camembert_lm: MaskedLM) -> AsyncIterator[FakeHFInference]:
    """This bot's own inference service (a stand-in): a local folder and a Hub id."""
    models = {str(bert_checkpoint): bert_lm, CAMEMBERT: camembert_lm}
    async with FakeHFInference(models, flavour="fillmask", load_delay=0.3) as server:
        yield server


@pytest.fixture
async def service_backend(service: FakeHFInference) -> AsyncIterator[RemoteBackend]:
    backend = RemoteBackend(service.url, api="fillmask", load_timeout=20)
    yield backend
    await backend.aclose()


def core(lm: MaskedLM, text: str, top_k: int = 5, targets: tuple[str, ...] | None = None) -> FillResult:
    return lm.predict(FillRequest(text, top_k, targets))


def assert_same_answer(remote: FillResult, local: FillResult, *, checkpoint: str) -> None:
    assert remote.checkpoint == checkpoint
    assert remote.text == local.text
    assert remote.masks == local.masks  # scores, ids, token_str and sequences, in order
    assert remote.batch_size == 1
    assert remote.elapsed > 0


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- results -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "text"),
    [(BERT, "the cat sat on the [MASK] ."), (BERT, "paris is the capital of [MASK] ."), (CAMEMBERT, "le camembert est <mask> .")],
)
async def test_one_mask_is_the_cores_answer(
    hf_backend: RemoteBackend, bert_lm: MaskedLM, camembert_lm: MaskedLM, model: str, text: str
) -> None:
    lm = bert_lm if model == BERT else camembert_lm
    remote = await hf_backend.get(model)
    assert remote.mask_token == lm.mask_token  # from the Hub's model info
    result = await remote.fill(FillRequest(text))
    local = core(lm, text)
    assert_same_answer(result, local, checkpoint=model)
    assert result.best_sequence == local.best_sequence


@pytest.mark.parametrize(
    ("model", "text"),
    [
        (BERT, "the [MASK] sat on the [MASK] ."),
        (CAMEMBERT, "le <mask> dort sur le <mask> ."),
        (BERT, "[MASK] is the [MASK] of [MASK] ."),
    ],
)
async def test_several_masks_are_the_cores_answer(
    hf_backend: RemoteBackend, bert_lm: MaskedLM, camembert_lm: MaskedLM, model: str, text: str
) -> None:
    lm = bert_lm if model == BERT else camembert_lm
    result = await (await hf_backend.get(model)).fill(FillRequest(text, top_k=3))
    local = core(lm, text, 3)
    assert_same_answer(result, local, checkpoint=model)
    assert len(result.masks) == text.count(lm.mask_token)
    assert result.best_sequence == local.best_sequence


async def test_top_k_and_targets_are_the_cores_answer(hf_backend: RemoteBackend, hf: FakeHFInference, bert_lm: MaskedLM) -> None:
    model = await hf_backend.get(BERT)
    for top_k in (1, 2, 10):
        result = await model.fill(FillRequest("the cat sat on the [MASK] .", top_k=top_k))
        assert_same_answer(result, core(bert_lm, "the cat sat on the [MASK] .", top_k), checkpoint=BERT)
        assert len(result.masks[0]) == top_k
    targets = ("mat", "sofa", "blue")
    result = await model.fill(FillRequest("the cat sat on the [MASK] .", top_k=3, targets=targets))
    assert_same_answer(result, core(bert_lm, "the cat sat on the [MASK] .", 3, targets), checkpoint=BERT)
    assert hf.fills()[-1].body == {"inputs": "the cat sat on the [MASK] .", "parameters": {"top_k": 3, "targets": list(targets)}}
    assert hf.fills()[-1].authorization == f"Bearer {TOKEN}"


async def test_the_cores_refusal_comes_back_in_plain_words(hf_backend: RemoteBackend) -> None:
    model = await hf_backend.get(BERT)
    with pytest.raises(InvalidRequestError) as refused:
        await model.fill(FillRequest("no blank here", top_k=3))
    assert "refused that sentence" in str(refused.value)
    assert "[MASK]" in str(refused.value)  # the server's words: the NoMaskError text


async def test_state_loaded_models_and_where(hf_backend: RemoteBackend, hf: FakeHFInference) -> None:
    assert hf_backend.state(BERT) is ModelState.NOT_LOADED and hf_backend.peek(BERT) is None
    assert not hf_backend.has_loaded(BERT)
    hf.latency = 0.3
    model = await hf_backend.get(BERT)
    assert hf_backend.state(BERT) is ModelState.LOADED and hf_backend.peek(BERT) is model and hf_backend.has_loaded(BERT)
    assert hf_backend.loaded == [BERT] and hf_backend.progress(BERT) is None
    fills = [asyncio.ensure_future(model.fill(FillRequest("the sky is [MASK] ."))) for _ in range(3)]
    await asyncio.sleep(0.1)
    (stats,) = hf_backend.loaded_models()
    assert (stats.checkpoint, stats.memory_bytes, stats.queue_depth) == (BERT, 0, 3)
    await asyncio.gather(*fills)
    (stats,) = hf_backend.loaded_models()
    assert (stats.queue_depth, stats.requests_served) == (0, 3)
    assert hf_backend.where == f"the hosted-inference API at 127.0.0.1:{hf.port}"
    assert RemoteBackend("https://router.huggingface.co/hf-inference", api="huggingface", load_timeout=1).where == (
        "Hugging Face's hosted inference"
    )
    assert (
        RemoteBackend("http://inference:8000", api="fillmask", load_timeout=1).where == "the inference service at inference:8000"
    )
    with pytest.raises(ValueError, match="api must be one of"):
        RemoteBackend("http://inference:8000", api="grpc", load_timeout=1)
    with pytest.raises(ValueError, match="must start with http"):
        RemoteBackend("inference:8000", api="fillmask", load_timeout=1)


async def test_the_mask_token_falls_back_to_tokenizer_config(
    hf: FakeHFInference, fake_hub: FakeHub, camembert_lm: MaskedLM
) -> None:
    fake_hub.repo(CAMEMBERT).mask_token = None  # the Hub's model info says nothing
    backend = RemoteBackend(hf.url, api="huggingface", token=TOKEN, load_timeout=20)
    try:
        model = await backend.get(CAMEMBERT)
        assert model.mask_token == camembert_lm.mask_token == "<mask>"
        assert fake_hub.find(method="GET", path=r"tokenizer_config\.json$")
    finally:
        await backend.aclose()


# -- Hugging Face loading a model ------------------------------------------------------------------


async def test_a_cold_model_is_loading_until_hugging_face_answers(hf_backend: RemoteBackend, hf: FakeHFInference) -> None:
    hf.cold(BERT, calls=3, estimated_time=0.1)
    loading = asyncio.ensure_future(hf_backend.get(BERT))
    await wait_for(lambda: len(hf.fills(BERT)) >= 1)
    assert hf_backend.state(BERT) is ModelState.LOADING
    progress = hf_backend.progress(BERT)
    assert progress is not None and "Hugging Face expects about 0 s" in progress.describe()
    model = await asyncio.wait_for(loading, 10)
    assert hf_backend.state(BERT) is ModelState.LOADED
    assert [r.status for r in hf.fills(BERT)] == [503, 503, 503, 200]

    # Hugging Face may unload it again later: a fill then waits, LOADING meanwhile, and is answered.
    hf.cold(BERT, calls=2, estimated_time=0.15)
    fill = asyncio.ensure_future(model.fill(FillRequest("the sky is [MASK] .", top_k=2)))
    await wait_for(lambda: hf_backend.state(BERT) is ModelState.LOADING)
    result = await asyncio.wait_for(fill, 10)
    assert result.masks[0][0].word == "blue"
    assert result.elapsed >= 0.3  # two waits of 0.15 s
    assert hf_backend.state(BERT) is ModelState.LOADED and hf_backend.progress(BERT) is None


async def test_the_wait_is_capped_and_bounded_by_the_load_timeout(hf: FakeHFInference) -> None:
    backend = RemoteBackend(hf.url, api="huggingface", token=TOKEN, load_timeout=1.0, loading_retry_cap=0.25)
    try:
        hf.cold(BERT, calls=1000, estimated_time=20.0)  # Hugging Face's usual estimate; capped at 0.25 s
        started = time.monotonic()
        with pytest.raises(InferenceUnavailableError, match="still loading"):
            await backend.get(BERT)
        assert time.monotonic() - started < 3
        assert 3 <= len(hf.fills(BERT)) <= 7
        assert backend.state(BERT) is ModelState.NOT_LOADED  # nothing stuck: the next get tries again
        hf.cold(BERT, calls=0)
        assert (await backend.get(BERT)).mask_token == "[MASK]"
    finally:
        await backend.aclose()


# -- refusals ------------------------------------------------------------------------------------


async def test_429_is_busy_with_retry_after(hf_backend: RemoteBackend, hf: FakeHFInference) -> None:
    model = await hf_backend.get(BERT)
    hf.throttle(calls=1, retry_after=7)
    with pytest.raises(BusyError) as busy:
        await model.fill(FillRequest("the sky is [MASK] ."))
    assert busy.value.retry_after == 7
    assert "try again in 7 s" in str(busy.value)
    assert (await model.fill(FillRequest("the sky is [MASK] ."))).masks[0][0].word == "blue"
    hf.throttle(calls=1, retry_after=55, header="RateLimit")  # no Retry-After: the Hub's RateLimit header
    with pytest.raises(BusyError) as busy:
        await model.fill(FillRequest("the sky is [MASK] ."))
    assert busy.value.retry_after == 55


async def test_a_model_hugging_face_does_not_run_is_not_found(
    hf_backend: RemoteBackend, hf: FakeHFInference, fake_hub: FakeHub, bert_checkpoint: Path
) -> None:
    fake_hub.add_repo("someone/not-deployed", bert_checkpoint)  # on the Hub, not on the inference API
    with pytest.raises(CheckpointNotFoundError) as missing:
        await hf_backend.get("someone/not-deployed")
    assert str(missing.value) == (
        "Hugging Face's hosted inference doesn't run `someone/not-deployed`: "
        "the model doesn't exist or isn't deployed there for fill-mask."
    )
    assert hf.fills("someone/not-deployed")[0].status == 404
    with pytest.raises(CheckpointNotFoundError, match="can't find `someone/nowhere` on the Hugging Face Hub"):
        await hf_backend.get("someone/nowhere")
    assert hf_backend.state("someone/nowhere") is ModelState.NOT_LOADED
    with pytest.raises(CheckpointNotAllowedError, match="only serves models from the Hugging Face Hub"):
        await hf_backend.get(str(bert_checkpoint))


async def test_a_bad_token_is_a_plain_refusal(hf: FakeHFInference) -> None:
    backend = RemoteBackend(hf.url, api="huggingface", token="hf_wrong", load_timeout=5)
    try:
        with pytest.raises(InferenceTokenRefusedError) as refused:
            await backend.get(BERT)
        assert isinstance(refused.value, InferenceUnavailableError)
        assert str(refused.value).startswith("The model server refused the bot's token (HF_TOKEN)")
        assert not hf.fills(BERT)  # the Hub refused it first
    finally:
        await backend.aclose()


async def test_a_token_the_inference_api_refuses_is_a_plain_refusal(hf_backend: RemoteBackend, hf: FakeHFInference) -> None:
    model = await hf_backend.get(BERT)
    hf.token = "hf_rotated"
    with pytest.raises(InferenceTokenRefusedError, match=r"token \(HF_TOKEN\)"):
        await model.fill(FillRequest("the sky is [MASK] ."))
    assert hf.fills(BERT)[-1].status == 401
    hf.token = TOKEN
    assert (await model.fill(FillRequest("the sky is [MASK] ."))).masks[0][0].word == "blue"


# -- outages -------------------------------------------------------------------------------------


async def test_an_unreachable_server_is_unavailable_then_works_again(hf_backend: RemoteBackend, hf: FakeHFInference) -> None:
    model = await hf_backend.get(BERT)
    await hf.stop()
    started = time.monotonic()
    with pytest.raises(InferenceUnavailableError) as down:
        await model.fill(FillRequest("the sky is [MASK] ."))
    assert time.monotonic() - started < 15
    assert str(down.value) == "I can't reach the model server right now; please try again in a minute."
    assert hf_backend.state(BERT) is ModelState.LOADED  # nothing to reload in this process
    await hf.start()  # the same port
    assert (await model.fill(FillRequest("the sky is [MASK] ."))).masks[0][0].word == "blue"

    for outage in ("502", "close"):
        hf.outage = outage
        with pytest.raises(InferenceUnavailableError) as failed:
            await model.fill(FillRequest("the sky is [MASK] ."))
        assert "Traceback" not in str(failed.value) and "httpx" not in str(failed.value)
        hf.outage = None
        assert (await model.fill(FillRequest("the sky is [MASK] ."))).masks[0][0].word == "blue"


async def test_a_closed_port_is_unavailable_at_once(bert_lm: MaskedLM) -> None:
    server = FakeHFInference({"x": bert_lm}, flavour="fillmask")
    await server.start()
    await server.stop()  # a port nobody listens on
    backend = RemoteBackend(server.url, api="fillmask", load_timeout=30)
    try:
        started = time.monotonic()
        with pytest.raises(InferenceUnavailableError, match="can't reach the model server"):
            await backend.get("x")
        assert time.monotonic() - started < 5
        assert backend.state("x") is ModelState.NOT_LOADED
        await server.start()
        assert (await backend.get("x")).mask_token == "[MASK]"
    finally:
        await backend.aclose()
        await server.stop()


async def test_a_server_that_does_not_answer_times_out_in_time(hf: FakeHFInference) -> None:
    backend = RemoteBackend(hf.url, api="huggingface", token=TOKEN, load_timeout=20, fill_timeout=1.0)
    try:
        model = await backend.get(BERT)
        hf.latency = 5
        started = time.monotonic()
        with pytest.raises(InferenceUnavailableError, match="took too long"):
            await model.fill(FillRequest("the sky is [MASK] ."))
        assert time.monotonic() - started < 3
        hf.latency = 0
        assert (await model.fill(FillRequest("the sky is [MASK] ."))).masks[0][0].word == "blue"  # its own answer
    finally:
        await backend.aclose()


# -- concurrency ---------------------------------------------------------------------------------


async def test_many_fills_are_sent_at_once(hf_backend: RemoteBackend, hf: FakeHFInference, bert_lm: MaskedLM) -> None:
    model = await hf_backend.get(BERT)
    hf.latency = 0.3
    texts = [f"the {word} sat on the [MASK] ." for word in ("cat", "dog", "sky", "cat")] * 5
    started = time.monotonic()
    results = await asyncio.gather(*(model.fill(FillRequest(text, top_k=2)) for text in texts))
    took = time.monotonic() - started
    assert took < 20 * 0.3 / 3  # sequentially: 6 s at least
    assert hf.most_in_flight >= 10
    for text, result in zip(texts, results, strict=True):  # each gets its own answer
        assert result.text == text and result.masks == core(bert_lm, text, 2).masks


async def test_beyond_max_in_flight_is_busy(hf: FakeHFInference) -> None:
    backend = RemoteBackend(hf.url, api="huggingface", token=TOKEN, load_timeout=20, max_in_flight=5)
    try:
        model = await backend.get(BERT)
        hf.latency = 0.3
        outcomes = await asyncio.gather(
            *(model.fill(FillRequest("the sky is [MASK] .")) for _ in range(8)), return_exceptions=True
        )
        assert sum(isinstance(o, FillResult) for o in outcomes) == 5
        assert sum(isinstance(o, BusyError) for o in outcomes) == 3
        assert backend.in_flight == 0
    finally:
        await backend.aclose()


# -- this bot's own service ------------------------------------------------------------------------


async def test_the_service_loads_then_fills(
    service_backend: RemoteBackend, service: FakeHFInference, bert_checkpoint: Path, bert_lm: MaskedLM
) -> None:
    folder = str(bert_checkpoint)  # a local folder: percent-encoded whole in the path
    loading = asyncio.ensure_future(service_backend.get(folder))
    await asyncio.sleep(0.1)
    assert service_backend.state(folder) is ModelState.LOADING
    progress = service_backend.progress(folder)
    assert progress is not None and "on the model server" in progress.describe()
    model = await asyncio.wait_for(loading, 10)
    assert model.mask_token == "[MASK]" and service_backend.state(folder) is ModelState.LOADED
    (load,) = [r for r in service.requests if r.path.startswith("/load/")]
    assert load.model == folder and "/" not in load.path.removeprefix("/load/")
    assert load.authorization is None  # no HF_TOKEN sent to this bot's own service
    for text, top_k, targets in [
        ("the cat sat on the [MASK] .", 5, None),
        ("the [MASK] sat on the [MASK] .", 2, None),
        ("the sky is [MASK] .", 3, ("blue", "mat")),
    ]:
        result = await model.fill(FillRequest(text, top_k, targets))
        local = core(bert_lm, text, top_k, targets)
        assert_same_answer(result, local, checkpoint=folder)
        assert result.best_sequence == local.best_sequence


async def test_the_services_refusals_keep_their_words(service_backend: RemoteBackend, service: FakeHFInference) -> None:
    with pytest.raises(CheckpointNotFoundError, match=r"I can't find `someone/nothing` on the Hugging Face Hub\."):
        await service_backend.get("someone/nothing")
    model = await service_backend.get(CAMEMBERT)
    with pytest.raises(InvalidRequestError) as refused:
        await model.fill(FillRequest("pas de blanc ici"))
    assert str(refused.value) == str(NoMaskError("<mask>"))
    service.throttle(calls=1, retry_after=3)
    with pytest.raises(BusyError) as busy:
        await model.fill(FillRequest("le camembert est <mask> ."))
    assert busy.value.retry_after == 3
    service.outage = "502"
    with pytest.raises(InferenceUnavailableError, match=r"error 502"):
        await model.fill(FillRequest("le camembert est <mask> ."))
    service.outage = None
    assert (await model.fill(FillRequest("le camembert est <mask> ."))).masks[0][0].word == "délicieux"


async def test_a_slow_service_load_is_given_up(service: FakeHFInference, bert_checkpoint: Path) -> None:
    service.load_delay = 3
    backend = RemoteBackend(service.url, api="fillmask", load_timeout=0.5)
    try:
        with pytest.raises(CheckpointError, match="took more than 0 s"):
            await backend.get(str(bert_checkpoint))
        assert backend.state(str(bert_checkpoint)) is ModelState.NOT_LOADED
    finally:
        await backend.aclose()


async def test_the_service_layer_runs_on_the_remote_backend(
    service_backend: RemoteBackend, bert_checkpoint: Path, tmp_path: Path
) -> None:
    backend: InferenceBackend = service_backend  # the Protocol, checked by pyright
    default = str(bert_checkpoint)
    async with SqliteGuildSettings(tmp_path / "settings.sqlite3") as store:
        policy = CheckpointPolicy(allowed_models=("almanach/*",), allow_local_models=True, local_roots=(bert_checkpoint.parent,))
        service = FillMaskService(backend, store, default_model=default, policy=policy)
        await service_backend.preload(default)
        assert service.default_model_has_loaded() and await service.is_ready(None)
        # The user's "<mask>" becomes the checkpoint's "[MASK]" (peek().mask_token), as in process.
        answer = await service.answer(None, "k=2 the cat sat on the <mask> .")
        assert answer.result.masks[0][0].word == "mat" and len(answer.result.masks[0]) == 2
        status = await service.set_checkpoint(GUILD, CAMEMBERT)
        assert (status.state, status.mask_token) == (ModelState.LOADED, "<mask>")
        assert (await service.fill(GUILD, "le camembert est [MASK] .")).masks[0][0].word == "délicieux"
        assert (await service.status(GUILD)).mask_token == "<mask>"


# -- no torch ------------------------------------------------------------------------------------


def test_the_remote_backend_imports_without_torch_or_transformers() -> None:
    code = """
import sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
import bot.inference.remote
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers") and sys.modules[m] is not None)
print("imported:", loaded)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "imported: []" in done.stdout
