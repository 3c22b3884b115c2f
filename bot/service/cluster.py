"""What the bot processes of one deployment share through the settings database, beside the
settings themselves: a heartbeat row per process (for the owner's ``stats``) and turns to
identify with Discord (its ``session_start_limit.max_concurrency``, across processes).

:class:`ClusterState` is implemented by both settings stores; :class:`LocalIdentifyTurns` is the
in-process fallback when no database can be reached.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Protocol

# Discord's identify window per rate-limit bucket, and a margin for the time between taking a
# turn and the IDENTIFY frame reaching Discord (and for clocks: PostgreSQL's is the reference).
IDENTIFY_WINDOW_SECONDS = 5.0
IDENTIFY_MARGIN_SECONDS = 0.5

# A process whose row is older than this many heartbeat intervals is not counted as running.
HEARTBEAT_STALE_AFTER = 3


def process_name() -> str:
    """``host:pid``: how ``stats`` names a process; unique among running processes."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ProcessHeartbeat:
    """One bot process, as its last heartbeat described it."""

    process: str
    shard_ids: tuple[int, ...]
    shard_count: int
    guilds: int
    loaded: tuple[str, ...] = ()
    served: int = 0
    refused: int = 0
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)


class ClusterState(Protocol):
    async def write_heartbeat(self, beat: ProcessHeartbeat) -> None:
        """Insert or replace this process's row (keyed by ``beat.process``)."""
        ...

    async def heartbeats(self, *, newer_than: float) -> list[ProcessHeartbeat]:
        """Every process whose row was updated after ``newer_than`` (a ``time.time()``), by name."""
        ...

    async def remove_heartbeat(self, process: str) -> None: ...

    async def take_identify_turn(self, bucket: int, *, window: float = IDENTIFY_WINDOW_SECONDS) -> None:
        """Return once this process may IDENTIFY in ``bucket``: at least ``window`` (+ a margin)
        after the last identify any process took in that bucket. Raises StorageError when the
        database cannot be used (the caller then paces within its own process)."""
        ...


class LocalIdentifyTurns:
    """Identify turns within this process only: what discord.py itself does, per bucket."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._last: dict[int, float] = {}

    async def take_identify_turn(self, bucket: int, *, window: float = IDENTIFY_WINDOW_SECONDS) -> None:
        async with self._locks.setdefault(bucket, asyncio.Lock()):
            last = self._last.get(bucket)
            if last is not None:
                wait = last + window + IDENTIFY_MARGIN_SECONDS - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            self._last[bucket] = time.monotonic()
