"""One suite for every per-server settings store: SQLite and PostgreSQL behave the same.

Each test gets a ``make_store`` factory: every call gives a new, unopened store on the same
database (a file for SQLite, a fresh database on the session's PostgreSQL server).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.service.cluster import IDENTIFY_MARGIN_SECONDS, ProcessHeartbeat
from bot.service.guild_settings import FORGET_PROCESSES_AFTER, DefaultOnlySettings, SqliteGuildSettings, StorageError
from bot.service.guild_settings import MIGRATIONS as SQLITE_MIGRATIONS
from bot.service.guild_settings import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from bot.service.postgres_settings import MIGRATIONS as POSTGRES_MIGRATIONS
from bot.service.postgres_settings import SCHEMA_VERSION, PostgresGuildSettings
from bot.service.reopening_store import ReopeningStore
from tests.postgres_server import PostgresServer


class StoreFactory:
    """New, unopened stores on one database; ``target`` names it for a child process."""

    def __init__(self, kind: str, target: str) -> None:
        self.kind = kind
        self.target = target

    def __call__(self) -> Any:
        if self.kind == "sqlite":
            return SqliteGuildSettings(self.target, timeout=30)
        return PostgresGuildSettings(self.target)

    async def read_all(self) -> dict[int, str]:
        async with self() as store:
            return {row.guild_id: row.checkpoint for row in await store.export_settings()}


@pytest.fixture(params=["sqlite", "postgres"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if request.param == "sqlite":
        return StoreFactory("sqlite", str(tmp_path / "settings.sqlite3"))
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return StoreFactory("postgres", await server.create_database())


ROOT = Path(__file__).resolve().parent.parent
BIG = 2**53 + 1  # not exactly representable as a float: must stay an integer all the way
SNOWFLAKE = 1_234_567_890_123_456_789


async def test_unknown_guild_is_none(make_store: StoreFactory) -> None:
    async with make_store() as store:
        assert await store.get_checkpoint(1) is None
        assert await store.count_guilds_per_checkpoint() == {}


async def test_set_then_get_and_overwrite(make_store: StoreFactory) -> None:
    async with make_store() as store:
        await store.set_checkpoint(1, "camembert-base", updated_by=42)
        assert await store.get_checkpoint(1) == "camembert-base"
        await store.set_checkpoint(1, "xlm-roberta-base")
        assert await store.get_checkpoint(1) == "xlm-roberta-base"
        assert await store.get_checkpoint(2) is None


async def test_clear(make_store: StoreFactory) -> None:
    async with make_store() as store:
        await store.set_checkpoint(1, "a")
        await store.clear_checkpoint(1)
        assert await store.get_checkpoint(1) is None
        await store.clear_checkpoint(99)  # clearing an unset guild is fine
        assert await store.count_guilds_per_checkpoint() == {}


async def test_count_per_checkpoint(make_store: StoreFactory) -> None:
    async with make_store() as store:
        for guild, checkpoint in [(1, "a"), (2, "a"), (3, "b"), (4, "a"), (5, "c")]:
            await store.set_checkpoint(guild, checkpoint)
        await store.clear_checkpoint(5)
        await store.set_checkpoint(4, "b")
        assert await store.count_guilds_per_checkpoint() == {"a": 2, "b": 2}


async def test_large_ids_are_kept_exactly(make_store: StoreFactory) -> None:
    async with make_store() as store:
        await store.set_checkpoint(BIG, "big", updated_by=SNOWFLAKE)
        await store.set_checkpoint(BIG - 1, "neighbour")
        await store.set_checkpoint(str(SNOWFLAKE), "from-a-string")  # ids are ints whatever callers pass
    async with make_store() as store:
        assert await store.get_checkpoint(BIG) == "big"
        assert await store.get_checkpoint(BIG - 1) == "neighbour"
        assert await store.get_checkpoint(BIG + 1) is None
        assert await store.get_checkpoint(SNOWFLAKE) == "from-a-string"


async def test_values_survive_reopening(make_store: StoreFactory) -> None:
    async with make_store() as store:
        await store.set_checkpoint(1, "camembert-base", updated_by=42)
        await store.set_checkpoint(2, "bert-base-uncased")
        await store.set_checkpoint(1, "xlm-roberta-base")
        await store.clear_checkpoint(2)
    async with make_store() as store:
        assert await store.get_checkpoint(1) == "xlm-roberta-base"
        assert await store.get_checkpoint(2) is None
        assert await store.count_guilds_per_checkpoint() == {"xlm-roberta-base": 1}


async def test_concurrent_writers_end_consistent(make_store: StoreFactory) -> None:
    writers, rounds, guilds = 4, 15, 3
    stores = [await make_store().open() for _ in range(writers)]
    try:

        async def write(i: int) -> None:
            for r in range(rounds):
                for guild in range(guilds):
                    await stores[i].set_checkpoint(guild, f"w{i}-r{r}")

        await asyncio.gather(*(write(i) for i in range(writers)))
    finally:
        for store in stores:
            await store.close()
    finals = {f"w{i}-r{rounds - 1}" for i in range(writers)}
    async with make_store() as a, make_store() as b:
        for guild in range(guilds):
            value = await a.get_checkpoint(guild)
            assert value in finals, f"guild {guild}: {value!r} is not any writer's last value"
            assert await b.get_checkpoint(guild) == value
        counts = await a.count_guilds_per_checkpoint()
        assert sum(counts.values()) == guilds and set(counts) <= finals


def _writer(target: str, count: int, tag: str | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "settings_writer.py"), target, str(count), *([tag] if tag else [])],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def test_every_acknowledged_write_survives_sigkill_of_the_writer(make_store: StoreFactory) -> None:
    async with make_store():
        pass  # the schema exists before the child starts
    child = _writer(make_store.target, 100_000)
    acked: dict[int, str] = {}
    assert child.stdout is not None
    for line in child.stdout:
        _, guild, checkpoint = line.split()
        acked[int(guild)] = checkpoint
        if len(acked) >= 200:
            child.send_signal(signal.SIGKILL)  # mid-write: the child is still writing
            break
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    rows = await make_store.read_all()
    missing = {g: c for g, c in acked.items() if rows.get(g) != c}
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {list(missing.items())[:3]}"


async def test_two_writer_processes_end_on_one_of_their_last_values(make_store: StoreFactory) -> None:
    async with make_store():
        pass
    rounds = 60
    children = [_writer(make_store.target, rounds, tag) for tag in ("a", "b")]
    outputs = [child.communicate(timeout=120)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0], "a writer failed (e.g. database is locked)"
    assert all(out.count("ack") == rounds * 3 for out in outputs)  # every write acknowledged
    rows = await make_store.read_all()
    for guild in range(3):
        assert rows[guild] in {f"a-r{rounds - 1}", f"b-r{rounds - 1}"}


async def test_a_change_by_another_process_is_read_within_two_seconds(make_store: StoreFactory) -> None:
    async with make_store() as reader:
        await reader.set_checkpoint(0, "before")
        assert await reader.get_checkpoint(0) == "before"  # now in this store's cache, if it has one
        writer = _writer(make_store.target, 1, "other")  # another process writes guilds 0-2
        assert writer.communicate(timeout=60)[0].count("ack") == 3 and writer.returncode == 0
        written = time.monotonic()
        while (value := await reader.get_checkpoint(0)) != "other-r0":
            assert value == "before"
            assert time.monotonic() - written < 2.0, "a stale choice served for over 2 s"
            await asyncio.sleep(0.05)


async def test_heartbeats_are_kept_per_process_and_age_out(make_store: StoreFactory) -> None:
    now = time.time()
    first = ProcessHeartbeat("host-a:1", (0, 1), 4, guilds=10, loaded=("camembert-base",), served=5, refused=1, updated_at=now)
    second = ProcessHeartbeat("host-b:2", (2, 3), 4, guilds=7, updated_at=now - 100)
    async with make_store() as a, make_store() as b:
        await a.write_heartbeat(first)
        await b.write_heartbeat(second)
        assert await b.heartbeats(newer_than=now - 1000) == [first, second]
        assert await b.heartbeats(newer_than=now - 10) == [first]  # the stale one is not running
        newer = ProcessHeartbeat("host-b:2", (2, 3), 4, guilds=8, served=3, updated_at=now + 1)
        await b.write_heartbeat(newer)  # replaces that process's row
        assert await a.heartbeats(newer_than=now - 10) == [first, newer]
        await a.remove_heartbeat("host-a:1")
        assert await b.heartbeats(newer_than=0) == [newer]
        # A process that died without removing its row is forgotten after a day.
        later = ProcessHeartbeat("host-c:3", (0, 1), 4, guilds=1, updated_at=now + 1 + FORGET_PROCESSES_AFTER + 1)
        await a.write_heartbeat(later)
        assert await b.heartbeats(newer_than=0) == [later]


async def test_identify_turns_are_spaced_across_stores_per_bucket(make_store: StoreFactory) -> None:
    window = 0.4
    spacing = window + IDENTIFY_MARGIN_SECONDS
    stores = [await make_store().open() for _ in range(3)]  # three processes
    try:
        taken: list[tuple[int, float]] = []

        async def identify(store: Any, bucket: int) -> None:
            await store.take_identify_turn(bucket, window=window)
            taken.append((bucket, time.monotonic()))

        started = time.monotonic()
        await asyncio.gather(*(identify(store, 0) for store in stores), identify(stores[0], 1))
    finally:
        for store in stores:
            await store.close()
    in_bucket_0 = sorted(t for bucket, t in taken if bucket == 0)
    gaps = [later - earlier for earlier, later in itertools.pairwise(in_bucket_0)]
    assert len(in_bucket_0) == 3 and min(gaps) >= spacing - 0.05, gaps
    (bucket_1,) = [t for bucket, t in taken if bucket == 1]
    assert bucket_1 - started < spacing  # another bucket does not wait for bucket 0


async def test_export_and_import_keep_the_newer_choice(make_store: StoreFactory, tmp_path: Path) -> None:
    async with SqliteGuildSettings(tmp_path / "source.sqlite3") as source:
        await source.set_checkpoint(1, "from-source", updated_by=7)
        await source.set_checkpoint(2, "older-in-source")
        rows = await source.export_settings()
    async with make_store() as target:
        await target.set_checkpoint(2, "newer-in-target")  # written after the source's row
        await target.set_checkpoint(3, "only-in-target")
        assert await target.import_settings(rows) == 1
        assert await target.get_checkpoint(1) == "from-source"
        assert await target.get_checkpoint(2) == "newer-in-target"
        assert await target.get_checkpoint(3) == "only-in-target"
        assert await target.import_settings(rows) == 1  # again: the same row, nothing lost
        (copied,) = [row for row in await target.export_settings() if row.guild_id == 1]
        assert copied == rows[0] and copied.updated_by == 7


def test_both_stores_are_at_the_same_schema() -> None:
    assert SQLITE_SCHEMA_VERSION == SCHEMA_VERSION == 3


@pytest.mark.parametrize("previous", [1, 2])
async def test_a_database_at_an_older_schema_is_migrated_and_keeps_its_choices(make_store: StoreFactory, previous: int) -> None:
    if make_store.kind == "sqlite":
        connection = sqlite3.connect(make_store.target)
        for migration in SQLITE_MIGRATIONS[:previous]:
            for statement in migration:
                connection.execute(statement)
        connection.execute("INSERT INTO guild_settings VALUES (5, 'kept-across', NULL, 1.0)")
        connection.execute(f"PRAGMA user_version = {previous}")
        connection.commit()
        connection.close()
    else:
        connection = await asyncpg.connect(make_store.target)
        await connection.execute("CREATE TABLE guild_settings_schema (version INTEGER NOT NULL)")
        await connection.execute("INSERT INTO guild_settings_schema VALUES ($1)", previous)
        for migration in POSTGRES_MIGRATIONS[:previous]:
            for statement in migration:
                await connection.execute(statement)
        await connection.execute("INSERT INTO guild_settings VALUES (5, 'kept-across', NULL, 1.0)")
        await connection.close()
    async with make_store() as store:
        assert await store.get_checkpoint(5) == "kept-across"
        await store.write_heartbeat(ProcessHeartbeat("h:1", (0,), 1, guilds=1))  # v2's table exists
        assert [beat.process for beat in await store.heartbeats(newer_than=0)] == ["h:1"]
        assert await store.get_language(5) is None  # v3's table exists, empty
        await store.set_language(5, "fr")
    async with make_store() as store:  # opening again migrates nothing
        assert await store.get_checkpoint(5) == "kept-across"
        assert await store.get_language(5) == "fr"
    if make_store.kind == "sqlite":
        connection = sqlite3.connect(make_store.target)
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SQLITE_SCHEMA_VERSION
        connection.close()
    else:
        connection = await asyncpg.connect(make_store.target)
        assert [tuple(r) for r in await connection.fetch("SELECT version FROM guild_settings_schema")] == [(SCHEMA_VERSION,)]
        await connection.close()


# -- languages --------------------------------------------------------------------------------


async def test_language_set_get_overwrite_and_clear(make_store: StoreFactory) -> None:
    async with make_store() as store:
        assert await store.get_language(1) is None
        await store.set_language(1, "fr", updated_by=42)
        assert await store.get_language(1) == "fr"
        await store.set_language(1, "ko")
        assert await store.get_language(1) == "ko"
        assert await store.get_language(2) is None
        await store.clear_language(1)
        assert await store.get_language(1) is None
        await store.clear_language(99)  # clearing an unset guild is fine
        await store.set_language(BIG, "en", updated_by=SNOWFLAKE)
        await store.set_language(str(SNOWFLAKE), "fr")  # ids are ints whatever callers pass
    async with make_store() as store:
        assert await store.get_language(BIG) == "en"
        assert await store.get_language(BIG - 1) is None
        assert await store.get_language(SNOWFLAKE) == "fr"


async def test_language_survives_reopening(make_store: StoreFactory) -> None:
    async with make_store() as store:
        await store.set_language(1, "fr", updated_by=42)
        await store.set_language(2, "ko")
        await store.set_language(3, "en")
        await store.clear_language(3)
    async with make_store() as store:
        assert await store.get_language(1) == "fr"
        assert await store.get_language(2) == "ko"
        assert await store.get_language(3) is None


async def test_checkpoint_and_language_are_independent(make_store: StoreFactory) -> None:
    async with make_store() as store:
        await store.set_checkpoint(1, "camembert-base")
        await store.set_language(1, "fr")
        await store.clear_checkpoint(1)  # `model reset`
        assert await store.get_language(1) == "fr"
        assert await store.get_checkpoint(1) is None
        await store.set_checkpoint(1, "xlm-roberta-base")
        await store.clear_language(1)
        assert await store.get_checkpoint(1) == "xlm-roberta-base"
        assert await store.get_language(1) is None
        await store.set_language(2, "ko")  # a language alone is not a model choice
        assert await store.count_guilds_per_checkpoint() == {"xlm-roberta-base": 1}
    async with make_store() as store:
        assert await store.get_checkpoint(1) == "xlm-roberta-base"
        assert await store.get_language(1) is None
        assert await store.get_checkpoint(2) is None
        assert await store.get_language(2) == "ko"
        assert [row.guild_id for row in await store.export_settings()] == [1]
        assert [(row.guild_id, row.language) for row in await store.export_languages()] == [(2, "ko")]


_LANGUAGE_WRITER = """
import asyncio, sys
from bot.service.guild_settings import SqliteGuildSettings
from bot.service.postgres_settings import PostgresGuildSettings

