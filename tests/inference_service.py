"""``python -m bot serve`` as a real child process for the tests: a local Ray, 127.0.0.1, its
files in a short temporary directory (Ray's socket paths must stay under ~100 characters).

Stopped with SIGTERM, as an owner's service manager would: the service then shuts down the Ray
it started. Skipped with the reason when the serve extra is missing, failed when REQUIRE_RAY=1.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        reason = 'Ray Serve is not installed (pip install ".[serve]")'
        if os.environ.get("REQUIRE_RAY") == "1":
            pytest.fail(f"{reason}, and REQUIRE_RAY=1")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InferenceService:
    """One ``python -m bot serve``; ``stop()`` and ``start()`` again on the same port."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._env = env
        self._process: asyncio.subprocess.Process | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="serve-", suffix=".log", delete=False)  # noqa: SIM115

    async def start(self, timeout: float = 180.0) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(self.port),
            env=self._env, cwd=ROOT, stdout=self._log, stderr=self._log,
        )  # fmt: skip
        deadline = asyncio.get_running_loop().time() + timeout
        while not await asyncio.to_thread(self.healthy):
            if self._process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"the inference service did not start:\n{self.log_tail()}")
            await asyncio.sleep(0.5)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    async def stop(self, timeout: float = 60.0) -> int:
        process, self._process = self._process, None
        if process is None:
            return 0
        if process.returncode is not None:
            return process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            return await process.wait()

    def log_tail(self) -> str:
        return Path(self._log.name).read_text(errors="replace")[-3000:]


@contextlib.asynccontextmanager
async def running_service(default_model: Path, **extra: str) -> AsyncIterator[InferenceService]:
    require_ray()
    ray_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(
        DEFAULT_MODEL=str(default_model),
        ALLOW_LOCAL_MODELS="1",
        LOCAL_MODEL_DIRS=str(default_model.parent),
        DEVICE="cpu",
        HF_HUB_OFFLINE="1",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_TMPDIR=ray_dir,
        SERVE_CPUS_PER_REPLICA="1",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    service = InferenceService(env, free_port())
    try:
        await service.start()
        yield service
    finally:
        await service.stop()
        shutil.rmtree(ray_dir, ignore_errors=True)
        Path(service._log.name).unlink(missing_ok=True)
