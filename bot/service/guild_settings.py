"""Per-server settings: which checkpoint each server uses.

:class:`GuildSettings` is the interface the service uses; :class:`SqliteGuildSettings` is the
embedded implementation, and :class:`DefaultOnlySettings` stands in when no database can be
opened (every server uses the default model, and changes are refused).

SQLite in WAL mode; each change is its own transaction, committed before the caller is told
it succeeded, so an acknowledged change survives a crash. The schema carries a version
(``PRAGMA user_version``) and is migrated forward on open, under the write lock, so several
processes may open one file at once. All database work runs on one dedicated thread: the
event loop never waits on disk.

Guild ids are stored as INTEGER and always passed as ``int``: a store keyed by ``str`` in one
place and ``int`` in another loses settings across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# Entry i upgrades the schema from version i to i + 1: its statements run in one transaction,
# under the write lock, with the version bump. Written to be harmless if run twice (IF NOT
# EXISTS): a database made before versioning, or by hand, may already have the table.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE IF NOT EXISTS guild_settings (
            guild_id   INTEGER PRIMARY KEY,
            checkpoint TEXT    NOT NULL,
            updated_by INTEGER,
            updated_at REAL    NOT NULL
        )
        """,
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class StorageError(Exception):
    """The settings database cannot be used (locked, read-only, corrupt, newer schema)."""


class GuildSettings(Protocol):
    """Where each server's choice of checkpoint lives. Writes return once they are durable."""

    async def get_checkpoint(self, guild_id: int) -> str | None:
        """The checkpoint the server chose, or None for the default."""
        ...

    async def set_checkpoint(self, guild_id: int, checkpoint: str, *, updated_by: int | None = None) -> None: ...

    async def clear_checkpoint(self, guild_id: int) -> None: ...

    async def count_guilds_per_checkpoint(self) -> dict[str, int]: ...

    async def close(self) -> None: ...


class DefaultOnlySettings:
    """No settings database: every server uses the default, and changes raise :class:`StorageError`."""

    def __init__(self, reason: str = "the settings database is unavailable") -> None:
        self.reason = reason

    async def get_checkpoint(self, guild_id: int) -> str | None:
        return None

    async def set_checkpoint(self, guild_id: int, checkpoint: str, *, updated_by: int | None = None) -> None:
        raise StorageError(self.reason)

    async def clear_checkpoint(self, guild_id: int) -> None:
        raise StorageError(self.reason)

    async def count_guilds_per_checkpoint(self) -> dict[str, int]:
        return {}

    async def close(self) -> None:
        return None


class SqliteGuildSettings:
    """Async access to the per-server settings table in SQLite, with an in-memory read cache."""

    def __init__(self, path: Path | str, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        # How long a write waits for another connection's lock before failing.
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._connection: sqlite3.Connection | None = None
        self._cache: dict[int, str | None] = {}

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> SqliteGuildSettings:
        await self._run(self._open_sync)
        return self

    async def close(self) -> None:
        if self._connection is not None:
            await self._run(self._close_sync)
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> SqliteGuildSettings:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- settings --------------------------------------------------------------------------

    async def get_checkpoint(self, guild_id: int) -> str | None:
        """The checkpoint the server chose, or None for the default."""
        guild_id = int(guild_id)
        if guild_id in self._cache:
            return self._cache[guild_id]
        value = await self._run(self._get_sync, guild_id)
        self._cache[guild_id] = value
        return value

    async def set_checkpoint(self, guild_id: int, checkpoint: str, *, updated_by: int | None = None) -> None:
        guild_id = int(guild_id)
        await self._run(self._set_sync, guild_id, checkpoint, updated_by)
        self._cache[guild_id] = checkpoint

    async def clear_checkpoint(self, guild_id: int) -> None:
        guild_id = int(guild_id)
        await self._run(self._clear_sync, guild_id)
        self._cache[guild_id] = None

    async def count_guilds_per_checkpoint(self) -> dict[str, int]:
        return dict(await self._run(self._count_sync))

    # -- the database thread ---------------------------------------------------------------

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)
        except sqlite3.Error as exc:
            raise StorageError(f"settings database {self.path}: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StorageError("the settings database is not open")
        return self._connection

    def _open_sync(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open settings database {self.path}: {exc}") from exc
        try:
            self._enable_wal(connection)
            connection.execute("PRAGMA synchronous=FULL")  # an acknowledged write is on disk
            connection.execute("PRAGMA foreign_keys=ON")
            self._migrate(connection)
        except (sqlite3.Error, OSError) as exc:
            connection.close()
            raise StorageError(f"cannot open settings database {self.path}: {exc}") from exc
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        log.info("settings database %s ready (schema v%d)", self.path, SCHEMA_VERSION)

    def _enable_wal(self, connection: sqlite3.Connection) -> None:
        """Switch to WAL, waiting out other openers doing the same.

        The switch needs the file to itself and SQLite may answer "database is locked" at once,
        without waiting the busy timeout, while another process opens or switches the same new
        file: retry until ``timeout``. WAL is stored in the file, so once anyone has switched it,
        it is on for everyone. If it still cannot be switched, go on in the rollback-journal
        mode: slower with several readers, but just as durable (synchronous=FULL).
        """
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    log.warning("settings database %s: could not switch to WAL (%s); going on without it", self.path, exc)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
                continue
            if str(mode).lower() != "wal":
                log.warning("settings database %s stays in %s journal mode (WAL unavailable)", self.path, mode)
            return

    @staticmethod
    def _migrate(connection: sqlite3.Connection) -> None:
        """Bring the schema to SCHEMA_VERSION, safely when other processes open the file at once.

        Each step reads ``user_version`` inside a ``BEGIN IMMEDIATE`` transaction: the write lock
        is taken first (waiting the busy timeout), so two openers never both see the old version
        and both migrate. The version is bumped in the same transaction as the step.
        """
        # Fast path, no lock: versions only rise, and each rise commits with its migration.
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        while version < SCHEMA_VERSION:
            with _transaction(connection):
                (version,) = connection.execute("PRAGMA user_version").fetchone()
                if version >= SCHEMA_VERSION:
                    break  # another opener migrated while we waited for the lock
                for statement in MIGRATIONS[version]:
                    connection.execute(statement)
                version += 1
                connection.execute(f"PRAGMA user_version = {version}")
            log.info("migrated settings database to schema v%d", version)
        if version > SCHEMA_VERSION:
            raise StorageError(f"database schema v{version} is newer than this bot (v{SCHEMA_VERSION})")

    def _close_sync(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _get_sync(self, guild_id: int) -> str | None:
        row = self._db().execute("SELECT checkpoint FROM guild_settings WHERE guild_id = ?", (guild_id,)).fetchone()
        return row[0] if row else None

    def _set_sync(self, guild_id: int, checkpoint: str, updated_by: int | None) -> None:
        with _transaction(self._db()) as db:
            db.execute(
                "INSERT INTO guild_settings (guild_id, checkpoint, updated_by, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(guild_id) DO UPDATE SET checkpoint = excluded.checkpoint, "
                "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                (guild_id, checkpoint, updated_by, time.time()),
            )

    def _clear_sync(self, guild_id: int) -> None:
        with _transaction(self._db()) as db:
            db.execute("DELETE FROM guild_settings WHERE guild_id = ?", (guild_id,))

    def _count_sync(self) -> list[tuple[str, int]]:
        return self._db().execute("SELECT checkpoint, COUNT(*) FROM guild_settings GROUP BY checkpoint").fetchall()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY/SQLITE_LOCKED: another connection holds a lock we need; worth retrying."""
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)  # low byte: the primary code


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
