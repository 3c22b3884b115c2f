"""Settings stores side by side: SQLite and PostgreSQL, as the service reads and writes them.

- ``checkpoint_for`` (what every fill asks first) with a cold cache (a fresh store, each server
  read once) and a warm one (read again at once), p50/p99;
- ``set_checkpoint`` (an acknowledged ``model set``), p50/p99;
- propagation: a second process polls its own store while this one writes; the time from the
  write's acknowledgement to the other process reading the new choice.

PostgreSQL is the server the tests start (``tests/postgres_server.py``); where its binaries are
missing, its column says so.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.measure import table
from bot.inference.checkpoint_policy import CheckpointPolicy
from bot.inference.registry import ModelRegistry
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import SqliteGuildSettings
from bot.service.postgres_settings import PostgresGuildSettings

GUILDS = 500
SWITCHES = 20
ROOT = Path(__file__).resolve().parent.parent

# The child: polls guild 1 and prints the monotonic time each new value is first read.
_POLLER = """
import asyncio, sys, time
from bot.service.guild_settings import SqliteGuildSettings
from bot.service.postgres_settings import PostgresGuildSettings

async def main(target):
    store = PostgresGuildSettings(target) if target.startswith("postgresql://") else SqliteGuildSettings(target)
    async with store:
        seen = await store.get_checkpoint(1)
        print("ready", flush=True)
        while True:
            value = await store.get_checkpoint(1)
            if value != seen:
                seen = value
                print(f"{time.monotonic()} {value}", flush=True)
                if value == "stop":
                    return
            await asyncio.sleep(0.002)

asyncio.run(main(sys.argv[1]))
"""


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{statistics.median(ordered) * 1e3:.3f} / {p99 * 1e3:.3f} ms"


async def _timed(calls: list[Callable[[], Awaitable[object]]]) -> list[float]:
    samples = []
    for call in calls:
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def _service(store: Any) -> FillMaskService:
    def never_loads(reference: str, **_: object) -> Any:
        raise AssertionError("the settings benchmark loads no model")

    # Only checkpoint_for is timed: it reads the store and applies the policy.
    return FillMaskService(ModelRegistry(never_loads), store, default_model="camembert-base", policy=CheckpointPolicy())


async def _measure(make_store: Callable[[], Any], target: str) -> dict[str, str]:
    async with make_store() as store:
        writes = await _timed([lambda g=g: store.set_checkpoint(g, f"owner/model-{g % 7}") for g in range(1, GUILDS + 1)])
    async with make_store() as store:
        service = _service(store)
        cold = await _timed([lambda g=g: service.checkpoint_for(g) for g in range(1, GUILDS + 1)])
        warm = await _timed([lambda g=g: service.checkpoint_for(g) for g in range(1, GUILDS + 1)])
        delays = await _propagation(store, target)
    return {
        "checkpoint_for, cold cache (p50 / p99)": _percentiles(cold),
        "checkpoint_for, warm cache (p50 / p99)": _percentiles(warm),
        "set_checkpoint (p50 / p99)": _percentiles(writes),
        f"model set here -> read by another process (median / worst of {SWITCHES})": (
            f"{statistics.median(delays) * 1e3:.1f} / {max(delays) * 1e3:.1f} ms"
        ),
    }


async def _propagation(store: Any, target: str) -> list[float]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _POLLER,
        target,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    assert (await child.stdout.readline()).strip() == b"ready"
    delays = []
    for i in range(SWITCHES + 1):
        value = "stop" if i == SWITCHES else f"switch-{i}"
        await store.set_checkpoint(1, value)
        acknowledged = time.monotonic()
        seen_at, seen = (await child.stdout.readline()).decode().split()
        assert seen == value
        if value != "stop":
            delays.append(float(seen_at) - acknowledged)
        await asyncio.sleep(0.05)
    await child.wait()
    return delays


@asynccontextmanager
async def _postgres() -> AsyncIterator[str | None]:
    sys.path.insert(0, str(ROOT))
    from tests.postgres_server import find_bin_dir, running_server

    bin_dir = find_bin_dir()
    if bin_dir is None:
        yield None
        return
    with running_server(bin_dir) as server:
        yield await server.create_database()


async def settings_section() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "bench.sqlite3")
        sqlite = await _measure(lambda: SqliteGuildSettings(path), path)
    async with _postgres() as dsn:
        postgres = await _measure(lambda: PostgresGuildSettings(dsn), dsn) if dsn else None
    rows = [[what, figure, postgres[what] if postgres else "PostgreSQL not installed"] for what, figure in sqlite.items()]
    table(f"Settings stores: {GUILDS} servers, one at a time", ["operation", "SQLite", "PostgreSQL 15 (local)"], rows)
    print(
        "(SQLite keeps a read 1 s, so another process sees a change within about 1 s; PostgreSQL is read "
        "at every use. Writes wait for the disk on SQLite (synchronous=FULL); the benchmark's PostgreSQL "
        "runs with fsync off, as the tests' server does.)"
    )


if __name__ == "__main__":
    asyncio.run(settings_section())
