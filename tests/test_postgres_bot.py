"""The bot with DATABASE_URL: each server's choice lives in PostgreSQL (issue 12, first piece).

A real PostgreSQL 15 server (tests/postgres_server.py) and the real bot on the fake Discord.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters.discord.bot import FillMaskBot
from bot.service.postgres_settings import PostgresGuildSettings
from bot.service.reopening_store import RETRY_SECONDS
from bot.settings import Settings
from tests.discord_helpers import embed_text, make_settings, model_set_until_saved, titled
from tests.fakediscord import FakeDiscord, start_bot, stop_bot
from tests.postgres_server import PostgresServer


async def test_a_choice_is_kept_in_postgresql_and_nothing_is_written_at_database_path(
    tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path, postgres_server: PostgresServer
) -> None:
    dsn = await postgres_server.create_database()
    settings = make_settings(tmp_path, bert_checkpoint, database_url=dsn)
    async with FakeDiscord() as fake:
        first = FillMaskBot(settings)
        await start_bot(first)
        await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
        await fake.wait_for_message(titled("✅"), timeout=30)
        await stop_bot(first)

        second = FillMaskBot(settings)  # another process would see the same: one shared database
        await start_bot(second)
        try:
            mark = fake.mark()
            await fake.send_message(fake.member_id, "!model show")
            shown = embed_text(await fake.wait_for_message(titled("This server's model"), after=mark))
            assert str(camembert_checkpoint) in shown
        finally:
            await stop_bot(second)
    assert not settings.database_path.exists()
    async with PostgresGuildSettings(dsn) as store:
        assert await store.get_checkpoint(FakeDiscord.guild_id) == str(camembert_checkpoint)


async def test_an_unreachable_database_keeps_fill_working_and_refuses_changes(
    tmp_path: Path,
    bert_checkpoint: Path,
    camembert_checkpoint: Path,
    postgres_server: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = f"postgresql://fillmask:s3cret-password@127.0.0.1:{postgres_server.port + 1}/nowhere"
    settings: Settings = make_settings(tmp_path, bert_checkpoint, database_url=unreachable)
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings)
        await start_bot(bot)
        try:
            await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
            assert "**mat**" in embed_text(await fake.wait_for_message(titled("Fill-mask"), timeout=30))
            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
            refused = embed_text(await fake.wait_for_message(titled("⚠️"), after=mark, timeout=30))
            assert "couldn't save that setting" in refused and "s3cret" not in refused
        finally:
            await stop_bot(bot)
    assert "settings database unavailable" in caplog.text  # the owner is told why
    assert "s3cret" not in caplog.text  # and never the password


async def test_a_database_that_goes_away_and_comes_back_needs_no_restart(
    tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path, own_postgres_server: PostgresServer
) -> None:
    server = own_postgres_server
    dsn = await server.create_database()
    settings = make_settings(tmp_path, bert_checkpoint, database_url=dsn)
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings)
        await start_bot(bot)
        try:
            server.stop()
            mark = fake.mark()
            await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
            assert "**mat**" in embed_text(await fake.wait_for_message(titled("Fill-mask"), after=mark, timeout=30))
            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
            refused = embed_text(await fake.wait_for_message(titled("⚠️"), after=mark, timeout=30))
            assert "couldn't save that setting" in refused

            server.start()
            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
            await fake.wait_for_message(titled("✅"), after=mark, timeout=30)
        finally:
            await stop_bot(bot)
    async with PostgresGuildSettings(dsn) as store:
        assert await store.get_checkpoint(FakeDiscord.guild_id) == str(camembert_checkpoint)


async def test_a_database_down_at_start_is_used_once_it_is_up(
    tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path, own_postgres_server: PostgresServer
) -> None:
    server = own_postgres_server
    dsn = await server.create_database()
    server.stop()
    settings = make_settings(tmp_path, bert_checkpoint, database_url=dsn)
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings)
        await start_bot(bot)
        try:
            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
            assert "couldn't save that setting" in embed_text(await fake.wait_for_message(titled("⚠️"), after=mark, timeout=30))
            server.start()
            # The bot tries the database again at most every RETRY_SECONDS, without a restart.
            await model_set_until_saved(fake, str(camembert_checkpoint), within=RETRY_SECONDS + 10)
        finally:
            await stop_bot(bot)
    async with PostgresGuildSettings(dsn) as store:
        assert await store.get_checkpoint(FakeDiscord.guild_id) == str(camembert_checkpoint)
