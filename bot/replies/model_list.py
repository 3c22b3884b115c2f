"""The models a server may pick from: the list as a reply grouped by language, and the
names shown in ``model set``'s autocomplete."""

from __future__ import annotations

from bot.i18n import N_, _, ngettext, text_of
from bot.replies.markup import Code, Rich, Text, clean_text, join, markdown, rich, rich_format, truncate
from bot.replies.reply import (
    FIELD_COUNT_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    TOTAL_LIMIT,
    Reply,
    ReplyField,
)
from bot.service.catalog import MAX_CHOICES, CatalogEntry, autocomplete

# Translated where they are shown (with _()).
LOADED_MARK = N_("🟢 loaded")
DEFAULT_MARK = N_("⭐ default")
OTHER_GROUP = N_("Other allowed models")
PATTERN_GROUP = N_("Allowed patterns")


CHOICE_NAME_LIMIT = 100


def choice_name(entry: CatalogEntry) -> str:
    """What a member sees for ``entry`` in the autocomplete list (plain text, ≤ 100 characters)."""
    parts = [entry.checkpoint, text_of(entry.language), text_of(entry.note)]
    text = " · ".join(" ".join(clean_text(part).split()) for part in parts if part and part.strip())
    return truncate(text, CHOICE_NAME_LIMIT) or truncate(entry.checkpoint, CHOICE_NAME_LIMIT) or "?"


def autocomplete_choices(current: str, offered: list[CatalogEntry], limit: int = MAX_CHOICES) -> list[tuple[str, str]]:
    """:func:`autocomplete` as ``(name, value)`` pairs, ready for ``app_commands.Choice``."""
    return [(choice_name(entry), entry.checkpoint) for entry in autocomplete(current, offered, limit)]


def _line(entry: CatalogEntry, loaded: set[str], default: str) -> Rich:
    line: list[Rich] = [(Code(entry.checkpoint, 100),)]
    note = text_of(entry.note)
    if note:
        line.append((" — ", Text(truncate(" ".join(note.split()), 80))))
    key = entry.checkpoint.lower()
    if not entry.is_pattern:
        if key in loaded:
            line.append((f" {_(LOADED_MARK)}",))
        if key == default:
            line.append((f" {_(DEFAULT_MARK)}",))
    return rich(*line)


def _group(entry: CatalogEntry) -> Rich:
    if entry.is_pattern:
        return (_(PATTERN_GROUP),)
    language = text_of(entry.language)
    return (Text(truncate(" ".join(language.split()), 60)),) if language.strip() else (_(OTHER_GROUP),)


def model_list_reply(
    offered: list[CatalogEntry],
    loaded: list[str],
    default: str,
    *,
    set_command: str = "/model set",
    title: str | None = None,
) -> Reply:
    """The offered models grouped by language, marking the loaded ones and the default.

    Within Discord's limits: a group too long for one field continues in the next
    ("French (cont.)"); past 25 fields or 6000 characters the rest is counted ("… and N more").
    Sizes are measured as Discord will see them (rendered, escapes included).
    """
    if title is None:
        title = _("Fill-mask models")
    loaded_keys = {name.strip().lower() for name in loaded}
    default_key = default.strip().lower()
    loaded_mark = _(LOADED_MARK)
    description_lines: list[Rich] = [
        (
            _(
                "Pick one with `{set_command}` (needs Manage Server). {loaded_mark}: answers without waiting.",
                set_command=set_command,
                loaded_mark=loaded_mark,
            ),
        ),
        rich(
            rich_format(_("{default_mark}: {checkpoint}"), default_mark=_(DEFAULT_MARK), checkpoint=Code(default, 100)),
            f" {loaded_mark}" if default_key in loaded_keys else "",
        ),
    ]
    if any(entry.is_pattern for entry in offered):
        description_lines.append((_("Any Hugging Face Hub id matching an allowed pattern works too."),))
    if not offered:
        description_lines.append((_("No models are listed."),))
    description = join(description_lines)

    # Order groups by first appearance, patterns last.
    groups: dict[Rich, list[CatalogEntry]] = {}
    for entry in offered:
        groups.setdefault(_group(entry), []).append(entry)
    patterns = (_(PATTERN_GROUP),)
    if patterns in groups:
        groups[patterns] = groups.pop(patterns)

    def more(hidden: int) -> str:
        return ngettext(
            "… and {n} more (type part of a name in {set_command} to find them)",
            "… and {n} more (type part of a name in {set_command} to find them)",
            hidden,
            set_command=set_command,
        )

    more_reserve = len(more(len(offered)))
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
                name = group if current is None else rich_format(_("{group} (cont.)"), group=group)
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
    footer = more(hidden) if hidden else ""
    return Reply(
        title=title,
        description=description,
        fields=tuple(ReplyField(name, join(lines)) for name, lines in fields),
        footer=footer,
    )
