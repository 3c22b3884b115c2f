"""Replies about filling a sentence: the predictions, and the notices while a model loads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.i18n import N_, _, with_decimal_mark
from bot.inference.checkpoint_policy import display_name
from bot.inference.progress import STAGES, LoadProgress
from bot.inference.types import FillResult
from bot.replies.markup import Code, Inline, Quote, Rich, Text, join, rich, rich_format, strong, truncate
from bot.replies.reply import COLOUR_LOADING, Reply, ReplyField
from bot.service.joint_fill import JointSentence

if TYPE_CHECKING:
    from bot.service.fill_mask_service import FillAnswer

# Echoed text is cut well below the limits: a reply is for reading, not for replaying input.
ECHO_LIMIT = 1000
_WORD_LIMIT = 40
_BAR_WIDTH = 10
_PROGRESS_WIDTH = 20
# The joint sentence is cut well below a field's 1024 characters: its other lines must fit too
# (up to _STEPS_SHOWN steps of a word each, at most _WORD_LIMIT characters rendered).
_SENTENCE_LIMIT = 480
_STEPS_SHOWN = 5

JOINT_FIELD_NAME = N_("Best sentence (read together)")
JOINT_SCORE_MEANING = N_("The score is the chance the model gives each chosen word, multiplied, filling the surest blank first.")


def score_bar(score: float, width: int = _BAR_WIDTH) -> str:
    filled = max(0, min(width, round(score * width)))
    return "█" * filled + "░" * (width - filled)


def shown_word(token_str: str) -> Inline:
    word = token_str.strip()
    # Cut after escaping: escaping can double a word's length, and ten long words must
    # still fit the field (a vocabulary can hold 64-character punctuation runs).
    return Text(word, limit=_WORD_LIMIT) if word else "␣"


def quote(text: str) -> Quote:
    """The user's text as a block quote, shortened."""
    return Quote(truncate(text, ECHO_LIMIT))


def percent(score: float) -> str:
    """``12.3 %``; a small joint score keeps two significant digits instead of reading ``0.0 %``."""
    value = score * 100
    return with_decimal_mark(f"{value:.1f} %" if value >= 0.1 or value == 0 else f"{value:.2g} %")


def joint_field(joint: JointSentence) -> ReplyField:
    """The best sentence read together, its joint score, the order the blanks were filled in, and
    what the score means."""
    order = join(
        (
            rich_format(
                _("blank {number} {word} {percent}"),
                number=str(step.blank + 1),
                word=strong(shown_word(step.token_str)),
                percent=percent(step.probability),
            )
            for step in joint.steps[:_STEPS_SHOWN]
        ),
        " → ",
    )
    if len(joint.steps) > _STEPS_SHOWN:
        order = rich(order, " → …")
    value = rich(
        Text(joint.sentence, limit=_SENTENCE_LIMIT),
        "\n",
        rich_format(
            _("{score} · filled {order}"),
            score=strong(_("joint score {percent}", percent=percent(joint.score))),
            order=order,
        ),
        "\n",
        _(JOINT_SCORE_MEANING),
    )
    return ReplyField(_(JOINT_FIELD_NAME), value)


def fill_answer_reply(answer: FillAnswer) -> Reply:
    """The reply to :meth:`~bot.service.fill_mask_service.FillMaskService.answer`, joint sentence included."""
    return fill_result_reply(answer.result, answer.typed_text, answer.joint)


def fill_result_reply(result: FillResult, typed_text: str, joint: JointSentence | None = None) -> Reply:
    masks = len(result.masks)
    # First, so that it stays when a huge card drops trailing fields to fit Discord's total.
    fields = [joint_field(joint)] if joint is not None and masks > 1 else []
    shows_joint = bool(fields)
    for number, predictions in enumerate(result.masks, start=1):
        lines = [
            rich(
                Code(f"{rank:>2}."),
                " ",
                Code(score_bar(p.score)),
                f" {with_decimal_mark(f'{p.score * 100:5.1f}')} % ",
                strong(shown_word(p.token_str)),
            )
            for rank, p in enumerate(predictions, start=1)
        ]
        name = _("Predictions") if masks == 1 else _("Mask {number} of {count}", number=number, count=masks)
        fields.append(ReplyField(name, join(lines) or _("(no candidates)")))
    description = rich(quote(typed_text), "\n\n", strong(_("Best guess:")), " ", Text(truncate(result.best_sequence, ECHO_LIMIT)))
    timing = {"checkpoint": display_name(result.checkpoint), "milliseconds": f"{result.elapsed * 1000:.0f}"}
    if shows_joint:
        footer = _("{checkpoint} · {milliseconds} ms · list scores are per mask; the best sentence's is joint", **timing)
    elif masks > 1:
        footer = _("{checkpoint} · {milliseconds} ms · scores are per mask, not joint", **timing)
    else:
        footer = _("{checkpoint} · {milliseconds} ms", **timing)
    return Reply(title=_("Fill-mask"), description=description, fields=tuple(fields), footer=footer)


def loading_reply(checkpoint: str, *, switching: bool = False, compared: bool = False) -> Reply:
    """The notice while a checkpoint loads: for a fill, a ``model set``, or a ``compare``."""
    if switching:
        title = _("⏳ Switching to the model…")
    elif compared:
        title = _("⏳ Loading the model to compare with…")
    else:
        title = _("⏳ Loading the model…")
    return Reply(
        title=title,
        description=rich_format(
            _("{checkpoint} is loading. I'll edit this message as soon as it's ready."), checkpoint=Code(display_name(checkpoint))
        ),
        colour=COLOUR_LOADING,
    )


def progress_bar(progress: LoadProgress, width: int = _PROGRESS_WIDTH) -> Rich:
    """A bar for the download stage; the stages with the current one in bold for the others."""
    if progress.stage == "downloading" and progress.total_bytes:
        filled = min(width, int(width * progress.done_bytes / progress.total_bytes))
        return ("█" * filled + "░" * (width - filled),)
    index = STAGES.index(progress.stage) if progress.stage in STAGES else 0
    shown = [(i, s) for i, s in enumerate(STAGES) if s != "downloading" or index == 1]
    return join(((strong(s),) if i == index else (s,) for i, s in shown), " → ")


def progress_reply(checkpoint: str, progress: LoadProgress, *, compared: bool = False) -> Reply:
    """A load's progress: for ``model set``, or for the checkpoint a ``compare`` loads."""
    return Reply(
        title=_("⏳ Loading the model to compare with…") if compared else _("⏳ Switching to the model…"),
        description=rich(Code(display_name(checkpoint)), "\n", progress_bar(progress), "\n", progress.describe()),
        colour=COLOUR_LOADING,
    )
