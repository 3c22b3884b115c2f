"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temp directory, 127.0.0.1 only.

``initdb`` and ``postgres`` refuse to run as root (CI runs as root): as root they run as the
``postgres`` user through ``runuser``, on a directory owned by that user. The server runs under a
small shell wrapper that stops it (by its PID) as soon as its stdin closes, so it goes away with
the test process even when that process is killed. Directories left by earlier runs whose test
process is gone are cleaned up on start (their server stopped by the PID in ``postmaster.pid``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path

PARENT = Path(tempfile.gettempdir()) / "fillmask-pg"
USER = "postgres"  # the database superuser made by initdb (trust auth: no password)

# Stops the server by its PID once the test process closes our stdin (or dies).
_WRAPPER = 'postgres_bin="$1"; shift; "$postgres_bin" "$@" & pid=$!; read -r _; kill -INT "$pid" 2>/dev/null; wait "$pid"'


def find_bin_dir() -> Path | None:
    """Where PostgreSQL's server binaries are (15 preferred), or None if it is not installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: (not p.startswith("/usr/lib/postgresql/15/"), p))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    return None


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *argv] if os.geteuid() == 0 else argv


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _stop_by_pid(data: Path, timeout: float = 10.0) -> None:
    pid = _postmaster_pid(data)
    if pid is None or not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGINT)  # fast shutdown
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def remove_stale() -> None:
    """Stop and delete servers from earlier runs whose test process is gone."""
    if not PARENT.is_dir():
        return
    for run in PARENT.iterdir():
        try:
            owner = int((run / "owner.pid").read_text())
        except (OSError, ValueError):
            owner = None
        if owner is not None and _alive(owner):
            continue  # another test session, still running
        _stop_by_pid(run / "data")
        shutil.rmtree(run, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One running server: its address, its files under ``root``; ``stop()`` and ``start()`` take it
    away and bring it back on the same port with the same data (a database that goes away)."""

    def __init__(self, bin_dir: Path, root: Path, port: int, startup_timeout: float) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.root = root
        self.bin_dir = bin_dir
        self.data = root / "data"
        self.startup_timeout = startup_timeout
        self._names = count()
        self._process: subprocess.Popen[bytes] | None = None

    def dsn(self, database: str = "postgres", user: str = USER) -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    async def create_database(self) -> str:
        """A new empty database; its DSN."""
        import asyncpg

        name = f"test_{os.getpid()}_{next(self._names)}"
        connection = await asyncpg.connect(self.dsn())
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.dsn(name)

    def start(self) -> None:
        argv = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.root / "sock"),
            "-c",
            "listen_addresses=127.0.0.1",
            # A test server: speed over crash safety (clients, not the server, are killed in tests).
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ]
        log = (self.root / "server.log").open("ab")
        self._process = subprocess.Popen(
            _as_server_user(["sh", "-c", _WRAPPER, "pg-wrapper", *argv]),
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            ready = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-t", "1"],
                check=False,
            )
            if ready.returncode == 0:
                return
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start:\n{(self.root / 'server.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()  # the wrapper stops the server by its PID
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        _stop_by_pid(self.data)


@contextlib.contextmanager
def running_server(bin_dir: Path, startup_timeout: float = 60.0) -> Iterator[PostgresServer]:
    """Start a fresh server, yield it, stop it by its PID and delete its files."""
    remove_stale()
    PARENT.mkdir(mode=0o755, exist_ok=True)
    os.chmod(PARENT, 0o755)  # the server user must reach its directory
    root = Path(tempfile.mkdtemp(prefix="run-", dir=PARENT))
    (root / "owner.pid").write_text(str(os.getpid()))
    data, sockets = root / "data", root / "sock"
    data.mkdir(mode=0o700)
    sockets.mkdir(mode=0o700)
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        for path in (data, sockets):
            shutil.chown(path, USER, USER)
    server = PostgresServer(bin_dir, root, _free_port(), startup_timeout)
    try:
        subprocess.run(
            _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "--no-sync", "-E", "UTF8"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
