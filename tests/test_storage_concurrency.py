"""Several processes (or threads) opening one fresh settings database at the same moment all succeed.

Two bots started together on one DATABASE_PATH used to race through the schema set-up: both read
``user_version`` 0, both ran ``CREATE TABLE``, and the loser ran without settings.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sqlite3
import threading
import time
import traceback
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from bot.service.guild_settings import MIGRATIONS, SCHEMA_VERSION, SqliteGuildSettings

PROCESSES = 6
ROUNDS = 12
THREADS = 8
THREAD_ROUNDS = 20


async def _open_write_read(path: Path, guild_id: int) -> str | None:
    """One opener's whole life: open, write its own setting, read it back (uncached), close."""
    async with SqliteGuildSettings(path, timeout=30) as store:
        await store.set_checkpoint(guild_id, f"model-{guild_id}")
        store._cache.clear()  # read from the file, not from what we just wrote
        value = await store.get_checkpoint(guild_id)
    return value


def _opener(paths: list[str], barrier: Barrier, worker: int, report: str) -> None:
    """In a spawned process: for each fresh file, wait for the others, then all open it at once.

    Failures go to the file ``report`` (a queue would block this process's exit once its pipe fills).
    """
    failures: list[str] = []
    for path in paths:
        barrier.wait(timeout=60)
        try:
            value = asyncio.run(_open_write_read(Path(path), worker))
            if value != f"model-{worker}":
                failures.append(f"{path} worker {worker}: read back {value!r}")
        except Exception as exc:  # one line each: the error, and what raised it
            where = traceback.extract_tb(exc.__traceback__)[-1]
            failures.append(f"{path} worker {worker}: {exc!r} at {where.name}:{where.lineno}")
    Path(report).write_text("\n".join(failures))


def _check_file(path: Path, openers: int) -> None:
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = dict(connection.execute("SELECT guild_id, checkpoint FROM guild_settings").fetchall())
        assert rows == {i: f"model-{i}" for i in range(openers)}
    finally:
        connection.close()


def test_processes_opening_one_fresh_file_at_once_all_succeed(tmp_path: Path) -> None:
    paths = [tmp_path / f"round-{r}" / "settings.sqlite3" for r in range(ROUNDS)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    reports = [tmp_path / f"worker-{i}.txt" for i in range(PROCESSES)]
    workers = [
        context.Process(target=_opener, args=([str(p) for p in paths], barrier, i, str(reports[i]))) for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 240
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
        if worker.exitcode is None:
            worker.kill()
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    failures = [line for report in reports for line in report.read_text().split("\n") if line.startswith(str(tmp_path))]
    assert not failures, f"{len(failures)} failed opens of {PROCESSES * ROUNDS}, e.g.:\n" + "\n".join(failures[:3])
    for path in paths:
        _check_file(path, PROCESSES)


async def test_threads_opening_one_fresh_file_at_once_all_succeed(tmp_path: Path) -> None:
    # Each store has its own database thread, so these opens really run side by side.
    for r in range(THREAD_ROUNDS):
        path = tmp_path / f"round-{r}.sqlite3"
        values = await asyncio.gather(*(_open_write_read(path, i) for i in range(THREADS)))
        assert values == [f"model-{i}" for i in range(THREADS)]
        _check_file(path, THREADS)


def _hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    """Another process's long write, as SQLite sees it: the write lock, for ``seconds``."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def _rollback_journal_database(path: Path) -> None:
    """A migrated settings database that is not (yet) in WAL mode, as an older bot may leave one."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(MIGRATIONS[0][0])
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    connection.close()


async def test_switching_to_wal_waits_for_another_writer(tmp_path: Path) -> None:
    # SQLite refuses the switch at once, without the busy timeout, while another connection writes.
    path = tmp_path / "s.db"
    _rollback_journal_database(path)
    held = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 0.3, held))
    holder.start()
    held.wait(5)
    try:
        async with SqliteGuildSettings(path, timeout=5) as store:
            await store.set_checkpoint(1, "a")
    finally:
        holder.join()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


async def test_a_writer_holding_the_lock_past_the_timeout_does_not_stop_the_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    _rollback_journal_database(path)
    held = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 1.0, held))
    holder.start()
    held.wait(5)
    try:
        store = await SqliteGuildSettings(path, timeout=0.2).open()  # no WAL yet: warned, not refused
        assert await store.get_checkpoint(1) is None
    finally:
        holder.join()
    try:
        await store.set_checkpoint(1, "a")  # the lock is free again
        store._cache.clear()
        assert await store.get_checkpoint(1) == "a"
    finally:
        await store.close()
    assert any("WAL" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
