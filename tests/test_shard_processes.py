"""Two real bot processes, SHARD_COUNT=2 with SHARD_IDS=0 and 1, one PostgreSQL, one fake Discord
that shards as Discord does (and refuses identifies beyond max_concurrency per 5 s)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from bot.service.postgres_settings import PostgresGuildSettings
from tests.discord_helpers import embed_text
from tests.fakediscord import FakeDiscord
from tests.postgres_server import PostgresServer
from tests.test_process import bot_env, start_process, stop_process, titled

IDENTIFY_WINDOW = 5.0  # Discord's, enforced by the fake


async def poll_until(condition: Any, timeout: float) -> None:
    """Identifies are not requests: poll for them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


def replies_to(fake: FakeDiscord, message_id: int) -> list[dict[str, Any]]:
    return [m for m in fake.messages_sent() if int((m.get("message_reference") or {}).get("message_id", 0)) == message_id]


async def answered_once(fake: FakeDiscord, message_id: int, predicate: Any, *, timeout: float = 60) -> dict[str, Any]:
    """The one reply to ``message_id``; a moment later there is still only one (no second process answered)."""
    await fake.wait_for(lambda r: r.message is not None and r.ok and message_id in _references(r.message), timeout)
    await asyncio.sleep(1.0)
    replies = [m for m in replies_to(fake, message_id) if predicate(m)]
    assert len(replies_to(fake, message_id)) == 1, replies_to(fake, message_id)
    return replies[0]


def _references(message: dict[str, Any]) -> set[int]:
    return {int((message.get("message_reference") or {}).get("message_id", 0))}


async def answering_pid(fake: FakeDiscord, guild_id: int) -> int:
    """Which process answers ``guild_id``: the owner's ``stats`` names it (host:pid)."""
    sent = await fake.send_message(fake.owner_id, "!stats", guild_id=guild_id)
    reply = await answered_once(fake, sent, titled("Bot statistics"))
    footer = reply["embeds"][0]["footer"]["text"]
    return int(footer.rsplit(":", 1)[1])


async def test_two_shard_processes_share_the_work_and_one_database(
    tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path, postgres_server: PostgresServer
) -> None:
    dsn = await postgres_server.create_database()
    async with FakeDiscord(shards=2, max_concurrency=1, identify_window=IDENTIFY_WINDOW) as fake:
        guild_by_shard = {FakeDiscord.shard_of(fake.guild_id, 2): fake.guild_id}
        other = 1 - next(iter(guild_by_shard))
        guild_by_shard[other] = fake.add_guild("Second", shard=(other, 2))

        def env(shard: int) -> dict[str, str]:
            home = tmp_path / f"shard-{shard}"
            home.mkdir(exist_ok=True)
            return bot_env(
                home,
                bert_checkpoint,
                fake,
                SHARD_COUNT="2",
                SHARD_IDS=str(shard),
                DATABASE_URL=dsn,
                HEALTH_INTERVAL="1",
                MODEL_SET_COOLDOWN_SECONDS="0",
                LOCAL_MODEL_DIRS=str(bert_checkpoint.parent),
            )

        # Both at the same moment: only the database keeps their identifies 5 s apart.
        processes = dict(
            zip((0, 1), await asyncio.gather(start_process(env(0), tmp_path), start_process(env(1), tmp_path)), strict=True)
        )
        try:
            await poll_until(lambda: len(fake.identifies) >= 2, timeout=90)
            assert fake.identify_violations == []
            first, second = sorted(fake.identifies, key=lambda i: i.at)
            assert {first.shard_id, second.shard_id} == {0, 1} and first.shard_count == second.shard_count == 2
            assert second.at - first.at >= IDENTIFY_WINDOW

            # Each server is answered by the process running its shard, and only by it.
            for shard, guild in guild_by_shard.items():
                assert await answering_pid(fake, guild) == processes[shard].pid
            for guild in guild_by_shard.values():
                sent = await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .", guild_id=guild)
                assert "**mat**" in embed_text(await answered_once(fake, sent, titled("Fill-mask")))
            # A direct message: shard 0's process, once.
            sent = await fake.send_dm(fake.member_id, "!fill the cat sat on the <mask> .")
            assert "**mat**" in embed_text(await answered_once(fake, sent, titled("Fill-mask")))

            # Stats from either process cover both (heartbeat rows in the database).
            sent = await fake.send_message(fake.owner_id, "!stats", guild_id=guild_by_shard[0])
            stats = embed_text(await answered_once(fake, sent, titled("Bot statistics")))
            assert "2 processes" in stats and "shards 2 of 2 running" in stats

            # A choice made through shard 1's process survives that process being killed.
            guild_1 = guild_by_shard[1]
            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}", guild_id=guild_1)
            await fake.wait_for_message(titled("✅"), after=mark, timeout=60)
            killed = processes[1].pid
            processes[1].send_signal(signal.SIGKILL)
            await processes[1].wait()
            # Meanwhile shard 0's process keeps answering its server.
            sent = await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .", guild_id=guild_by_shard[0])
            assert "**mat**" in embed_text(await answered_once(fake, sent, titled("Fill-mask")))

            identifies_before = len(fake.identifies)
            processes[1] = await start_process(env(1), tmp_path)
            await poll_until(lambda: len(fake.identifies) > identifies_before, timeout=90)
            sent = await fake.send_message(fake.member_id, "!model show", guild_id=guild_1)
            shown = embed_text(await answered_once(fake, sent, titled("This server's model"), timeout=90))
            assert str(camembert_checkpoint) in shown
            assert fake.identify_violations == []
        finally:
            results = await asyncio.gather(*(stop_process(p) for p in processes.values()))
        assert [code for code, _ in results] == [0, 0], [err[-2000:] for _, err in results]
    async with PostgresGuildSettings(dsn) as store:
        assert await store.get_checkpoint(guild_1) == str(camembert_checkpoint)
        # Stopped processes remove their rows; the killed one's ages out (stats skips it).
        assert [beat.process.rsplit(":", 1)[1] for beat in await store.heartbeats(newer_than=0)] == [str(killed)]
    for shard in (0, 1):
        assert not (tmp_path / f"shard-{shard}" / "process.sqlite3").exists()  # nothing at DATABASE_PATH
