"""One bad request must never hurt anyone else (issue 9, point 1).

An unexpected exception while one request is encoded, resolved or decoded used to fail every
request batched with it ("Something went wrong" for all). Each cause seen is fixed where it
starts, and a failure nobody foresaw now stays with its request:

- lone surrogates (a client's ``"\\ud800"``) are replaced before any tokenizer sees them;
- a tokenizer with more tokens than the model has embeddings is refused when it loads;
- RoBERTa-style models outside a hard-coded list (RoBERTa-PreLayerNorm, MPNet) whose
  tokenizer declares no length got a limit two tokens too high, and crashed just under it;
- whatever else raises fails only its own request; a forward pass that raises is retried
  one request at a time.

Through the real bot on a fake Discord, the console, and the batching model directly.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from bot.adapters.console import Console
from bot.inference.batching import BatchingModel
from bot.inference.checkpoint_policy import CheckpointPolicy
from bot.inference.errors import CheckpointLoadError, FillMaskError, InputTooLongError, RequestFailedError
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.registry import ModelRegistry
from bot.inference.types import FillRequest, FillResult
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import SqliteGuildSettings
from tests.checkpoints import (
    UNBOUNDED_POSITION_ROWS,
    UNBOUNDED_TOKEN_LIMIT,
    UNRESIZED_ADDED_TOKENS,
    build_mpnet_checkpoint,
    build_roberta_prelayernorm_checkpoint,
    build_unresized_checkpoint,
)
from tests.discord_helpers import BotOnFakeDiscord, embed_text, titled

SENTENCE = "the cat sat on the [MASK] ."
SURROGATE = "\ud800"


@pytest.fixture(scope="module")
def prelayernorm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_roberta_prelayernorm_checkpoint(tmp_path_factory.mktemp("prelayernorm-checkpoint"))


@pytest.fixture(scope="module")
def mpnet_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mpnet_checkpoint(tmp_path_factory.mktemp("mpnet-checkpoint"))


@pytest.fixture(scope="module")
def unresized_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_unresized_checkpoint(tmp_path_factory.mktemp("unresized-checkpoint"))


@pytest.fixture
def bert_lm(bert_checkpoint: Path) -> MaskedLM:
    return load_masked_lm(str(bert_checkpoint))


def failures_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.inference.masked_lm" and r.levelno >= logging.ERROR]


def text_of_length(lm: MaskedLM, tokens: int) -> str:
    """A sentence with one mask that makes exactly ``tokens`` tokens, special ones included."""
    for words in range(tokens):
        text = f"{lm.mask_token}" + " cat" * words
        length = len(lm.tokenizer(text)["input_ids"])
        if length == tokens:
            return text
        if length > tokens:
            break
    raise AssertionError(f"no sentence of {tokens} tokens")


async def gathered(lm: MaskedLM, requests: Sequence[FillRequest]) -> tuple[list[FillResult | BaseException], list[int]]:
    """Answer ``requests`` through a BatchingModel, all queued before its worker runs (one batch).

    Returns each outcome and the sizes of the batches ``predict_batch`` was called with.
    """
    sizes: list[int] = []
    original = lm.predict_batch

    def recording(batch: Sequence[FillRequest]) -> list[FillResult | FillMaskError]:
        sizes.append(len(batch))
        return original(batch)

    lm.predict_batch = recording  # the batching model looks the method up at each call
    model = BatchingModel(lm)
    try:
        outcomes = await asyncio.gather(*(model.fill(r) for r in requests), return_exceptions=True)
    finally:
        await model.aclose()
        del lm.predict_batch
    return list(outcomes), sizes


# -- lone surrogates -------------------------------------------------------------------------


def test_lone_surrogates_never_reach_the_tokenizer(bert_lm: MaskedLM) -> None:
    with pytest.raises(TypeError):  # why: the Rust tokenizer refuses them outright
        bert_lm.tokenizer(f"a {SURROGATE} b")
    outcomes = bert_lm.predict_batch(
        [
            FillRequest(f"{SENTENCE} {SURROGATE}", 3, (f"mat{SURROGATE}", "dog")),
            FillRequest(SENTENCE, 3),
        ]
    )
    first, second = outcomes
    assert isinstance(first, FillResult) and isinstance(second, FillResult)
    assert "\ufffd" in first.text and SURROGATE not in first.text
    assert second.masks[0][0].word == "mat"


@pytest.fixture
async def console_service(bert_checkpoint: Path, tmp_path: Path) -> AsyncIterator[FillMaskService]:
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    async with SqliteGuildSettings(tmp_path / "settings.sqlite3") as store:
        yield FillMaskService(
            registry,
            store,
            default_model=str(bert_checkpoint),
            policy=CheckpointPolicy(allow_local_models=True, local_roots=(bert_checkpoint.parent,)),
        )
    await registry.aclose()


async def test_lone_surrogates_on_the_console(console_service: FillMaskService) -> None:
    # A terminal's undecodable bytes arrive as lone surrogates (surrogateescape), e.g. \udcff.
    out = io.StringIO()
    console = Console(console_service, out=out)
    await console.handle(f"!fill the cat sat on the <mask> . \udcff | mat, dog{SURROGATE}")
    shown = out.getvalue()
    assert "Fill-mask" in shown and "mat" in shown and "\ufffd" in shown, shown
    assert "went wrong" not in shown
    shown.encode("utf-8")  # printable on a real terminal


@pytest.mark.parametrize("where", ["text", "targets"])
async def test_lone_surrogate_in_a_slash_option(harness: BotOnFakeDiscord, where: str) -> None:
    fake = harness.fake
    options = {"text": "the cat sat on the <mask> .", "targets": "mat, dog"}
    options[where] = options[where] + SURROGATE
    token = await fake.send_slash(fake.member_id, "fill", options)
    body = await fake.wait_for_message(token=token, timeout=20)
    assert body["embeds"][0]["title"] == "Fill-mask", body
    assert "**mat**" in body["embeds"][0]["fields"][0]["value"].splitlines()[0]
    if where == "text":
        assert "\ufffd" in body["embeds"][0]["description"]


# -- a tokenizer larger than the model ---------------------------------------------------------


def test_tokenizer_with_more_tokens_than_embeddings_is_refused(unresized_checkpoint: Path) -> None:
    with pytest.raises(CheckpointLoadError) as caught:
        load_masked_lm(str(unresized_checkpoint))
    message = str(caught.value)
    # 172 words of the test vocabulary, plus the added ones.
    assert f"its tokenizer has {172 + len(UNRESIZED_ADDED_TOKENS)} tokens but the model only 172 embeddings" in message
    assert "Traceback" not in message


async def test_model_set_to_an_unresized_checkpoint_keeps_the_old_model(
    harness: BotOnFakeDiscord, unresized_checkpoint: Path
) -> None:
    fake = harness.fake
    await fake.send_message(fake.admin_id, f"!model set {unresized_checkpoint}")
    failed = await fake.wait_for_message(titled("⚠️"), timeout=30)
    text = embed_text(failed)
    assert "Model not changed" in text and "tokens but the model only" in text, text
    assert await harness.bot.service.checkpoint_for(fake.guild_id) == harness.bot.service.default_model
    mark = fake.mark()
    await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
    body = await fake.wait_for_message(titled("Fill-mask"), after=mark)
    assert "**mat**" in body["embeds"][0]["fields"][0]["value"]


# -- the length limit of RoBERTa-style models ---------------------------------------------------


@pytest.mark.parametrize("kind", ["prelayernorm", "mpnet"])
def test_length_limit_comes_from_the_position_embedding(kind: str, prelayernorm_checkpoint: Path, mpnet_checkpoint: Path) -> None:
    lm = load_masked_lm(str(prelayernorm_checkpoint if kind == "prelayernorm" else mpnet_checkpoint))
    assert lm.tokenizer.model_max_length > 10**9  # no usable limit there: the model's own is used
    assert lm.model.config.max_position_embeddings == UNBOUNDED_POSITION_ROWS
    assert lm.max_length == UNBOUNDED_TOKEN_LIMIT
    # The limit is exact: the raw model takes that many tokens and breaks on one more.
    for length in (UNBOUNDED_TOKEN_LIMIT, UNBOUNDED_TOKEN_LIMIT + 1):
        ids = torch.tensor([lm.tokenizer(text_of_length(lm, length))["input_ids"]])
        if length <= lm.max_length:
            lm.model(input_ids=ids)
        else:
            with pytest.raises((IndexError, RuntimeError)):  # out of range, wherever it is looked up
                lm.model(input_ids=ids)
    assert isinstance(lm.predict(FillRequest(text_of_length(lm, UNBOUNDED_TOKEN_LIMIT), 3)), FillResult)
    with pytest.raises(InputTooLongError):
        lm.predict(FillRequest(text_of_length(lm, UNBOUNDED_TOKEN_LIMIT + 1), 3))


@pytest.mark.parametrize("kind", ["prelayernorm", "mpnet"])
async def test_lengths_around_the_limit_through_discord(
    harness: BotOnFakeDiscord, kind: str, prelayernorm_checkpoint: Path, mpnet_checkpoint: Path
) -> None:
    checkpoint = prelayernorm_checkpoint if kind == "prelayernorm" else mpnet_checkpoint
    fake = harness.fake
    await fake.send_message(fake.admin_id, f"!model set {checkpoint}")
    await fake.wait_for_message(titled("✅"), timeout=30)
    loaded = harness.bot.registry.peek(str(checkpoint))
    assert loaded is not None
    lm = loaded.lm
    for length in range(UNBOUNDED_TOKEN_LIMIT - 2, UNBOUNDED_TOKEN_LIMIT + 3):
        for path in ("prefix", "slash"):
            mark = fake.mark()
            text = text_of_length(lm, length)
            if path == "prefix":
                await fake.send_message(fake.member_id, f"!fill {text}")
                body = await fake.wait_for_message(after=mark, timeout=20)
            else:
                token = await fake.send_slash(fake.member_id, "fill", {"text": text})
                body = await fake.wait_for_message(after=mark, token=token, timeout=20)
            title, shown = body["embeds"][0]["title"], embed_text(body)
            if length <= UNBOUNDED_TOKEN_LIMIT:
                assert title == "Fill-mask", (length, path, shown)
            else:
                assert title.startswith("⚠️") and "too long for this model" in shown, (length, path, shown)
                assert f"reads at most {UNBOUNDED_TOKEN_LIMIT}" in shown


# -- whatever else breaks stays with its request --------------------------------------------------


class PoisonTokenizer:
    """The real tokenizer, except that encoding a text holding ``poison`` raises (an unforeseen bug)."""

    def __init__(self, inner: Any, poison: str = "poison") -> None:
        self._inner = inner
        self._poison = poison

    def __call__(self, text: str, *args: Any, **kwargs: Any) -> Any:
        if self._poison in text:
            raise RuntimeError("tokenizer exploded")
        return self._inner(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize("where", ["text", "targets"])
async def test_an_encoding_failure_fails_only_its_request(
    bert_lm: MaskedLM, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    bert_lm.tokenizer = PoisonTokenizer(bert_lm.tokenizer)
    bad = FillRequest(f"{SENTENCE} poison", 3) if where == "text" else FillRequest(SENTENCE, 3, ("poison",))
    requests = [FillRequest(SENTENCE, 3), bad, FillRequest("paris is the capital of [MASK] .", 3, ("france", "dog"))]
    with caplog.at_level(logging.ERROR):
        outcomes, sizes = await gathered(bert_lm, requests)
    assert sizes == [3]  # one batch
    good, failed, targeted = outcomes
    assert isinstance(good, FillResult) and good.masks[0][0].word == "mat"
    assert isinstance(targeted, FillResult) and [p.word for p in targeted.masks[0]] == ["france", "dog"]
    assert isinstance(failed, RequestFailedError)
    assert "Something went wrong on my side" in str(failed) and "exploded" not in str(failed)
    (record,) = failures_logged(caplog)  # logged once, with its traceback
    assert record.exc_info is not None and "exploded" in str(record.exc_info[1])


async def test_a_decoding_failure_fails_only_its_request(
    bert_lm: MaskedLM, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    dog = bert_lm.tokenizer.convert_tokens_to_ids("dog")
    real_decode: Callable[..., str] = bert_lm.tokenizer.decode

    def decode(ids: list[int], *args: Any, **kwargs: Any) -> str:
        if list(ids) == [dog]:
            raise ValueError("cannot decode")
        return real_decode(ids, *args, **kwargs)

    monkeypatch.setattr(bert_lm.tokenizer, "decode", decode)
    requests = [FillRequest(SENTENCE, 1), FillRequest(SENTENCE, 3, ("dog", "mat")), FillRequest(SENTENCE, 3, ("mat",))]
    with caplog.at_level(logging.ERROR):
        outcomes, sizes = await gathered(bert_lm, requests)
    assert sizes == [3]
    assert isinstance(outcomes[0], FillResult) and outcomes[0].masks[0][0].word == "mat"
    assert isinstance(outcomes[1], RequestFailedError)
    assert isinstance(outcomes[2], FillResult) and [p.word for p in outcomes[2].masks[0]] == ["mat"]
    assert len(failures_logged(caplog)) == 1


async def test_a_forward_pass_that_raises_is_retried_one_request_at_a_time(
    prelayernorm_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The crash of point (c) as it was: a limit two tokens too high lets one request break the pass."""
    lm = load_masked_lm(str(prelayernorm_checkpoint))
    short = [FillRequest(text_of_length(lm, 6), 3), FillRequest(text_of_length(lm, 9), 4)]
    alone = [lm.predict(r) for r in short]
    lm.max_length = UNBOUNDED_POSITION_ROWS  # the old computation for a family missing from its list
    crashing = FillRequest(text_of_length(lm, UNBOUNDED_TOKEN_LIMIT + 1), 3)
    with caplog.at_level(logging.WARNING):
        outcomes, sizes = await gathered(lm, [short[0], crashing, short[1]])
    assert sizes == [3]
    first, failed, second = outcomes
    assert isinstance(failed, RequestFailedError)
    for got, want in zip((first, second), alone, strict=True):
        assert isinstance(got, FillResult)
        assert [p.token for p in got.masks[0]] == [p.token for p in want.masks[0]]
        assert [p.score for p in got.masks[0]] == pytest.approx([p.score for p in want.masks[0]], abs=1e-5)
    retried = [r for r in caplog.records if r.levelno == logging.WARNING and "one at a time" in r.getMessage()]
    assert len(retried) == 1 and len(failures_logged(caplog)) == 1


