"""Discord's own rate limits lose nothing: the real bot against a fake Discord that enforces them.

Discord allows 5 messages per 5 s per channel (and as many edits, and typing requests): a
burst of ``!fill`` in one channel is paced by Discord, and each command must still get exactly
one reply, referencing it, without the bot running into 429s or spending the channel's budget
on typing indicators. A refused edit (429, 500) is retried; a deleted notice (the edit answers
404 Unknown Message) gives way to a new reply instead of losing the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.discord.bot import FillMaskBot
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.progress import ProgressTracker
from bot.inference.registry import ModelRegistry
from tests.discord_helpers import SlowLoader, embed_text, make_settings, titled
from tests.fakediscord import FakeDiscord, RecordedRequest, start_bot, stop_bot
from tests.fakediscord.ratelimits import MESSAGE_CREATE, RateLimit

FILL = "!fill the cat sat on the <mask> ."
BURST_USERS = 20
NO_PING = {"parse": []}


@contextlib.asynccontextmanager
async def limited_bot(
    tmp_path: Path, checkpoint: Path, *, registry: ModelRegistry | None = None, preload: bool = True, **overrides: Any
) -> AsyncIterator[tuple[FakeDiscord, FillMaskBot]]:
    """A FillMaskBot on a fake Discord that enforces Discord's rate limits."""
    async with FakeDiscord(rate_limits=True) as fake:
        bot = FillMaskBot(make_settings(tmp_path, checkpoint, **overrides), registry=registry)
        await start_bot(bot)
        try:
            if preload:
                await bot.registry.get(bot.service.default_model)
            yield fake, bot
        finally:
            await stop_bot(bot)


def replies_to(fake: FakeDiscord, command_id: int) -> list[dict[str, Any]]:
    """The bot's messages (current state) that reply to the message ``command_id``."""
    return [
        m
        for m in fake.messages.values()
        if int(m["author"]["id"]) == fake.bot_user_id
        and str((m.get("message_reference") or {}).get("message_id")) == str(command_id)
    ]


def title(message: dict[str, Any]) -> str:
    return ((message.get("embeds") or [{}])[0].get("title")) or ""


async def wait_for_results(fake: FakeDiscord, command_ids: list[int], timeout: float) -> None:
    """Until every command has a reply showing a result (then a moment more: a late duplicate would show)."""
    deadline = time.monotonic() + timeout
    while not all(any(title(m).startswith("Fill-mask") for m in replies_to(fake, c)) for c in command_ids):
        if time.monotonic() > deadline:
            missing = [c for c in command_ids if not any(title(m).startswith("Fill-mask") for m in replies_to(fake, c))]
            raise AssertionError(f"{len(missing)} command(s) got no result within {timeout}s: {missing[:3]}")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)


def most_in_any_window(requests: list[RecordedRequest], per: float) -> int:
    """The most of ``requests`` that arrived within one ``per``-second span (10 ms of clock slack)."""
    times = sorted(r.received_at for r in requests)
    return max((sum(1 for u in times if t <= u < t + per - 0.01) for t in times), default=0)


# -- a burst in one channel ------------------------------------------------------------


