"""Per-server settings in SQLite: what only SQLite has (the interface itself: tests/test_settings_stores.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.service.guild_settings import SCHEMA_VERSION, SqliteGuildSettings, StorageError


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
