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
# "top_k=3", "top=3" or "k=3", and "compare=bert-base-uncased", at the very start of a prefix
# command, in either order.
_LEADING_OPTION = re.compile(r"^\s*(?:(?:top_?k|top|k)\s*[=:]\s*(-?\d+)|compare\s*[=:]\s*(\S+))\s+", re.IGNORECASE)


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
class VariantGroup:
    """``{man|woman}`` in a sentence: the sentence is filled once per alternative (a bias lens)."""

    start: int
    end: int
    # As typed, between the bars (stripped); the service checks how many and how long.
    alternatives: tuple[str, ...]
    # Another ``{...}`` inside this one: not supported, said so rather than guessed at.
    nested: bool = False

    def sentence(self, text: str, index: int) -> str:
        """``text`` (the sentence this group was found in) with alternative ``index`` in its place."""
        return text[: self.start] + self.alternatives[index] + text[self.end :]


@dataclass(frozen=True, slots=True)
class ParsedFill:
    text: str
    top_k: int | None = None
    targets: tuple[str, ...] | None = None
    # A checkpoint to answer beside the server's (``compare=...``), as typed.
    compare: str | None = None
    # The ``{a|b}`` groups of ``text`` (positions in ``text``); braces without a bar are text.
    groups: tuple[VariantGroup, ...] = ()


def _brace_spans(text: str) -> list[tuple[int, int]]:
    """Balanced ``{...}`` pairs of ``text`` as (start, end) with end past the ``}``; unmatched
    braces (an emoticon's ``:-{``) are text and make no pair."""
    spans: list[tuple[int, int]] = []
    opened: list[int] = []
    for index, ch in enumerate(text):
        if ch == "{":
            opened.append(index)
        elif ch == "}" and opened:
            spans.append((opened.pop(), index + 1))
    return sorted(spans)


def _variant_groups(text: str) -> list[VariantGroup]:
    """The outermost brace pairs holding a ``|``, each split into its alternatives."""
    groups: list[VariantGroup] = []
    outer_end = -1
    spans = _brace_spans(text)
    for start, end in spans:
        if start < outer_end:
            continue  # inside a pair already seen
        outer_end = end
        inner = text[start + 1 : end - 1]
        if "|" not in inner:
            continue
        nested = any(start < s and e <= end for s, e in spans if (s, e) != (start, end))
        groups.append(VariantGroup(start, end, tuple(part.strip() for part in inner.split("|")), nested))
    return groups


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

    ``k=3 compare=bert-base-uncased Le camembert est <mask> :) | bon, mauvais`` gives top_k 3,
    a checkpoint to compare with, and targets (bon, mauvais). All are optional; without them
    the whole text is the sentence. A ``|`` inside ``{man|woman}`` belongs to that group, not
    to the targets separator.
    """
    text = raw
    top_k: int | None = None
    compare: str | None = None
    while match := _LEADING_OPTION.match(text):
        if match.group(1) is not None:
            top_k = int(match.group(1))
        else:
            compare = match.group(2)
        text = text[match.end() :]
    targets: tuple[str, ...] | None = None
    grouped = [(group.start, group.end) for group in _variant_groups(text)]
    separators = [bar for bar in _TARGET_SEPARATOR.finditer(text) if not any(start < bar.start() < end for start, end in grouped)]
    if separators:
        last = separators[-1]
        targets = parse_targets(text[last.end() :])
        text = text[: last.start()]
    sentence = text.strip()
    return ParsedFill(text=sentence, top_k=top_k, targets=targets, compare=compare, groups=tuple(_variant_groups(sentence)))
