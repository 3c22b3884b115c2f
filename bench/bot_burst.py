"""The burst through the whole bot: discord.py, the test Discord on 127.0.0.1, the service and
the fair batcher, against the in-process core and sequential ``pipeline`` calls.

One server's class of 64 sends ``/fill`` at once with the shipped limits; meanwhile a member
of a second server sends one ``/fill``. Figures: the burst's total time, how many were told
"busy", the second server's latency during the burst and at idle, and event-loop lag.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from bench.measure import LagMeter, amedian_time, core_burst, table
from bot.inference.batching import BatchingModel
from bot.inference.types import FillRequest
from bot.settings import Settings

CLASS_SIZE = 64
T = TypeVar("T")


class DiscordOnItsOwnThread:
    """The test Discord on its own thread and event loop: the lag measured on the bot's loop is
    then the bot's own, not the fake's work of parsing and answering 64 interactions."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-discord", daemon=True)
        self.fake: Any = None
        self._stop: asyncio.Event | None = None
        self._served: concurrent.futures.Future[None] | None = None

    async def __aenter__(self) -> DiscordOnItsOwnThread:
        from tests.fakediscord import FakeDiscord

        self._thread.start()
        ready = threading.Event()

        async def serve() -> None:
            self._stop = asyncio.Event()
            async with FakeDiscord() as fake:
                self.fake = fake
                ready.set()
                await self._stop.wait()

        self._served = asyncio.run_coroutine_threadsafe(serve(), self._loop)
        await asyncio.to_thread(ready.wait, 30)
        return self

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of the fake on its loop, from the bot's."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def __aexit__(self, *exc: object) -> None:
        assert self._stop is not None and self._served is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.wrap_future(self._served)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


async def _sync(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return function(*args, **kwargs)


async def bot_burst_section(path: Path, texts: list[str], *, repeat: int, pipeline_burst: float) -> dict[str, float]:
    """Measure and print the section; ``texts`` use the checkpoint's mask token."""
    from bot.adapters.discord.bot import FillMaskBot
    from tests.fakediscord import start_bot, stop_bot

    with tempfile.TemporaryDirectory(prefix="fillmask-bench-") as scratch:
        settings = replace(
            Settings(),
            default_model=str(path),
            database_path=Path(scratch) / "bench.sqlite3",
            health_file=Path(scratch) / "health.json",
            device="cpu",
        )
        async with DiscordOnItsOwnThread() as discord_thread:
            fake = discord_thread.fake
            members = await discord_thread.call(_sync(fake.add_members, [f"student{i:02d}" for i in range(CLASS_SIZE)]))
            other_guild = await discord_thread.call(_sync(fake.add_guild, "second server"))
            # A fresh member of the second server for each of its requests: none meets the per-user cooldown.
            visitors = iter(
                await discord_thread.call(_sync(fake.add_members, [f"visitor{i:02d}" for i in range(20)], guild_id=other_guild))
            )
            bot = FillMaskBot(settings)
            await start_bot(bot)
            try:
                served = await bot.registry.get(bot.service.default_model)
                assert isinstance(served, BatchingModel)  # the in-process backend the bot builds by default

                async def one(member: int, text: str, guild_id: int | None = None) -> tuple[float, str]:
                    started = time.perf_counter()
                    token = await discord_thread.call(fake.send_slash(member, "fill", {"text": text}, guild_id=guild_id))
                    body = await discord_thread.call(
                        fake.wait_for_message(lambda b: bool(b.get("embeds")), token=token, timeout=120)
                    )
                    return time.perf_counter() - started, body["embeds"][0]["title"]

                async def burst() -> list[tuple[float, str]]:
                    return await asyncio.gather(*(one(m, texts[i % len(texts)]) for i, m in enumerate(members)))

                await burst()  # warm-up: first calls allocate and pick kernels
                idle_runs = [await one(next(visitors), texts[0], other_guild) for _ in range(5)]
                idle = statistics.median(t for t, _ in idle_runs)
                totals: list[float] = []
                during: list[float] = []
                busy = sum(1 for _, title in idle_runs if title != "Fill-mask")
                async with LagMeter() as lag:
                    for _ in range(repeat):
                        started = time.perf_counter()
                        flood = asyncio.ensure_future(burst())
                        await asyncio.sleep(0.05)  # the flood is queued; now the other server asks
                        latency, title = await one(next(visitors), texts[1], other_guild)
                        outcomes = await flood
                        totals.append(time.perf_counter() - started)
                        during.append(latency)
                        busy += sum(1 for _, t in [*outcomes, (latency, title)] if t != "Fill-mask")
                core = await amedian_time(
                    lambda: core_burst(served, [FillRequest(t, 5, tenant=1) for t in texts[:CLASS_SIZE]]), repeat
                )
                passes = served.seconds_per_request * served.max_batch_size
            finally:
                await stop_bot(bot)

    total = statistics.median(totals)
    second = statistics.median(during)
    table(
        f"Through the bot: {CLASS_SIZE} members of one server send /fill at once (shipped limits), median of {repeat}",
        ["how", "time", "vs in-process core", "busy replies"],
        [
            ["64 sequential pipeline calls", f"{pipeline_burst * 1000:.0f} ms", f"{pipeline_burst / core:.2f}x", "-"],
            ["in-process core (same batcher)", f"{core * 1000:.0f} ms", "1.00x", "-"],
            [
                "bot + test Discord, slash path",
                f"{total * 1000:.0f} ms",
                f"{total / core:.2f}x (target <= 1.3x)",
                f"{busy} (target 0)",
            ],
        ],
    )
    table(
        "Fairness: one /fill from a second server",
        ["when", "latency", "vs idle", "in batch times"],
        [
            ["at idle", f"{idle * 1000:.0f} ms", "1.00x", "-"],
            [
                "during the burst",
                f"{second * 1000:.0f} ms",
                f"{second / idle:.2f}x",
                f"{second / passes:.1f} (target <= 2; a full batch = {passes * 1000:.0f} ms)",
            ],
        ],
    )
    table(
        "Event-loop lag through the bot (target < 50 ms)",
        ["while", "worst lag"],
        [["bursts and the second server", f"{lag.worst * 1000:.1f} ms"]],
    )
    return {
        "bot_burst": total,
        "bot_core": core,
        "second_idle": idle,
        "second_during": second,
        "bot_lag": lag.worst,
        "busy": busy,
    }
