"""The best sentence for several blanks read together, not blank by blank.

``pipeline("fill-mask")`` scores every blank on its own, so ``Paris is the [MASK] [MASK] of
France`` can come back as "the capital capital": each blank's own best word, which no sentence
says. The standard way to read several blanks together with a masked LM is iterative: fill the
blank the model is surest of (the highest top probability), run the model again on the sentence
with that word in it, and repeat until every blank is filled. The joint score is the product of
the chosen words' probabilities, each taken at the step it was chosen.

:func:`joint_fill` does that over any :class:`~bot.inference.types.FillModel` (the fair batcher in
process, or the remote backend), starting from the answer the caller already has, so the extra
passes are the only new work: ``n - 1`` of them for ``n`` blanks, each one request of the same
tenant, batched with everyone else's. Nothing here imports torch or discord.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from bot.inference.types import FillModel, FillRequest, FillResult

log = logging.getLogger(__name__)

# What a WordPiece vocabulary (BERT) prefixes the pieces that continue a word with; the
# pipeline's ``token_str`` (``tokenizer.decode([id])``) keeps it on a lone piece: "##ing".
_WORDPIECE_CONTINUATION = "##"


@dataclass(frozen=True, slots=True)
class JointStep:
    """One blank filled: which, with what, how sure the model was, and from which input."""

    # Which blank, counted from 0 in the order the blanks appear in the typed sentence.
    blank: int
    token: int
    # As the pipeline gives it (``tokenizer.decode([token])``; may carry a leading space).
    token_str: str
    # The model's probability for this token at this step (the pipeline's ``score``).
    probability: float
    # The model's input at this step: the sentence with the earlier steps' words filled in.
    text: str

    @property
    def word(self) -> str:
        return self.token_str.strip()


@dataclass(frozen=True, slots=True)
class JointSentence:
    """The sentence with every blank filled, the surest blank first."""

    sentence: str
    # The product of the steps' probabilities.
    score: float
    # In the order they were filled (not the blanks' order in the sentence).
    steps: tuple[JointStep, ...]


async def joint_fill(model: FillModel, request: FillRequest, first: FillResult) -> JointSentence | None:
    """The best joint sentence for ``request``, whose own answer is ``first``.

    None for a single blank (nothing to read together: no extra pass), and when the sentence
    can't be filled consistently (the text's mask tokens and the model's blanks disagree, or a
    filled word made or hid a mask); that is logged. The extra passes ask for the top word only,
    with the request's ``targets`` (each step chooses among them) and ``tenant``; their errors
    (``BusyError``, ``ModelClosedError``, ...) are raised for the caller to handle.
    """
    blanks = len(first.masks)
    if blanks < 2:
        return None
    mask = model.mask_token
    text = request.text
    if text.count(mask) != blanks:
        log.warning(
            "joint fill skipped on %s: %d blanks but %d mask tokens in the text", first.checkpoint, blanks, text.count(mask)
        )
        return None
    spaced = marks_word_starts_with_spaces(first)
    remaining = list(range(blanks))  # the original number of each blank still open, in text order
    result = first
    steps: list[JointStep] = []
    while True:
        if len(result.masks) != len(remaining) or not all(result.masks):
            log.warning(
                "joint fill stopped on %s: the model saw %d blanks (with candidates: %d), expected %d",
                first.checkpoint,
                len(result.masks),
                sum(1 for predictions in result.masks if predictions),
                len(remaining),
            )
            return None
        # The surest blank; on a tie the first one (max keeps the first of equal keys).
        chosen = max(range(len(remaining)), key=lambda index: result.masks[index][0].score)
        best = result.masks[chosen][0]
        steps.append(JointStep(remaining[chosen], best.token, best.token_str, best.score, text))
        text = fill_blank(text, mask, chosen, best.token_str, spaced_vocabulary=spaced)
        del remaining[chosen]
        if text.count(mask) != len(remaining):
            log.warning("joint fill stopped on %s: the word %r changed the number of masks", first.checkpoint, best.token_str)
            return None
        if not remaining:
            break
        result = await model.fill(FillRequest(text=text, top_k=1, targets=request.targets, tenant=request.tenant))
    return JointSentence(sentence=text, score=math.prod(step.probability for step in steps), steps=tuple(steps))


def marks_word_starts_with_spaces(result: FillResult) -> bool:
    """Whether the vocabulary's pieces carry the space before a word (byte-level BPE: GPT-2, RoBERTa).

    There ``decode([id])`` of a word-start piece (``Ġmat``) is " mat", so a prediction without the
    leading space is a piece that continues the word before it. Read off the answer's candidates
    (the service has no tokenizer): at least one of them shows a leading space.
    """
    return any(p.token_str[:1] == " " for predictions in result.masks for p in predictions)


def fill_blank(text: str, mask_token: str, occurrence: int, token_str: str, *, spaced_vocabulary: bool) -> str:
    """``text`` with its ``occurrence``-th ``mask_token`` (from 0) replaced by the chosen token.

    The token goes in as the text it stands for, the way the tokenizer's decoder would join it,
    while the user's own text and spacing stay as typed:

    - a leading space (byte-level BPE's word start, "Ġmat" decodes to " mat"): the word, with a
      space before it only where the text has none there already (``the<mask>``);
    - ``##ing`` (WordPiece, BERT): a piece of the word before the blank, so it is joined to that
      word, the space before the blank removed ("play ##ing" reads "playing", as the pipeline's
      ``sequence`` shows it);
    - no leading space in a vocabulary that marks word starts with spaces (``spaced_vocabulary``,
      byte-level BPE): a piece continuing the word before, joined to it likewise (" mat" + "."
      reads "mat.", as RoBERTa's decoder gives it);
    - anything else (a whole WordPiece word, or SentencePiece, whose ``decode([id])`` drops the
      ``▁`` of a word start, so a word start and a continuing piece look alike): the word itself,
      surrounding white space stripped, in the blank's place. A SentencePiece piece that
      continues a word is then shown as a word of its own, which is the rarer mistake.

    A token that is only white space is put in as it is.
    """
    start, searched = -1, 0
    for _ in range(occurrence + 1):  # non-overlapping, as str.count counts them
        start = text.find(mask_token, searched)
        if start < 0:
            raise ValueError(f"the text has no mask number {occurrence + 1}")
        searched = start + len(mask_token)
    before, after = text[:start], text[start + len(mask_token) :]
    word = token_str.strip()
    if not word:
        return before + token_str + after
    if token_str[0].isspace():
        spacer = " " if before and not before[-1].isspace() else ""
        return before + spacer + word + after
    if token_str.startswith(_WORDPIECE_CONTINUATION) and len(token_str) > len(_WORDPIECE_CONTINUATION):
        return before.rstrip() + token_str[len(_WORDPIECE_CONTINUATION) :] + after
    if spaced_vocabulary:
        return before.rstrip() + token_str + after
    return before + word + after
