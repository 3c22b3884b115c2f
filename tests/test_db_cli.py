"""``python -m bot db migrate`` and ``python -m bot db copy --to``, as an owner runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from bot.service.guild_settings import SqliteGuildSettings
from bot.service.postgres_settings import SCHEMA_VERSION, PostgresGuildSettings
from tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret-Pa55"


async def run_bot(*args: str, **env: str) -> tuple[int, str]:
    def run() -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_PATH", "DISCORD_TOKEN")}
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            env={**clean, "PYTHONPATH": str(ROOT), **env},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )

    done = await asyncio.to_thread(run)
    return done.returncode, done.stdout + done.stderr


def with_password(dsn: str) -> str:
    return dsn.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")  # trust auth: accepted, unused


async def test_copy_moves_every_choice_and_can_run_again(tmp_path: Path, postgres_server: PostgresServer) -> None:
    source = tmp_path / "old.sqlite3"
    async with SqliteGuildSettings(source) as sqlite:
        await sqlite.set_checkpoint(1, "camembert-base", updated_by=5)
        await sqlite.set_checkpoint(2**62, "almanach/camembert-large")
    dsn = with_password(await postgres_server.create_database())
    code, out = await run_bot("db", "copy", "--to", dsn, DATABASE_PATH=str(source))
    assert code == 0, out
    assert "Copied 2 model choice(s) and 0 language choice(s)" in out and SECRET not in out and ":***@" in out
    async with PostgresGuildSettings(dsn) as postgres:
        assert await postgres.get_checkpoint(1) == "camembert-base"
        assert await postgres.get_checkpoint(2**62) == "almanach/camembert-large"
        await postgres.set_checkpoint(1, "changed-since")  # a bot already on PostgreSQL changed it
    code, out = await run_bot("db", "copy", "--to", dsn, "--from", str(source))
    assert code == 0 and "Copied 1 model choice(s)" in out and "1 model choice(s) kept as they were" in out, out
    async with PostgresGuildSettings(dsn) as postgres:
        assert await postgres.get_checkpoint(1) == "changed-since"


async def test_copy_carries_languages_and_keeps_a_newer_target_language(tmp_path: Path, postgres_server: PostgresServer) -> None:
    source = tmp_path / "old.sqlite3"
    async with SqliteGuildSettings(source) as sqlite:
        await sqlite.set_checkpoint(1, "camembert-base")
        await sqlite.set_language(1, "fr", updated_by=5)
        await sqlite.set_language(2**62, "ko")  # a language without a model choice
    dsn = with_password(await postgres_server.create_database())
    code, out = await run_bot("db", "copy", "--to", dsn, DATABASE_PATH=str(source))
    assert code == 0, out
    assert "Copied 1 model choice(s) and 2 language choice(s)" in out and "kept" not in out and SECRET not in out
    async with PostgresGuildSettings(dsn) as postgres:
        assert await postgres.get_checkpoint(1) == "camembert-base"
        assert await postgres.get_language(1) == "fr"
        assert await postgres.get_checkpoint(2**62) is None
        assert await postgres.get_language(2**62) == "ko"
        (row, _) = await postgres.export_languages()
        assert (row.guild_id, row.updated_by) == (1, 5)
        await postgres.set_language(1, "en")  # a bot already on PostgreSQL changed it
    code, out = await run_bot("db", "copy", "--to", dsn, "--from", str(source))
    assert code == 0, out
    assert "Copied 1 model choice(s) and 1 language choice(s)" in out and "1 language choice(s) kept as they were" in out, out
    assert "model choice(s) kept" not in out
    async with PostgresGuildSettings(dsn) as postgres:
        assert await postgres.get_language(1) == "en"
        assert await postgres.get_language(2**62) == "ko"
        assert await postgres.get_checkpoint(1) == "camembert-base"


async def test_copy_refuses_a_missing_source_and_an_unreachable_target(tmp_path: Path, postgres_server: PostgresServer) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    code, out = await run_bot("db", "copy", "--to", await postgres_server.create_database(), DATABASE_PATH=str(missing))
    assert code == 2 and "no SQLite database at" in out and "Traceback" not in out
    assert not missing.exists()  # not created by the attempt
    source = tmp_path / "old.sqlite3"
    async with SqliteGuildSettings(source) as sqlite:
        await sqlite.set_checkpoint(1, "x")
    unreachable = f"postgresql://bot:{SECRET}@127.0.0.1:{postgres_server.port + 1}/none"
    code, out = await run_bot("db", "copy", "--to", unreachable, DATABASE_PATH=str(source))
    assert code == 1 and "Not done: cannot connect" in out and SECRET not in out and "Traceback" not in out
    code, out = await run_bot("db", "copy", "--to", str(tmp_path / "a-file"), DATABASE_PATH=str(source))
    assert code == 2 and "postgresql://" in out


async def test_migrate_brings_an_empty_database_to_the_schema_once(postgres_server: PostgresServer, tmp_path: Path) -> None:
    dsn = await postgres_server.create_database()
    for _ in range(2):
        code, out = await run_bot("db", "migrate", DATABASE_URL=dsn)
        assert code == 0 and f"schema v{SCHEMA_VERSION}" in out, out
    connection = await asyncpg.connect(dsn)
    try:
        assert await connection.fetchval("SELECT count(*) FROM guild_settings_schema") == 1
        assert await connection.fetchval("SELECT version FROM guild_settings_schema") == SCHEMA_VERSION
        assert await connection.fetchval("SELECT to_regclass('process_heartbeats') IS NOT NULL")
        assert await connection.fetchval("SELECT to_regclass('guild_languages') IS NOT NULL")
    finally:
        await connection.close()
    code, out = await run_bot("db", "migrate", DATABASE_PATH=str(tmp_path / "new.sqlite3"))
    assert code == 0 and "SQLite settings database" in out and (tmp_path / "new.sqlite3").exists()
