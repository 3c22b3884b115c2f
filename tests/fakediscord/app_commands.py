"""Discord's checks of application commands, as a bulk overwrite (``PUT .../commands``) applies them.

:func:`command_errors` answers the ``errors`` tree of a 400 Invalid Form Body (code 50035) for a
sync payload, empty when Discord would accept it: names and descriptions (lengths, the name
pattern, lowercase), their ``name_localizations`` / ``description_localizations`` (keys must be
Discord locales; values follow the same rules), options (at most 25, unique names, required
before optional, subcommand nesting, choices), and the per-type command counts and unique names.
The paths are Discord's: ``{"0": {"options": {"1": {"name_localizations": {"fr": {"_errors": [...]}}}}}}``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

# Discord's locales (https://discord.com/developers/docs/reference#locales).
DISCORD_LOCALES = frozenset(
    {
        "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no",
        "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th",
        "zh-CN", "ja", "zh-TW", "ko",
    }
)  # fmt: skip

CHAT_INPUT, USER, MESSAGE, PRIMARY_ENTRY_POINT = 1, 2, 3, 4
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, NUMBER = 3, 4, 10
OPTION_TYPES = range(1, 12)
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_COMMANDS = {CHAT_INPUT: 100, USER: 15, MESSAGE: 15}  # per application (or per guild)
MAX_COMMAND_SIZE = 8000  # names, descriptions and choice values of a command and its options, per locale

try:  # the exact pattern, when the third-party `regex` module is there
    import regex as _regex  # pyright: ignore[reportMissingImports]

    _NAME = _regex.compile(r"^[-_\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$")
except ImportError:  # pragma: no cover - depends on the environment
    _NAME = None


def _in_deva_or_thai(char: str) -> bool:
    code = ord(char)
    return (
        0x0900 <= code <= 0x097F  # Devanagari
        or 0xA8E0 <= code <= 0xA8FF  # Devanagari Extended
        or 0x11B00 <= code <= 0x11B5F  # Devanagari Extended-A
        or 0x0E00 <= code <= 0x0E7F  # Thai
    )


def matches_name_pattern(name: str) -> bool:
    """Discord's ``^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`` for slash command and option names."""
    if _NAME is not None:
        return _NAME.match(name) is not None
    if not 1 <= len(name) <= 32:
        return False
    return all(c in "-_" or unicodedata.category(c)[0] in "LN" or _in_deva_or_thai(c) for c in name)


def is_lowercase(name: str) -> bool:
    """No letter that has a lowercase form (Discord: "if there is a lowercase variant of any letters used, you must use those")."""
    return all(c.lower() == c for c in name)


