"""Sharding in the fake Discord, against real discord.py clients (AutoShardedClient and plain Client).

What discord.py 2.7 does, read from its source and asserted below:

* close 4010 (Invalid shard) / 4011 (Sharding required): both are in ``_can_handle_close``'s
  never-reconnect list, so ``poll_event`` raises ``ConnectionClosed``. A plain ``Client.connect``
  closes the client and re-raises it; an ``AutoShardedClient``'s shard queues a close event and
  ``connect`` closes the client and re-raises it. Either way ``start()`` fails with
  ``ConnectionClosed(code=4010/4011)`` after one connection: no reconnect loop.
* op 9 Invalid Session (d=false): the client closes with 1000 and identifies again on a new
  connection, after ``before_identify_hook`` (default: sleep 5 s for every IDENTIFY but the
  first). Against Discord's 5 s window that default sleep is enough; tests shorten both.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import aiohttp
import discord
import pytest

from tests.fakediscord import FakeDiscord, start_bot, stop_bot
from tests.fakediscord.models import RecordedIdentify


def _intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


class ShardBot(discord.AutoShardedClient):
    """An AutoShardedClient recording the messages it sees; ``identify_delay`` replaces discord.py's
    5 s sleep before each IDENTIFY but the first."""

    def __init__(self, *, identify_delay: float = 0.0, **options: Any) -> None:
        super().__init__(intents=_intents(), **options)
        self.identify_delay = identify_delay
        self.seen: list[int] = []  # message ids, in the order on_message saw them

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self.identify_delay)

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message.id)


class PlainBot(discord.Client):
    """A plain (single-connection) Client; same hook and recording as ShardBot."""

    def __init__(self, *, identify_delay: float = 0.0, **options: Any) -> None:
        super().__init__(intents=_intents(), **options)
        self.identify_delay = identify_delay

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self.identify_delay)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def _start_fails(fake: FakeDiscord, bot: discord.Client) -> discord.ConnectionClosed:
    """start_bot must fail with ConnectionClosed after one connection (no reconnect loop)."""
    connects = len(fake.gateway_connects)
    with pytest.raises(RuntimeError, match="stopped before becoming ready") as info:
        await start_bot(bot, timeout=5.0)
    cause = info.value.__cause__
    assert isinstance(cause, discord.ConnectionClosed), cause
    assert bot.is_closed()
    await asyncio.sleep(0.2)  # a reconnecting client would be back by now
    assert len(fake.gateway_connects) == connects + 1
    return cause


def _shards(identifies: list[RecordedIdentify]) -> list[tuple[int, int]]:
    return [(i.shard_id, i.shard_count) for i in identifies]


# -- routing: each shard gets its own guilds; DMs go to shard 0 --------------------------------


async def test_two_processes_split_guilds_messages_and_dms() -> None:
    async with FakeDiscord(shards=2, max_concurrency=2) as fake:
        assert fake.shard_of(fake.guild_id, 2) == 0
        zero_b = fake.add_guild("Zero B", shard=(0, 2))
        one = fake.add_guild("One", shard=(1, 2))
        one_b = fake.add_guild("One B", shard=(1, 2))
        assert [fake.shard_of(g, 2) for g in (zero_b, one, one_b)] == [0, 1, 1]
        # Two "processes", one shard each; different buckets, so they may identify together.
        c0 = ShardBot(shard_count=2, shard_ids=[0])
        c1 = ShardBot(shard_count=2, shard_ids=[1])
        await asyncio.gather(start_bot(c0), start_bot(c1))
        try:
            assert {g.id for g in c0.guilds} == {fake.guild_id, zero_b}
            assert {g.id for g in c1.guilds} == {one, one_b}
            assert {g.shard_id for g in c0.guilds} == {0} and {g.shard_id for g in c1.guilds} == {1}
            assert sorted(_shards(fake.identifies)) == [(0, 2), (1, 2)] and fake.identify_violations == []
            ready = [f.d for f in fake.gateway_log if f.t == "READY"]
            assert sorted(tuple(d["shard"]) for d in ready) == [(0, 2), (1, 2)]

            # A guild message reaches only the client holding the guild. Each client's events
            # arrive in order, so a later message it sees proves it never got the earlier one.
            to_one = await fake.send_message(fake.member_id, "for shard 1", guild_id=one)
            to_zero = await fake.send_message(fake.member_id, "for shard 0", guild_id=zero_b)
            later_one = await fake.send_message(fake.member_id, "shard 1 again", guild_id=one_b)
            await _until(lambda: to_zero in c0.seen and later_one in c1.seen)
            assert c0.seen == [to_zero] and c1.seen == [to_one, later_one]

            # A DM reaches only shard 0's client.
            dm = await fake.send_dm(fake.member_id, "psst")
            after_dm = await fake.send_message(fake.member_id, "after the dm", guild_id=one)
            await _until(lambda: dm in c0.seen and after_dm in c1.seen)
            assert dm not in c1.seen and after_dm not in c0.seen

            # A guild added while both are connected goes to its shard only.
            joined = asyncio.ensure_future(c1.wait_for("guild_join", timeout=5))
            await asyncio.sleep(0)
            late = fake.add_guild("Late One", shard=(1, 2))
            assert (await joined).id == late
            await fake.gateway.flush()
            assert c0.get_guild(late) is None and c1.get_guild(late) is not None
        finally:
            await stop_bot(c0)
            await stop_bot(c1)


# -- GET /gateway/bot and the session start limit -----------------------------------------


async def test_gateway_bot_defaults_and_resume_does_not_count() -> None:
    async with FakeDiscord() as fake:
        async with (
            aiohttp.ClientSession(headers={"Authorization": "Bot x"}) as http,
            http.get(f"{fake.api_base}/gateway/bot") as resp,
        ):
            body = await resp.json()
        assert body == {
            "url": fake.gateway_url,
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1},
        }
        assert not fake.sharding.enforce_identify_limit
        bot = PlainBot()
        await start_bot(bot)
        try:
            [identify] = fake.identifies
            assert (identify.shard_id, identify.shard_count) == (0, 1)  # no `shard`: counted as shard 0 of 1
            limit = fake.session_start_limit
            assert limit["remaining"] == 999 and 0 < limit["reset_after"] <= 24 * 3600 * 1000
            await fake.request_reconnect()  # RESUME, not IDENTIFY
            assert len(fake.identifies) == 1 and fake.session_start_limit["remaining"] == 999
        finally:
            await stop_bot(bot)


async def test_autosharded_client_uses_recommended_shard_count() -> None:
    async with FakeDiscord(shards=3, identify_window=0.2, session_start_limit=50) as fake:
        guilds = [fake.guild_id] + [fake.add_guild(f"G{i}", shard=(i, 3)) for i in (1, 2)]
        bot = ShardBot(identify_delay=0.25)  # no shard_count: asks GET /gateway/bot
        await start_bot(bot)
        try:
            assert fake.find(kind="gateway.bot")
            assert bot.shard_count == 3 and sorted(bot.shards) == [0, 1, 2]
            assert {g.id for g in bot.guilds} == set(guilds)
            assert {g.id: g.shard_id for g in bot.guilds} == {g: fake.shard_of(g, 3) for g in guilds}
            assert _shards(fake.identifies) == [(0, 3), (1, 3), (2, 3)] and fake.identify_violations == []
            at = [i.at for i in fake.identifies]
            assert all(b - a >= 0.2 for a, b in itertools.pairwise(at))  # one bucket: spaced by the window
            limits = await bot.fetch_session_start_limits()
            assert (limits.total, limits.remaining, limits.max_concurrency) == (50, 47, 1)
        finally:
            await stop_bot(bot)


# -- the identify rate limit ------------------------------------------------------------------


async def test_second_identify_in_one_bucket_gets_invalid_session() -> None:
    async with FakeDiscord(shards=2, max_concurrency=1, identify_window=1.0) as fake:
        one = fake.add_guild("One", shard=(1, 2))
        c0 = ShardBot(shard_count=2, shard_ids=[0], identify_delay=1.0)
        c1 = ShardBot(shard_count=2, shard_ids=[1], identify_delay=1.0)
        await start_bot(c0)
        await start_bot(c1)  # its first IDENTIFY is refused; discord.py waits its hook's delay and retries
        try:
            [violation] = fake.identify_violations
            first, second = fake.identifies
            assert (violation.shard_id, violation.shard_count) == (1, 2)
            assert (first.shard_id, second.shard_id) == (0, 1)
            assert violation.at - first.at < 1.0 <= second.at - first.at
            invalid = [f for f in fake.gateway_log if f.direction == "send" and f.op == 9]
            assert len(invalid) == 1 and invalid[0].d is False
            assert len(fake.gateway_connects) == 3  # c0, c1's refused try, c1 again
            assert fake.session_start_limit["remaining"] == 998  # the refused IDENTIFY started nothing
            assert {g.id for g in c1.guilds} == {one}
        finally:
            await stop_bot(c0)
            await stop_bot(c1)


async def test_unsharded_identifies_share_bucket_zero() -> None:
    async with FakeDiscord(identify_limit=True, identify_window=0.5) as fake:
        first = PlainBot()
        await start_bot(first)
        second = PlainBot(identify_delay=0.5)
        await start_bot(second)
        try:
            assert [(v.shard_id, v.shard_count) for v in fake.identify_violations] == [(0, 1)]
            assert _shards(fake.identifies) == [(0, 1), (0, 1)]
        finally:
            await stop_bot(first)
            await stop_bot(second)


async def test_identifies_in_different_buckets_are_both_accepted() -> None:
    async with FakeDiscord(shards=2, max_concurrency=2) as fake:  # Discord's 5 s window
        bot = ShardBot(shard_count=2, shard_ids=[0, 1], identify_delay=0.0)  # no wait between shards
        await start_bot(bot)
        try:
            assert _shards(fake.identifies) == [(0, 2), (1, 2)] and fake.identify_violations == []
            first, second = fake.identifies
            assert second.at - first.at < 5.0
            limit = fake.session_start_limit
            assert (limit["remaining"], limit["max_concurrency"]) == (998, 2)
        finally:
            await stop_bot(bot)


# -- 4010 Invalid shard, 4011 Sharding required -----------------------------------------------


async def test_invalid_shard_closes_4010() -> None:
    async with FakeDiscord() as fake:
        cause = await _start_fails(fake, ShardBot(shard_count=2, shard_ids=[2]))
        assert cause.code == 4010
        cause = await _start_fails(fake, PlainBot(shard_id=1, shard_count=1))
        assert cause.code == 4010
        cause = await _start_fails(fake, ShardBot(shard_count=0, shard_ids=[0]))
        assert cause.code == 4010
        assert fake.identifies == [] and fake.session_start_limit["remaining"] == 1000


@pytest.mark.parametrize("shard", [[-1, 2], [0, 0], [3, 3], ["0", "1"], [0], 5])
async def test_invalid_shard_payloads_close_4010(shard: object) -> None:
    async with FakeDiscord() as fake:
        async with aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url + "?v=10&encoding=json") as ws:
            hello = await ws.receive_json()
            assert hello["op"] == 10
            await ws.send_json({"op": 2, "d": {"token": "x", "intents": 0, "properties": {}, "shard": shard}})
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 4010 and msg.extra == "Invalid shard."
        assert fake.identifies == []


async def test_sharding_required_closes_4011() -> None:
    async with FakeDiscord(min_shards=2) as fake:
        cause = await _start_fails(fake, PlainBot())  # no `shard` at all
        assert cause.code == 4011
        cause = await _start_fails(fake, ShardBot(shard_count=1))
        assert cause.code == 4011
        assert fake.identifies == []
        bot = ShardBot(shard_count=2, shard_ids=[1])  # enough shards: accepted
        await start_bot(bot)
        try:
            assert _shards(fake.identifies) == [(1, 2)]
        finally:
            await stop_bot(bot)