async def test_a_burst_in_one_channel_gets_one_reply_each_within_discords_limits(tmp_path: Path, bert_checkpoint: Path) -> None:
    async with limited_bot(tmp_path, bert_checkpoint) as (fake, _):
        users = fake.add_members([f"burst{i:02d}" for i in range(BURST_USERS)])
        mark = fake.mark()
        started = time.monotonic()
        commands = list(await asyncio.gather(*(fake.send_message(user, FILL) for user in users)))
        await wait_for_results(fake, commands, timeout=45)
        took = time.monotonic() - started

        for command in commands:
            [reply] = replies_to(fake, command)  # exactly one, referencing its command
            assert title(reply).startswith("Fill-mask") and "**mat**" in embed_text(reply)
        sent = fake.find(lambda r: r.message is not None and r.ok, after=mark)
        assert all(r.message is not None and r.message.get("allowed_mentions") == NO_PING for r in sent)
        assert not [r for r in sent if "Busy" in str(r.json)]
        creates = [r for r in fake.find(kind="message.create", after=mark) if r.ok]
        assert len(creates) == BURST_USERS  # no second message for anyone
        # Paced by Discord's bucket, which the bot reads from the headers: never more than 5 per
        # 5 s, and not one 429 (the replies queue per channel before discord.py's bucket, whose
        # waiters would otherwise over-refresh it at the reset and send more than it holds).
        assert most_in_any_window(creates, MESSAGE_CREATE.per) <= MESSAGE_CREATE.limit
        windows = -(-BURST_USERS // MESSAGE_CREATE.limit)
        assert not fake.rate_limited(after=mark), fake.rate_limited(after=mark)
        assert took >= (windows - 1) * MESSAGE_CREATE.per - 0.5  # the limits really were in force
        # One shared typing indicator for the channel (refreshed every few seconds), not one per command.
        typing = fake.find(kind="typing", after=mark)
        assert 1 <= len(typing) <= 4, [(r.status, r.received_at) for r in typing]
        assert all(r.ok for r in typing)


async def test_bursts_in_two_servers_are_paced_per_channel(tmp_path: Path, bert_checkpoint: Path) -> None:
    async with limited_bot(tmp_path, bert_checkpoint) as (fake, bot):
        second = fake.add_guild("Second Guild")
        first_users = fake.add_members([f"a{i}" for i in range(6)])
        second_users = fake.add_members([f"b{i}" for i in range(6)], guild_id=second)
        mark = fake.mark()
        started = time.time()
        commands = list(
            await asyncio.gather(
                *(fake.send_message(u, FILL) for u in first_users),
                *(fake.send_message(u, FILL, guild_id=second) for u in second_users),
            )
        )
        await wait_for_results(fake, commands, timeout=30)
        assert bot.get_guild(second) is not None
        for command in commands:
            [reply] = replies_to(fake, command)
            assert title(reply).startswith("Fill-mask")
        assert not fake.rate_limited(after=mark)
        for channel in (fake.channel_id, fake.guild(second).channel_id):
            creates = [r for r in fake.find(kind="message.create", channel_id=channel, after=mark) if r.ok]
            assert len(creates) == 6 and most_in_any_window(creates, MESSAGE_CREATE.per) <= MESSAGE_CREATE.limit
            # Each channel's own bucket: neither server waited for the other's replies.
            assert sorted(r.received_at for r in creates)[4] - started < MESSAGE_CREATE.per


# -- a notice, then its edit -----------------------------------------------------------


async def send_and_wait_for_notice(fake: FakeDiscord, path: str) -> tuple[int | str, dict[str, Any]]:
    """``fill`` on ``path`` while the model loads; returns (command message id or token, the notice as stored)."""
    if path == "prefix":
        command: int | str = await fake.send_message(fake.member_id, FILL)
        await fake.wait_for_message(titled("⏳"))
        [notice] = replies_to(fake, int(command))
    else:
        command = await fake.send_slash(fake.member_id, "fill", {"text": "the cat sat on the <mask> ."})
        await fake.wait_for_message(titled("⏳"), token=command)
        inter = fake.interactions[command]
        assert inter.original_message_id is not None
        notice = fake.messages[inter.original_message_id]
    assert title(notice).startswith("⏳")
    return command, notice


def live_replies(fake: FakeDiscord, path: str, command: int | str) -> list[dict[str, Any]]:
    """The bot's messages that still exist and answer ``command``."""
    if path == "prefix":
        return replies_to(fake, int(command))
    inter = fake.interactions[str(command)]
    ids = [inter.original_message_id, *inter.followup_ids]
    return [fake.messages[i] for i in ids if i in fake.messages]


EDIT_PATHS = {"prefix": r"^/channels/\d+/messages/\d+$", "slash": r"^/webhooks/\d+/[^/]+/messages/"}


@pytest.mark.parametrize(("status", "path"), [(429, "prefix"), (429, "slash"), (500, "prefix")])
async def test_a_refused_edit_of_the_notice_is_retried_and_lands(
    tmp_path: Path, bert_checkpoint: Path, status: int, path: str
) -> None:
    registry = ModelRegistry(SlowLoader(1.0), max_loaded=1)
    async with limited_bot(tmp_path, bert_checkpoint, registry=registry, preload=False) as (fake, _):
        body = {"retry_after": 0.3} if status == 429 else {"message": "500: Internal Server Error", "code": 0}
        fake.inject_error("PATCH", EDIT_PATHS[path], status, body)
        command, notice = await send_and_wait_for_notice(fake, path)
        final = await fake.wait_for_message(titled("Fill-mask"), timeout=20)
        assert "**mat**" in embed_text(final)
        await asyncio.sleep(0.3)
        [reply] = live_replies(fake, path, command)  # the notice became the result: one message
        assert reply["id"] == notice["id"] and title(reply).startswith("Fill-mask")
        edits = fake.find(method="PATCH")
        assert [r.status for r in edits] == [status, 200]
        assert edits[0].json == edits[1].json  # the same edit, sent again


@pytest.mark.parametrize("path", ["prefix", "slash"])
async def test_a_deleted_notice_gives_way_to_a_new_reply(tmp_path: Path, bert_checkpoint: Path, path: str) -> None:
    registry = ModelRegistry(SlowLoader(1.5), max_loaded=1)
    async with limited_bot(tmp_path, bert_checkpoint, registry=registry, preload=False) as (fake, _):
        command, notice = await send_and_wait_for_notice(fake, path)
        fake.delete_message(int(notice["id"]))  # a moderator cleans up while the model loads
        final = await fake.wait_for_message(titled("Fill-mask"), timeout=20)
        await asyncio.sleep(0.3)
        [reply] = live_replies(fake, path, command)
        assert reply["id"] != notice["id"] and title(reply).startswith("Fill-mask") and "**mat**" in embed_text(final)
        [edit] = fake.find(method="PATCH")
        assert edit.status == 404 and edit.response["code"] == 10008
        if path == "prefix":  # the new reply still answers the command
            assert reply["message_reference"]["message_id"] == str(command)


async def test_a_send_answered_500_once_still_delivers_one_reply(tmp_path: Path, bert_checkpoint: Path) -> None:
    async with limited_bot(tmp_path, bert_checkpoint) as (fake, _):
        fake.inject_error("POST", r"^/channels/\d+/messages$", 500, {"message": "500: Internal Server Error", "code": 0})
        command = await fake.send_message(fake.member_id, FILL)
        await wait_for_results(fake, [command], timeout=20)
        [reply] = replies_to(fake, command)
        assert title(reply).startswith("Fill-mask")
        assert [r.status for r in fake.find(kind="message.create")] == [500, 200]


# -- progress edits under a tight edit bucket --------------------------------------------


class StagedLoader:
    """Reports a 3-second "download" in 100 ms steps, then really loads."""

    def __call__(self, reference: str, *, progress: Any = None) -> MaskedLM:
        tracker = ProgressTracker(progress)
        total = 445_000_000
        for step in range(31):
            tracker.stage("downloading", total * step // 30, total)
            time.sleep(0.1)
        return load_masked_lm(reference, progress=progress)


async def test_progress_edits_skip_to_the_newest_when_edits_are_rate_limited(tmp_path: Path, bert_checkpoint: Path) -> None:
    # Another folder holding the same weights: a switch that really loads, without building a second model.
    other = tmp_path / "models" / "bert-copy"
    shutil.copytree(bert_checkpoint, other)
    registry = ModelRegistry(StagedLoader(), max_loaded=2)
    local_dirs = (bert_checkpoint.parent, other.parent)
    async with limited_bot(tmp_path, bert_checkpoint, registry=registry, local_model_dirs=local_dirs) as (fake, _):
        edit_limit = RateLimit(2, 4.0)  # tighter than Discord's 5 per 5 s: the ~3.5 s load outpaces it
        fake.enforce_rate_limits(message_edit=edit_limit)
        mark = fake.mark()
        await fake.send_message(fake.admin_id, f"!model set {other}")
        done = await fake.wait_for_message(titled("✅"), after=mark, timeout=30)
        assert "Model changed" in embed_text(done)
        await asyncio.sleep(0.3)
        creates = [r for r in fake.find(kind="message.create", after=mark) if r.ok]
        assert len(creates) == 1  # the notice; everything after it was an edit of it
        edits = [r for r in fake.find(kind="message.edit", after=mark) if r.ok]
        assert "Model changed" in embed_text(edits[-1].json)
        assert most_in_any_window(edits, edit_limit.per) <= edit_limit.limit
        assert not fake.rate_limited(after=mark)  # the bot waited for the bucket instead of hammering it
        progress = [embed_text(r.json) for r in edits[:-1]]
        percents = [int(t.split("(")[1].split(" %")[0]) for t in progress if "downloading" in t and "(" in t]
        assert percents == sorted(percents)
        gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(edits)]
        assert any(gap >= 1.5 for gap in gaps), gaps  # one edit did wait for the bucket
        # What came while the bucket was empty was not queued up behind it: once it reset, the
        # newest state went out (here the outcome, ~5 s in), not the stale progress first, which
        # would have pushed the outcome into the window after.
        assert len(progress) <= 3
        assert edits[-1].received_at - edits[0].received_at < 2 * edit_limit.per
