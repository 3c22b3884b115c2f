"""The models a server may pick from: the list as a reply grouped by language, and the
names shown in ``model set``'s autocomplete."""

from __future__ import annotations

from bot.replies.markup import Code, Rich, Text, clean_text, join, markdown, rich, truncate
from bot.replies.reply import (
    FIELD_COUNT_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    TOTAL_LIMIT,
    Reply,
    ReplyField,
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


def _line(entry: CatalogEntry, loaded: set[str], default: str) -> Rich:
    line: list[Rich] = [(Code(entry.checkpoint, 100),)]
    if entry.note:
        line.append((" — ", Text(truncate(" ".join(entry.note.split()), 80))))
    key = entry.checkpoint.lower()
    if not entry.is_pattern:
        if key in loaded:
            line.append((f" {LOADED_MARK}",))
        if key == default:
            line.append((f" {DEFAULT_MARK}",))
    return rich(*line)


def _group(entry: CatalogEntry) -> Rich:
    if entry.is_pattern:
        return (PATTERN_GROUP,)
    return (Text(truncate(" ".join(entry.language.split()), 60)),) if entry.language.strip() else (OTHER_GROUP,)


def model_list_reply(
    offered: list[CatalogEntry],
    loaded: list[str],
    default: str,
    *,
    set_command: str = "/model set",
    title: str = "Fill-mask models",
) -> Reply:
    """The offered models grouped by language, marking the loaded ones and the default.

    Within Discord's limits: a group too long for one field continues in the next
    ("French (cont.)"); past 25 fields or 6000 characters the rest is counted ("… and N more").
    Sizes are measured as Discord will see them (rendered, escapes included).
    """
    loaded_keys = {name.strip().lower() for name in loaded}
    default_key = default.strip().lower()
    description_lines: list[Rich] = [
        (f"Pick one with `{set_command}` (needs Manage Server). {LOADED_MARK}: answers without waiting.",),
        (f"{DEFAULT_MARK}: ", Code(default, 100), f" {LOADED_MARK}" if default_key in loaded_keys else ""),
    ]
    if any(entry.is_pattern for entry in offered):
        description_lines.append(("Any Hugging Face Hub id matching an allowed pattern works too.",))
    if not offered:
        description_lines.append(("No models are listed.",))
    description = join(description_lines)

    # Order groups by first appearance, patterns last.
    groups: dict[Rich, list[CatalogEntry]] = {}
    for entry in offered:
        groups.setdefault(_group(entry), []).append(entry)
    if (PATTERN_GROUP,) in groups:
        groups[(PATTERN_GROUP,)] = groups.pop((PATTERN_GROUP,))

    more_note = f"(type part of a name in {set_command} to find them)"
    more_reserve = len(f"… and {len(offered)} more {more_note}")
    budget = TOTAL_LIMIT - len(title) - len(markdown(description)) - more_reserve
    fields: list[tuple[Rich, list[Rich]]] = []
    used = 0
    shown = 0
    full = False
    for group, entries in groups.items():
        current: list[Rich] | None = None
        current_length = 0
        for entry in entries:
            line = _line(entry, loaded_keys, default_key)
            length = len(markdown(line))
            if current is not None and current_length + length <= FIELD_VALUE_LIMIT:
                if used + length + 1 > budget:
                    full = True
                    break
                current.append(line)
                current_length += length + 1
                used += length + 1
            else:
                name = group if current is None else rich(group, " (cont.)")
                name_length = min(len(markdown(name)), FIELD_NAME_LIMIT)
                if len(fields) >= FIELD_COUNT_LIMIT or used + name_length + length > budget:
                    full = True
                    break
                current = [line]
                current_length = length + 1
                fields.append((name, current))
                used += name_length + length
            shown += 1
        if full:
            break

    hidden = len(offered) - shown
    footer = f"… and {hidden} more {more_note}" if hidden else ""
    return Reply(
        title=title,
        description=description,
        fields=tuple(ReplyField(name, join(lines)) for name, lines in fields),
        footer=footer,
    )