async def main(target):
    store = PostgresGuildSettings(target) if target.startswith("postgresql://") else SqliteGuildSettings(target, timeout=30)
    async with store:
        await store.set_language(0, "ko", updated_by=1)
        print("ack", flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_language_change_by_another_process_is_read_within_two_seconds(make_store: StoreFactory) -> None:
    async with make_store() as reader:
        await reader.set_language(0, "fr")
        assert await reader.get_language(0) == "fr"  # now in this store's cache, if it has one
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", _LANGUAGE_WRITER, make_store.target],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 0 and done.stdout.count("ack") == 1, done.stderr
        written = time.monotonic()
        while (value := await reader.get_language(0)) != "ko":
            assert value == "fr"
            assert time.monotonic() - written < 2.0, "a stale language served for over 2 s"
            await asyncio.sleep(0.05)


async def test_a_language_change_by_another_store_is_read_within_two_seconds(make_store: StoreFactory) -> None:
    async with make_store() as reader, make_store() as writer:
        assert await reader.get_language(0) is None  # cached "none chosen", if it caches
        await writer.set_language(0, "fr")
        written = time.monotonic()
        while (value := await reader.get_language(0)) != "fr":
            assert value is None
            assert time.monotonic() - written < 2.0, "a stale language served for over 2 s"
            await asyncio.sleep(0.05)
        await writer.clear_language(0)
        cleared = time.monotonic()
        while (value := await reader.get_language(0)) is not None:
            assert value == "fr"
            assert time.monotonic() - cleared < 2.0, "a cleared language served for over 2 s"
            await asyncio.sleep(0.05)


async def test_export_and_import_languages_keep_the_newer_choice(make_store: StoreFactory, tmp_path: Path) -> None:
    async with SqliteGuildSettings(tmp_path / "source.sqlite3") as source:
        await source.set_language(1, "fr", updated_by=7)
        await source.set_language(2, "en")
        await source.set_checkpoint(1, "camembert-base")
        rows = await source.export_languages()
        assert [(row.guild_id, row.language) for row in rows] == [(1, "fr"), (2, "en")]
    async with make_store() as target:
        assert await target.get_language(1) is None  # cached as "none chosen" in SQLite
        await target.set_language(2, "ko")  # written after the source's row
        await target.set_language(3, "fr")
        assert await target.import_languages(rows) == 1
        assert await target.get_language(1) == "fr"  # the import drops the read cache
        assert await target.get_language(2) == "ko"
        assert await target.get_language(3) == "fr"
        assert await target.import_languages(rows) == 1  # again: the same row, nothing lost
        (copied,) = [row for row in await target.export_languages() if row.guild_id == 1]
        assert copied == rows[0] and copied.updated_by == 7
        assert await target.get_checkpoint(1) is None  # languages carry no checkpoint


async def test_without_a_database_languages_are_none_and_changes_refused(tmp_path: Path) -> None:
    default_only = DefaultOnlySettings("no database here")
    assert await default_only.get_language(1) is None
    for change in (default_only.set_language(1, "fr"), default_only.clear_language(1)):
        with pytest.raises(StorageError, match="no database here"):
            await change
    with pytest.raises(StorageError, match="no database here"):
        await default_only.export_languages()
    with pytest.raises(StorageError, match="no database here"):
        await default_only.import_languages([])

    path = tmp_path / "later.sqlite3"
    unopened = ReopeningStore(SqliteGuildSettings(path), "not reachable yet", retry_seconds=3600)
    assert await unopened.get_language(1) is None
    with pytest.raises(StorageError, match="not reachable yet"):
        await unopened.set_language(1, "fr")
    with pytest.raises(StorageError, match="not reachable yet"):
        await unopened.clear_language(1)
    with pytest.raises(StorageError, match="not reachable yet"):
        await unopened.export_languages()
    await unopened.close()

    reopened = ReopeningStore(SqliteGuildSettings(path), "not reachable yet", retry_seconds=0)
    try:
        await reopened.set_language(1, "fr", updated_by=3)  # opens on first use, then delegates
        assert await reopened.get_language(1) == "fr"
        (row,) = await reopened.export_languages()
        assert (row.guild_id, row.language, row.updated_by) == (1, "fr", 3)
        assert await reopened.import_languages([row]) == 1
        await reopened.clear_language(1)
        assert await reopened.get_language(1) is None
    finally:
        await reopened.close()


# -- PostgreSQL only --------------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once closed


async def test_unreachable_server_is_a_storage_error_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "s3cret-Pa55word"
    store = PostgresGuildSettings(f"postgresql://bot:{secret}@127.0.0.1:{_closed_port()}/settings", timeout=3)
    with pytest.raises(StorageError) as caught:
        await store.open()
    text = f"{caught.value} {caught.value!r} {caught.value.__cause__!r} {caught.value.__context__!r}"
    assert secret not in text and secret not in caplog.text
    assert "connect" in str(caught.value)
    with pytest.raises(StorageError):
        await store.get_checkpoint(1)  # not open
    await store.close()


async def test_malformed_dsn_does_not_echo_it() -> None:
    secret = "s3cret-Pa55word"
    with pytest.raises(StorageError) as caught:
        await PostgresGuildSettings(f"postgresql://bot:{secret}@127.0.0.1:notaport/x", timeout=3).open()
    assert secret not in f"{caught.value} {caught.value!r} {caught.value.__cause__!r}"


async def test_concurrent_openers_of_a_fresh_database_all_succeed(postgres_server: PostgresServer) -> None:
    for _ in range(3):
        dsn = await postgres_server.create_database()

        async def open_write_read(i: int, dsn: str = dsn) -> str | None:
            async with PostgresGuildSettings(dsn) as store:
                await store.set_checkpoint(i, f"model-{i}")
                return await store.get_checkpoint(i)

        openers = 10
        values = await asyncio.gather(*(open_write_read(i) for i in range(openers)))
        assert values == [f"model-{i}" for i in range(openers)]
        connection = await asyncpg.connect(dsn)
        try:
            assert [tuple(r) for r in await connection.fetch("SELECT version FROM guild_settings_schema")] == [(SCHEMA_VERSION,)]
            assert await connection.fetchval("SELECT count(*) FROM guild_settings") == openers
        finally:
            await connection.close()


async def test_newer_schema_is_refused(postgres_server: PostgresServer) -> None:
    dsn = await postgres_server.create_database()
    async with PostgresGuildSettings(dsn):
        pass
    connection = await asyncpg.connect(dsn)
    await connection.execute("UPDATE guild_settings_schema SET version = $1", SCHEMA_VERSION + 1)
    await connection.close()
    with pytest.raises(StorageError, match="newer"):
        await PostgresGuildSettings(dsn).open()


async def test_no_read_cache_sees_other_writers(postgres_server: PostgresServer) -> None:
    dsn = await postgres_server.create_database()
    async with PostgresGuildSettings(dsn) as a, PostgresGuildSettings(dsn) as b:
        assert await a.get_checkpoint(1) is None
        await b.set_checkpoint(1, "x")
        assert await a.get_checkpoint(1) == "x"
        await b.clear_checkpoint(1)
        assert await a.get_checkpoint(1) is None


async def test_dsn_none_uses_libpq_variables(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = await postgres_server.create_database()
    monkeypatch.setenv("PGHOST", postgres_server.host)
    monkeypatch.setenv("PGPORT", str(postgres_server.port))
    monkeypatch.setenv("PGUSER", "postgres")
    monkeypatch.setenv("PGDATABASE", dsn.rsplit("/", 1)[1])
    async with PostgresGuildSettings(None) as store:
        await store.set_checkpoint(7, "from-env")
    async with PostgresGuildSettings(dsn) as store:
        assert await store.get_checkpoint(7) == "from-env"
