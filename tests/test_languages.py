"""The bot in English, French and Korean, through discord.py's real command processing.

Slash replies speak the member's Discord client language (the interaction's ``locale``) when
the bot speaks it; otherwise, and on the prefix path, the server's: what its admins chose with
``language set`` (stored, it survives a restart), else the server's Discord primary language,
else English. The console takes ``--locale``. Expected texts come from the catalogs themselves
(``bot.i18n``), and each must differ from the English, so an untranslated message fails here.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters.console import Console
from bot.adapters.discord.bot import FillMaskBot
from bot.i18n import Locale, _, using_locale
from bot.inference.errors import NoMaskError
from bot.inference.loading import load_masked_lm
from bot.inference.registry import ModelRegistry
from bot.replies.reply import error_reply
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import SqliteGuildSettings
from bot.settings import Settings
from tests.discord_helpers import BotOnFakeDiscord, bot_on_fake_discord, make_settings, titled
from tests.fakediscord import FakeDiscord, start_bot, stop_bot
from tests.test_process import bot_env

FILL = "!fill the cat sat on the [MASK] ."
SENTENCE = "the cat sat on the [MASK] ."


def said(locale: Locale, message: str, **params: object) -> str:
    """``message`` as the bot says it in ``locale``; never the English (the catalog must have it)."""
    with using_locale(locale):
        text = _(message, **params)
    with using_locale("en"):
        english = _(message, **params)
    if locale != "en":
        assert text != english, f"{message!r} is not translated into {locale}"
    return text


def field_names(body: dict[str, Any]) -> list[str]:
    return [f["name"] for f in body["embeds"][0].get("fields", [])]


async def prefix_fill(fake: FakeDiscord, text: str = FILL, *, author: int | None = None) -> dict[str, Any]:
    mark = fake.mark()
    await fake.send_message(fake.member_id if author is None else author, text)
    return await fake.wait_for_message(after=mark, timeout=30)


async def started(settings: Settings, fake: FakeDiscord) -> FillMaskBot:
    bot = FillMaskBot(settings)
    await start_bot(bot)
    await bot.registry.get(bot.service.default_model)
    return bot


@pytest.fixture
async def running(tmp_path: Path, bert_checkpoint: Path) -> AsyncIterator[BotOnFakeDiscord]:
    async with bot_on_fake_discord(make_settings(tmp_path, bert_checkpoint)) as running:
        yield running


async def test_language_set_makes_prefix_replies_french_and_survives_a_restart(tmp_path: Path, bert_checkpoint: Path) -> None:
    settings = make_settings(tmp_path, bert_checkpoint)
    async with FakeDiscord() as fake:
        bot = await started(settings, fake)
        english = await prefix_fill(fake)
        assert field_names(english) == ["Predictions"]

        mark = fake.mark()
        await fake.send_message(fake.admin_id, "!language set fr")
        confirmed = await fake.wait_for_message(titled("✅"), after=mark)
        assert confirmed["embeds"][0]["title"] == "✅ " + said("fr", "Language set")

        french = await prefix_fill(fake)
        assert field_names(french) == [said("fr", "Predictions")]
        assert "**mat**" in french["embeds"][0]["fields"][0]["value"]  # predictions are never translated
        assert re.search(r"\d,\d %", french["embeds"][0]["fields"][0]["value"])  # French decimal mark
        assert re.search(r"\d\.\d %", english["embeds"][0]["fields"][0]["value"])
        refused = await prefix_fill(fake, "!fill no blank here")
        with using_locale("fr"):
            expected = NoMaskError("[MASK]").localized()
        assert refused["embeds"][0]["description"] == expected != str(NoMaskError("[MASK]"))
        await stop_bot(bot)

        bot = await started(settings, fake)  # the choice is stored
        assert field_names(await prefix_fill(fake)) == [said("fr", "Predictions")]
        mark = fake.mark()
        await fake.send_message(fake.admin_id, "!language reset")
        reset = await fake.wait_for_message(titled("✅"), after=mark)
        assert reset["embeds"][0]["title"] == "✅ Language reset"  # the server's Discord language: en-US
        assert field_names(await prefix_fill(fake)) == ["Predictions"]
        await stop_bot(bot)


async def test_slash_replies_speak_the_members_client_language(running: BotOnFakeDiscord) -> None:
    fake, bot = running.fake, running.bot
    await bot.tree.sync()
    await bot.service.set_language(fake.guild_id, "fr")

    async def slash_fill(locale: str) -> dict[str, Any]:
        fake.set_user_locale(fake.member_id, locale)
        token = await fake.send_slash(fake.member_id, "fill", {"text": SENTENCE})
        return await fake.wait_for_message(token=token, timeout=30)

    assert field_names(await slash_fill("ko")) == [said("ko", "Predictions")]
    assert field_names(await slash_fill("en-GB")) == ["Predictions"]
    # A language the bot does not speak: the server's choice.
    assert field_names(await slash_fill("de")) == [said("fr", "Predictions")]
    # The prefix path has no client language: the server's choice.
    assert field_names(await prefix_fill(fake)) == [said("fr", "Predictions")]


async def test_without_a_choice_the_servers_discord_language_is_used(running: BotOnFakeDiscord) -> None:
    fake = running.fake
    fake.set_guild_locale("ko")
    await fake.gateway.flush()
    assert field_names(await prefix_fill(fake)) == [said("ko", "Predictions")]
    # A DM has no server: English.
    mark = fake.mark()
    await fake.send_dm(fake.member_id, FILL)
    dm = await fake.wait_for_message(after=mark, timeout=30)
    assert field_names(dm) == ["Predictions"]


async def test_language_set_is_for_admins_and_names_what_it_speaks(running: BotOnFakeDiscord) -> None:
    fake, bot = running.fake, running.bot
    mark = fake.mark()
    await fake.send_message(fake.member_id, "!language set fr")
    refused = await fake.wait_for_message(titled("⚠️"), after=mark)
    assert "Manage Server" in refused["embeds"][0]["description"]
    assert await bot.service.language_for(fake.guild_id) is None

    mark = fake.mark()
    await fake.send_message(fake.admin_id, "!language set de")
    unknown = await fake.wait_for_message(titled("⚠️"), after=mark)
    assert "`fr` (Français)" in unknown["embeds"][0]["description"] and "`ko` (한국어)" in unknown["embeds"][0]["description"]

    # The slash path, with the choice Discord shows; the confirmation is in the new language.
    await bot.tree.sync()
    token = await fake.send_slash(fake.admin_id, "language", {"language": "ko"}, subcommand="set")
    done = await fake.wait_for_message(titled("✅"), token=token)
    assert done["embeds"][0]["title"] == "✅ " + said("ko", "Language set")
    assert await bot.service.language_for(fake.guild_id) == "ko"
    mark = fake.mark()
    await fake.send_message(fake.member_id, "!language")
    shown = await fake.wait_for_message(after=mark)
    assert shown["embeds"][0]["title"] == said("ko", "Language: {language}", language="한국어")


async def test_the_bias_lens_and_compare_speak_the_language_too(running: BotOnFakeDiscord) -> None:
    fake, bot = running.fake, running.bot
    await bot.service.set_language(fake.guild_id, "fr")
    body = await prefix_fill(fake, "!fill the {cat|dog} sat on the [MASK] .")
    assert body["embeds"][0]["title"] == said("fr", "Fill-mask: one sentence, different words")
    assert [name for name in field_names(body)[:2]] == ["cat", "dog"]  # the user's words stay as typed


# -- the console ----------------------------------------------------------------------------


async def test_the_console_speaks_its_locale(tmp_path: Path, bert_checkpoint: Path) -> None:
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    store = await SqliteGuildSettings(tmp_path / "console.sqlite3").open()
    service = FillMaskService(registry, store, default_model=str(bert_checkpoint))
    try:
        out = io.StringIO()
        console = Console(service, "!", out, locale="ko")
        await console.handle(FILL)
        assert f"-- {said('ko', 'Predictions')} --" in out.getvalue()
        # Without --locale: the console server's `language set`, then English.
        out = io.StringIO()
        console = Console(service, "!", out)
        await console.handle("!language set fr")
        await console.handle(FILL)
        assert f"-- {said('fr', 'Predictions')} --" in out.getvalue()
        await console.handle("!language reset")
        console.out = out = io.StringIO()
        await console.handle(FILL)
        assert "-- Predictions --" in out.getvalue()
    finally:
        await store.close()
        await registry.aclose()


def test_python_m_bot_console_takes_locale(tmp_path: Path, bert_checkpoint: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--locale", "fr"],
        env=bot_env(tmp_path, bert_checkpoint),
        cwd=tmp_path,
        input=f"{FILL}\n!fill nothing to fill\n",
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert f"-- {said('fr', 'Predictions')} --" in done.stdout
    with using_locale("fr"):
        assert NoMaskError("[MASK]").localized() in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--locale", "de"],
        env=bot_env(tmp_path, bert_checkpoint),
        cwd=tmp_path,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "invalid choice: 'de'" in bad.stderr


# -- every language within Discord's limits ---------------------------------------------------


@pytest.mark.parametrize("locale", ["en", "fr", "ko"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.text(min_size=1, max_size=100), mask=st.text(min_size=1, max_size=200), checkpoint=st.text(max_size=500))
def test_help_and_language_cards_fit_in_every_language(locale: Locale, prefix: str, mask: str, checkpoint: str) -> None:
    from bot.i18n import LOCALES
    from bot.replies.info import help_reply
    from bot.replies.language import language_changed_reply, language_status_reply
    from tests.card_limits import assert_card_within_limits

    with using_locale(locale):
        cards = [help_reply(prefix, mask, checkpoint), language_changed_reply(None)]
        cards += [language_status_reply(shown, chosen, set_command=prefix) for shown in LOCALES for chosen in (None, shown)]
        cards += [language_changed_reply(chosen) for chosen in LOCALES]
        cards.append(error_reply(NoMaskError(mask).localized(), title=NoMaskError(mask).localized_title()))
    for card in cards:
        assert_card_within_limits(card)
