"""The slash commands' own texts in each Discord user's language, from the bot's catalogs.

discord.py asks an :class:`app_commands.Translator` for every command name, description,
option and choice, once per Discord locale, when the tree is synced; Discord then shows each
user the names and descriptions of their client's language (``name_localizations`` and
``description_localizations``). The texts are the plain English strings of the decorators,
looked up in ``bot/i18n/locales/*/LC_MESSAGES/messages.po`` under a context (msgctxt) per kind
of text, so that a command called ``info`` and a reply's word "info" are translated apart.

:func:`command_texts` lists those texts for ``python -m bot.i18n.extract`` (``make messages``),
which adds them to the catalog: it asks the same questions a sync asks, of a recording translator.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n import (
    CHOICE_NAME,
    COMMAND_DESCRIPTION,
    COMMAND_NAME,
    PARAMETER_DESCRIPTION,
    PARAMETER_NAME,
    supported_locale,
    translations,
)

# Where discord.py uses a string -> the catalog context of its translation.
CONTEXTS: dict[Where, str] = {
    Where.command_name: COMMAND_NAME,
    Where.group_name: COMMAND_NAME,
    Where.command_description: COMMAND_DESCRIPTION,
    Where.group_description: COMMAND_DESCRIPTION,
    Where.parameter_name: PARAMETER_NAME,
    Where.parameter_description: PARAMETER_DESCRIPTION,
    Where.choice_name: CHOICE_NAME,
}


class CatalogTranslator(app_commands.Translator):
    """Command texts from the catalogs: None (Discord shows the English text) for English, for
    languages the bot does not speak, and for texts not translated yet."""

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        ours = supported_locale(locale.value)
        msgctxt = CONTEXTS.get(context.location)
        if ours is None or ours == "en" or msgctxt is None:
            return None
        translated = str(translations(ours).pgettext(msgctxt, string.message))
        if not translated or translated == string.message:
            return None
        return translated


@dataclass(frozen=True, slots=True)
class CommandText:
    """One text of the command tree, as the catalog holds it."""

    context: str  # msgctxt: COMMAND_NAME, COMMAND_DESCRIPTION, ...
    text: str  # the English string
    location: tuple[str, int] | None  # the source file (relative to the repository) and line
    menu: bool = False  # a context menu's name (capitals and spaces allowed, unlike slash commands')


_REPOSITORY = Path(__file__).resolve().parents[3]


def _source_of(callback: Any) -> tuple[str, int] | None:
    function = inspect.unwrap(getattr(callback, "__func__", callback))
    try:
        path = Path(inspect.getsourcefile(function) or "").resolve()
        line = inspect.getsourcelines(function)[1]
    except (OSError, TypeError):
        return None
    try:
        return path.relative_to(_REPOSITORY).as_posix(), line
    except ValueError:
        return path.as_posix(), line


def _location(item: object) -> tuple[str, int] | None:
    """Where a command (or the command of an option) is defined: its callback's first line;
    a group's is its first subcommand's (the one defined first)."""
    if isinstance(item, app_commands.Group):
        found = [loc for child in item.commands if (loc := _location(child)) is not None]
        return min(found) if found else None
    if isinstance(item, app_commands.Parameter):
        return _location(item.command)
    callback = getattr(item, "callback", None)
    return _source_of(callback) if callback is not None else None


class _Recorder(app_commands.Translator):
    """Translates nothing; notes each text a sync would have translated, and where."""

    def __init__(self) -> None:
        self.texts: list[CommandText] = []
        self.command: object = None  # the top-level command being walked (a choice knows no command)

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        msgctxt = CONTEXTS.get(context.location)
        if locale is discord.Locale.french and msgctxt is not None and string.message:
            location = _location(context.data) or _location(self.command)
            menu = isinstance(context.data, app_commands.ContextMenu) and msgctxt == COMMAND_NAME
            self.texts.append(CommandText(msgctxt, string.message, location, menu))
        return None


async def tree_texts(tree: app_commands.CommandTree[Any]) -> list[CommandText]:
    """The texts of ``tree``'s global commands (groups, subcommands, options, choices, context
    menus), in the order a sync sends them; the same text in the same context comes once per
    place it is used."""
    recorder = _Recorder()
    for command in tree.get_commands():
        recorder.command = command
        await command.get_translated_payload(tree, recorder)
    return recorder.texts


async def bot_command_texts() -> list[CommandText]:
    """The texts of the real bot's command tree, built as ``setup_hook`` builds it."""
    # Imported here: the bot module imports this one.
    from bot.adapters.discord.bot import FillMaskBot
    from bot.adapters.discord.cogs import EXTENSIONS
    from bot.settings import Settings

    # The commands exist once the extensions are loaded (what setup_hook does first of all that
    # touches them); nothing connects, opens the database or loads a model.
    bot = FillMaskBot(Settings())
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    try:
        return await tree_texts(bot.tree)
    finally:
        for extension in reversed(EXTENSIONS):
            await bot.unload_extension(extension)


def command_texts() -> list[CommandText]:
    """Every text of the bot's slash commands and context menus (for ``make messages``; from a
    coroutine, await :func:`bot_command_texts`)."""
    return asyncio.run(bot_command_texts())
