"""The models a server may pick from, as a reply grouped by language."""

from __future__ import annotations

from bot.replies.reply import (
    FIELD_COUNT_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    TOTAL_LIMIT,
    Card,
    CardField,
    clean_text,
    code,
    escape,
    truncate,
)
from bot.service.catalog import MAX_CHOICES, CatalogEntry, autocomplete

LOADED_MARK = "🟢 loaded"
DEFAULT_MARK = "⭐ default"
OTHER_GROUP = "Other allowed models"
PATTERN_GROUP = "Allowed patterns"


CHOICE_NAME_LIMIT = 100


def choice_name(entry: CatalogEntry) -> str:
    """What a member sees for ``entry`` in the autocomplete list (plain text, ≤ 100 characters)."""
    parts = [entry.checkpoint, entry.language, entry.note]
    text = " · ".join(" ".join(clean_text(part).split()) for part in parts if part and part.strip())
    return truncate(text, CHOICE_NAME_LIMIT) or truncate(entry.checkpoint, CHOICE_NAME_LIMIT) or "?"


def autocomplete_choices(current: str, offered: list[CatalogEntry], limit: int = MAX_CHOICES) -> list[tuple[str, str]]:
    """:func:`autocomplete` as ``(name, value)`` pairs, ready for ``app_commands.Choice``."""
    return [(choice_name(entry), entry.checkpoint) for entry in autocomplete(current, offered, limit)]


def _line(entry: CatalogEntry, loaded: set[str], default: str) -> str:
    line = code(entry.checkpoint, 100)
    if entry.note:
        line += f" — {escape(truncate(' '.join(entry.note.split()), 80))}"
    key = entry.checkpoint.lower()
    if not entry.is_pattern:
        if key in loaded:
            line += f" {LOADED_MARK}"
        if key == default:
            line += f" {DEFAULT_MARK}"
    return line


def _group(entry: CatalogEntry) -> str:
    if entry.is_pattern:
        return PATTERN_GROUP
    return escape(truncate(" ".join(entry.language.split()), 60)) if entry.language.strip() else OTHER_GROUP


def model_list_card(
    offered: list[CatalogEntry],
    loaded: list[str],
    default: str,
    *,
    set_command: str = "/model set",
    title: str = "Fill-mask models",
) -> Card:
    """The offered models grouped by language, marking the loaded ones and the default.

    Within Discord's limits: a group too long for one field continues in the next
    ("French (cont.)"); past 25 fields or 6000 characters the rest is counted ("… and N more").
    """
    loaded_keys = {name.strip().lower() for name in loaded}
    default_key = default.strip().lower()
    description_lines = [f"Pick one with `{set_command}` (needs Manage Server). {LOADED_MARK}: answers without waiting."]
    description_lines.append(f"{DEFAULT_MARK}: {code(default, 100)}" + (f" {LOADED_MARK}" if default_key in loaded_keys else ""))
    if any(entry.is_pattern for entry in offered):
        description_lines.append("Any Hugging Face Hub id matching an allowed pattern works too.")
    if not offered:
        description_lines.append("No models are listed.")
    description = "\n".join(description_lines)

    # Order groups by first appearance, patterns last.
    groups: dict[str, list[CatalogEntry]] = {}
    for entry in offered:
        groups.setdefault(_group(entry), []).append(entry)
    if PATTERN_GROUP in groups:
        groups[PATTERN_GROUP] = groups.pop(PATTERN_GROUP)

    more_note = f"(type part of a name in {set_command} to find them)"
    more_reserve = len(f"… and {len(offered)} more {more_note}")
    budget = TOTAL_LIMIT - len(title) - len(description) - more_reserve
    fields: list[tuple[str, list[str]]] = []
    used = 0
    shown = 0
    full = False
    for group, entries in groups.items():
        current: list[str] | None = None
        for entry in entries:
            line = _line(entry, loaded_keys, default_key)
            if current is not None and sum(len(x) + 1 for x in current) + len(line) <= FIELD_VALUE_LIMIT:
                if used + len(line) + 1 > budget:
                    full = True
                    break
                current.append(line)
                used += len(line) + 1
            else:
                name = truncate(group if current is None else f"{group} (cont.)", FIELD_NAME_LIMIT)
                if len(fields) >= FIELD_COUNT_LIMIT or used + len(name) + len(line) > budget:
                    full = True
                    break
                current = [line]
                fields.append((name, current))
                used += len(name) + len(line)
            shown += 1
        if full:
            break

    hidden = len(offered) - shown
    footer = f"… and {hidden} more {more_note}" if hidden else ""
    card = Card(
        title=title,
        description=description,
        fields=tuple(CardField(name, "\n".join(lines)) for name, lines in fields),
        footer=footer,
    )
    return card.fitted()
