"""Answers side by side: two checkpoints on one sentence (``compare``), or one sentence with
different words (a bias lens, ``{man|woman}``). One layout for both: a column per answer, the
words every column shares, and the words only one column has, marked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.i18n import _, ngettext
from bot.inference.checkpoint_policy import display_name
from bot.inference.types import Prediction
from bot.replies.fill import percent, quote, shown_word
from bot.replies.markup import Code, Inline, Rich, Text, join, rich, strong
from bot.replies.reply import Reply, ReplyField

if TYPE_CHECKING:
    from bot.service.fill_mask_service import AnswerColumn, ComparisonAnswer, VariantsAnswer

# Marks a word that only one column has.
ONLY_HERE = "◆"
# Each column's best sentence in the description, cut well below the description's limit.
_SENTENCE_LIMIT = 300
# Discord puts up to three inline fields in a row: four columns go two by two.
_ROW_WIDTH = 3
_SPACER = "\u200b"


def word_key(prediction: Prediction) -> str:
    """What makes two columns' words the same word: the text, not the token id (two
    checkpoints have different vocabularies) nor the case (an uncased model lowercases)."""
    return prediction.token_str.strip().casefold()


def _column_lines(predictions: Sequence[Prediction], only_here: set[str]) -> list[Rich]:
    lines: list[Rich] = []
    for rank, prediction in enumerate(predictions, start=1):
        marker = f" {ONLY_HERE}" if word_key(prediction) in only_here else ""
        lines.append((Code(f"{rank}."), " ", strong(shown_word(prediction.token_str)), f" {percent(prediction.score)}{marker}"))
    return lines


def side_by_side_fields(headings: Sequence[Inline], columns: Sequence[Sequence[Sequence[Prediction]]]) -> list[ReplyField]:
    """A row of inline fields per blank (a column per answer, its words marked when only it has
    them), then what the columns share for that blank. ``columns[c][blank]`` are column ``c``'s
    predictions for ``blank``."""
    blanks = len(columns[0])
    fields: list[ReplyField] = []
    per_row = 2 if len(columns) == 4 else _ROW_WIDTH
    for blank in range(blanks):
        words = [{word_key(p) for p in column[blank]} for column in columns]
        counts = Counter(key for keys in words for key in keys)
        only_here = {key for key, count in counts.items() if count == 1}
        for index, (heading, column) in enumerate(zip(headings, columns, strict=True)):
            name = heading if blanks == 1 else rich(heading, " · ", _("blank {number}", number=blank + 1))
            fields.append(ReplyField(name, join(_column_lines(column[blank], only_here)) or _("(no candidates)"), inline=True))
            if per_row < _ROW_WIDTH and index % per_row == per_row - 1:
                fields.append(ReplyField(_SPACER, _SPACER, inline=True))
        fields.append(_shared_field(columns, blank, set.intersection(*words), blanks))
    return fields


def _shared_field(columns: Sequence[Sequence[Sequence[Prediction]]], blank: int, shared: set[str], blanks: int) -> ReplyField:
    """The words every column has for ``blank``, in the first column's order, and how many."""
    listed = [p for p in columns[0][blank] if word_key(p) in shared]
    shown = max(len(column[blank]) for column in columns)
    if len(columns) == 2:
        name = _("In common") if blanks == 1 else _("In common · blank {number}", number=blank + 1)
    else:
        name = (
            _("In all {count} columns", count=len(columns))
            if blanks == 1
            else _("In all {count} columns · blank {number}", count=len(columns), number=blank + 1)
        )
    if not listed:
        return ReplyField(name, _("No word in common: {marker} marks the words only one column has.", marker=ONLY_HERE))
    agreement = ngettext(
        "{n} word of the top {shown} in common", "{n} words of the top {shown} in common", len(listed), shown=shown
    )
    return ReplyField(name, rich(join(((strong(shown_word(p.token_str)),) for p in listed), ", "), "\n", agreement))


def _best_sentences(headings: Sequence[Inline], columns: Sequence[AnswerColumn]) -> Rich:
    lines = [
        (strong(heading), ": ", Text(column.result.best_sequence, limit=_SENTENCE_LIMIT))
        for heading, column in zip(headings, columns, strict=True)
    ]
    return join(lines)


def _timings(columns: Sequence[AnswerColumn]) -> str:
    return " · ".join(f"{display_name(c.result.checkpoint)} {c.result.elapsed * 1000:.0f} ms" for c in columns)


def comparison_reply(answer: ComparisonAnswer) -> Reply:
    """The server's checkpoint and the compared one on the same sentence, in two columns."""
    headings: list[Inline] = [Code(column.label) for column in answer.columns]
    description = rich(
        quote(answer.typed_text), "\n\n", strong(_("Best guess of each:")), "\n", _best_sentences(headings, answer.columns)
    )
    fields = side_by_side_fields(headings, [column.result.masks for column in answer.columns])
    footer = _(
        "{timings} · {marker} only in this column · the first is this server's model",
        timings=_timings(answer.columns),
        marker=ONLY_HERE,
    )
    return Reply(title=_("Fill-mask: two checkpoints"), description=description, fields=tuple(fields), footer=footer)


def variants_reply(answer: VariantsAnswer) -> Reply:
    """A bias lens: the same sentence with each alternative of its group, side by side."""
    headings: list[Inline] = [Text(column.label, limit=40) for column in answer.columns]
    description = rich(
        quote(answer.typed_text), "\n\n", strong(_("Best guess for each:")), "\n", _best_sentences(headings, answer.columns)
    )
    fields = side_by_side_fields(headings, [column.result.masks for column in answer.columns])
    elapsed = max(column.result.elapsed for column in answer.columns)
    footer = _(
        "{checkpoint} · {milliseconds} ms · {marker} only in this variant · "
        "what the model card says about its limits and biases: model info",
        checkpoint=display_name(answer.checkpoint),
        milliseconds=format(elapsed * 1000, ".0f"),
        marker=ONLY_HERE,
    )
    return Reply(
        title=_("Fill-mask: one sentence, different words"), description=description, fields=tuple(fields), footer=footer
    )
