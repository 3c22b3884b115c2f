"""The bot through discord.py's real command processing, against a fake Discord on 127.0.0.1.

Prefix commands arrive as MESSAGE_CREATE gateway events and slash commands as
INTERACTION_CREATE events; the assertions read what the bot sent back over HTTP.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.adapters.discord.bot import FillMaskBot
from bot.inference.registry import ModelRegistry
from tests.discord_helpers import BotOnFakeDiscord, SlowLoader, embed_text, make_settings, titled
from tests.fakediscord import FakeDiscord, start_bot, stop_bot

EPHEMERAL = 1 << 6


def assert_pings_nobody(fake: FakeDiscord) -> None:
    bodies = [r.json for r in fake.requests if r.message is not None and r.json is not None and r.method in ("POST", "PATCH")]
    assert bodies
    for body in bodies:
        payload = body.get("data", body) if "type" in body and "data" in body else body
        assert payload.get("allowed_mentions") == {"parse": []} or payload.get("allowed_mentions", {}).get("parse") == [], payload


# -- fill ------------------------------------------------------------------------------


async def test_prefix_fill_replies_with_an_embed(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    message_id = await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
    body = await fake.wait_for_message(titled("Fill-mask"))
    text = embed_text(body)
    assert "**mat**" in body["embeds"][0]["fields"][0]["value"].splitlines()[0]
    assert len(body["embeds"][0]["fields"][0]["value"].splitlines()) == 5
    assert "> the cat sat on the \\<mask\\> ." in text
    assert "**Best guess:** the cat sat on the mat." in text
    # A local checkpoint is named by its folder: the host's paths are nobody's business.
    footer = body["embeds"][0]["footer"]["text"]
    assert footer.startswith(Path(harness.bot.service.default_model).name + " ·")
    assert harness.bot.service.default_model not in footer
    assert body["message_reference"]["message_id"] in (message_id, str(message_id))
    assert_pings_nobody(fake)


async def test_slash_fill_defers_then_sends_the_embed(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    token = await fake.send_slash(fake.member_id, "fill", {"text": "the cat sat on the [MASK] .", "top_k": 3})
    callback = await fake.wait_for(kind="interaction.callback", token=token)
    assert callback.callback_type == 5  # deferred within Discord's 3 seconds
    body = await fake.wait_for_message(titled("Fill-mask"), token=token)
    lines = body["embeds"][0]["fields"][0]["value"].splitlines()
    assert len(lines) == 3 and "**mat**" in lines[0]
    assert_pings_nobody(fake)


async def test_slash_targets_option_scores_only_those_words(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    token = await fake.send_slash(fake.member_id, "fill", {"text": "the cat sat on the <mask> .", "targets": "dog, mat"})
    body = await fake.wait_for_message(titled("Fill-mask"), token=token)
    lines = body["embeds"][0]["fields"][0]["value"].splitlines()
    assert len(lines) == 2 and "**mat**" in lines[0] and "**dog**" in lines[1]


async def test_prefix_targets_and_top_k_inline(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!fill k=1 the cat sat on the [mask] . | dog, mat")
    body = await fake.wait_for_message(titled("Fill-mask"))
    lines = body["embeds"][0]["fields"][0]["value"].splitlines()
    assert len(lines) == 1 and "**mat**" in lines[0]


async def test_several_masks_one_field_each(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!fill the <mask> sat on the <mask> .")
    body = await fake.wait_for_message(titled("Fill-mask"))
    embed = body["embeds"][0]
    assert [f["name"] for f in embed["fields"]] == ["Best sentence (read together)", "Mask 1 of 2", "Mask 2 of 2"]
    assert "joint score" in embed["fields"][0]["value"]
    assert "per mask" in embed["footer"]["text"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!fill the cat sat on the mat", "I need a blank"),
        ("!fill " + "<mask> " * 6, "at most 5"),
        ("!fill the <mask> " + "cat " * 300, "too long"),
        ("!fill k=42 the <mask>", "1 to 10"),
        ("!fill", "Something is missing"),
    ],
)
async def test_bad_input_gets_a_clear_reply(harness: BotOnFakeDiscord, text: str, expected: str) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, text)
    body = await fake.wait_for_message(titled("⚠️"))
    assert expected in embed_text(body)
    assert "Traceback" not in embed_text(body)


async def test_slash_top_k_out_of_range_is_refused_politely(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    token = await fake.send_slash(fake.member_id, "fill", {"text": "the <mask>", "top_k": 50})
    body = await fake.wait_for_message(token=token)
    assert "⚠️" in embed_text(body)


async def test_mentions_in_input_are_escaped_and_never_ping(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    await fake.send_message(
        fake.member_id, f"!fill @everyone @here <@{fake.admin_id}> <@&{fake.admin_role_id}> the cat sat on the <mask> ."
    )
    body = await fake.wait_for_message(titled("Fill-mask"))
    description = body["embeds"][0]["description"]
    assert "\\@everyone" in description and "\\@here" in description
    assert f"\\<\\@{fake.admin_id}\\>" in description
    assert_pings_nobody(fake)
    stored = fake.messages[int(body["id"])] if "id" in body else None
    if stored is not None:
        assert stored.get("mention_everyone") is False and not stored.get("mentions") and not stored.get("mention_roles")


async def test_an_internal_error_shows_no_traceback(harness: BotOnFakeDiscord, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail /home/bot/.env")

    monkeypatch.setattr(harness.bot.service, "answer", broken)
    fake = harness.fake
    await fake.send_message(fake.member_id, "!fill the <mask>")
    body = await fake.wait_for_message(titled("⚠️"))
    text = embed_text(body)
    assert "Something went wrong on my side" in text
    assert "secret" not in text and "RuntimeError" not in text


# -- loading ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["prefix", "slash"])
async def test_fill_while_loading_shows_a_notice_then_the_result(tmp_path: Path, bert_checkpoint: Path, path: str) -> None:
    settings = make_settings(tmp_path, bert_checkpoint)
    registry = ModelRegistry(SlowLoader(1.5), max_loaded=1)
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings, registry=registry)
        await start_bot(bot)
        try:
            if path == "prefix":
                await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
                notice = await fake.wait_for_message(titled("⏳"))
                final = await fake.wait_for_message(titled("Fill-mask"), timeout=20)
                edit = fake.find(kind="message.edit")
                assert edit and edit[-1].message is final
            else:
                token = await fake.send_slash(fake.member_id, "fill", {"text": "the cat sat on the <mask> ."})
                callback = await fake.wait_for(kind="interaction.callback", token=token)
                assert callback.callback_type == 5
                notice = await fake.wait_for_message(titled("⏳"), token=token)
                final = await fake.wait_for_message(titled("Fill-mask"), token=token, timeout=20)
            assert "is loading" in embed_text(notice)
            assert "**mat**" in embed_text(final)
        finally:
            await stop_bot(bot)


# -- model admin -----------------------------------------------------------------------


async def test_plain_member_cannot_set_the_model_on_either_path(harness: BotOnFakeDiscord, camembert_checkpoint: Path) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, f"!model set {camembert_checkpoint}")
    body = await fake.wait_for_message(titled("⚠️"))
    assert "Manage Server" in embed_text(body)
    token = await fake.send_slash(fake.member_id, "model", {"checkpoint": str(camembert_checkpoint)}, subcommand="set")
    body = await fake.wait_for_message(token=token)
    assert "Manage Server" in embed_text(body)
    assert body.get("flags", 0) & EPHEMERAL
    token = await fake.send_slash(fake.member_id, "model", subcommand="reset")
    assert "Manage Server" in embed_text(await fake.wait_for_message(token=token))
    assert await harness.bot.service.checkpoint_for(fake.guild_id) == harness.bot.service.default_model


async def test_admin_sets_the_model_on_the_prefix_path(harness: BotOnFakeDiscord, camembert_checkpoint: Path) -> None:
    fake = harness.fake
    await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
    notice = await fake.wait_for_message(titled("⏳"))
    assert "Switching to" in embed_text(notice)
    done = await fake.wait_for_message(titled("✅"), timeout=20)
    assert "Model changed" in embed_text(done) and "`<mask>`" in embed_text(done)
    mark = fake.mark()
    await fake.send_message(fake.member_id, "!fill le camembert est [MASK] .")
    body = await fake.wait_for_message(titled("Fill-mask"), after=mark)
    assert "**délicieux**" in body["embeds"][0]["fields"][0]["value"].splitlines()[0]


async def test_admin_sets_the_model_on_the_slash_path_and_failure_keeps_the_old_one(
    harness: BotOnFakeDiscord, camembert_checkpoint: Path, not_mlm_checkpoint: Path
) -> None:
    fake = harness.fake
    token = await fake.send_slash(fake.admin_id, "model", {"checkpoint": str(not_mlm_checkpoint)}, subcommand="set")
    failed = await fake.wait_for_message(titled("⚠️"), token=token, timeout=20)
    text = embed_text(failed)
    assert "Model not changed" in text and "masked-language-model head" in text and "keeps using" in text
    assert await harness.bot.service.checkpoint_for(fake.guild_id) == harness.bot.service.default_model

    token = await fake.send_slash(fake.admin_id, "model", {"checkpoint": str(camembert_checkpoint)}, subcommand="set")
    await fake.wait_for_message(titled("✅"), token=token, timeout=20)
    assert await harness.bot.service.checkpoint_for(fake.guild_id) == str(camembert_checkpoint)

    token = await fake.send_slash(fake.member_id, "model", subcommand="show")
    shown = embed_text(await fake.wait_for_message(token=token))
    assert str(camembert_checkpoint) in shown and "loaded, ready" in shown

    token = await fake.send_slash(fake.owner_id, "model", subcommand="reset")
    reset = embed_text(await fake.wait_for_message(titled("✅"), token=token))
    assert "default" in reset


async def test_choice_survives_a_new_bot_instance(tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path) -> None:
    settings = make_settings(tmp_path, bert_checkpoint)
    async with FakeDiscord() as fake:
        first = FillMaskBot(settings)
        await start_bot(first)
        await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
        await fake.wait_for_message(titled("✅"), timeout=20)
        await stop_bot(first)

        second = FillMaskBot(settings)  # a new process would see exactly this: same database file
        await start_bot(second)
        try:
            mark = fake.mark()
            await fake.send_message(fake.member_id, "!model show")
            shown = embed_text(await fake.wait_for_message(titled("This server's model"), after=mark))
            assert str(camembert_checkpoint) in shown and "(default)" not in shown
            mark = fake.mark()
            await fake.send_message(fake.member_id, "!fill le camembert est <mask> .")
            result = await fake.wait_for_message(titled("Fill-mask"), after=mark, timeout=20)
            assert result["embeds"][0]["footer"]["text"].startswith(camembert_checkpoint.name + " ·")
        finally:
            await stop_bot(second)


async def test_owner_can_sync_and_others_cannot(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!sync")
    refused = await fake.wait_for_message(titled("⚠️"))
    assert "owner" in embed_text(refused)
    assert not fake.find(kind="commands.sync")
    await fake.send_message(fake.owner_id, "!sync")
    await fake.wait_for(kind="commands.sync")
    done = await fake.wait_for_message(titled("✅"))
    assert "synced" in embed_text(done)


async def test_shutdown_lets_replies_in_flight_finish_and_refuses_new_ones(tmp_path: Path, bert_checkpoint: Path) -> None:
    settings = make_settings(tmp_path, bert_checkpoint)
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings, registry=ModelRegistry(SlowLoader(1.5), max_loaded=1))
        await start_bot(bot)
        await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
        await fake.wait_for_message(titled("⏳"))  # the fill is now waiting for the model
        closing = asyncio.ensure_future(bot.close())
        await asyncio.sleep(0.1)
        assert bot.shutting_down and not closing.done()
        await fake.send_message(fake.member_id, "!fill the dog sat on the <mask> .")
        refused = await fake.wait_for_message(titled("⚠️"))
        assert "restarting" in embed_text(refused)
        await asyncio.wait_for(closing, 30)
        # The reply in flight reached its user before the bot went away.
        final = [
            m for m in fake.messages_sent() if any((e.get("title") or "").startswith("Fill-mask") for e in m.get("embeds") or [])
        ]
        assert final and "**mat**" in embed_text(final[-1])
        await stop_bot(bot)
