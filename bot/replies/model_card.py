"""A model card as a reply: what its authors say, escaped and within Discord's limits."""

from __future__ import annotations

from bot.i18n import N_, _, ngettext, text_of
from bot.replies.markup import Code, Rich, Text, join, markdown, rich, rich_format, strong, truncate
from bot.replies.reply import COLOUR_LOADING, COLOUR_RESULT, FIELD_VALUE_LIMIT, Reply, ReplyField
from bot.service.model_cards import ModelCardInfo

_INLINE_LIMIT = 200
_NOT_STATED = N_("not stated")

# Translated where they are shown (with _()).
NO_CARD_MESSAGE = N_("This model has no card I could read: treat its predictions with care.")
NO_LIMITATIONS_MESSAGE = N_(
    "The card says nothing about limitations or biases. Fill-mask models repeat the biases of "
    "the text they were trained on: treat their predictions with care."
)


def _and_more(count: int) -> str:
    return ngettext("… and {n} more", "… and {n} more", count)


def summarise_list(items: tuple[str, ...] | list[str], limit: int = _INLINE_LIMIT) -> Rich:
    """Items joined by commas within ``limit`` rendered characters: "en, fr, … and 95 more"."""
    shown_items = [Text(truncate(" ".join(item.split()), 60)) for item in items]
    shown_items = [item for item in shown_items if item.text]
    if not shown_items:
        return (_(_NOT_STATED),)
    out: list[Text] = []
    length = 0
    for index, item in enumerate(shown_items):
        rest = len(shown_items) - index - 1
        tail = len(", " + _and_more(rest)) if rest else 0
        addition = len(markdown((item,))) + (2 if out else 0)
        if length + addition + tail > limit:
            break
        out.append(item)
        length += addition
    hidden = len(shown_items) - len(out)
    listed: list[Rich] = [(item,) for item in out]
    if not hidden:
        return join(listed, ", ")
    if out:
        return join([*listed, (_and_more(hidden),)], ", ")
    return (ngettext("{n} item", "{n} items", len(shown_items)),)


def _more(info: ModelCardInfo) -> str:
    if info.url:
        return " " + _("(more on the model page: <{url}>)", url=info.url)
    if info.source == "local":
        return " " + _("(more in the model folder's README.md)")
    return ""


def fit_value(text: str, info: ModelCardInfo, limit: int = FIELD_VALUE_LIMIT) -> Text:
    """Untrusted ``text`` cut to ``limit`` rendered characters, pointing to the full card when cut."""
    return Text(text.strip(), limit=limit, more=_more(info))


def model_card_reply(info: ModelCardInfo) -> Reply:
    """What ``info`` says, as a reply."""
    title = rich_format(_("Model card: {checkpoint}"), checkpoint=Code(info.checkpoint, 200))
    link = "\n" + _("Model page: <{url}>", url=info.url) if info.url else ""
    if not info.has_card:
        # The problem is ours (a Message, translated now), but shown literally as it always was.
        problem = rich("\n", Text(text_of(info.problem))) if info.problem else ()
        return Reply(title=title, description=rich(strong(_(NO_CARD_MESSAGE)), problem, link), colour=COLOUR_LOADING)

    if info.source == "hub":
        description = _("What the model's authors say about it, from its card on the Hugging Face Hub.") + link
    else:
        description = _("What the model's authors say about it, from the README.md in its folder.") + link
    not_stated = _(_NOT_STATED)
    fields = [
        ReplyField(_("Task"), Text(truncate(info.task, _INLINE_LIMIT)) if info.task else not_stated, True),
        ReplyField(_("Languages"), summarise_list(info.languages), True),
        ReplyField(_("License"), Text(truncate(info.license, _INLINE_LIMIT)) if info.license else not_stated, True),
        ReplyField(_("Datasets"), summarise_list(info.datasets), True),
        ReplyField(
            _("Limitations and biases"),
            fit_value(info.limitations, info) if info.limitations.strip() else _(NO_LIMITATIONS_MESSAGE),
        ),
    ]
    if info.summary.strip():
        fields.append(ReplyField(_("Summary"), fit_value(info.summary, info)))
    footer = _("Written by the model's authors, not checked by this bot.")
    return Reply(title=title, description=description, fields=tuple(fields), footer=footer, colour=COLOUR_RESULT)
