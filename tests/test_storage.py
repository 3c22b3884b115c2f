"""Per-server settings in SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.service.guild_settings import SCHEMA_VERSION, SqliteGuildSettings, StorageError


async def test_choice_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "settings.sqlite3"
    async with SqliteGuildSettings(path) as store:
        assert await store.get_checkpoint(1) is None
        await store.set_checkpoint(1, "camembert-base", updated_by=42)
        await store.set_checkpoint(2, "bert-base-uncased")
        await store.set_checkpoint(1, "xlm-roberta-base")
        await store.clear_checkpoint(2)
    async with SqliteGuildSettings(path) as store:
        assert await store.get_checkpoint(1) == "xlm-roberta-base"
        assert await store.get_checkpoint(2) is None
        assert await store.count_guilds_per_checkpoint() == {"xlm-roberta-base": 1}


async def test_ids_are_ints_whatever_callers_pass(tmp_path: Path) -> None:
    async with SqliteGuildSettings(tmp_path / "s.db") as store:
        await store.set_checkpoint("123456789012345678", "a")  # type: ignore[arg-type]
    async with SqliteGuildSettings(tmp_path / "s.db") as store:
        assert await store.get_checkpoint(123456789012345678) == "a"


async def test_schema_version_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteGuildSettings(path):
        pass
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(StorageError, match="newer"):
        await SqliteGuildSettings(path).open()


async def test_corrupt_file_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    store = SqliteGuildSettings(path)
    with pytest.raises(StorageError):
        await store.open()
    await store.close()
