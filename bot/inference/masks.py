"""Mask syntax: users write the blank their way, the model wants its own token.

People type ``<mask>`` (RoBERTa/CamemBERT/XLM-R), ``[MASK]`` (BERT) or ``[mask]`` whatever
checkpoint the server uses; hard-coding one of them breaks the other family
(transformers #3318). Every accepted spelling is rewritten to ``tokenizer.mask_token``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Spellings accepted for any checkpoint, case-insensitively, besides the checkpoint's own token.
GENERIC_MASK_PATTERN = r"<mask>|\[mask\]"

# A single "|" separates the sentence from targets; "||" is Discord's spoiler syntax and is text.
_TARGET_SEPARATOR = re.compile(r"(?<!\|)\|(?!\|)")
# "top_k=3", "top=3" or "k=3" at the very start of a prefix command.
_LEADING_TOP_K = re.compile(r"^\s*(?:top_?k|top|k)\s*[=:]\s*(-?\d+)\s+", re.IGNORECASE)


def mask_pattern(mask_token: str) -> re.Pattern[str]:
    return re.compile(f"{re.escape(mask_token)}|{GENERIC_MASK_PATTERN}", re.IGNORECASE)


def normalize_masks(text: str, mask_token: str) -> str:
    """Rewrite every accepted mask spelling in ``text`` to ``mask_token``."""
    return mask_pattern(mask_token).sub(lambda _: mask_token, text)


def count_masks(text: str, mask_token: str) -> int:
    """How many blanks ``text`` has, in any accepted spelling."""
    return len(mask_pattern(mask_token).findall(text))


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
