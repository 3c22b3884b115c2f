"""One suite for every per-server settings store: SQLite and PostgreSQL behave the same.

Each test gets a ``make_store`` factory: every call gives a new, unopened store on the same
database (a file for SQLite, a fresh database on the session's PostgreSQL server).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.service.guild_settings import SCHEMA_VERSION, SqliteGuildSettings, StorageError
from bot.service.postgres_settings import PostgresGuildSettings
from tests.postgres_server import PostgresServer

StoreFactory = Callable[[], Any]


@pytest.fixture(params=["sqlite", "postgres"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if request.param == "sqlite":
        path = tmp_path / "settings.sqlite3"
        return lambda: SqliteGuildSettings(path, timeout=30)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    dsn = await server.create_database()
    return lambda: PostgresGuildSettings(dsn)


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
