"""Per-server settings (checkpoint, language) in PostgreSQL: the
:class:`~bot.service.guild_settings.GuildSettings` interface.

Several bot processes may share one database, so nothing is cached: every read asks the server
(another process may have changed the row). Each change is its own statement, committed before
the call returns. The schema carries a version (table ``guild_settings_schema``) and is migrated
forward on open inside one transaction holding an advisory lock, so several processes may open a
fresh database at once. Guild ids are BIGINT and always passed as ``int``.

``dsn`` may be None: asyncpg then reads the libpq ``PG*`` variables (PGHOST, PGUSER, ...).
Errors never carry the DSN, whose password would end up in logs and replies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import asyncpg

from bot.service.cluster import IDENTIFY_MARGIN_SECONDS, IDENTIFY_WINDOW_SECONDS, ProcessHeartbeat
from bot.service.guild_settings import (
    FORGET_PROCESSES_AFTER,
    GuildLanguageRow,
    GuildSettingRow,
    StorageError,
    heartbeat_from_row,
    heartbeat_values,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Any fixed 64-bit number, the same for every process of this bot: who may migrate the schema.
_MIGRATION_LOCK = 0x66696C6C6D61736B  # "fillmask"
# The first key of the two-key advisory lock held while a process takes an identify turn; the
# second key is the rate-limit bucket.
_IDENTIFY_LOCK = 0x666D6964  # "fmid"
# Waiting for that lock may take a window per process ahead in the queue: longer than a statement.
_IDENTIFY_QUEUE_SECONDS = 600.0

# Entry i upgrades the schema from version i to i + 1, in one transaction with the version bump.
# Harmless if run twice (IF NOT EXISTS).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE IF NOT EXISTS guild_settings (
            guild_id   BIGINT PRIMARY KEY,
            checkpoint TEXT NOT NULL,
            updated_by BIGINT,
            updated_at DOUBLE PRECISION NOT NULL
        )
        """,
    ),
    # v2: what the processes of one deployment share (bot/service/cluster.py).
    (
        """
        CREATE TABLE IF NOT EXISTS process_heartbeats (
            process     TEXT PRIMARY KEY,
            shard_ids   TEXT NOT NULL,
            shard_count INTEGER NOT NULL,
            guilds      INTEGER NOT NULL,
            loaded      TEXT NOT NULL,
            served      BIGINT NOT NULL,
            refused     BIGINT NOT NULL,
            started_at  DOUBLE PRECISION NOT NULL,
            updated_at  DOUBLE PRECISION NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS identify_turns (
            bucket        INTEGER PRIMARY KEY,
            last_identify DOUBLE PRECISION NOT NULL
        )
        """,
    ),
    # v3: the language each server chose for the bot's replies, apart from its checkpoint.
    (
        """
        CREATE TABLE IF NOT EXISTS guild_languages (
            guild_id   BIGINT PRIMARY KEY,
            language   TEXT NOT NULL,
            updated_by BIGINT,
            updated_at DOUBLE PRECISION NOT NULL
        )
        """,
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# Errors that mean "the database cannot be used", as opposed to bugs in this module.
_DATABASE_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class PostgresGuildSettings:
    """Async access to the per-server settings table in PostgreSQL, through a connection pool."""

    def __init__(self, dsn: str | None = None, *, timeout: float = 10.0, min_size: int = 1, max_size: int = 4) -> None:
        self._dsn = dsn
        # Connecting, and each statement, give up after this many seconds.
        self.timeout = timeout
        self._min_size = min_size
        self._max_size = max_size
        self._pool: Any = None

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> PostgresGuildSettings:
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self.timeout,
                command_timeout=self.timeout,
            )
        except _DATABASE_ERRORS as exc:
            raise StorageError(f"cannot connect to the settings database: {_describe(exc)}") from None
        except Exception as exc:  # e.g. a malformed DSN: asyncpg's message may quote it
            raise StorageError(f"cannot connect to the settings database: {type(exc).__name__}") from None
        try:
            await self._migrate(pool)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool
        log.info("settings database (PostgreSQL) ready (schema v%d)", SCHEMA_VERSION)
        return self

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await pool.close()
            except _DATABASE_ERRORS as exc:
                log.warning("closing the settings database: %s", _describe(exc))

    async def __aenter__(self) -> PostgresGuildSettings:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _migrate(self, pool: Any) -> None:
        async def migrate() -> int:
            async with pool.acquire() as connection, connection.transaction():
                # Held until the transaction ends: other openers wait here, then see our version.
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await connection.execute("CREATE TABLE IF NOT EXISTS guild_settings_schema (version INTEGER NOT NULL)")
                version = await connection.fetchval("SELECT max(version) FROM guild_settings_schema")
                if version is None:
                    version = 0
                    await connection.execute("INSERT INTO guild_settings_schema (version) VALUES (0)")
                start = version
                while version < SCHEMA_VERSION:
                    for statement in MIGRATIONS[version]:
                        await connection.execute(statement)
                    version += 1
                if version != start:
                    await connection.execute("UPDATE guild_settings_schema SET version = $1", version)
                    log.info("migrated settings database to schema v%d", version)
                return version

        version = await self._call(migrate, "cannot open the settings database")
        if version > SCHEMA_VERSION:
            raise StorageError(f"database schema v{version} is newer than this bot (v{SCHEMA_VERSION})")

    # -- settings --------------------------------------------------------------------------

    async def get_checkpoint(self, guild_id: int) -> str | None:
        """The checkpoint the server chose, or None for the default."""
        guild_id = int(guild_id)
        pool = self._live_pool()
        return await self._call(
            lambda: pool.fetchval("SELECT checkpoint FROM guild_settings WHERE guild_id = $1", guild_id),
        )

    async def set_checkpoint(self, guild_id: int, checkpoint: str, *, updated_by: int | None = None) -> None:
        guild_id = int(guild_id)
        updated_by = None if updated_by is None else int(updated_by)
        pool = self._live_pool()
        await self._call(
            lambda: pool.execute(
                "INSERT INTO guild_settings (guild_id, checkpoint, updated_by, updated_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (guild_id) DO UPDATE SET checkpoint = excluded.checkpoint, "
                "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                guild_id,
                checkpoint,
                updated_by,
                time.time(),
            ),
        )

    async def clear_checkpoint(self, guild_id: int) -> None:
        guild_id = int(guild_id)
        pool = self._live_pool()
        await self._call(lambda: pool.execute("DELETE FROM guild_settings WHERE guild_id = $1", guild_id))

    async def count_guilds_per_checkpoint(self) -> dict[str, int]:
        pool = self._live_pool()
        rows = await self._call(lambda: pool.fetch("SELECT checkpoint, COUNT(*) FROM guild_settings GROUP BY checkpoint"))
        return {row[0]: int(row[1]) for row in rows}

    async def export_settings(self) -> list[GuildSettingRow]:
        pool = self._live_pool()
        rows = await self._call(
            lambda: pool.fetch("SELECT guild_id, checkpoint, updated_by, updated_at FROM guild_settings ORDER BY guild_id")
        )
        return [GuildSettingRow(int(r[0]), str(r[1]), None if r[2] is None else int(r[2]), float(r[3])) for r in rows]

    async def import_settings(self, rows: Iterable[GuildSettingRow]) -> int:
        """Write ``rows`` in one transaction, each unless the store holds a newer choice for that
        server; returns how many were written."""
        return await self._import_newer(
            "guild_settings", "checkpoint", [(r.guild_id, r.checkpoint, r.updated_by, r.updated_at) for r in rows]
        )

    async def get_language(self, guild_id: int) -> str | None:
        """The language code the server chose, or None if it chose none."""
        guild_id = int(guild_id)
        pool = self._live_pool()
        return await self._call(
            lambda: pool.fetchval("SELECT language FROM guild_languages WHERE guild_id = $1", guild_id),
        )

    async def set_language(self, guild_id: int, language: str, *, updated_by: int | None = None) -> None:
        guild_id = int(guild_id)
        updated_by = None if updated_by is None else int(updated_by)
        pool = self._live_pool()
        await self._call(
            lambda: pool.execute(
                "INSERT INTO guild_languages (guild_id, language, updated_by, updated_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (guild_id) DO UPDATE SET language = excluded.language, "
                "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                guild_id,
                language,
                updated_by,
                time.time(),
            ),
        )

    async def clear_language(self, guild_id: int) -> None:
        guild_id = int(guild_id)
        pool = self._live_pool()
        await self._call(lambda: pool.execute("DELETE FROM guild_languages WHERE guild_id = $1", guild_id))

    async def export_languages(self) -> list[GuildLanguageRow]:
        pool = self._live_pool()
        rows = await self._call(
            lambda: pool.fetch("SELECT guild_id, language, updated_by, updated_at FROM guild_languages ORDER BY guild_id")
        )
        return [GuildLanguageRow(int(r[0]), str(r[1]), None if r[2] is None else int(r[2]), float(r[3])) for r in rows]

    async def import_languages(self, rows: Iterable[GuildLanguageRow]) -> int:
        """Write ``rows`` in one transaction, each unless the store holds a newer language for
        that server; returns how many were written."""
        return await self._import_newer(
            "guild_languages", "language", [(r.guild_id, r.language, r.updated_by, r.updated_at) for r in rows]
        )

    async def _import_newer(self, table: str, column: str, batch: list[tuple[object, ...]]) -> int:
        """Upsert (guild_id, value, updated_by, updated_at) rows into ``table`` in one transaction,
        each unless the table holds a newer one for that server. ``table`` and ``column`` are ours."""
        pool = self._live_pool()
        statement = (
            f"INSERT INTO {table} (guild_id, {column}, updated_by, updated_at) VALUES ($1, $2, $3, $4) "
            f"ON CONFLICT (guild_id) DO UPDATE SET {column} = excluded.{column}, "
            "updated_by = excluded.updated_by, updated_at = excluded.updated_at "
            f"WHERE excluded.updated_at >= {table}.updated_at"
        )

        async def write() -> int:
            written = 0
            async with pool.acquire() as connection, connection.transaction():
                for values in batch:
                    status = await connection.execute(statement, *values)
                    written += int(status.rsplit(" ", 1)[-1])  # "INSERT 0 1"
            return written

        return await self._call(write)

    # -- what processes share (bot.service.cluster.ClusterState) ---------------------------

    async def write_heartbeat(self, beat: ProcessHeartbeat) -> None:
        pool = self._live_pool()

        async def write() -> None:
            async with pool.acquire() as connection, connection.transaction():
                # Rows of processes that died without removing theirs (SIGKILL, power loss).
                await connection.execute(
                    "DELETE FROM process_heartbeats WHERE updated_at < $1", beat.updated_at - FORGET_PROCESSES_AFTER
                )
                await connection.execute(
                    "INSERT INTO process_heartbeats "
                    "(process, shard_ids, shard_count, guilds, loaded, served, refused, started_at, updated_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (process) DO UPDATE SET "
                    "shard_ids = excluded.shard_ids, shard_count = excluded.shard_count, guilds = excluded.guilds, "
                    "loaded = excluded.loaded, served = excluded.served, refused = excluded.refused, "
                    "started_at = excluded.started_at, updated_at = excluded.updated_at",
                    *heartbeat_values(beat),
                )

        await self._call(write)

    async def heartbeats(self, *, newer_than: float) -> list[ProcessHeartbeat]:
        pool = self._live_pool()
        rows = await self._call(
            lambda: pool.fetch(
                "SELECT process, shard_ids, shard_count, guilds, loaded, served, refused, started_at, updated_at "
                "FROM process_heartbeats WHERE updated_at > $1 ORDER BY process",
                newer_than,
            )
        )
        return [heartbeat_from_row(tuple(row)) for row in rows]

    async def remove_heartbeat(self, process: str) -> None:
        pool = self._live_pool()
        await self._call(lambda: pool.execute("DELETE FROM process_heartbeats WHERE process = $1", process))

    async def take_identify_turn(self, bucket: int, *, window: float = IDENTIFY_WINDOW_SECONDS) -> None:
        """Wait for the bucket under an advisory lock shared by every process, timed by the
        database's clock (the processes' clocks may disagree)."""
        spacing = window + IDENTIFY_MARGIN_SECONDS
        pool = self._live_pool()

        async def take() -> None:
            async with pool.acquire() as connection, connection.transaction():
                # Other processes wanting this bucket queue on the lock until we commit.
                await connection.execute(
                    "SELECT pg_advisory_xact_lock($1, $2)", _IDENTIFY_LOCK, int(bucket), timeout=_IDENTIFY_QUEUE_SECONDS
                )
                last = await connection.fetchval("SELECT last_identify FROM identify_turns WHERE bucket = $1", int(bucket))
                now = await connection.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
                if last is not None and now < last + spacing:
                    await asyncio.sleep(last + spacing - now)
                await connection.execute(
                    "INSERT INTO identify_turns (bucket, last_identify) VALUES ($1, extract(epoch FROM clock_timestamp())) "
                    "ON CONFLICT (bucket) DO UPDATE SET last_identify = excluded.last_identify",
                    int(bucket),
                )

        await self._call(take, "identify turn")

    # -- helpers ---------------------------------------------------------------------------

    def _live_pool(self) -> Any:
        if self._pool is None:
            raise StorageError("the settings database is not open")
        return self._pool

    async def _call(self, func: Callable[[], Awaitable[T]], what: str = "settings database") -> T:
        try:
            return await func()
        except _DATABASE_ERRORS as exc:
            raise StorageError(f"{what}: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    """A plain, password-free account of a database error: its class and server message only."""
    if isinstance(exc, asyncpg.PostgresError):
        # The server's own message never quotes the client's password.
        return f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return type(exc).__name__