def valid_slash_name(name: object) -> bool:
    return isinstance(name, str) and matches_name_pattern(name) and is_lowercase(name)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def _bad_length(low: int, high: int) -> dict[str, Any]:
    return _error("BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


_REQUIRED = _error("BASE_TYPE_REQUIRED", "This field is required")
_STRING = _error("BASE_TYPE_STRING", "Must be a string.")
_INVALID_NAME = _error("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")


def _name_error(name: Any, *, slash: bool) -> dict[str, Any] | None:
    if name is None:
        return _REQUIRED
    if not isinstance(name, str):
        return _STRING
    if not 1 <= len(name) <= 32:
        return _bad_length(1, 32)
    if slash and not (matches_name_pattern(name) and is_lowercase(name)):
        return _INVALID_NAME
    return None


def _text_error(value: Any, low: int, high: int) -> dict[str, Any] | None:
    if value is None:
        return _REQUIRED
    if not isinstance(value, str):
        return _STRING
    if not low <= len(value) <= high:
        return _bad_length(low, high)
    return None


def _localizations_errors(value: Any, check: Any) -> dict[str, Any] | None:
    """Errors of a ``*_localizations`` map: each key a Discord locale, each value passing ``check``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return _error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    errors: dict[str, Any] = {}
    for locale, text in value.items():
        if locale not in DISCORD_LOCALES:
            errors[str(locale)] = _error("ENUM_TYPE_COERCE", f"Value {locale!r} is not a valid enum value.")
        elif (error := check(text)) is not None:
            errors[locale] = error
    return errors or None


def _names_and_descriptions(item: dict[str, Any], into: dict[str, Any], *, slash: bool, described: bool) -> None:
    if error := _name_error(item.get("name"), slash=slash):
        into["name"] = error
    if error := _localizations_errors(item.get("name_localizations"), lambda v: _name_error(v, slash=slash)):
        into["name_localizations"] = error
    if described:
        if error := _text_error(item.get("description"), 1, 100):
            into["description"] = error
        if error := _localizations_errors(item.get("description_localizations"), lambda v: _text_error(v, 1, 100)):
            into["description_localizations"] = error
    else:  # context menus have no description
        if item.get("description"):
            into["description"] = _error(
                "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION", "Context menu commands cannot have a description"
            )
        if item.get("description_localizations"):
            into["description_localizations"] = _error(
                "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION", "Context menu commands cannot have a description"
            )


def _choices_errors(option: dict[str, Any]) -> dict[str, Any] | None:
    choices = option.get("choices")
    if not choices:
        return None
    if option.get("type") not in (STRING, INTEGER, NUMBER):
        return _error(
            "APPLICATION_COMMAND_OPTION_CHOICES_INVALID", "Choices are only allowed for string, integer and number options"
        )
    if option.get("autocomplete"):
        return _error("APPLICATION_COMMAND_AUTOCOMPLETE_CHOICES", "Autocomplete and choices cannot both be set")
    if len(choices) > MAX_CHOICES:
        return _error("BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
    errors: dict[str, Any] = {}
    for i, choice in enumerate(choices):
        cerr: dict[str, Any] = {}
        if error := _text_error(choice.get("name"), 1, 100):
            cerr["name"] = error
        if error := _localizations_errors(choice.get("name_localizations"), lambda v: _text_error(v, 1, 100)):
            cerr["name_localizations"] = error
        value = choice.get("value")
        if option.get("type") == STRING and (error := _text_error(value, 1, 100)):
            cerr["value"] = error
        if cerr:
            errors[str(i)] = cerr
    return errors or None


def _options_errors(options: Any, *, depth: int) -> dict[str, Any] | None:
    """``depth`` 0: a command's options; 1: a subcommand group's; 2: a subcommand's."""
    if options is None:
        return None
    if not isinstance(options, list):
        return _error("LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    if len(options) > MAX_OPTIONS:
        return _error("BASE_TYPE_MAX_LENGTH", f"Must be {MAX_OPTIONS} or fewer in length.")
    errors: dict[str, Any] = {}
    kinds = {o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in options}
    if len(kinds) > 1:
        errors["_errors"] = [
            {
                "code": "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "message": "Sub-command and sub-command group option types are mutually exclusive to all other types",
            }
        ]
    seen: set[str] = set()
    optional_seen = False
    for i, option in enumerate(options):
        oerr: dict[str, Any] = {}
        kind = option.get("type")
        if kind not in OPTION_TYPES:
            oerr["type"] = _error("BASE_TYPE_CHOICES", f"Value must be one of {set(OPTION_TYPES)}.")
        elif kind == SUB_COMMAND_GROUP and depth != 0:
            oerr["type"] = _error("APPLICATION_COMMAND_OPTION_TYPE_INVALID", "Sub-command groups cannot be nested")
        elif kind == SUB_COMMAND and depth == 2:
            oerr["type"] = _error("APPLICATION_COMMAND_OPTION_TYPE_INVALID", "Sub-commands cannot be nested in sub-commands")
        elif depth == 1 and kind != SUB_COMMAND:
            oerr["type"] = _error("APPLICATION_COMMAND_OPTION_TYPE_INVALID", "A sub-command group holds only sub-commands")
        _names_and_descriptions(option, oerr, slash=True, described=True)
        name = option.get("name")
        if isinstance(name, str):
            if name in seen:
                oerr.setdefault("name", _error("APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS", "Option names must be unique"))
            seen.add(name)
        if kind in (SUB_COMMAND, SUB_COMMAND_GROUP):
            if option.get("required"):
                oerr["required"] = _error("APPLICATION_COMMAND_OPTION_REQUIRED_INVALID", "Sub-commands cannot be required")
            sub = _options_errors(option.get("options"), depth=1 if kind == SUB_COMMAND_GROUP else 2)
            if sub:
                oerr["options"] = sub
        else:
            if option.get("required"):
                if optional_seen:
                    oerr["required"] = _error(
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                optional_seen = True
            if error := _choices_errors(option):
                oerr["choices"] = error
        if oerr:
            errors[str(i)] = oerr
    return errors or None


def _texts(item: dict[str, Any], locale: str | None) -> int:
    """The length of a command's (or option's) names, descriptions and choice values in ``locale``."""

    def shown(key: str) -> str:
        localized = (item.get(f"{key}_localizations") or {}).get(locale) if locale else None
        value = localized if localized is not None else item.get(key)
        return value if isinstance(value, str) else ""

    total = len(shown("name")) + len(shown("description"))
    for choice in item.get("choices") or []:
        localized = (choice.get("name_localizations") or {}).get(locale) if locale else None
        total += len(localized or choice.get("name") or "") + len(str(choice.get("value", "")))
    return total + sum(_texts(option, locale) for option in item.get("options") or [] if isinstance(option, dict))


def _locales_used(item: dict[str, Any]) -> set[str]:
    used = set(item.get("name_localizations") or {}) | set(item.get("description_localizations") or {})
    for choice in item.get("choices") or []:
        used |= set(choice.get("name_localizations") or {})
    for option in item.get("options") or []:
        if isinstance(option, dict):
            used |= _locales_used(option)
    return used


def command_errors(body: Any) -> dict[str, Any]:
    """The 50035 ``errors`` tree for a bulk-overwrite body; empty: Discord accepts it."""
    if not isinstance(body, list):
        return _error("LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    errors: dict[str, Any] = {}
    counts: dict[int, int] = {}
    names: set[tuple[int, str]] = set()
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            errors[str(i)] = _error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        cerr: dict[str, Any] = {}
        kind = item.get("type", CHAT_INPUT)
        if kind not in (CHAT_INPUT, USER, MESSAGE, PRIMARY_ENTRY_POINT):
            cerr["type"] = _error("BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4}.")
        slash = kind == CHAT_INPUT
        _names_and_descriptions(item, cerr, slash=slash, described=kind in (CHAT_INPUT, PRIMARY_ENTRY_POINT))
        if slash:
            if sub := _options_errors(item.get("options"), depth=0):
                cerr["options"] = sub
        elif item.get("options"):
            cerr["options"] = _error("APPLICATION_COMMAND_OPTIONS_INVALID", "Context menu commands cannot have options")
        name = item.get("name")
        if isinstance(name, str):
            if (kind, name) in names:
                cerr.setdefault("name", _error("APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique"))
            names.add((kind, name))
        if not cerr and any(_texts(item, locale) > MAX_COMMAND_SIZE for locale in {None, *_locales_used(item)}):
            cerr["_errors"] = [
                {"code": "APPLICATION_COMMAND_TOO_LARGE", "message": f"Command exceeds maximum size ({MAX_COMMAND_SIZE})"}
            ]
        counts[kind] = counts.get(kind, 0) + 1
        if cerr:
            errors[str(i)] = cerr
    for kind, count in counts.items():
        if count > MAX_COMMANDS.get(kind, 1):
            errors.setdefault("_errors", []).append(
                {
                    "code": "APPLICATION_COMMANDS_TOO_MANY",
                    "message": f"Maximum number of application commands of type {kind} reached ({MAX_COMMANDS.get(kind, 1)})",
                }
            )
    return errors
