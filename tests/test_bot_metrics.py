"""The bot's metrics with METRICS_PORT set: commands counted by outcome and shard, scraped over HTTP."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from bot.adapters.discord.bot import FillMaskBot
from tests.discord_helpers import make_settings, titled
from tests.fakediscord import FakeDiscord, start_bot, stop_bot
from tests.test_metrics import fetch, parse, value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_fills_are_counted_by_outcome_with_the_process_state(tmp_path: Path, bert_checkpoint: Path) -> None:
    port = _free_port()
    settings = make_settings(tmp_path, bert_checkpoint, metrics_port=port, shard_count=2, shard_ids=(0, 1))
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings)
        await start_bot(bot)
        try:
            shard = str(FakeDiscord.shard_of(fake.guild_id, 2))
            for text in ("the cat sat on the <mask> .", "no blank here"):
                mark = fake.mark()
                await fake.send_message(fake.member_id, f"!fill {text}")
                await fake.wait_for_message(lambda m: titled("Fill-mask")(m) or titled("⚠️")(m), after=mark, timeout=60)
            # A command is counted once it has finished, just after its reply is sent: poll briefly.
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                samples = parse(await asyncio.to_thread(fetch, port))
                counted = value(samples, "fillmask_request_seconds_count", shard=shard, command="fill")
                if counted == 2 or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.1)
        finally:
            await stop_bot(bot)
    assert value(samples, "fillmask_requests_total", shard=shard, command="fill", outcome="ok") == 1
    assert value(samples, "fillmask_requests_total", shard=shard, command="fill", outcome="invalid") == 1
    assert value(samples, "fillmask_request_seconds_count", shard=shard, command="fill") == 2
    assert (value(samples, "fillmask_loaded_checkpoint_bytes", checkpoint=str(bert_checkpoint)) or 0) > 0
    assert value(samples, "fillmask_guilds", shard=shard) == 1
    assert value(samples, "fillmask_shard_count") == 2
    assert value(samples, "fillmask_process_shard", shard="0") == 1 and value(samples, "fillmask_process_shard", shard="1") == 1
