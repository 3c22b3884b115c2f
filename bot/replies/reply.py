"""Replies as chat-agnostic cards, always small enough for a Discord embed.

The service builds :class:`Card` objects; the Discord layer turns them into embeds
(:mod:`bot.adapters.discord.embeds`) and the console into text (:mod:`bot.adapters.console`). Every text a user typed,
and every prediction (a vocabulary is arbitrary text), is escaped before it goes in a card:
markdown cannot restyle the reply and mention syntax is shown, not rendered.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.inference.progress import LoadProgress, progress_bar
from bot.inference.registry import ModelState
from bot.inference.types import FillResult

if TYPE_CHECKING:
    from bot.service.fill_mask_service import ModelStatus

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

# Echoed text is cut well below the limits: a reply is for reading, not for replaying input.
_ECHO_LIMIT = 1000
_WORD_LIMIT = 40
_BAR_WIDTH = 10

# Characters that change what other characters look like: bidi overrides and isolates can
# disguise text, and C0/C1 controls (null bytes included) are rejected or garbled by clients.
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_MARKDOWN = re.compile(r"([\\*_~`|>#\-\[\]()<@:])")


@dataclass(frozen=True, slots=True)
class CardField:
    name: str
    value: str
    inline: bool = False


@dataclass(frozen=True, slots=True)
class Card:
    title: str
    description: str = ""
    fields: tuple[CardField, ...] = ()
    footer: str = ""
    colour: int = COLOUR_RESULT

    def __len__(self) -> int:
        """Counted the way Discord counts an embed's 6000 characters."""
        return (
            len(self.title)
            + len(self.description)
            + len(self.footer)
            + sum(len(f.name) + len(f.value) for f in self.fields)
        )

    def fitted(self) -> Card:
        """This card cut down to Discord's per-part and total limits."""
        fields = tuple(
            CardField(truncate(f.name, FIELD_NAME_LIMIT) or "\u200b", truncate(f.value, FIELD_VALUE_LIMIT) or "\u200b", f.inline)
            for f in self.fields[:FIELD_COUNT_LIMIT]
        )
        card = replace(
            self,
            title=truncate(self.title, TITLE_LIMIT),
            description=truncate(self.description, DESCRIPTION_LIMIT),
            footer=truncate(self.footer, FOOTER_LIMIT),
            fields=fields,
        )
        # Over the total: shorten the description first, then drop trailing fields.
        excess = len(card) - TOTAL_LIMIT
        if excess > 0 and card.description:
            card = replace(card, description=truncate(card.description, max(0, len(card.description) - excess)))
        while len(card) > TOTAL_LIMIT and card.fields:
            card = replace(card, fields=card.fields[:-1])
        return card


