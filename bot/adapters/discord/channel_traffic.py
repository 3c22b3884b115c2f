"""What the bot sends per channel besides its replies' content: typing indicators shared by the
commands of a channel, and one request at a time per channel route (Discord's rate limits)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar

import discord

log = logging.getLogger(__name__)

# Discord shows a typing indicator for 10 s: refresh it a little before it lapses.
TYPING_REFRESH_SECONDS = 8.0
# A typing request still waiting after this long (rate-limited) is dropped: it would show late.
TYPING_SEND_TIMEOUT_SECONDS = 2.0


class _Indicator:
    """One channel's typing indicator, refreshed in the background until stopped."""

    _running: ClassVar[set[asyncio.Task[None]]] = set()  # strong references: the loop keeps only weak ones

    def __init__(self, channel: discord.abc.Messageable) -> None:
        self.users = 0
        self._stopped = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._run(channel), name="typing-indicator")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, channel: discord.abc.Messageable) -> None:
        while not self._stopped.is_set():
            try:
                await asyncio.wait_for(channel.typing(), TYPING_SEND_TIMEOUT_SECONDS)
            except Exception:  # rate-limited, refused, or the bot closing: cosmetic, the reply goes on without it
                log.debug("typing indicator skipped", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), TYPING_REFRESH_SECONDS)

    def stop(self) -> None:
        # A typing request in flight is let finish (not cancelled); no new one starts.
        self._stopped.set()


class ChannelTyping:
    """Typing indicators shared by the commands working in the same channel.

    discord.py's ``ctx.typing()`` sends one typing request per command and waits for it before
    the command goes on: a burst of commands in one channel would spend the channel's rate limit
    on typing and hold every reply behind it. Here the first command in a channel starts one
    indicator in the background, later ones join it, the last one out stops it, and no reply
    ever waits for it.
    """

    def __init__(self) -> None:
        self._active: dict[int, _Indicator] = {}

    @contextlib.asynccontextmanager
    async def during(self, channel_id: int, channel: discord.abc.Messageable) -> AsyncIterator[None]:
        indicator = self._active.get(channel_id)
        if indicator is None:
            indicator = self._active[channel_id] = _Indicator(channel)
        indicator.users += 1
        try:
            yield
        finally:
            indicator.users -= 1
            if indicator.users == 0:
                del self._active[channel_id]
                indicator.stop()


@dataclass
class _Lane:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ChannelPacing:
    """One request at a time per channel and route (message create, message edit).

    discord.py paces a route's bucket by Discord's headers, but when many requests wait on one
    exhausted bucket, several of them time out at its reset together and each refreshes it: more
    go out than the bucket holds, and come back 429. Queued here first (in order), they leave
    discord.py at most one waiter per bucket. Interaction replies need none of this: discord.py
    already sends those one at a time per interaction.
    """

    def __init__(self) -> None:
        self._lanes: dict[tuple[str, int], _Lane] = {}

    @contextlib.asynccontextmanager
    async def turn(self, route: str, channel_id: int) -> AsyncIterator[None]:
        key = (route, channel_id)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        lane.users += 1
        try:
            async with lane.lock:
                yield
        finally:
            lane.users -= 1
            if lane.users == 0:  # idle lanes go: nothing outlives its channel's traffic
                del self._lanes[key]
