"""A model card as a reply: what its authors say, escaped and within Discord's limits."""

from __future__ import annotations

from bot.replies.markup import Code, Rich, Text, join, markdown, rich, strong, truncate
from bot.replies.reply import COLOUR_LOADING, COLOUR_RESULT, FIELD_VALUE_LIMIT, Reply, ReplyField
from bot.service.model_cards import ModelCardInfo

_INLINE_LIMIT = 200
_NOT_STATED = "not stated"

NO_CARD_MESSAGE = "This model has no card I could read: treat its predictions with care."
NO_LIMITATIONS_MESSAGE = (
    "The card says nothing about limitations or biases. Fill-mask models repeat the biases of "
    "the text they were trained on: treat their predictions with care."
)


def summarise_list(items: tuple[str, ...] | list[str], limit: int = _INLINE_LIMIT) -> Rich:
    """Items joined by commas within ``limit`` rendered characters: "en, fr, … and 95 more"."""
    shown_items = [Text(truncate(" ".join(item.split()), 60)) for item in items]
    shown_items = [item for item in shown_items if item.text]
    if not shown_items:
        return (_NOT_STATED,)
    out: list[Text] = []
    length = 0
    for index, item in enumerate(shown_items):
        rest = len(shown_items) - index - 1
        tail = len(f", … and {rest} more") if rest else 0
        addition = len(markdown((item,))) + (2 if out else 0)
        if length + addition + tail > limit:
            break
        out.append(item)
        length += addition
    hidden = len(shown_items) - len(out)
    listed: list[Rich] = [(item,) for item in out]
    if not hidden:
        return join(listed, ", ")
    return join([*listed, (f"… and {hidden} more",)], ", ") if out else (f"{len(shown_items)} items",)


def _more(info: ModelCardInfo) -> str:
    if info.url:
        return f" (more on the model page: <{info.url}>)"
    if info.source == "local":
        return " (more in the model folder's README.md)"
    return ""


def fit_value(text: str, info: ModelCardInfo, limit: int = FIELD_VALUE_LIMIT) -> Text:
    """Untrusted ``text`` cut to ``limit`` rendered characters, pointing to the full card when cut."""
    return Text(text.strip(), limit=limit, more=_more(info))


def model_card_reply(info: ModelCardInfo) -> Reply:
    """What ``info`` says, as a reply."""
    title = rich("Model card: ", Code(info.checkpoint, 200))
    link = f"\nModel page: <{info.url}>" if info.url else ""
    if not info.has_card:
        problem = rich("\n", Text(info.problem)) if info.problem else ()
        return Reply(title=title, description=rich(strong(NO_CARD_MESSAGE), problem, link), colour=COLOUR_LOADING)

    where = "its card on the Hugging Face Hub" if info.source == "hub" else "the README.md in its folder"
    description = f"What the model's authors say about it, from {where}.{link}"
    fields = [
        ReplyField("Task", Text(truncate(info.task, _INLINE_LIMIT)) if info.task else _NOT_STATED, True),
        ReplyField("Languages", summarise_list(info.languages), True),
        ReplyField("License", Text(truncate(info.license, _INLINE_LIMIT)) if info.license else _NOT_STATED, True),
        ReplyField("Datasets", summarise_list(info.datasets), True),
        ReplyField(
            "Limitations and biases",
            fit_value(info.limitations, info) if info.limitations.strip() else NO_LIMITATIONS_MESSAGE,
        ),
    ]
    if info.summary.strip():
        fields.append(ReplyField("Summary", fit_value(info.summary, info)))
    footer = "Written by the model's authors, not checked by this bot."
    return Reply(title=title, description=description, fields=tuple(fields), footer=footer, colour=COLOUR_RESULT)
