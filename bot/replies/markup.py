"""Rich text for replies, escaped when it is rendered, not when it is built.

A reply's text is a sequence of parts. A plain ``str`` part is the bot's own wording (it may
hold our own inline code or bold, e.g. in a ``FillMaskError`` message) and is shown as it is.
Everything a stranger wrote — what a user typed, a prediction (a vocabulary is arbitrary
text), a model card — goes in a :class:`Text`, :class:`Code` or :class:`Quote` part, which each
renderer shows literally: :func:`markdown` escapes it for Discord (markdown cannot restyle the
reply, mention syntax is shown, not rendered), :func:`plain` only cleans it for a terminal.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.inference.masks import clean_input

# Characters that change what other characters look like: bidi overrides and isolates can
# disguise text, and C0/C1 controls (null bytes included) are rejected or garbled by clients.
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_MARKDOWN = re.compile(r"([\\*_~`|>#\-\[\]()<@:])")


@dataclass(frozen=True, slots=True)
class Text:
    """Untrusted text, shown literally.

    ``limit`` caps the rendered length (escapes included); when the text is cut, ``more`` is
    appended within the limit (e.g. "(more on the model page: <url>)").
    """

    text: str
    limit: int | None = None
    more: str = ""


@dataclass(frozen=True, slots=True)
class Code:
    """Text shown verbatim as inline code, shortened to ``limit`` characters."""

    text: str
    limit: int = 200


@dataclass(frozen=True, slots=True)
class Strong:
    parts: tuple[Inline, ...]


@dataclass(frozen=True, slots=True)
class Quote:
    """Untrusted text as a block quote, one ``>`` line per line."""

    text: str


Inline = str | Text | Code | Strong | Quote
Rich = tuple[Inline, ...]


def rich(*parts: Inline | Rich) -> Rich:
    """Parts (or whole rich texts) joined into one rich text."""
    out: list[Inline] = []
    for part in parts:
        if isinstance(part, tuple):
            out.extend(part)
        else:
            out.append(part)
    return tuple(out)


def rich_format(template: str, /, **parts: Inline | Rich) -> Rich:
    """``template`` (a translated message with ``{name}`` fields, not yet formatted) as rich text,
    each field replaced by its part: a sentence translated as one message, its untrusted parts
    (a :class:`Code`, a :class:`Text`) still shown literally. ``{{`` and ``}}`` are literal braces.

    ``rich_format(_("This server now uses {checkpoint}."), checkpoint=Code(name))``
    """
    out: list[Inline] = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        if literal:
            out.append(literal)
        if name is not None:
            part = parts[name]
            if isinstance(part, tuple):
                out.extend(part)
            else:
                out.append(part)
    return tuple(out)


def strong(*parts: Inline) -> Strong:
    return Strong(tuple(parts))


def join(lines: Iterable[Rich], separator: str = "\n") -> Rich:
    out: list[Inline] = []
    for index, line in enumerate(lines):
        if index:
            out.append(separator)
        out.extend(line)
    return tuple(out)


def as_rich(value: str | Inline | Rich) -> Rich:
    if isinstance(value, tuple):
        return value
    return (value,) if value != "" else ()


# -- text safety, shared by the renderers --------------------------------------------------


def clean_text(text: str) -> str:
    """Drop control and direction-changing characters, replace lone surrogates (no JSON
    encoder or terminal accepts them); keep newlines and tabs."""
    text = clean_input(_INVISIBLE.sub("", text))
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def escape(text: str) -> str:
    """Make ``text`` display literally in Discord: no markdown, no mention or emoji rendering."""
    return _MARKDOWN.sub(r"\\\1", clean_text(text))


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending in an ellipsis when cut.

    Never leaves a lone escaping backslash at the end, which would escape the ellipsis.
    """
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = text[: limit - 1]
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + "…"


def code_span(text: str, limit: int = 200) -> str:
    """``text`` as inline code. Escapes are not processed inside code, so backticks are
    replaced instead (they would close the span) and the text is shown verbatim."""
    body = truncate(clean_text(text).replace("`", "'").replace("\n", " "), limit)
    return f"`{body or ' '}`"


def _limited(body: str, part: Text) -> str:
    if part.limit is None or len(body) <= part.limit:
        return body
    return truncate(body, part.limit - len(part.more)) + part.more


# -- renderers -----------------------------------------------------------------------------


def markdown(parts: Rich) -> str:
    """Discord-flavoured markdown: untrusted parts escaped."""
    return _render(parts, escape)


def plain(parts: Rich) -> str:
    """Text for a terminal: untrusted parts cleaned but not escaped; our own markers (``**``,
    backticks) stay, a terminal reads them fine."""
    return _render(parts, clean_text)


def _render(parts: Rich, literal: Callable[[str], str]) -> str:
    """``parts`` as text, with ``literal`` making each untrusted text show as it is."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Text):
            out.append(_limited(literal(part.text), part))
        elif isinstance(part, Code):
            out.append(code_span(part.text, part.limit))
        elif isinstance(part, Strong):
            out.append(f"**{_render(part.parts, literal)}**")
        else:
            body = literal(part.text) or "\u200b"  # an empty quote line would not render
            out.append("\n".join(f"> {line}" for line in body.splitlines() or [body]))
    return "".join(out)