async def test_one_bad_request_in_a_discord_batch_fails_alone(
    harness: BotOnFakeDiscord, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Six /fill in one batch: hostile, invalid, and one that breaks the model; each gets its own answer."""
    fake, bot = harness.fake, harness.bot
    loaded = bot.registry.peek(bot.service.default_model)
    assert loaded is not None
    lm = loaded.lm
    # Let a too-long sentence through to the model, as a wrong limit once did: its pass raises.
    monkeypatch.setattr(lm, "max_length", 100)
    gate = threading.Event()
    sizes: list[int] = []
    original = lm.predict_batch

    def gated(batch: Sequence[FillRequest]) -> list[FillResult | FillMaskError]:
        sizes.append(len(batch))
        if any("plug" in r.text for r in batch):
            gate.wait(20)  # hold the model while the others queue up behind this one
        return original(batch)

    monkeypatch.setattr(lm, "predict_batch", gated)
    plug = await fake.send_slash(fake.member_id, "fill", {"text": "the plug sat on the <mask> ."})
    await wait_until(lambda: sizes == [1])
    cases = {
        "good": {"text": "the cat sat on the <mask> ."},
        "breaks_the_model": {"text": "the <mask> " + "cat " * 66},  # 70 tokens: BERT has 64 positions
        "surrogate": {"text": f"the cat sat on the <mask> . {SURROGATE}", "targets": f"mat, dog{SURROGATE}"},
        "special_targets": {"text": "the cat sat on the <mask> .", "targets": "[CLS], [SEP]"},
        "fullwidth_mask": {"text": "the cat sat on the ＜ｍａｓｋ＞ ."},
    }
    tokens = {name: await fake.send_slash(fake.member_id, "fill", options) for name, options in cases.items()}
    with caplog.at_level(logging.ERROR):
        try:
            await wait_until(lambda: loaded.queue_depth == len(cases))  # all behind the plug
        finally:
            gate.set()  # never leave the model's thread blocked, even when the wait failed
        replies = {name: await fake.wait_for_message(token=token, timeout=20) for name, token in tokens.items()}
    await fake.wait_for_message(titled("Fill-mask"), token=plug)
    assert sizes == [1, len(cases)], sizes  # the plug alone, then all of them in one batch

    def first_line(name: str) -> str:
        return replies[name]["embeds"][0]["fields"][0]["value"].splitlines()[0]

    for name in ("good", "surrogate", "fullwidth_mask"):
        assert replies[name]["embeds"][0]["title"] == "Fill-mask", (name, replies[name])
        assert "**mat**" in first_line(name), name
    assert "\ufffd" in replies["surrogate"]["embeds"][0]["description"]
    # The echo is what the user typed, fullwidth spelling included.
    assert "＜ｍａｓｋ＞" in replies["fullwidth_mask"]["embeds"][0]["description"]
    broken = embed_text(replies["breaks_the_model"])
    assert replies["breaks_the_model"]["embeds"][0]["title"] == "⚠️ Oops"
    assert "Something went wrong on my side with that request" in broken and "Error" not in broken
    assert "special tokens" in embed_text(replies["special_targets"])
    assert len(failures_logged(caplog)) == 1


async def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
