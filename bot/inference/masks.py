"""Mask syntax: users write the blank their way, the model wants its own token.

People type ``<mask>`` (RoBERTa/CamemBERT/XLM-R), ``[MASK]`` (BERT) or ``[mask]`` whatever
checkpoint the server uses; hard-coding one of them breaks the other family
(transformers #3318). Every accepted spelling is rewritten to ``tokenizer.mask_token``.

Spellings are matched in a compatibility view of the text (NFKC, invisible format characters
dropped), so that a fullwidth ``＜mask＞`` from a CJK keyboard or a ``<ma\u200bsk>`` pasted
from the web is a blank too; only the matched spelling is replaced, the rest of the text
reaches the model exactly as typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Spellings accepted for any checkpoint, case-insensitively, besides the checkpoint's own token.
GENERIC_MASK_PATTERN = r"<mask>|\[mask\]"

# A single "|" separates the sentence from targets; "||" is Discord's spoiler syntax and is text.
_TARGET_SEPARATOR = re.compile(r"(?<!\|)\|(?!\|)")
# "top_k=3", "top=3" or "k=3" at the very start of a prefix command.
_LEADING_TOP_K = re.compile(r"^\s*(?:top_?k|top|k)\s*[=:]\s*(-?\d+)\s+", re.IGNORECASE)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_input(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD.

    JSON lets a client send ``"\\ud800"``, which Python decodes to a lone surrogate; the
    tokenizer (and any UTF-8 encoder, ours replying included) refuses such a string. A
    surrogate pair that arrived split in two is joined back into its character.
    """
    if not _LONE_SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _compatibility_view(text: str) -> tuple[str, list[int]]:
    """``text`` in NFKC with format characters (zero-width, bidi, BOM, soft hyphen) dropped,
    and for each character of the view the index of the typed character it comes from.

    Character by character, not NFKC of the whole string, so that every view character maps
    back to one typed character (and a combining mark cannot compose with a mask's ``<``).
    """
    view: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        if unicodedata.category(ch) == "Cf":
            continue
        folded = unicodedata.normalize("NFKC", ch) if not ch.isascii() else ch
        view.append(folded)
        origin.extend([index] * len(folded))
    return "".join(view), origin


def mask_pattern(mask_token: str) -> re.Pattern[str]:
    """Every accepted spelling, as found in the compatibility view of a text."""
    own = _compatibility_view(mask_token)[0] or mask_token
    return re.compile(f"{re.escape(own)}|{GENERIC_MASK_PATTERN}", re.IGNORECASE)


def _mask_spans(text: str, mask_token: str) -> list[tuple[int, int]]:
    """Where the accepted spellings are in ``text``, as (start, end) indexes of typed characters."""
    view, origin = _compatibility_view(text)
    spans: list[tuple[int, int]] = []
    for match in mask_pattern(mask_token).finditer(view):
        if match.end() > match.start():
            spans.append((origin[match.start()], origin[match.end() - 1] + 1))
    return spans


def normalize_masks(text: str, mask_token: str) -> str:
    """Rewrite every accepted mask spelling in ``text`` to ``mask_token``; the rest stays as typed."""
    pieces: list[str] = []
    last = 0
    for start, end in _mask_spans(text, mask_token):
        # max(): two matches inside one typed character's expansion (a ligature) replace it once.
        pieces += [text[last : max(start, last)], mask_token]
        last = max(end, last)
    pieces.append(text[last:])
    return "".join(pieces)


def count_masks(text: str, mask_token: str) -> int:
    """How many blanks ``text`` has, in any accepted spelling."""
    return len(_mask_spans(text, mask_token))


@dataclass(frozen=True, slots=True)
class ParsedFill:
    text: str
    top_k: int | None = None
    targets: tuple[str, ...] | None = None


def parse_targets(raw: str) -> tuple[str, ...]:
    """Split ``"bon, mauvais"`` into words, dropping blanks and repeats but keeping order."""
    seen: dict[str, None] = {}
    for part in raw.split(","):
        word = part.strip()
        if word:
            seen.setdefault(word, None)
    return tuple(seen)


def parse_fill_text(raw: str) -> ParsedFill:
    """Read the inline options of a typed command.

    ``k=3 Le camembert est <mask> :) | bon, mauvais`` gives top_k 3 and targets
    (bon, mauvais). Both parts are optional; without them the whole text is the sentence.
    """
    text = raw
    top_k: int | None = None
    match = _LEADING_TOP_K.match(text)
    if match:
        top_k = int(match.group(1))
        text = text[match.end() :]
    targets: tuple[str, ...] | None = None
    separators = list(_TARGET_SEPARATOR.finditer(text))
    if separators:
        last = separators[-1]
        targets = parse_targets(text[last.end() :])
        text = text[: last.start()]
    return ParsedFill(text=text.strip(), top_k=top_k, targets=targets)
