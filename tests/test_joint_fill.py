"""The best joint sentence for several blanks (bot/service/joint_fill.py), and its reply field.

Fill the surest blank first, run the model again with that word in, until every blank is
filled; the joint score is the product of the chosen words' probabilities at their steps. The
per-blank lists stay exactly the pipeline's. A tiny BERT trained on tests/data/corpus_joint.txt
has "red" as both blanks' own top word in ``JOINT_SENTENCE``, while no sentence says "red red".
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters.discord.embeds import reply_to_embed
from bot.inference.errors import BusyError
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.registry import ModelRegistry
from bot.inference.types import FillRequest, FillResult, Prediction
from bot.replies.fill import JOINT_FIELD_NAME, JOINT_SCORE_MEANING, fill_answer_reply, joint_field
from bot.replies.markup import markdown
from bot.replies.reply import FIELD_VALUE_LIMIT, to_markdown
from bot.service.fill_mask_service import FillAnswer, FillMaskService
from bot.service.guild_settings import DefaultOnlySettings
from bot.service.joint_fill import JointSentence, JointStep, fill_blank, joint_fill, marks_word_starts_with_spaces
from tests.card_limits import assert_card_within_limits, assert_embed_within_limits
from tests.checkpoints import JOINT_REPEATED, JOINT_SENTENCE, build_joint_checkpoint, build_roberta_bpe_checkpoint

GUILD = 222
OTHER_GUILD = 333
OTHER_SENTENCE = "she threw the [MASK] [MASK] ball ."


# -- the fill-in rule per tokenizer ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mask", "occurrence", "token_str", "spaced", "expected"),
    [
        # WordPiece (BERT): a whole word in the blank's place; a "##" piece joins the word before.
        ("the [MASK] sat .", "[MASK]", 0, "cat", False, "the cat sat ."),
        ("we like play [MASK] games", "[MASK]", 0, "##ing", False, "we like playing games"),
        ("[MASK] and [MASK]", "[MASK]", 1, "b", False, "[MASK] and b"),
        # Byte-level BPE (RoBERTa): " cat" is a word start, its space only where none is typed.
        ("the <mask> sat", "<mask>", 0, " cat", True, "the cat sat"),
        ("<mask> sat", "<mask>", 0, " cat", True, "cat sat"),
        ("the<mask> sat", "<mask>", 0, " cat", True, "the cat sat"),
        # ... and a piece without the space continues the word before, as the decoder joins it.
        ("the mat <mask>", "<mask>", 0, ".", True, "the mat."),
        ("a <mask> dog", "<mask>", 0, "hot", True, "ahot dog"),
        # SentencePiece (CamemBERT): decode([id]) drops the ▁, so every piece goes in as a word.
        ("le <mask> dort", "<mask>", 0, "chat", False, "le chat dort"),
        # A token that is only white space goes in as it is.
        ("a <mask> b", "<mask>", 0, " ", True, "a   b"),
    ],
)
def test_fill_in_rule(text: str, mask: str, occurrence: int, token_str: str, spaced: bool, expected: str) -> None:
    assert fill_blank(text, mask, occurrence, token_str, spaced_vocabulary=spaced) == expected


def test_fill_in_rule_needs_the_blank() -> None:
    with pytest.raises(ValueError):
        fill_blank("one [MASK] only", "[MASK]", 1, "x", spaced_vocabulary=False)


@dataclass
class CoreModel:
    """The core as a FillModel, without the batcher."""

    lm: MaskedLM

    @property
    def name(self) -> str:
        return self.lm.name

    @property
    def mask_token(self) -> str:
        return self.lm.mask_token

    async def fill(self, request: FillRequest) -> FillResult:
        return self.lm.predict(request)


@pytest.fixture(scope="module")
def roberta_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_roberta_bpe_checkpoint(tmp_path_factory.mktemp("roberta-bpe-checkpoint"))


@pytest.mark.parametrize(
    ("checkpoint", "text", "spaced", "shape"),
    [
        ("bert_checkpoint", "the [MASK] sat on the [MASK] .", False, r"the \S+ sat on the \S+ \."),  # WordPiece
        ("camembert_checkpoint", "le <mask> dort sur le <mask> .", False, r"le \S+ dort sur le \S+ \."),  # SentencePiece
        ("roberta_checkpoint", "the <mask> sat on the <mask> .", True, r"the \S+ sat on the \S+ \."),  # byte-level BPE
    ],
)
async def test_real_tokenizers_see_the_chosen_tokens_again(
    checkpoint: str, text: str, spaced: bool, shape: str, request: pytest.FixtureRequest
) -> None:
    """Filled in by the rule, the text encodes back to the very tokens chosen, in their blanks."""
    lm = load_masked_lm(str(request.getfixturevalue(checkpoint)))
    fill_request = FillRequest(text, top_k=5)
    first = lm.predict(fill_request)
    assert marks_word_starts_with_spaces(first) is spaced
    joint = await joint_fill(CoreModel(lm), fill_request, first)
    assert joint is not None and re.fullmatch(shape, joint.sentence), joint
    masked: list[int] = lm.tokenizer(text)["input_ids"]
    filled: list[int] = lm.tokenizer(joint.sentence)["input_ids"]
    assert len(filled) == len(masked)
    positions = [i for i, token in enumerate(masked) if token == lm.mask_token_id]
    assert [filled[positions[step.blank]] for step in joint.steps] == [step.token for step in joint.steps]


# -- the algorithm, over a scripted model ------------------------------------------------------


def scripted_result(text: str, tops: Sequence[tuple[str, float]]) -> FillResult:
    masks = tuple((Prediction(score=score, token=len(word), token_str=word, sequence=text),) for word, score in tops)
    return FillResult(checkpoint="scripted", text=text, masks=masks, best_sequence=text)


@dataclass
class ScriptedModel:
    """A FillModel answering each text from a table of (word, probability) tops per blank."""

    answers: dict[str, list[tuple[str, float]]]
    name: str = "scripted"
    mask_token: str = "[MASK]"
    requests: list[FillRequest] = field(default_factory=list)

    async def fill(self, request: FillRequest) -> FillResult:
        self.requests.append(request)
        return scripted_result(request.text, self.answers[request.text])


async def test_surest_blank_first_and_the_score_is_the_product() -> None:
    first_text = "[MASK] [MASK] [MASK]"
    model = ScriptedModel(
        {
            "[MASK] b [MASK]": [("x", 0.6), ("y", 0.7)],
            "[MASK] b y": [("z", 0.8)],
        }
    )
    request = FillRequest(first_text, top_k=5, targets=("b", "y", "z"), tenant=GUILD)
    joint = await joint_fill(model, request, scripted_result(first_text, [("a", 0.5), ("b", 0.9), ("c", 0.3)]))
    assert joint is not None
    assert joint.sentence == "z b y"
    assert [(s.blank, s.word, s.probability) for s in joint.steps] == [(1, "b", 0.9), (2, "y", 0.7), (0, "z", 0.8)]
    assert [s.text for s in joint.steps] == [first_text, "[MASK] b [MASK]", "[MASK] b y"]
    assert joint.score == pytest.approx(0.9 * 0.7 * 0.8)
    # One extra pass per blank after the first, top word only, targets and tenant kept.
    assert model.requests == [
        FillRequest("[MASK] b [MASK]", top_k=1, targets=("b", "y", "z"), tenant=GUILD),
        FillRequest("[MASK] b y", top_k=1, targets=("b", "y", "z"), tenant=GUILD),
    ]


async def test_a_tie_fills_the_first_blank() -> None:
    model = ScriptedModel({"a [MASK]": [("b", 0.5)]})
    joint = await joint_fill(model, FillRequest("[MASK] [MASK]"), scripted_result("[MASK] [MASK]", [("a", 0.5), ("b", 0.5)]))
    assert joint is not None and [s.blank for s in joint.steps] == [0, 1] and joint.sentence == "a b"


async def test_one_blank_needs_no_extra_pass() -> None:
    model = ScriptedModel({})
    assert await joint_fill(model, FillRequest("a [MASK]"), scripted_result("a [MASK]", [("b", 0.9)])) is None
    assert model.requests == []


@pytest.mark.parametrize(
    ("text", "first_tops", "answers"),
    [
        ("[MASK] [MASK] [MASK]", [("a", 0.9), ("b", 0.5)], {}),  # the model saw 2 blanks, the text has 3 masks
        ("[MASK] [MASK]", [("a", 0.9), ("b", 0.5)], {"a [MASK]": [("c", 0.5), ("d", 0.5)]}),  # then 2 where 1 is left
        ("[MASK] [MASK]", [("x[MASK]", 0.9), ("b", 0.5)], {}),  # a "word" that makes another mask
    ],
)
async def test_inconsistent_blanks_give_no_joint_sentence(
    text: str,
    first_tops: list[tuple[str, float]],
    answers: dict[str, list[tuple[str, float]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.service.joint_fill"):
        assert await joint_fill(ScriptedModel(answers), FillRequest(text), scripted_result(text, first_tops)) is None
    assert "joint fill" in caplog.text


# -- through the service, on a trained checkpoint ----------------------------------------------


@pytest.fixture(scope="module")
def joint_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_joint_checkpoint(tmp_path_factory.mktemp("joint-checkpoint"))


@pytest.fixture(scope="module")
def core(joint_checkpoint: Path) -> MaskedLM:
    return load_masked_lm(str(joint_checkpoint))


@pytest.fixture
async def service(joint_checkpoint: Path) -> AsyncIterator[FillMaskService]:
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    yield FillMaskService(registry, DefaultOnlySettings(), default_model=str(joint_checkpoint))
    await registry.aclose()


@dataclass
class Recorded:
    """Every request the service's model object got, and its result (None when it failed)."""

    calls: list[tuple[FillRequest, FillResult | None]] = field(default_factory=list)

    @property
    def extra(self) -> list[tuple[FillRequest, FillResult | None]]:
        return [(request, result) for request, result in self.calls if request.top_k == 1]


