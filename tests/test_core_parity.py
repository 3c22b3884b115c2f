"""The core's predictions equal ``transformers.pipeline("fill-mask")``'s on the same checkpoint.

Same tokens in the same order, the same ``token_str`` and ``sequence``, scores within 1e-5,
for one mask, several masks, ``top_k`` and ``targets``, alone, batched and concurrent. The
core never proposes special tokens, so the reference is the pipeline's list with special
tokens removed (asked for enough extra candidates to make up for them).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from transformers import pipeline

from bot.inference.batching import BatchingModel
from bot.inference.errors import InputTooLongError, InvalidRequestError, NoMaskError, TooManyMasksError
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.types import FillRequest, FillResult

SCORE_TOLERANCE = 1e-5

BERT_CASES = [
    FillRequest("the cat sat on the [MASK] .", 5),
    FillRequest("the cat sat on the [MASK] .", 1),
    FillRequest("the cat sat on the [MASK] .", 10),
    FillRequest("paris is the [MASK] of france .", 3),
    FillRequest("the [MASK] sat on the [MASK] .", 4),
    FillRequest("[MASK] [MASK] [MASK] on the mat .", 2),
    FillRequest("the dog [MASK] in the garden and the cat sat on the [MASK] today .", 5),
    FillRequest("the cat sat on the [MASK] .", 5, ("mat", "dog", "zebra-unknown-word")),
    FillRequest("the [MASK] sat on the [MASK] .", 3, ("cat", "mat")),
]
CAMEMBERT_CASES = [
    FillRequest("le camembert est <mask> .", 5),
    FillRequest("le chat dort sur le <mask> .", 10),
    FillRequest("le <mask> dort sur le <mask> .", 3),
    FillRequest("<mask> camembert est <mask> .", 1),
    FillRequest("le camembert est <mask> .", 5, ("▁délicieux", "délicieux", "bon", "xyz")),
]


@pytest.fixture(scope="module")
def bert_lm(bert_checkpoint: Path) -> MaskedLM:
    return load_masked_lm(str(bert_checkpoint))


@pytest.fixture(scope="module")
def camembert_lm(camembert_checkpoint: Path) -> MaskedLM:
    return load_masked_lm(str(camembert_checkpoint))


def reference(lm: MaskedLM, request: FillRequest) -> list[list[dict[str, Any]]]:
    """The pipeline's answer, special tokens removed, as one list per mask."""
    pipe = pipeline("fill-mask", model=lm.model, tokenizer=lm.tokenizer)
    special = set(lm.tokenizer.all_special_ids)
    kwargs: dict[str, Any] = {"top_k": request.top_k + len(special)}
    if request.targets is not None:
        kwargs["targets"] = list(request.targets)
    out = pipe(request.text, **kwargs)
    per_mask = out if isinstance(out[0], list) else [out]
    return [[p for p in column if p["token"] not in special][: request.top_k] for column in per_mask]


def assert_same(result: FillResult, expected: list[list[dict[str, Any]]]) -> None:
    assert len(result.masks) == len(expected)
    for got, want in zip(result.masks, expected, strict=False):
        assert [p.token for p in got] == [p["token"] for p in want]
        assert [p.token_str for p in got] == [p["token_str"] for p in want]
        assert [p.sequence for p in got] == [p["sequence"] for p in want]
        for p, w in zip(got, want, strict=False):
            assert p.score == pytest.approx(w["score"], abs=SCORE_TOLERANCE)


@pytest.mark.parametrize("request_", BERT_CASES, ids=lambda r: f"{r.text}|k={r.top_k}|t={r.targets}")
def test_bert_matches_pipeline(bert_lm: MaskedLM, request_: FillRequest) -> None:
    assert_same(bert_lm.predict(request_), reference(bert_lm, request_))


@pytest.mark.parametrize("request_", CAMEMBERT_CASES, ids=lambda r: f"{r.text}|k={r.top_k}|t={r.targets}")
def test_camembert_matches_pipeline(camembert_lm: MaskedLM, request_: FillRequest) -> None:
    assert_same(camembert_lm.predict(request_), reference(camembert_lm, request_))


