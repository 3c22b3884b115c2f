"""The slash commands in French and Korean: what the bot syncs, and what the fake Discord accepts.

The real bot syncs its tree to the fake Discord, which checks the payload as Discord does; each
command, subcommand, option and the context menu carries ``fr`` and ``ko`` names (and
descriptions) from the catalogs, through ``CatalogTranslator``. A localization Discord would
refuse (a space in a name, 40 characters, capitals, a long description) is answered 400, code
50035, and nothing is synced.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from discord import app_commands

from bot.adapters.discord.bot import FillMaskBot
from bot.adapters.discord.cogs.context_menu import MENU_NAME
from bot.adapters.discord.translator import CatalogTranslator, tree_texts
from bot.i18n import COMMAND_DESCRIPTION, COMMAND_NAME, PARAMETER_DESCRIPTION, PARAMETER_NAME, extract
from tests.discord_helpers import BotOnFakeDiscord, make_settings
from tests.fakediscord import FakeDiscord, start_bot, stop_bot
from tests.fakediscord.app_commands import command_errors

LANGUAGES = {"fr": discord.Locale.french, "ko": discord.Locale.korean}
CHAT_INPUT, SUB_COMMAND, SUB_COMMAND_GROUP = 1, 1, 2


def catalogs() -> dict[str, Catalog]:
    result: dict[str, Catalog] = {}
    for language in LANGUAGES:
        with extract.po_path(language).open("rb") as source:
            result[language] = read_po(source, locale=language)
    return result


def check_localized(item: dict[str, Any], key: str, context: str, po: dict[str, Catalog], seen: list[str], *, where: str) -> None:
    """``item[key + "_localizations"]`` has each language's translation of ``item[key]`` (none
    when the translation is the English text itself) and no other locale."""
    english = item[key]
    localizations = item.get(f"{key}_localizations") or {}
    assert set(localizations) <= set(LANGUAGES), (where, localizations)
    for language, catalog in po.items():
        entry = catalog.get(english, context)
        assert entry is not None and entry.string and not entry.fuzzy, (
            f"{where}: {context} {english!r} untranslated in {language}"
        )
        if entry.string == english:
            assert language not in localizations, (where, language)
        else:
            assert localizations.get(language) == entry.string, f"{where}: {key} in {language}: {localizations}"
    seen.append(f"{where}.{key}")


def check_options(options: list[dict[str, Any]], po: dict[str, Catalog], seen: list[str], *, where: str) -> None:
    for option in options:
        here = f"{where} {option['name']}"
        is_command = option["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)
        check_localized(option, "name", COMMAND_NAME if is_command else PARAMETER_NAME, po, seen, where=here)
        check_localized(option, "description", COMMAND_DESCRIPTION if is_command else PARAMETER_DESCRIPTION, po, seen, where=here)
        for choice in option.get("choices") or []:
            check_localized(choice, "name", "choice name", po, seen, where=f"{here} choice")
        check_options(option.get("options") or [], po, seen, where=here)


def check_payload(payload: list[dict[str, Any]]) -> list[str]:
    """Every text of the synced commands is localized; returns what was checked."""
    po = catalogs()
    seen: list[str] = []
    for command in payload:
        if command.get("type", CHAT_INPUT) == CHAT_INPUT:
            check_localized(command, "name", COMMAND_NAME, po, seen, where=f"/{command['name']}")
            check_localized(command, "description", COMMAND_DESCRIPTION, po, seen, where=f"/{command['name']}")
            check_options(command.get("options") or [], po, seen, where=f"/{command['name']}")
        else:  # a context menu: a name only
            check_localized(command, "name", COMMAND_NAME, po, seen, where=command["name"])
            assert not command.get("description_localizations")
    return seen


async def test_the_synced_commands_carry_french_and_korean_names_and_descriptions(harness: BotOnFakeDiscord) -> None:
    fake, bot = harness.fake, harness.bot
    synced = await bot.tree.sync()
    payload = fake.last_synced_commands()
    assert payload is not None and {c["name"] for c in payload} == {c.name for c in synced}
    assert fake.find(kind="commands.sync")[-1].status == 200
    seen = check_payload(payload)
    # Every command, subcommand and option, and the context menu, was looked at.
    for expected in (
        "/fill.name",
        "/fill top_k.description",
        "/model set checkpoint.name",
        "/model search.name",
        f"{MENU_NAME}.name",
    ):
        assert expected in seen, seen
    fill = next(c for c in payload if c["name"] == "fill")
    assert fill["name_localizations"] == {"fr": "remplir", "ko": "채우기"}
    menu = next(c for c in payload if c["name"] == MENU_NAME)
    assert menu["type"] == 3 and set(menu["name_localizations"]) == {"fr", "ko"}
    # Discord keeps them; commands are still invoked by their English names.
    stored = next(c for c in fake.global_commands if c["name"] == "fill")
    assert stored["name_localizations"]["fr"] == "remplir"


async def test_the_dev_guild_sync_at_start_up_is_localized(tmp_path: Path, bert_checkpoint: Path) -> None:
    """setup_hook installs the translator before it syncs (to DEV_GUILD_ID here)."""
    async with FakeDiscord() as fake:
        bot = FillMaskBot(make_settings(tmp_path, bert_checkpoint, dev_guild_id=fake.guild_id))
        await start_bot(bot)
        try:
            payload = fake.last_synced_commands(fake.guild_id)
            assert payload is not None, "no guild sync at start-up"
            assert fake.last_synced_commands() is None  # nothing global
            assert len(check_payload(payload)) > 20
        finally:
            await stop_bot(bot)


# -- what the fake refuses ----------------------------------------------------------------


@pytest.fixture
def invalid_translation(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Makes CatalogTranslator answer ``bad["value"]`` for French texts at ``bad["where"]``."""
    bad: dict[str, Any] = {}
    original = CatalogTranslator.translate

    async def translate(
        self: CatalogTranslator,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if locale is discord.Locale.french and context.location is bad.get("where") and string.message == bad.get("text"):
            return bad["value"]
        return await original(self, string, locale, context)

    monkeypatch.setattr(CatalogTranslator, "translate", translate)
    yield bad


Where = app_commands.TranslationContextLocation


@pytest.mark.parametrize(
    ("where", "text", "value", "field", "command"),
    [
        (Where.command_name, "fill", "remplir les blancs", "name_localizations", "fill"),  # a space
        (Where.command_name, "fill", "r" * 40, "name_localizations", "fill"),  # over 32 characters
        (Where.command_name, "help", "Aide", "name_localizations", "help"),  # a capital
        (Where.command_description, "How to use the fill-mask bot", "x" * 101, "description_localizations", "help"),
        (Where.parameter_name, "text", "le texte", "name_localizations", "fill"),
    ],
    ids=["space", "40-characters", "capital", "long-description", "option-name"],
)
async def test_an_invalid_localization_is_refused_with_invalid_form_body(
    harness: BotOnFakeDiscord,
    invalid_translation: dict[str, Any],
    where: Where,
    text: str,
    value: str,
    field: str,
    command: str,
) -> None:
    fake, bot = harness.fake, harness.bot
    await bot.tree.sync()
    before = fake.last_synced_commands()
    invalid_translation.update(where=where, text=text, value=value)
    with pytest.raises(discord.HTTPException) as raised:
        await bot.tree.sync()
    assert raised.value.status == 400 and raised.value.code == 50035
    refused = fake.find(kind="commands.sync")[-1]
    assert refused.status == 400 and refused.response["message"] == "Invalid Form Body"
    errors = refused.response["errors"]
    index = next(i for i, c in enumerate(refused.json) if c["name"] == command)
    item = errors[str(index)]
    if where is Where.parameter_name:
        item = item["options"]["0"]
    assert item[field]["fr"]["_errors"][0]["code"] in ("APPLICATION_COMMAND_INVALID_NAME", "BASE_TYPE_BAD_LENGTH")
    assert list(item) == [field], "only the bad localization is reported"
    assert fake.last_synced_commands() == before  # nothing changed
    assert fake.global_commands and all("r" * 40 not in str(c) for c in fake.global_commands)


def test_the_fake_checks_commands_as_discord_does() -> None:
    good = {
        "name": "fill",
        "description": "Fill",
        "options": [{"type": 3, "name": "text", "description": "Text", "required": True}],
    }
    assert command_errors([good]) == {}
    assert command_errors([{"type": 3, "name": "Fill the blanks", "name_localizations": {"ko": "빈칸 채우기"}}]) == {}
    assert command_errors([{**good, "name_localizations": {"xx": "remplir"}}])["0"]["name_localizations"]["xx"]
    assert command_errors([{**good, "name_localizations": {"fr": ""}}])["0"]["name_localizations"]["fr"]
    assert command_errors([{**good, "description_localizations": {"ko": ""}}])["0"]["description_localizations"]["ko"]
    assert command_errors([{**good, "name": "Fill"}])["0"]["name"]
    assert command_errors([{**good, "description": ""}])["0"]["description"]
    assert command_errors([good, good])["1"]["name"]  # names are unique per type
    assert command_errors([{"type": 3, "name": "Menu", "description": "no"}])["0"]["description"]
    assert command_errors([{"type": 3, "name": "m" * 33}])["0"]["name"]
    optional_first = [
        {"type": 3, "name": "a", "description": "A"},
        {"type": 3, "name": "b", "description": "B", "required": True},
    ]
    assert command_errors([{**good, "options": optional_first}])["0"]["options"]["1"]["required"]
    choices = [{"name": "x" * 101, "value": "x"}]
    assert command_errors([{**good, "options": [{"type": 3, "name": "c", "description": "C", "choices": choices}]}])
    assert command_errors([{**good, "options": [{"type": 3, "name": f"o{i}", "description": "O"} for i in range(26)]}])
    # Names: letters and digits of any script, - and _, lowercase.
    assert command_errors([{**good, "name": "모델-설정_2"}]) == {}
    assert command_errors([{**good, "name": "réinitialiser"}]) == {}
    assert command_errors([{**good, "name": "a.b"}])["0"]["name"]


# -- the translator alone ------------------------------------------------------------------


class _Data:
    pass


async def test_the_translator_answers_from_the_catalogs() -> None:
    translator = CatalogTranslator()
    text = app_commands.locale_str("fill")

    def context(where: Where) -> app_commands.TranslationContext[Any, Any]:
        return app_commands.TranslationContext(location=where, data=_Data())  # pyright: ignore[reportCallIssue, reportArgumentType]

    assert await translator.translate(text, discord.Locale.french, context(Where.command_name)) == "remplir"
    assert await translator.translate(text, discord.Locale.korean, context(Where.command_name)) == "채우기"
    assert (
        await translator.translate(app_commands.locale_str("model"), discord.Locale.french, context(Where.group_name)) == "modèle"
    )
    for locale in (discord.Locale.american_english, discord.Locale.british_english, discord.Locale.german):
        assert await translator.translate(text, locale, context(Where.command_name)) is None
    assert await translator.translate(text, discord.Locale.french, context(Where.other)) is None
    # "fill" is a command name, not an option name; an unknown text is not translated.
    assert await translator.translate(text, discord.Locale.french, context(Where.parameter_name)) is None
    unknown = app_commands.locale_str("no such text anywhere")
    assert await translator.translate(unknown, discord.Locale.french, context(Where.command_description)) is None


async def test_the_extractor_sees_every_text_the_sync_translates(harness: BotOnFakeDiscord) -> None:
    texts = await tree_texts(harness.bot.tree)
    keys = {(t.context, t.text) for t in texts}
    assert (COMMAND_NAME, "fill") in keys and (COMMAND_NAME, MENU_NAME) in keys
    assert (PARAMETER_NAME, "top_k") in keys and (COMMAND_NAME, "show") in keys  # the group's fallback subcommand
    assert all(t.location is not None and t.location[0].startswith("bot/") for t in texts)
    assert [t.text for t in texts if t.menu] == [MENU_NAME]