async def record_fills(service: FillMaskService, monkeypatch: pytest.MonkeyPatch, *, fail_after: int | None = None) -> Recorded:
    """Wrap the loaded model's ``fill``; with ``fail_after``, calls after that many raise BusyError."""
    model = await service.registry.get(service.default_model)
    original = model.fill
    recorded = Recorded()

    async def fill(request: FillRequest) -> FillResult:
        if fail_after is not None and len(recorded.calls) >= fail_after:
            recorded.calls.append((request, None))
            raise BusyError(3.0)
        result = await original(request)
        recorded.calls.append((request, result))
        return result

    monkeypatch.setattr(model, "fill", fill)
    return recorded


def pipeline_answer(lm: MaskedLM, text: str, top_k: int) -> list[list[dict[str, Any]]]:
    """``pipeline("fill-mask")``'s lists, special tokens removed (the core never proposes them)."""
    from transformers import pipeline

    pipe = pipeline("fill-mask", model=cast(Any, lm.model), tokenizer=cast(Any, lm.tokenizer))
    special = set(lm.tokenizer.all_special_ids)
    out: Any = pipe(text, top_k=top_k + len(special))
    per_mask: list[list[dict[str, Any]]] = out if isinstance(out[0], list) else [out]
    return [[p for p in column if p["token"] not in special][:top_k] for column in per_mask]


