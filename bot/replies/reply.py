"""The chat-agnostic reply, and its rendering to Discord-flavoured markdown within Discord's limits.

Command logic produces :class:`Reply` objects whose text is :mod:`~bot.replies.markup` rich
text. Discord (``bot.adapters.discord.embeds``) renders one with :func:`to_markdown`, which
escapes every untrusted part and cuts the result to an embed's limits; the console renders
the same reply as plain text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bot.i18n import Message, _, text_of
from bot.replies.markup import Inline, Rich, as_rich, markdown, truncate

# Discord's embed limits (discord.py's Embed docs; the API rejects anything larger).
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_COUNT_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
TOTAL_LIMIT = 6000

COLOUR_RESULT = 0x5865F2
COLOUR_LOADING = 0xF0B232
COLOUR_ERROR = 0xED4245
COLOUR_OK = 0x57F287

RichLike = str | Inline | Rich


@dataclass(frozen=True, slots=True, init=False)
class ReplyField:
    name: Rich
    value: Rich
    inline: bool

    def __init__(self, name: RichLike, value: RichLike, inline: bool = False) -> None:
        object.__setattr__(self, "name", as_rich(name))
        object.__setattr__(self, "value", as_rich(value))
        object.__setattr__(self, "inline", inline)


@dataclass(frozen=True, slots=True, init=False)
class Reply:
    title: Rich
    description: Rich
    fields: tuple[ReplyField, ...]
    # Footers are plain text in Discord (no markdown is rendered there).
    footer: str
    colour: int

    def __init__(
        self,
        title: RichLike,
        description: RichLike = (),
        fields: tuple[ReplyField, ...] = (),
        footer: str = "",
        colour: int = COLOUR_RESULT,
    ) -> None:
        object.__setattr__(self, "title", as_rich(title))
        object.__setattr__(self, "description", as_rich(description))
        object.__setattr__(self, "fields", tuple(fields))
        object.__setattr__(self, "footer", footer)
        object.__setattr__(self, "colour", colour)


@dataclass(frozen=True, slots=True)
class MarkdownField:
    name: str
    value: str
    inline: bool = False


@dataclass(frozen=True, slots=True)
class MarkdownReply:
    """A reply rendered to Discord markdown: what goes into an embed."""

    title: str
    description: str = ""
    fields: tuple[MarkdownField, ...] = field(default_factory=tuple)
    footer: str = ""
    colour: int = COLOUR_RESULT

    def __len__(self) -> int:
        """Counted the way Discord counts an embed's 6000 characters."""
        return len(self.title) + len(self.description) + len(self.footer) + sum(len(f.name) + len(f.value) for f in self.fields)

    def fitted(self) -> MarkdownReply:
        """This reply cut down to Discord's per-part and total limits."""
        fields = tuple(
            MarkdownField(
                truncate(f.name, FIELD_NAME_LIMIT) or "\u200b", truncate(f.value, FIELD_VALUE_LIMIT) or "\u200b", f.inline
            )
            for f in self.fields[:FIELD_COUNT_LIMIT]
        )
        fitted = replace(
            self,
            title=truncate(self.title, TITLE_LIMIT),
            description=truncate(self.description, DESCRIPTION_LIMIT),
            footer=truncate(self.footer, FOOTER_LIMIT),
            fields=fields,
        )
        # Over the total: shorten the description first, then drop trailing fields.
        excess = len(fitted) - TOTAL_LIMIT
        if excess > 0 and fitted.description:
            fitted = replace(fitted, description=truncate(fitted.description, max(0, len(fitted.description) - excess)))
        while len(fitted) > TOTAL_LIMIT and fitted.fields:
            fitted = replace(fitted, fields=fitted.fields[:-1])
        return fitted


def to_markdown(reply: Reply) -> MarkdownReply:
    """``reply`` as escaped Discord markdown, within an embed's limits."""
    return MarkdownReply(
        title=markdown(reply.title),
        description=markdown(reply.description),
        fields=tuple(MarkdownField(markdown(f.name), markdown(f.value), f.inline) for f in reply.fields),
        footer=reply.footer,
        colour=reply.colour,
    ).fitted()


# -- generic replies ---------------------------------------------------------------------


def error_reply(message: RichLike | Message, *, title: str | None = None) -> Reply:
    """``title`` is shown as given (already in the current locale); by default "Can't do that"."""
    # A plain ``message`` is ours (a FillMaskError), not user text: it may hold intentional markdown.
    shown = text_of(message) if isinstance(message, Message) else message
    heading = title if title is not None else _("Can't do that")
    return Reply(title=f"⚠️ {heading}", description=shown, colour=COLOUR_ERROR)


def ok_reply(title: str, message: RichLike = "", fields: tuple[ReplyField, ...] = ()) -> Reply:
    return Reply(title=f"✅ {title}", description=message, fields=fields, colour=COLOUR_OK)


def info_reply(title: RichLike, message: RichLike = "", fields: tuple[ReplyField, ...] = (), footer: str = "") -> Reply:
    return Reply(title=title, description=message, fields=fields, footer=footer)


def internal_error_reply(consequence: str | None = None) -> Reply:
    """For failures that are ours, not the user's: no detail, the cause goes to the log.

    ``consequence`` is shown as given (already in the current locale)."""
    if consequence is None:
        consequence = _("It has been logged; please try again later.")
    return error_reply(_("Something went wrong on my side. {consequence}", consequence=consequence), title=_("Oops"))
