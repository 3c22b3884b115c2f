"""A settings database that could not be opened at start-up, opened again while the bot runs.

Until it opens, every server uses the default model and changes are refused with the reason (as
:class:`~bot.service.guild_settings.DefaultOnlySettings` does); each use after ``retry_seconds``
tries again, so a database that comes back is used without restarting the bot. A database that
fails after it opened needs none of this: each store's calls fail while it is away and work
again once it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from bot.service.cluster import IDENTIFY_WINDOW_SECONDS, ProcessHeartbeat
from bot.service.guild_settings import GuildLanguageRow, GuildSettingRow, SettingsStore, StorageError

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0


class OpenableStore(SettingsStore, Protocol):
    async def open(self) -> SettingsStore: ...


class ReopeningStore:
    def __init__(
        self,
        store: OpenableStore,
        reason: str,
        *,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.reason = reason
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._last_try = clock()
        self._open = False
        self._lock = asyncio.Lock()

    async def _opened(self) -> SettingsStore | None:
        """The store once it opens; None while it cannot (tried at most once per retry_seconds)."""
        if self._open:
            return self._store
        if self._clock() - self._last_try < self._retry_seconds:
            return None
        async with self._lock:  # one attempt at a time, whatever the number of callers
            if not self._open and self._clock() - self._last_try >= self._retry_seconds:
                try:
                    await self._store.open()
                except StorageError as exc:
                    self.reason = str(exc)
                else:
                    self._open = True
                    log.info("settings database reachable again: servers' own choices apply from now on")
                self._last_try = self._clock()
        return self._store if self._open else None

    async def _required(self) -> SettingsStore:
        store = await self._opened()
        if store is None:
            raise StorageError(self.reason)
        return store

    async def get_checkpoint(self, guild_id: int) -> str | None:
        store = await self._opened()
        return None if store is None else await store.get_checkpoint(guild_id)

    async def set_checkpoint(self, guild_id: int, checkpoint: str, *, updated_by: int | None = None) -> None:
        await (await self._required()).set_checkpoint(guild_id, checkpoint, updated_by=updated_by)

    async def clear_checkpoint(self, guild_id: int) -> None:
        await (await self._required()).clear_checkpoint(guild_id)

    async def count_guilds_per_checkpoint(self) -> dict[str, int]:
        store = await self._opened()
        return {} if store is None else await store.count_guilds_per_checkpoint()

    async def get_language(self, guild_id: int) -> str | None:
        store = await self._opened()
        return None if store is None else await store.get_language(guild_id)

    async def set_language(self, guild_id: int, language: str, *, updated_by: int | None = None) -> None:
        await (await self._required()).set_language(guild_id, language, updated_by=updated_by)

    async def clear_language(self, guild_id: int) -> None:
        await (await self._required()).clear_language(guild_id)

    async def export_settings(self) -> list[GuildSettingRow]:
        return await (await self._required()).export_settings()

    async def import_settings(self, rows: Iterable[GuildSettingRow]) -> int:
        return await (await self._required()).import_settings(rows)

    async def export_languages(self) -> list[GuildLanguageRow]:
        return await (await self._required()).export_languages()

    async def import_languages(self, rows: Iterable[GuildLanguageRow]) -> int:
        return await (await self._required()).import_languages(rows)

    async def write_heartbeat(self, beat: ProcessHeartbeat) -> None:
        store = await self._opened()
        if store is not None:
            await store.write_heartbeat(beat)

    async def heartbeats(self, *, newer_than: float) -> list[ProcessHeartbeat]:
        store = await self._opened()
        return [] if store is None else await store.heartbeats(newer_than=newer_than)

    async def remove_heartbeat(self, process: str) -> None:
        store = await self._opened()
        if store is not None:
            await store.remove_heartbeat(process)

    async def take_identify_turn(self, bucket: int, *, window: float = IDENTIFY_WINDOW_SECONDS) -> None:
        await (await self._required()).take_identify_turn(bucket, window=window)

    async def close(self) -> None:
        await self._store.close()