def by_blank(joint: JointSentence) -> list[JointStep]:
    return sorted(joint.steps, key=lambda step: step.blank)


async def test_the_joint_sentence_does_not_repeat_what_the_blanks_do(
    service: FillMaskService, core: MaskedLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = await record_fills(service, monkeypatch)
    answer = await service.answer(GUILD, JOINT_SENTENCE)

    # Each blank on its own: the same word twice.
    result = answer.result
    assert [predictions[0].word for predictions in result.masks] == [JOINT_REPEATED, JOINT_REPEATED]
    assert f"{JOINT_REPEATED} {JOINT_REPEATED}" in result.best_sequence
    # Read together: two different words, one of them the surest blank's.
    joint = answer.joint
    assert joint is not None
    words = [step.word for step in by_blank(joint)]
    assert len(set(words)) == 2 and JOINT_REPEATED in words
    assert joint.steps[0].word == JOINT_REPEATED
    assert joint.sentence == f"i saw the {words[0]} {words[1]} ball ."
    assert f"{JOINT_REPEATED} {JOINT_REPEATED}" not in joint.sentence

    # The per-blank lists are exactly the core's and the pipeline's (special tokens aside).
    direct = core.predict(FillRequest(JOINT_SENTENCE, top_k=5))
    assert [[(p.token, p.token_str, p.sequence) for p in m] for m in result.masks] == [
        [(p.token, p.token_str, p.sequence) for p in m] for m in direct.masks
    ]
    assert [p.score for m in result.masks for p in m] == pytest.approx([p.score for m in direct.masks for p in m], abs=1e-6)
    reference = pipeline_answer(core, JOINT_SENTENCE, 5)
    assert [[(p.token, p.token_str, p.sequence) for p in m] for m in result.masks] == [
        [(p["token"], p["token_str"], p["sequence"]) for p in column] for column in reference
    ]
    assert [p.score for m in result.masks for p in m] == pytest.approx([p["score"] for c in reference for p in c], abs=1e-5)

    # The joint score is what the steps say: rerun the core on each step's text.
    open_blanks = [0, 1]
    recomputed: list[float] = []
    for step in joint.steps:
        again = core.predict(FillRequest(step.text, top_k=1))
        assert len(again.masks) == len(open_blanks)
        tops = [predictions[0] for predictions in again.masks]
        chosen = open_blanks.index(step.blank)
        assert tops[chosen].token == step.token and tops[chosen].token_str == step.token_str
        assert tops[chosen].score == max(top.score for top in tops)  # the surest blank at that step
        assert step.probability == pytest.approx(tops[chosen].score, abs=1e-6)
        recomputed.append(tops[chosen].score)
        open_blanks.remove(step.blank)
    assert joint.score == pytest.approx(math.prod(recomputed), abs=1e-6)
    assert joint.score == pytest.approx(math.prod(step.probability for step in joint.steps))

    # One pass for the lists, one more per blank after the first, through the same model object.
    assert [request.text for request, _ in recorded.calls] == [JOINT_SENTENCE, joint.steps[1].text]
    assert all(request.tenant == GUILD for request, _ in recorded.calls)


async def test_one_blank_changes_nothing(service: FillMaskService, core: MaskedLM, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = await record_fills(service, monkeypatch)
    answer = await service.answer(GUILD, "i saw the red [MASK] ball .")
    assert answer.joint is None
    assert len(recorded.calls) == 1
    reply = to_markdown(fill_answer_reply(answer))
    assert [f.name for f in reply.fields] == ["Predictions"]
    assert reply.description.partition("**Best guess:** ")[2] == answer.result.best_sequence


async def test_targets_are_chosen_among_at_every_step(service: FillMaskService, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = await record_fills(service, monkeypatch)
    answer = await service.answer(GUILD, JOINT_SENTENCE, targets="red, green")
    assert answer.joint is not None
    assert {step.word for step in answer.joint.steps} <= {"red", "green"}
    assert [request.targets for request, _ in recorded.extra] == [("red", "green")]


async def test_concurrent_requests_share_the_extra_passes_batch(
    service: FillMaskService, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = await record_fills(service, monkeypatch)
    first, second = await asyncio.gather(service.answer(GUILD, JOINT_SENTENCE), service.answer(OTHER_GUILD, OTHER_SENTENCE))
    assert first.joint is not None and second.joint is not None
    extra = recorded.extra
    assert sorted(request.tenant or 0 for request, _ in extra) == [GUILD, OTHER_GUILD]
    # Both servers' extra passes were answered by one forward pass of two requests.
    assert [result.batch_size if result is not None else 0 for _, result in extra] == [2, 2]


async def test_a_failing_extra_pass_keeps_the_per_blank_answer(
    service: FillMaskService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    expected = (await service.answer(GUILD, JOINT_SENTENCE)).result.masks
    recorded = await record_fills(service, monkeypatch, fail_after=1)
    with caplog.at_level(logging.WARNING, logger="bot.service.fill_mask_service"):
        answer = await service.answer(GUILD, JOINT_SENTENCE)
    assert answer.joint is None
    assert answer.result.masks == expected
    assert [result is None for _, result in recorded.calls] == [False, True]
    assert "joint sentence omitted" in caplog.text and "BusyError" in caplog.text
    card = to_markdown(fill_answer_reply(answer))
    assert [f.name for f in card.fields] == ["Mask 1 of 2", "Mask 2 of 2"]
    assert "not joint" in card.footer


# -- the reply ---------------------------------------------------------------------------------


async def test_the_reply_shows_the_joint_sentence(service: FillMaskService) -> None:
    answer = await service.answer(GUILD, JOINT_SENTENCE)
    assert answer.joint is not None
    reply = fill_answer_reply(answer)
    card = to_markdown(reply)
    assert [f.name for f in card.fields] == [JOINT_FIELD_NAME, "Mask 1 of 2", "Mask 2 of 2"]
    sentence, score, meaning = card.fields[0].value.split("\n")
    assert sentence == answer.joint.sentence  # plain words: nothing to escape
    assert score.startswith(f"**joint score {answer.joint.score * 100:.1f} %** · filled blank ")
    assert meaning == JOINT_SCORE_MEANING
    assert "per mask" in card.footer and "not joint" not in card.footer
    assert_card_within_limits(reply)
    assert_embed_within_limits(reply_to_embed(reply))


def made_up_answer(text: str, words: list[str], sentence: str, blanks: int, probability: float) -> FillAnswer:
    masks = tuple(
        tuple(Prediction(score=1.0 / (rank + 1), token=rank, token_str=word, sequence=text) for rank, word in enumerate(words))
        for _ in range(blanks)
    )
    result = FillResult(checkpoint="camembert-base", text=text, masks=masks, best_sequence=text, elapsed=0.01)
    steps = tuple(JointStep(blank, blank, words[0] if words else "", probability, text) for blank in range(blanks))
    return FillAnswer(result, text, JointSentence(sentence, probability**blanks, steps))


def test_the_joint_field_escapes_and_says_small_scores() -> None:
    answer = made_up_answer("<mask> <mask>", ["@everyone"], "@everyone **x** <@123>", 2, 0.001)
    card = to_markdown(fill_answer_reply(answer))
    value = card.fields[0].value
    assert value.startswith("\\@everyone \\*\\*x\\*\\* \\<\\@123\\>\n")
    assert "joint score 0.0001 %" in value and "**\\@everyone** 0.1 %" in value


hostile = st.lists(st.sampled_from([*"ab *_~`|>#-[]()<@:\\\n\u202e", "@everyone", "x" * 300]), max_size=60).map("".join)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    text=hostile,
    sentence=hostile,
    word=st.text(max_size=300),
    top_k=st.integers(min_value=1, max_value=10),
    blanks=st.integers(min_value=2, max_value=30),
    probability=st.floats(min_value=0.0, max_value=1.0),
)
def test_the_joint_card_fits_discord_limits(
    text: str, sentence: str, word: str, top_k: int, blanks: int, probability: float
) -> None:
    answer = made_up_answer(text, [word + str(i) for i in range(top_k)], sentence, blanks, probability)
    assert answer.joint is not None
    reply = fill_answer_reply(answer)
    assert to_markdown(reply).fields[0].name == JOINT_FIELD_NAME  # kept first, whatever else must go
    # The field fits by itself: the sentence is cut, its other lines never are.
    value = markdown(joint_field(answer.joint).value)
    assert len(value) <= FIELD_VALUE_LIMIT and value.endswith(JOINT_SCORE_MEANING)
    assert_card_within_limits(reply)
    assert_embed_within_limits(reply_to_embed(reply))
