"""The bot in direct messages, through discord.py's real processing against the fake Discord.

A DM arrives as MESSAGE_CREATE without ``guild_id`` or member data (channel type 1), and a
slash command from a DM as INTERACTION_CREATE with a ``user`` instead of a ``member`` and
``context`` 1 (BOT_DM). There is no server there: ``fill`` and ``model show`` use the bot's
default checkpoint, and ``model set``/``model reset`` are refused without storing anything.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import discord
import pytest

from bot.adapters.discord.bot import FillMaskBot
from bot.inference.registry import ModelRegistry, ModelState
from tests.discord_helpers import BotOnFakeDiscord, SlowLoader, embed_text, make_settings, titled
from tests.fakediscord import FakeDiscord, SlashCommandUnavailable, start_bot, stop_bot

EPHEMERAL = 1 << 6
NO_PING = {"parse": []}
REFUSAL = "This command only works in a server."


def assert_all_replies_in_dm_and_ping_nobody(fake: FakeDiscord, dm_channel: int) -> None:
    """Every message the bot posted or edited went to the DM, carried allowed_mentions {"parse": []}, and succeeded."""
    replies = [r for r in fake.requests if r.message is not None]
    assert replies, "the bot sent nothing"
    for r in replies:
        assert r.ok, r
        assert r.channel_id == dm_channel, r
        assert r.message.get("allowed_mentions") == NO_PING, (r, r.message)
    # Nothing fell through to the fake's catch-all (an endpoint the fake does not know).
    assert not fake.find(kind="unknown")
    assert all(r.ok for r in fake.requests), [r for r in fake.requests if not r.ok]


async def assert_nothing_stored(harness: BotOnFakeDiscord, camembert_checkpoint: Path) -> None:
    service = harness.bot.service
    assert await service.checkpoint_for(None) == service.default_model
    assert await service.checkpoint_for(harness.fake.guild_id) == service.default_model
    assert harness.bot.service.store is not None
    assert await harness.bot.service.store.count_guilds_per_checkpoint() == {}
    # Refused before any work: the other checkpoint was never even loaded.
    assert harness.bot.registry.state(str(camembert_checkpoint)) is ModelState.NOT_LOADED


# -- the fake's DM plumbing, as discord.py sees it --------------------------------------


async def test_a_dm_reaches_the_bot_as_a_private_message(harness: BotOnFakeDiscord) -> None:
    fake, bot = harness.fake, harness.bot
    waiter = asyncio.create_task(bot.wait_for("message", check=lambda m: m.author.id == fake.member_id, timeout=5))
    await asyncio.sleep(0)  # let wait_for register before the event can arrive
    message_id = await fake.send_dm(fake.member_id, "hello bot")
    message: discord.Message = await waiter
    assert message.id == message_id
    assert message.guild is None
    assert isinstance(message.channel, discord.DMChannel)
    assert message.channel.id == fake.dm_channel_id(fake.member_id)
    assert type(message.author) is discord.User  # no member data in a DM
    assert message.content == "hello bot"
    frame = next(f for f in fake.gateway_log if f.t == "MESSAGE_CREATE" and f.d["id"] == str(message_id))
    assert "guild_id" not in frame.d and "member" not in frame.d


async def test_create_dm_opens_the_same_channel_and_bot_messages_are_recorded(harness: BotOnFakeDiscord) -> None:
    fake, bot = harness.fake, harness.bot
    stranger = fake.add_user("stranger")  # shares no guild with the bot
    user = await bot.fetch_user(stranger)
    channel = await user.create_dm()
    assert fake.find(kind="dm.create")[0].json == {"recipient_id": stranger}
    assert channel.id == fake.dm_channel_id(stranger)
    assert channel.recipient is not None and channel.recipient.id == stranger
    sent = await channel.send("hi @everyone", allowed_mentions=discord.AllowedMentions.none())
    await sent.edit(content="edited")
    bodies = fake.messages_sent(channel_id=channel.id)
    assert [b["content"] for b in bodies] == ["hi @everyone", "edited"]
    assert fake.history(channel.id)[-1]["content"] == "edited"
    assert fake.history(channel.id)[-1]["mention_everyone"] is False
    body = await fake.wait_for_message(lambda b: b.get("content") == "edited", channel_id=channel.id)
    assert body["allowed_mentions"] == NO_PING
    await fake.send_dm(stranger, "again")
    assert fake.dm_channel_id(stranger) == channel.id  # the same channel, both ways


async def test_dm_channel_edge_cases_answer_like_discord(harness: BotOnFakeDiscord) -> None:
    fake, bot = harness.fake, harness.bot
    other_bot = fake.add_user("otherbot", bot=True)
    channel = await (await bot.fetch_user(other_bot)).create_dm()
    with pytest.raises(discord.Forbidden) as refused:
        await channel.send("hello fellow bot")
    assert refused.value.code == 50007
    with pytest.raises(discord.HTTPException) as invalid:
        await bot.http.start_private_message(fake.bot_user_id)  # type: ignore[arg-type]
    assert invalid.value.code == 50033
    assert fake.dm_channel_id(fake.member_id) != fake.dm_channel_id(fake.admin_id)
    assert all(int(c["id"]) not in fake.dm_channels for c in fake.guild_json()["channels"])  # DMs are not guild channels


# -- (a) fill in a DM ------------------------------------------------------------------


async def test_prefix_fill_in_a_dm_uses_the_default_model(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    message_id = await fake.send_dm(fake.member_id, "!fill the cat sat on the <mask> .")
    dm = fake.dm_channel_id(fake.member_id)
    body = await fake.wait_for_message(titled("Fill-mask"), channel_id=dm, timeout=20)
    first = body["embeds"][0]["fields"][0]["value"].splitlines()[0]
    assert "**mat**" in first
    assert body["embeds"][0]["footer"]["text"].startswith(Path(harness.bot.service.default_model).name + " ·")
    assert "**Best guess:** the cat sat on the mat." in embed_text(body)
    assert body["message_reference"]["message_id"] in (message_id, str(message_id))
    stored = fake.history(dm)[-1]
    assert stored["message_reference"]["channel_id"] == str(dm) and "guild_id" not in stored["message_reference"]
    assert fake.find(kind="typing", channel_id=dm)  # `async with ctx.typing()` hit the DM channel
    assert not fake.history(fake.channel_id)  # nothing went to the server
    assert_all_replies_in_dm_and_ping_nobody(fake, dm)


async def test_slash_fill_in_a_dm_uses_the_default_model(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    token = await fake.send_slash(fake.member_id, "fill", {"text": "the cat sat on the [MASK] .", "top_k": 3}, dm=True)
    callback = await fake.wait_for(kind="interaction.callback", token=token)
    assert callback.callback_type == 5
    body = await fake.wait_for_message(titled("Fill-mask"), token=token, timeout=20)
    lines = body["embeds"][0]["fields"][0]["value"].splitlines()
    assert len(lines) == 3 and "**mat**" in lines[0]
    assert body["embeds"][0]["footer"]["text"].startswith(Path(harness.bot.service.default_model).name + " ·")
    assert_all_replies_in_dm_and_ping_nobody(fake, fake.dm_channel_id(fake.member_id))


async def test_prefix_fill_in_a_dm_while_loading_edits_the_notice_in_the_dm(tmp_path: Path, bert_checkpoint: Path) -> None:
    settings = make_settings(tmp_path, bert_checkpoint)
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings, registry=ModelRegistry(SlowLoader(1.5), max_loaded=1))
        await start_bot(bot)
        try:
            await fake.send_dm(fake.member_id, "!fill the cat sat on the <mask> .")
            dm = fake.dm_channel_id(fake.member_id)
            notice = await fake.wait_for_message(titled("⏳"), channel_id=dm)
            final = await fake.wait_for_message(titled("Fill-mask"), channel_id=dm, timeout=20)
            edit = fake.find(kind="message.edit", channel_id=dm)
            assert edit and edit[-1].message is final
            assert "is loading" in embed_text(notice)
            assert "**mat**" in embed_text(final)
            assert len(fake.history(dm)) == 2  # the user's DM and the one notice, edited in place
            assert_all_replies_in_dm_and_ping_nobody(fake, dm)
        finally:
            await stop_bot(bot)


async def test_a_servers_model_does_not_follow_its_members_into_dms(
    harness: BotOnFakeDiscord, camembert_checkpoint: Path
) -> None:
    fake = harness.fake
    await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
    await fake.wait_for_message(titled("✅"), timeout=30)
    assert await harness.bot.service.checkpoint_for(fake.guild_id) == str(camembert_checkpoint)

    mark = fake.mark()
    await fake.send_dm(fake.admin_id, "!fill the cat sat on the <mask> .")
    dm = fake.dm_channel_id(fake.admin_id)
    body = await fake.wait_for_message(titled("Fill-mask"), channel_id=dm, after=mark, timeout=20)
    assert "**mat**" in body["embeds"][0]["fields"][0]["value"].splitlines()[0]
    assert body["embeds"][0]["footer"]["text"].startswith(Path(harness.bot.service.default_model).name + " ·")
    assert camembert_checkpoint.name not in body["embeds"][0]["footer"]["text"]
    assert body["allowed_mentions"] == NO_PING


# -- (b) model set/reset refused on the prefix path ---------------------------------------


@pytest.mark.parametrize("command", ["set", "reset"])
async def test_prefix_model_change_in_a_dm_is_refused_and_stores_nothing(
    harness: BotOnFakeDiscord, camembert_checkpoint: Path, command: str
) -> None:
    fake = harness.fake
    text = f"!model set {camembert_checkpoint}" if command == "set" else "!model reset"
    # The owner holds every permission in the server: the refusal is about the place, not the person.
    message_id = await fake.send_dm(fake.owner_id, text)
    dm = fake.dm_channel_id(fake.owner_id)
    body = await fake.wait_for_message(titled("⚠️"), channel_id=dm)
    assert REFUSAL in embed_text(body)
    assert body["message_reference"]["message_id"] in (message_id, str(message_id))
    assert len(fake.messages_sent()) == 1  # no "Switching to…" notice, no second reply
    await assert_nothing_stored(harness, camembert_checkpoint)
    assert_all_replies_in_dm_and_ping_nobody(fake, dm)


# -- (c) the same refusal on the slash path ----------------------------------------------


@pytest.mark.parametrize("command", ["set", "reset"])
async def test_slash_model_change_in_a_dm_is_refused_and_stores_nothing(
    harness: BotOnFakeDiscord, camembert_checkpoint: Path, command: str
) -> None:
    fake, bot = harness.fake, harness.bot
    await bot.tree.sync()  # publish the global commands to the fake, as `!sync` does
    options = {"checkpoint": str(camembert_checkpoint)} if command == "set" else None
    # enforce_default_permissions: Discord does offer /model in the bot's DM (the group allows
    # the BOT_DM context), so the bot's own check is the only thing standing in the way.
    token = await fake.send_slash(fake.owner_id, "model", options, subcommand=command, dm=True, enforce_default_permissions=True)
    callback = await fake.wait_for(kind="interaction.callback", token=token)
    body = await fake.wait_for_message(token=token)
    assert REFUSAL in embed_text(body)
    assert callback.callback_type == 4  # answered at once, no deferral or loading notice
    assert body.get("flags", 0) & EPHEMERAL
    assert len(fake.messages_sent(token=token)) == 1
    await assert_nothing_stored(harness, camembert_checkpoint)
    assert_all_replies_in_dm_and_ping_nobody(fake, fake.dm_channel_id(fake.owner_id))


async def test_the_fake_hides_a_guild_only_command_in_dms(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    fake.global_commands.append({"id": "1", "name": "guildy", "type": 1, "contexts": [0]})
    with pytest.raises(SlashCommandUnavailable):
        await fake.send_slash(fake.member_id, "guildy", dm=True, enforce_default_permissions=True)
    with pytest.raises(ValueError):
        await fake.send_slash(fake.member_id, "fill", {"text": "<mask>"}, dm=True, guild_command=True)


# -- (d) model show in a DM --------------------------------------------------------------


async def test_prefix_model_show_in_a_dm_shows_the_default(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    await fake.send_dm(fake.member_id, "!model show")
    dm = fake.dm_channel_id(fake.member_id)
    body = await fake.wait_for_message(titled("The bot's default model"), channel_id=dm)
    text = embed_text(body)
    assert f"`{harness.bot.service.default_model}` (default)" in text
    assert "loaded, ready" in text
    assert_all_replies_in_dm_and_ping_nobody(fake, dm)


async def test_slash_model_show_in_a_dm_shows_the_default(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    token = await fake.send_slash(fake.member_id, "model", subcommand="show", dm=True)
    body = await fake.wait_for_message(titled("The bot's default model"), token=token)
    assert f"`{harness.bot.service.default_model}` (default)" in embed_text(body)
    assert_all_replies_in_dm_and_ping_nobody(fake, fake.dm_channel_id(fake.member_id))
