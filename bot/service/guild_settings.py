"""Per-server settings: which checkpoint each server uses, and which language the bot replies in.

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
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bot.service.cluster import IDENTIFY_MARGIN_SECONDS, IDENTIFY_WINDOW_SECONDS, ClusterState, ProcessHeartbeat

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
    # v2: what the processes of one deployment share (bot/service/cluster.py).
    (
        """
        CREATE TABLE IF NOT EXISTS process_heartbeats (
            process     TEXT    PRIMARY KEY,
            shard_ids   TEXT    NOT NULL,
            shard_count INTEGER NOT NULL,
            guilds      INTEGER NOT NULL,
            loaded      TEXT    NOT NULL,
            served      INTEGER NOT NULL,
            refused     INTEGER NOT NULL,
            started_at  REAL    NOT NULL,
            updated_at  REAL    NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS identify_turns (
            bucket        INTEGER PRIMARY KEY,
            last_identify REAL    NOT NULL
        )
        """,
    ),
    # v3: the language each server chose for the bot's replies. Its own table, so resetting the
    # model never touches the language and the other way round.
    (
        """
        CREATE TABLE IF NOT EXISTS guild_languages (
            guild_id   INTEGER PRIMARY KEY,
            language   TEXT    NOT NULL,
            updated_by INTEGER,
            updated_at REAL    NOT NULL
        )
        """,
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# How long a read is reused. Other processes may share the file (shards on one machine, the
# `db` commands): their changes are seen within this time.
CACHE_SECONDS = 1.0

# A process silent this long (seconds) is forgotten: its heartbeat row is deleted.
FORGET_PROCESSES_AFTER = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class GuildSettingRow:
    """One server's stored choice, as ``db copy`` moves it between databases."""

    guild_id: int
    checkpoint: str
    updated_by: int | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class GuildLanguageRow:
    """One server's stored choice of language, as ``db copy`` moves it between databases."""

    guild_id: int
    language: str
    updated_by: int | None
    updated_at: float


class StorageError(Exception):
    """The settings database cannot be used (locked, read-only, corrupt, newer schema)."""


class GuildSettings(Protocol):
    """Where each server's choice of checkpoint and of language lives. Writes return once they
    are durable."""

    async def get_checkpoint(self, guild_id: int) -> str | None:
        """The checkpoint the server chose, or None for the default."""
        ...

    async def set_checkpoint(self, guild_id: int, checkpoint: str, *, updated_by: int | None = None) -> None: ...

    async def clear_checkpoint(self, guild_id: int) -> None: ...

    async def count_guilds_per_checkpoint(self) -> dict[str, int]: ...

    async def get_language(self, guild_id: int) -> str | None:
        """The language code the server chose (e.g. ``"fr"``), or None if it chose none."""
        ...

    async def set_language(self, guild_id: int, language: str, *, updated_by: int | None = None) -> None:
        """Store ``language`` as given: the caller validates it."""
        ...

    async def clear_language(self, guild_id: int) -> None: ...

    async def close(self) -> None: ...


class SettingsStore(GuildSettings, ClusterState, Protocol):
    """A settings database as the bot opens it: the settings, what its processes share, and
    ``db copy``'s export and import."""

    async def export_settings(self) -> list[GuildSettingRow]: ...

    async def import_settings(self, rows: Iterable[GuildSettingRow]) -> int: ...

    async def export_languages(self) -> list[GuildLanguageRow]: ...

    async def import_languages(self, rows: Iterable[GuildLanguageRow]) -> int: ...


class DefaultOnlySettings:
    """No settings database: every server uses the default, and changes raise :class:`StorageError`."""

    def __init__(self, reason: str = "the settings database is unavailable") -> None:
        self.reason = reason

    async def write_heartbeat(self, beat: ProcessHeartbeat) -> None:
        return None

    async def heartbeats(self, *, newer_than: float) -> list[ProcessHeartbeat]:
        return []

    async def remove_heartbeat(self, process: str) -> None:
        return None

    async def take_identify_turn(self, bucket: int, *, window: float = IDENTIFY_WINDOW_SECONDS) -> None:
        raise StorageError(self.reason)

    async def export_settings(self) -> list[GuildSettingRow]:
        raise StorageError(self.reason)

    async def import_settings(self, rows: Iterable[GuildSettingRow]) -> int:
        raise StorageError(self.reason)

    async def export_languages(self) -> list[GuildLanguageRow]:
        raise StorageError(self.reason)

    async def import_languages(self, rows: Iterable[GuildLanguageRow]) -> int:
        raise StorageError(self.reason)

    async def get_checkpoint(self, guild_id: int) -> str | None:
        return None

    async def set_checkpoint(self, guild_id: int, checkpoint: str, *, updated_by: int | None = None) -> None:
        raise StorageError(self.reason)

    async def clear_checkpoint(self, guild_id: int) -> None:
        raise StorageError(self.reason)

    async def count_guilds_per_checkpoint(self) -> dict[str, int]:
        return {}

    async def get_language(self, guild_id: int) -> str | None:
        return None

    async def set_language(self, guild_id: int, language: str, *, updated_by: int | None = None) -> None:
        raise StorageError(self.reason)

    async def clear_language(self, guild_id: int) -> None:
        raise StorageError(self.reason)

    async def close(self) -> None:
        return None


class SqliteGuildSettings:
    """Async access to the per-server settings table in SQLite, with a short-lived read cache."""

    def __init__(self, path: Path | str, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        # How long a write waits for another connection's lock before failing.
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._connection: sqlite3.Connection | None = None
        self._cache: dict[int, tuple[str | None, float]] = {}  # checkpoint, when read
        self._language_cache: dict[int, tuple[str | None, float]] = {}  # language, when read

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
        cached = self._cache.get(guild_id)
        if cached is not None and time.monotonic() - cached[1] < CACHE_SECONDS:
            return cached[0]
        value = await self._run(self._get_sync, guild_id)
        self._cache[guild_id] = (value, time.monotonic())
        return value

    async def set_checkpoint(self, guild_id: int, checkpoint: str, *, updated_by: int | None = None) -> None:
        guild_id = int(guild_id)
        await self._run(self._set_sync, guild_id, checkpoint, updated_by)
        self._cache[guild_id] = (checkpoint, time.monotonic())

    async def clear_checkpoint(self, guild_id: int) -> None:
        guild_id = int(guild_id)
        await self._run(self._clear_sync, guild_id)
        self._cache[guild_id] = (None, time.monotonic())

    async def count_guilds_per_checkpoint(self) -> dict[str, int]:
        return dict(await self._run(self._count_sync))

    async def get_language(self, guild_id: int) -> str | None:
        """The language code the server chose, or None if it chose none."""
        guild_id = int(guild_id)
        cached = self._language_cache.get(guild_id)
        if cached is not None and time.monotonic() - cached[1] < CACHE_SECONDS:
            return cached[0]
        value = await self._run(self._get_language_sync, guild_id)
        self._language_cache[guild_id] = (value, time.monotonic())
        return value

    async def set_language(self, guild_id: int, language: str, *, updated_by: int | None = None) -> None:
        guild_id = int(guild_id)
        updated_by = None if updated_by is None else int(updated_by)
        await self._run(self._set_language_sync, guild_id, language, updated_by)
        self._language_cache[guild_id] = (language, time.monotonic())

    async def clear_language(self, guild_id: int) -> None:
        guild_id = int(guild_id)
        await self._run(self._clear_language_sync, guild_id)
        self._language_cache[guild_id] = (None, time.monotonic())

    async def export_settings(self) -> list[GuildSettingRow]:
        return await self._run(self._export_sync)

    async def import_settings(self, rows: Iterable[GuildSettingRow]) -> int:
        """Write ``rows`` in one transaction, each unless the store holds a newer choice for that
        server; returns how many were written. The read cache is dropped."""
        written = await self._run(self._import_sync, list(rows))
        self._cache.clear()
        return written

    async def export_languages(self) -> list[GuildLanguageRow]:
        return await self._run(self._export_languages_sync)

    async def import_languages(self, rows: Iterable[GuildLanguageRow]) -> int:
        """Write ``rows`` in one transaction, each unless the store holds a newer language for
        that server; returns how many were written. The language read cache is dropped."""
        written = await self._run(self._import_languages_sync, list(rows))
        self._language_cache.clear()
        return written

    # -- what processes share (bot.service.cluster.ClusterState) ---------------------------

    async def write_heartbeat(self, beat: ProcessHeartbeat) -> None:
        await self._run(self._write_heartbeat_sync, beat)

    async def heartbeats(self, *, newer_than: float) -> list[ProcessHeartbeat]:
        return await self._run(self._heartbeats_sync, newer_than)

    async def remove_heartbeat(self, process: str) -> None:
        await self._run(self._remove_heartbeat_sync, process)

    async def take_identify_turn(self, bucket: int, *, window: float = IDENTIFY_WINDOW_SECONDS) -> None:
        # Another process may hold the bucket: wait outside the write lock, then ask again.
        while True:
            wait = await self._run(self._claim_identify_sync, int(bucket), window + IDENTIFY_MARGIN_SECONDS)
            if wait <= 0:
                return
            await asyncio.sleep(wait)

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

    def _export_sync(self) -> list[GuildSettingRow]:
        rows = (
            self._db()
            .execute("SELECT guild_id, checkpoint, updated_by, updated_at FROM guild_settings ORDER BY guild_id")
            .fetchall()
        )
        return [GuildSettingRow(int(g), str(c), None if by is None else int(by), float(at)) for g, c, by, at in rows]

    def _import_sync(self, rows: list[GuildSettingRow]) -> int:
        return self._import_newer_sync(
            "guild_settings", "checkpoint", [(r.guild_id, r.checkpoint, r.updated_by, r.updated_at) for r in rows]
        )

    def _import_newer_sync(self, table: str, column: str, batch: list[tuple[object, ...]]) -> int:
        """Upsert (guild_id, value, updated_by, updated_at) rows into ``table`` in one transaction,
        each unless the table holds a newer one for that server. ``table`` and ``column`` are ours."""
        statement = (
            f"INSERT INTO {table} (guild_id, {column}, updated_by, updated_at) VALUES (?, ?, ?, ?) "
            f"ON CONFLICT(guild_id) DO UPDATE SET {column} = excluded.{column}, "
            "updated_by = excluded.updated_by, updated_at = excluded.updated_at "
            f"WHERE excluded.updated_at >= {table}.updated_at"
        )
        with _transaction(self._db()) as db:
            written = 0
            for values in batch:
                written += db.execute(statement, values).rowcount
        return written

    def _get_language_sync(self, guild_id: int) -> str | None:
        row = self._db().execute("SELECT language FROM guild_languages WHERE guild_id = ?", (guild_id,)).fetchone()
        return row[0] if row else None

    def _set_language_sync(self, guild_id: int, language: str, updated_by: int | None) -> None:
        with _transaction(self._db()) as db:
            db.execute(
                "INSERT INTO guild_languages (guild_id, language, updated_by, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(guild_id) DO UPDATE SET language = excluded.language, "
                "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                (guild_id, language, updated_by, time.time()),
            )

    def _clear_language_sync(self, guild_id: int) -> None:
        with _transaction(self._db()) as db:
            db.execute("DELETE FROM guild_languages WHERE guild_id = ?", (guild_id,))

    def _export_languages_sync(self) -> list[GuildLanguageRow]:
        rows = (
            self._db()
            .execute("SELECT guild_id, language, updated_by, updated_at FROM guild_languages ORDER BY guild_id")
            .fetchall()
        )
        return [GuildLanguageRow(int(g), str(lang), None if by is None else int(by), float(at)) for g, lang, by, at in rows]

    def _import_languages_sync(self, rows: list[GuildLanguageRow]) -> int:
        return self._import_newer_sync(
            "guild_languages", "language", [(r.guild_id, r.language, r.updated_by, r.updated_at) for r in rows]
        )

    def _write_heartbeat_sync(self, beat: ProcessHeartbeat) -> None:
        with _transaction(self._db()) as db:
            # Rows of processes that died without removing theirs (SIGKILL, power loss).
            db.execute("DELETE FROM process_heartbeats WHERE updated_at < ?", (beat.updated_at - FORGET_PROCESSES_AFTER,))
            db.execute(
                "INSERT OR REPLACE INTO process_heartbeats "
                "(process, shard_ids, shard_count, guilds, loaded, served, refused, started_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                heartbeat_values(beat),
            )

    def _heartbeats_sync(self, newer_than: float) -> list[ProcessHeartbeat]:
        rows = (
            self._db()
            .execute(
                "SELECT process, shard_ids, shard_count, guilds, loaded, served, refused, started_at, updated_at "
                "FROM process_heartbeats WHERE updated_at > ? ORDER BY process",
                (newer_than,),
            )
            .fetchall()
        )
        return [heartbeat_from_row(row) for row in rows]

    def _remove_heartbeat_sync(self, process: str) -> None:
        with _transaction(self._db()) as db:
            db.execute("DELETE FROM process_heartbeats WHERE process = ?", (process,))

    def _claim_identify_sync(self, bucket: int, spacing: float) -> float:
        """Take the bucket's turn now (0) or say how long to wait, under the write lock."""
        with _transaction(self._db()) as db:
            row = db.execute("SELECT last_identify FROM identify_turns WHERE bucket = ?", (bucket,)).fetchone()
            now = time.time()
            if row is not None and now < row[0] + spacing:
                return row[0] + spacing - now
            db.execute("INSERT OR REPLACE INTO identify_turns (bucket, last_identify) VALUES (?, ?)", (bucket, now))
            return 0.0


def heartbeat_from_row(row: Sequence[Any]) -> ProcessHeartbeat:
    """A heartbeat from a row of (process, shard_ids, shard_count, guilds, loaded, served, refused,
    started_at, updated_at), the lists as JSON text: the same columns in both stores."""
    process, shard_ids, shard_count, guilds, loaded, served, refused, started_at, updated_at = row
    return ProcessHeartbeat(
        process=str(process),
        shard_ids=tuple(int(i) for i in json.loads(shard_ids)),
        shard_count=int(shard_count),
        guilds=int(guilds),
        loaded=tuple(str(c) for c in json.loads(loaded)),
        served=int(served),
        refused=int(refused),
        started_at=float(started_at),
        updated_at=float(updated_at),
    )


def heartbeat_values(beat: ProcessHeartbeat) -> tuple[Any, ...]:
    """The columns of :func:`heartbeat_from_row`, in order, for an INSERT."""
    return (
        beat.process,
        json.dumps(list(beat.shard_ids)),
        beat.shard_count,
        beat.guilds,
        json.dumps(list(beat.loaded)),
        beat.served,
        beat.refused,
        beat.started_at,
        beat.updated_at,
    )


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