def clean_text(text: str) -> str:
    """Drop control and direction-changing characters; keep newlines and tabs."""
    text = _INVISIBLE.sub("", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def escape(text: str) -> str:
    """Make ``text`` display literally: no markdown, no mention or emoji rendering."""
    return _MARKDOWN.sub(r"\\\1", clean_text(text))


def code(text: str, limit: int = 200) -> str:
    """``text`` as inline code. Escapes are not processed inside code, so backticks are
    replaced instead (they would close the span) and the text is shown verbatim."""
    body = truncate(clean_text(text).replace("`", "'").replace("\n", " "), limit)
    return f"`{body or ' '}`"


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


def score_bar(score: float, width: int = _BAR_WIDTH) -> str:
    filled = max(0, min(width, round(score * width)))
    return "█" * filled + "░" * (width - filled)


def shown_word(token_str: str) -> str:
    word = token_str.strip()
    # Escape first, then cut: escaping can double a word's length, and ten long words must
    # still fit the field (a vocabulary can hold 64-character punctuation runs).
    return truncate(escape(word), _WORD_LIMIT) if word else "␣"


# -- builders --------------------------------------------------------------------------


def fill_result_card(result: FillResult, typed_text: str) -> Card:
    masks = len(result.masks)
    fields = []
    for number, predictions in enumerate(result.masks, start=1):
        lines = [
            f"`{rank:>2}.` `{score_bar(p.score)}` {p.score * 100:5.1f} % **{shown_word(p.token_str)}**"
            for rank, p in enumerate(predictions, start=1)
        ]
        name = "Predictions" if masks == 1 else f"Mask {number} of {masks}"
        fields.append(CardField(name, "\n".join(lines) or "(no candidates)"))
    description = (
        f"{quote(typed_text)}\n\n**Best guess:** {escape(truncate(result.best_sequence, _ECHO_LIMIT))}"
    )
    footer = f"{result.checkpoint} · {result.elapsed * 1000:.0f} ms"
    if masks > 1:
        footer += " · scores are per mask, not joint"
    return Card(title="Fill-mask", description=description, fields=tuple(fields), footer=footer).fitted()


def quote(text: str) -> str:
    """The user's text as a block quote, escaped and shortened."""
    body = escape(truncate(text, _ECHO_LIMIT)) or "\u200b"
    return "\n".join(f"> {line}" for line in body.splitlines() or [body])


def loading_card(checkpoint: str, *, what: str = "Loading") -> Card:
    return Card(
        title=f"⏳ {what} the model…",
        description=f"{code(checkpoint)} is loading. I'll edit this message as soon as it's ready.",
        colour=COLOUR_LOADING,
    ).fitted()


def progress_card(checkpoint: str, progress: LoadProgress) -> Card:
    return Card(
        title="⏳ Switching to the model…",
        description=f"{code(checkpoint)}\n{progress_bar(progress)}\n{progress.describe()}",
        colour=COLOUR_LOADING,
    ).fitted()


def error_card(message: str, *, title: str = "Can't do that") -> Card:
    # ``message`` is ours (a FillMaskError), not user text: it may hold intentional markdown.
    return Card(title=f"⚠️ {title}", description=message, colour=COLOUR_ERROR).fitted()


def ok_card(title: str, message: str = "", fields: tuple[CardField, ...] = ()) -> Card:
    return Card(title=f"✅ {title}", description=message, fields=fields, colour=COLOUR_OK).fitted()


def info_card(title: str, message: str = "", fields: tuple[CardField, ...] = (), footer: str = "") -> Card:
    return Card(title=title, description=message, fields=fields, footer=footer).fitted()


def internal_error_card(consequence: str = "It has been logged; please try again later.") -> Card:
    """For failures that are ours, not the user's: no detail, the cause goes to the log."""
    return error_card(f"Something went wrong on my side. {consequence}", title="Oops")


# -- a server's model ------------------------------------------------------------------

_STATE_TEXT = {
    ModelState.LOADED: "loaded, ready",
    ModelState.LOADING: "loading…",
    ModelState.NOT_LOADED: "not loaded (loads on the next `fill`)",
}


def status_fields(status: ModelStatus) -> tuple[CardField, ...]:
    mask = code(status.mask_token) if status.mask_token else "known once loaded"
    return (
        CardField("Checkpoint", code(status.checkpoint) + (" (default)" if status.is_default else ""), True),
        CardField("Mask token", mask, True),
        CardField("State", _STATE_TEXT[status.state], True),
    )


def model_status_card(status: ModelStatus, *, in_server: bool = True) -> Card:
    title = "This server's model" if in_server else "The bot's default model (used in direct messages)"
    return info_card(title, fields=status_fields(status))


def model_changed_card(status: ModelStatus, *, reset: bool = False) -> Card:
    title = "Back to the default model" if reset else "Model changed"
    return ok_card(title, f"This server now uses {code(status.checkpoint)}.", status_fields(status))


def model_not_changed_card(reason: str, kept: str) -> Card:
    return error_card(f"{reason}\n\nThis server keeps using {code(kept)}.", title="Model not changed")
