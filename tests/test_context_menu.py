"""The "Fill the blanks" message context menu, through discord.py's real app-command processing.

A member right-clicks a message (Apps → Fill the blanks): the fake Discord dispatches
INTERACTION_CREATE type 2 with ``data.type`` 3, the target in ``data.resolved.messages``. The bot
answers what ``/fill text:<the message>`` would, ephemerally (flags 64): only the one who asked
sees it. A message without a blank gets an ephemeral hint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.adapters.discord.bot import FillMaskBot
from bot.adapters.discord.cogs.context_menu import MENU_NAME
from bot.inference.registry import ModelRegistry
from tests.discord_helpers import BotOnFakeDiscord, SlowLoader, bot_on_fake_discord, embed_text, make_settings, titled
from tests.fakediscord import FakeDiscord, SlashCommandUnavailable, start_bot, stop_bot

EPHEMERAL = 1 << 6
NO_PING = {"parse": []}
SENTENCE = "the cat sat on the {} ."


def first_predictions(body: dict[str, Any]) -> list[str]:
    return body["embeds"][0]["fields"][0]["value"].splitlines()


def assert_only_the_asker_saw_it(fake: FakeDiscord, token: str) -> None:
    """Everything the bot showed for this interaction is ephemeral, nothing went to the channel,
    and no reply could ping anyone."""
    inter = fake.interactions[token]
    callbacks = fake.find(kind="interaction.callback", token=token)
    assert len(callbacks) == 1 and callbacks[0].ok
    callback = callbacks[0].json
    assert callback["type"] in (4, 5)
    assert int((callback.get("data") or {}).get("flags") or 0) & EPHEMERAL, callback
    shown = [inter.original_message_id, *inter.followup_ids]
    assert shown[0] is not None
    for message_id in shown:
        stored = fake.messages[int(message_id)]  # type: ignore[arg-type]
        assert stored["flags"] & EPHEMERAL, stored
        assert stored["type"] == 23  # CONTEXT_MENU_COMMAND, as Discord types the response
        assert not stored["mention_everyone"] and not stored["mentions"] and not stored["mention_roles"]
    assert not fake.find(kind="message.create"), "a reply went to the channel, for everyone to see"
    bodies = fake.messages_sent(token=token)
    assert bodies
    for body in bodies:
        assert body.get("allowed_mentions") == NO_PING, body


# -- the fake Discord's message commands -----------------------------------------------


async def test_the_menu_is_synced_as_a_message_command_and_the_fake_sends_its_interaction(
    harness: BotOnFakeDiscord,
) -> None:
    fake, bot = harness.fake, harness.bot
    synced = await bot.tree.sync()
    menu = next(c for c in synced if c.name == MENU_NAME)
    assert menu.type is discord.AppCommandType.message
    put = fake.find(kind="commands.sync")[-1]
    item = next(c for c in put.json if c["name"] == MENU_NAME)
    assert item["type"] == 3 and "description" not in item and "options" not in item
    stored = next(c for c in fake.global_commands if c["name"] == MENU_NAME)
    assert stored["type"] == 3 and stored["id"] == str(menu.id)
    assert any(c["name"] == "fill" and c["type"] == 1 for c in fake.global_commands)

    message_id = await fake.send_message(fake.member_id, SENTENCE.format("<mask>"))
    token = await fake.send_message_command(fake.admin_id, MENU_NAME, message_id, enforce_default_permissions=True)
    data = fake.interactions[token].payload["data"]
    assert data["id"] == stored["id"] and data["type"] == 3 and data["target_id"] == str(message_id)
    target = data["resolved"]["messages"][str(message_id)]
    assert target["content"] == SENTENCE.format("<mask>") and target["author"]["id"] == str(fake.member_id)
    assert "guild_id" not in data  # a global command
    await fake.wait_for_message(titled("Fill-mask"), token=token)

    with pytest.raises(SlashCommandUnavailable):
        await fake.send_message_command(fake.admin_id, "Never synced", message_id, enforce_default_permissions=True)


async def test_unloading_the_cog_removes_the_menu(harness: BotOnFakeDiscord) -> None:
    bot = harness.bot
    assert bot.tree.get_command(MENU_NAME, type=discord.AppCommandType.message) is not None
    await bot.unload_extension("bot.adapters.discord.cogs.context_menu")
    assert bot.tree.get_command(MENU_NAME, type=discord.AppCommandType.message) is None
    await bot.load_extension("bot.adapters.discord.cogs.context_menu")
    assert bot.tree.get_command(MENU_NAME, type=discord.AppCommandType.message) is not None


# -- the reply -------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["<mask>", "[MASK]", "[mask]", "＜mask＞"])
async def test_a_message_with_a_blank_gets_the_fill_reply_only_the_asker_sees(harness: BotOnFakeDiscord, blank: str) -> None:
    fake = harness.fake
    message_id = await fake.send_message(fake.member_id, SENTENCE.format(blank))
    token = await fake.send_message_command(fake.admin_id, MENU_NAME, message_id)
    callback = await fake.wait_for(kind="interaction.callback", token=token)
    assert callback.callback_type == 5  # deferred at once (the 3-second deadline), ephemerally
    body = await fake.wait_for_message(titled("Fill-mask"), token=token)
    lines = first_predictions(body)
    assert len(lines) == 5 and "**mat**" in lines[0]
    assert "> the cat sat on the " in body["embeds"][0]["description"]
    assert_only_the_asker_saw_it(fake, token)


async def test_the_reply_is_the_one_slash_fill_gives(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    content = "k=3 the cat sat on the [MASK] . | dog, mat"  # inline options read as /fill text: reads them
    message_id = await fake.send_message(fake.member_id, content)
    menu = await fake.wait_for_message(
        titled("Fill-mask"), token=await fake.send_message_command(fake.admin_id, MENU_NAME, message_id)
    )
    slash = await fake.wait_for_message(
        titled("Fill-mask"), token=await fake.send_slash(fake.admin_id, "fill", {"text": content})
    )
    for key in ("title", "description", "fields"):  # the footer holds the latency
        assert menu["embeds"][0][key] == slash["embeds"][0][key]
    assert len(first_predictions(menu)) == 2


@pytest.mark.parametrize("content", ["the cat sat on the mat .", "", "   "])
async def test_a_message_without_a_blank_gets_an_ephemeral_hint(harness: BotOnFakeDiscord, content: str) -> None:
    fake = harness.fake
    message_id = await fake.send_message(fake.member_id, content)
    token = await fake.send_message_command(fake.member_id, MENU_NAME, message_id)
    body = await fake.wait_for_message(titled("⚠️ No blank to fill"), token=token)
    text = embed_text(body)
    assert "`<mask>`" in text and "`[MASK]`" in text and "`Paris is the <mask> of France.`" in text
    assert "Apps → Fill the blanks" in text
    assert "Traceback" not in text
    assert_only_the_asker_saw_it(fake, token)
    assert not fake.find(kind="followup.create", token=token, predicate=lambda r: "Fill-mask" in str(r.json))


async def test_mentions_in_the_message_never_ping(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    content = f"@everyone @here <@{fake.owner_id}> <@&{fake.admin_role_id}> the cat sat on the <mask> ."
    message_id = await fake.send_message(fake.member_id, content)
    token = await fake.send_message_command(fake.admin_id, MENU_NAME, message_id)
    body = await fake.wait_for_message(titled("Fill-mask"), token=token)
    description = body["embeds"][0]["description"]
    assert "\\@everyone" in description and "\\@here" in description and f"\\<\\@{fake.owner_id}\\>" in description
    assert_only_the_asker_saw_it(fake, token)


async def test_an_internal_error_is_a_polite_ephemeral_reply(harness: BotOnFakeDiscord, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail /home/bot/.env")

    monkeypatch.setattr(harness.bot.service, "answer", broken)
    fake = harness.fake
    message_id = await fake.send_message(fake.member_id, SENTENCE.format("<mask>"))
    token = await fake.send_message_command(fake.admin_id, MENU_NAME, message_id)
    body = await fake.wait_for_message(titled("⚠️"), token=token)
    text = embed_text(body)
    assert "Something went wrong on my side" in text and "secret" not in text
    assert_only_the_asker_saw_it(fake, token)


async def test_a_shutting_down_bot_refuses_politely(harness: BotOnFakeDiscord) -> None:
    fake, bot = harness.fake, harness.bot
    message_id = await fake.send_message(fake.member_id, SENTENCE.format("<mask>"))
    bot.shutting_down = True
    try:
        token = await fake.send_message_command(fake.admin_id, MENU_NAME, message_id)
        body = await fake.wait_for_message(titled("⚠️"), token=token)
    finally:
        bot.shutting_down = False
    assert "restarting" in embed_text(body)
    assert_only_the_asker_saw_it(fake, token)


async def test_while_the_model_loads_a_notice_then_the_result_both_ephemeral(tmp_path: Path, bert_checkpoint: Path) -> None:
    settings = make_settings(tmp_path, bert_checkpoint)
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings, registry=ModelRegistry(SlowLoader(1.5), max_loaded=1))
        await start_bot(bot)
        try:
            message_id = await fake.send_message(fake.member_id, SENTENCE.format("<mask>"))
            token = await fake.send_message_command(fake.admin_id, MENU_NAME, message_id)
            notice = await fake.wait_for_message(titled("⏳"), token=token)
            assert "is loading" in embed_text(notice)
            final = await fake.wait_for_message(titled("Fill-mask"), token=token, timeout=20)
            assert "**mat**" in first_predictions(final)[0]
            assert fake.find(kind="followup.edit", token=token)  # the notice became the result
            assert_only_the_asker_saw_it(fake, token)
        finally:
            await stop_bot(bot)


# -- limits and places -----------------------------------------------------------------


@pytest.fixture
async def limited(tmp_path: Path, bert_checkpoint: Path) -> AsyncIterator[BotOnFakeDiscord]:
    settings = make_settings(tmp_path, bert_checkpoint, fill_cooldown_rate=2, fill_cooldown_seconds=60.0)
    async with bot_on_fake_discord(settings) as running:
        yield running


async def test_the_fill_cooldown_applies_per_user(limited: BotOnFakeDiscord) -> None:
    fake = limited.fake
    with_blank = await fake.send_message(fake.owner_id, SENTENCE.format("<mask>"))
    without = await fake.send_message(fake.owner_id, "no blank here")
    # A hint costs nothing: it does not use up the limit.
    await fake.wait_for_message(titled("⚠️ No blank"), token=await fake.send_message_command(fake.member_id, MENU_NAME, without))
    for _ in range(2):
        token = await fake.send_message_command(fake.member_id, MENU_NAME, with_blank)
        await fake.wait_for_message(titled("Fill-mask"), token=token)
    token = await fake.send_message_command(fake.member_id, MENU_NAME, with_blank)
    refused = await fake.wait_for_message(titled("⚠️"), token=token)
    assert "Slow down" in embed_text(refused) and "try again in" in embed_text(refused)
    assert_only_the_asker_saw_it(fake, token)
    # Another user is not affected.
    token = await fake.send_message_command(fake.admin_id, MENU_NAME, with_blank)
    await fake.wait_for_message(titled("Fill-mask"), token=token)


async def test_in_a_dm_with_the_bot(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    message_id = await fake.send_dm(fake.member_id, SENTENCE.format("[MASK]"))
    dm_channel = fake.dm_channel_id(fake.member_id)
    token = await fake.send_message_command(fake.member_id, MENU_NAME, message_id)
    payload = fake.interactions[token].payload
    assert "guild_id" not in payload and payload["context"] == 1 and payload["channel_id"] == str(dm_channel)
    body = await fake.wait_for_message(titled("Fill-mask"), token=token)
    assert "**mat**" in first_predictions(body)[0]
    assert_only_the_asker_saw_it(fake, token)
    assert all(r.channel_id == dm_channel for r in fake.requests if r.message is not None)
    # Someone else cannot see that DM, so cannot use the menu on it.
    with pytest.raises(ValueError):
        await fake.send_message_command(fake.admin_id, MENU_NAME, message_id)


async def test_an_ephemeral_reply_after_15_minutes_is_dropped_not_posted_for_everyone(
    harness: BotOnFakeDiscord, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Past 15 minutes Discord accepts nothing for an interaction, and discord.py's Context.send
    would post the reply in the channel instead: a private answer must not become public."""
    import asyncio
    import logging

    fake = harness.fake
    caplog.set_level(logging.WARNING, logger="bot.adapters.discord.context")
    monkeypatch.setattr(discord.Interaction, "is_expired", lambda self: True)
    message_id = await fake.send_message(fake.member_id, SENTENCE.format("<mask>"))
    token = await fake.send_message_command(fake.admin_id, MENU_NAME, message_id)
    await fake.wait_for(kind="interaction.callback", token=token)
    for _ in range(100):
        if "dropping an ephemeral reply" in caplog.text:
            break
        await asyncio.sleep(0.1)
    assert "dropping an ephemeral reply" in caplog.text
    await asyncio.sleep(0.5)
    assert not fake.find(kind="message.create"), "an ephemeral answer went to the channel"