def test_lean_head_is_used_for_bert_and_camembert(bert_lm: MaskedLM, camembert_lm: MaskedLM) -> None:
    # The shortcut (head at mask positions only) is what makes bursts cheap; it must be on.
    assert bert_lm._head is not None
    assert camembert_lm._head is not None


def test_full_forward_fallback_gives_the_same_answers(bert_checkpoint: Path) -> None:
    lm = load_masked_lm(str(bert_checkpoint))
    lean = [lm.predict(r) for r in BERT_CASES]
    lm._head = None
    for request, lean_result in zip(BERT_CASES, lean, strict=False):
        full = lm.predict(request)
        assert [[p.token for p in m] for m in full.masks] == [[p.token for p in m] for m in lean_result.masks]
        assert_same(full, reference(lm, request))


def test_mixed_batch_matches_pipeline_per_request(bert_lm: MaskedLM) -> None:
    # Mixed lengths, mask counts, top_k and targets in one padded forward pass.
    outcomes = bert_lm.predict_batch(BERT_CASES)
    for request, outcome in zip(BERT_CASES, outcomes, strict=False):
        assert isinstance(outcome, FillResult)
        assert outcome.batch_size == len(BERT_CASES)
        assert_same(outcome, reference(bert_lm, request))


def test_invalid_requests_fail_alone_in_a_batch(bert_lm: MaskedLM) -> None:
    good = FillRequest("the cat sat on the [MASK] .", 3)
    requests = [
        good,
        FillRequest("no blank at all", 3),
        FillRequest("[MASK] " * 6, 3),
        FillRequest("the cat [MASK] " + "sat on the mat " * 40, 3),
        FillRequest("the cat sat on the [MASK] .", 3, ()),
        FillRequest("the cat sat on the [MASK] .", 11),
        FillRequest("the cat sat on the [MASK] .", 3, ("[CLS]", "[PAD]")),
        good,
    ]
    outcomes = bert_lm.predict_batch(requests)
    assert isinstance(outcomes[0], FillResult) and isinstance(outcomes[-1], FillResult)
    assert_same(outcomes[0], reference(bert_lm, good))
    assert isinstance(outcomes[1], NoMaskError)
    assert isinstance(outcomes[2], TooManyMasksError)
    assert isinstance(outcomes[3], InputTooLongError)
    assert "reads at most" in str(outcomes[3])
    assert isinstance(outcomes[4], InvalidRequestError)
    assert isinstance(outcomes[5], InvalidRequestError)
    assert isinstance(outcomes[6], InvalidRequestError)  # special tokens are never candidates


def test_special_tokens_are_never_predicted(bert_lm: MaskedLM, camembert_lm: MaskedLM) -> None:
    for lm, text in ((bert_lm, "[MASK] [MASK] [MASK] [MASK] [MASK]"), (camembert_lm, "<mask><mask><mask><mask><mask>")):
        result = lm.predict(FillRequest(text, 10))
        special = set(lm.tokenizer.all_special_ids)
        assert all(p.token not in special for column in result.masks for p in column)
        assert len(result.masks) == 5 and all(len(column) == 10 for column in result.masks)


def test_trained_models_predict_the_corpus_word(bert_lm: MaskedLM, camembert_lm: MaskedLM) -> None:
    assert bert_lm.predict(FillRequest("the cat sat on the [MASK] .", 1)).masks[0][0].word == "mat"
    best = camembert_lm.predict(FillRequest("le camembert est <mask> .", 1))
    assert best.masks[0][0].word == "délicieux"
    assert "délicieux" in best.best_sequence and "<mask>" not in best.best_sequence


async def test_concurrent_callers_get_their_own_pipeline_equal_results(bert_lm: MaskedLM) -> None:
    served = BatchingModel(bert_lm, max_batch_size=4)
    requests = BERT_CASES * 3
    try:
        results = await asyncio.gather(*(served.fill(r) for r in requests))
    finally:
        await served.aclose()
    for request, result in zip(requests, results, strict=False):
        assert result.text == request.text
        assert_same(result, reference(bert_lm, request))
    assert max(r.batch_size for r in results) > 1  # they really shared forward passes
    assert all(r.batch_size <= 4 for r in results)
