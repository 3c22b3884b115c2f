"""Per-server settings in PostgreSQL: the :class:`~bot.service.guild_settings.GuildSettings` interface.

Several bot processes may share one database, so nothing is cached: every read asks the server
(another process may have changed the row). Each change is its own statement, committed before
the call returns. The schema carries a version (table ``guild_settings_schema``) and is migrated
forward on open inside one transaction holding an advisory lock, so several processes may open a
fresh database at once. Guild ids are BIGINT and always passed as ``int``.

``dsn`` may be None: asyncpg then reads the libpq ``PG*`` variables (PGHOST, PGUSER, ...).
Errors never carry the DSN, whose password would end up in logs and replies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from bot.service.guild_settings import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Any fixed 64-bit number, the same for every process of this bot: who may migrate the schema.
_MIGRATION_LOCK = 0x66696C6C6D61736B  # "fillmask"

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
