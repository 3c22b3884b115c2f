"""The health file and ``python -m bot health``, against a real registry loading a real checkpoint.

Also the settings they read (HEALTH_FILE, HEALTH_INTERVAL, LOG_FILE) and the rotating log file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.adapters.health import (
    bot_state,
    check_health,
    describe_shards,
    health_main,
    run_heartbeat,
    write_heartbeat,
)
from bot.inference.loading import load_masked_lm
from bot.inference.registry import ModelRegistry
from bot.logs import LOG_FILE_BACKUPS, LOG_FILE_MAX_BYTES, LOG_FORMAT, configure_log_file
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import DefaultOnlySettings
from bot.settings import DEFAULT_HEALTH_FILE, DEFAULT_HEALTH_INTERVAL, ConfigError, Settings

ROOT = Path(__file__).resolve().parent.parent
BEAT = 0.05  # heartbeat interval in these tests
MAX_AGE = 5.0  # generous: a slow CI machine must not make a fresh file look stale
# What bot_state adds for an unsharded bot (no load under way).
UNSHARDED = {"default_model_progress": None, "shards": None, "shard_count": None}


class StandInBot:
    """What ``bot_state`` reads from a ``FillMaskBot`` (is_ready, is_closed, default_model_loaded/progress),
    answered by a real service on a real registry."""

    def __init__(self, registry: ModelRegistry, default_model: str) -> None:
        self.service = FillMaskService(registry, DefaultOnlySettings(), default_model=default_model)
        self.ready = True
        self.closed = False

    def is_ready(self) -> bool:
        return self.ready

    def is_closed(self) -> bool:
        return self.closed

    def default_model_progress(self) -> str | None:
        return self.service.default_model_progress()

    def default_model_loaded(self) -> bool:
        return self.service.default_model_has_loaded()


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(BEAT / 2)


def healthy(path: Path) -> bool:
    return check_health(path, MAX_AGE)[0]


async def test_unhealthy_while_the_default_model_loads_then_healthy_then_not_when_disconnected(
    tmp_path: Path, bert_checkpoint: Path
) -> None:
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    reference = str(bert_checkpoint)
    bot = StandInBot(registry, reference)
    path = tmp_path / "state" / "health.json"  # the directory is created
    heartbeat = asyncio.create_task(run_heartbeat(path, BEAT, lambda: bot_state(bot)))
    try:
        await until(path.exists)
        ok, reason = check_health(path, MAX_AGE)
        assert not ok
        assert "loading" in reason and "unhealthy" in reason
        data = json.loads(path.read_text())
        assert data["connected"] is True and data["default_model_loaded"] is False
        assert data["pid"] == os.getpid() and abs(data["time"] - time.time()) < MAX_AGE
        assert health_main(["--file", str(path), "--max-age", str(MAX_AGE)]) == 1

        await registry.get(reference)  # the default checkpoint finishes loading
        await until(lambda: healthy(path))
        ok, reason = check_health(path, MAX_AGE)
        assert reason.startswith("healthy")
        assert health_main(["--file", str(path), "--max-age", str(MAX_AGE)]) == 0

        bot.closed = True  # the connection closes
        await until(lambda: not healthy(path))
        assert "not connected" in check_health(path, MAX_AGE)[1]
        assert health_main(["--file", str(path), "--max-age", str(MAX_AGE)]) == 1

        bot.closed = False
        await until(lambda: healthy(path))
        bot.ready = False  # disconnected, reconnecting (is_ready() is False until READY again)
        await until(lambda: not healthy(path))
        assert "not connected" in check_health(path, MAX_AGE)[1]
    finally:
        heartbeat.cancel()
        with pytest.raises(asyncio.CancelledError):
            await heartbeat
        await registry.aclose()
    # The heartbeat stopped: the file goes stale and the check says so.
    stopped_at = json.loads(path.read_text())["time"]
    ok, reason = check_health(path, MAX_AGE, now=stopped_at + MAX_AGE + 1)
    assert not ok and "stale" in reason
    assert [p.name for p in path.parent.iterdir()] == ["health.json"]  # no temporary files left


async def test_default_model_unloaded_after_loading_still_counts_as_loaded(bert_checkpoint: Path) -> None:
    # With MAX_LOADED_MODELS=1 and a server on another checkpoint, the default is unloaded: that
    # is normal operation (it reloads on demand), not a reason to report the bot unhealthy.
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    reference = str(bert_checkpoint)
    bot = StandInBot(registry, reference)
    try:
        assert bot_state(bot) == {"connected": True, "default_model_loaded": False, **UNSHARDED}
        await registry.get(reference)
        assert bot_state(bot) == {"connected": True, "default_model_loaded": True, **UNSHARDED}
        assert registry.evict(reference)  # what loading a server's other checkpoint does
        assert registry.loaded == []
        assert bot_state(bot) == {"connected": True, "default_model_loaded": True, **UNSHARDED}
    finally:
        await registry.aclose()


def test_bot_state_before_setup_hook_has_no_service(tmp_path: Path, bert_checkpoint: Path) -> None:
    from bot.adapters.discord.bot import FillMaskBot
    from tests.discord_helpers import make_settings

    bot = FillMaskBot(make_settings(tmp_path, bert_checkpoint))
    assert bot_state(bot) == {"connected": False, "default_model_loaded": False, **UNSHARDED}


def test_stale_missing_and_broken_files_are_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    ok, reason = check_health(path, 45)
    assert not ok and "no health file" in reason
    assert health_main(["--file", str(path)]) == 1

    now = time.time()
    write_heartbeat(path, {"connected": True, "default_model_loaded": True, "default_model_progress": None}, now=now - 100)
    ok, reason = check_health(path, 45)
    assert not ok and "stale" in reason and "100 s" in reason
    assert health_main(["--file", str(path)]) == 1  # default max age: 3 x 15 s
    assert health_main(["--file", str(path), "--max-age", "200"]) == 0

    write_heartbeat(path, {"connected": True, "default_model_loaded": True, "default_model_progress": None}, now=now - 10)
    assert check_health(path, 45)[0]
    assert health_main(["--file", str(path)]) == 0

    write_heartbeat(path, {"connected": False, "default_model_loaded": False})
    ok, reason = check_health(path, 45)
    assert not ok and "not connected" in reason and "loading" in reason

    for garbage in ("", "{", "[]", '{"connected": true}', '{"time": "soon"}'):
        path.write_text(garbage)
        ok, reason = check_health(path, 45)
        assert not ok and "not a heartbeat" in reason, garbage


def test_health_main_reads_health_file_and_interval_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "beat.json"
    write_heartbeat(path, {"connected": True, "default_model_loaded": True, "default_model_progress": None}, now=time.time() - 20)
    assert health_main([], env={"HEALTH_FILE": str(path)}) == 0  # 20 s < 3 x 15 s
    assert capsys.readouterr().out.startswith("healthy")
    assert health_main([], env={"HEALTH_FILE": str(path), "HEALTH_INTERVAL": "5"}) == 1  # 20 s > 3 x 5 s
    assert "stale" in capsys.readouterr().out
    # Docker reserves exit code 2 of a health check: bad settings or arguments give 1.
    assert health_main([], env={"HEALTH_FILE": str(path), "HEALTH_INTERVAL": "soon"}) == 1
    assert "HEALTH_INTERVAL" in capsys.readouterr().out
    assert health_main(["--max-age", "-1", "--file", str(path)], env={}) == 1
    assert health_main(["--bogus"], env={}) == 1
    assert health_main(["--help"], env={}) == 0


async def test_a_failed_write_is_logged_once_and_the_heartbeat_keeps_going(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    calls = 0

    def state() -> dict[str, bool | None]:
        nonlocal calls
        calls += 1
        return {"connected": True, "default_model_loaded": True, "default_model_progress": None}

    with caplog.at_level(logging.WARNING, logger="bot.adapters.health"):
        task = asyncio.create_task(run_heartbeat(blocker / "health.json", BEAT, state))
        await until(lambda: calls >= 4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.adapters.health"]
    assert len(warnings) == 1 and "cannot write the health file" in warnings[0]  # once, not every beat


def test_python_m_bot_health_module_runs_without_importing_torch(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HEALTH_FILE": str(path)}
    env.pop("HEALTH_INTERVAL", None)
    run = lambda *args: subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)  # noqa: E731

    missing = run("-m", "bot.adapters.health")
    assert missing.returncode == 1 and "no health file" in missing.stdout
    write_heartbeat(path, {"connected": True, "default_model_loaded": True, "default_model_progress": None})
    fine = run("-m", "bot.adapters.health")
    assert fine.returncode == 0 and fine.stdout.startswith("healthy: connected"), fine.stderr
    write_heartbeat(path, {"connected": True, "default_model_loaded": True, "shards": [2, 3], "shard_count": 4})
    sharded = run("-m", "bot.adapters.health")
    assert sharded.returncode == 0 and sharded.stdout.startswith("healthy: shards 2,3 of 4, connected"), sharded.stderr
    # The check runs every 30 s next to the bot: it must not pull in torch (~1.5 s, ~200 MB).
    probe = run(
        "-c",
        "import sys, bot.adapters.health; bot.adapters.health.health_main([]); print(sorted({'torch', 'discord'} & set(sys.modules)))",
    )
    assert probe.stdout.splitlines()[-1] == "[]", probe.stdout + probe.stderr


# -- shards -------------------------------------------------------------------------------------


class ShardedStandIn:
    """A HealthSource with the optional shard methods (what FillMaskBot adds when sharded)."""

    def __init__(self, shard_ids: object, shard_count: object) -> None:
        self.shard_ids, self.shard_count = shard_ids, shard_count  # as discord.py's attributes: not read
        self.connected = True

    def is_ready(self) -> bool:
        return self.connected

    def is_closed(self) -> bool:
        return False

    def default_model_progress(self) -> str | None:
        return None

    def default_model_loaded(self) -> bool:
        return True

    def health_shard_ids(self) -> object:
        return self.shard_ids

    def health_shard_count(self) -> object:
        return self.shard_count


class OnlyShardCount(StandInBot):
    def __init__(self, count: int | None) -> None:
        self.ready, self.closed, self.count = True, False, count

    def default_model_loaded(self) -> bool:
        return True

    def default_model_progress(self) -> str | None:
        return None

    def health_shard_count(self) -> int | None:
        return self.count


async def test_the_heartbeat_names_this_processs_shards_and_the_check_prints_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = ShardedStandIn((1, 0), 2)
    assert bot_state(bot) == {
        "connected": True,
        "default_model_loaded": True,
        "default_model_progress": None,
        "shards": [0, 1],
        "shard_count": 2,
    }
    path = tmp_path / "health-0.json"  # each process has its own HEALTH_FILE
    heartbeat = asyncio.create_task(run_heartbeat(path, BEAT, lambda: bot_state(bot)))
    try:
        await until(lambda: healthy(path))
        data = json.loads(path.read_text())
        assert data["shards"] == [0, 1] and data["shard_count"] == 2
        ok, reason = check_health(path, MAX_AGE)
        assert ok and reason.startswith("healthy: shards 0,1 of 2, connected, default model loaded, heartbeat "), reason
        assert health_main(["--file", str(path), "--max-age", str(MAX_AGE)]) == 0
        assert capsys.readouterr().out.startswith("healthy: shards 0,1 of 2, connected")

        bot.connected = False  # shard 0 or 1 lost its connection: the check says which process
        await until(lambda: not healthy(path))
        assert check_health(path, MAX_AGE)[1] == "unhealthy: shards 0,1 of 2: not connected to Discord"
        assert health_main(["--file", str(path), "--max-age", str(MAX_AGE)]) == 1
        assert capsys.readouterr().out == "unhealthy: shards 0,1 of 2: not connected to Discord\n"
    finally:
        heartbeat.cancel()
        with pytest.raises(asyncio.CancelledError):
            await heartbeat
    stopped_at = json.loads(path.read_text())["time"]
    ok, reason = check_health(path, MAX_AGE, now=stopped_at + MAX_AGE + 1)
    assert not ok and reason.startswith("unhealthy: shards 0,1 of 2: the health file is stale ("), reason


def test_shard_fields_from_sources_with_one_method_or_odd_values() -> None:
    assert bot_state(OnlyShardCount(8))["shards"] is None and bot_state(OnlyShardCount(8))["shard_count"] == 8
    assert bot_state(OnlyShardCount(None))["shard_count"] is None
    # Unsharded, as a source may say it: nothing, an empty list, a count of 0 (auto, not known yet).
    for ids, count in ((None, None), ((), None), ([], 0), ([3, 3, 1], None)):
        state = bot_state(ShardedStandIn(ids, count))
        assert state["shard_count"] is None
        assert state["shards"] == ([1, 3] if ids == [3, 3, 1] else None)
    # Not shard numbers: left out rather than written as something the check would misread.
    for ids, count in (("0,1", "2"), ([0, -1], -2), ([True], True), ({0: "a"}, 2.5), (7, [2])):
        state = bot_state(ShardedStandIn(ids, count))
        assert state["shards"] is None and state["shard_count"] is None, (ids, count)


def test_the_check_reads_files_with_without_or_with_broken_shard_fields(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    now = time.time()

    def beat(**extra: object) -> tuple[bool, str]:
        path.write_text(json.dumps({"time": now, "connected": True, "default_model_loaded": True, "pid": 7, **extra}))
        return check_health(path, 45, now=now)

    # Written by a bot from before the shard fields: unsharded, as before.
    assert beat() == (True, "healthy: connected, default model loaded, heartbeat 0 s old")
    assert beat(shards=None, shard_count=None) == (True, "healthy: connected, default model loaded, heartbeat 0 s old")
    assert beat(shards=[0, 1], shard_count=2) == (
        True,
        "healthy: shards 0,1 of 2, connected, default model loaded, heartbeat 0 s old",
    )
    assert beat(shards=[3], shard_count=4)[1].startswith("healthy: shard 3 of 4, connected")
    assert beat(shards=None, shard_count=4)[1].startswith("healthy: all 4 shards, connected")
    assert beat(shards=[5, 6], shard_count=None)[1].startswith("healthy: shards 5,6, connected")
    # Broken shard fields do not make a live bot unhealthy: they are left out of the verdict.
    for shards, count in (("0,1", "2"), ([0, "1"], 0), ({"0": 1}, True), ([-1], -1), (1, [2])):
        assert beat(shards=shards, shard_count=count) == (True, "healthy: connected, default model loaded, heartbeat 0 s old")
    path.write_text(json.dumps({"time": now, "connected": False, "default_model_loaded": False, "shards": [0], "shard_count": 1}))
    ok, reason = check_health(path, 45, now=now)
    assert not ok and reason.startswith("unhealthy: shard 0 of 1: not connected to Discord; the default model is still loading")

    # write_heartbeat normalises what it is given the same way.
    write_heartbeat(path, {"connected": True, "default_model_loaded": True, "shards": (2, 0), "shard_count": 3})
    data = json.loads(path.read_text())
    assert data["shards"] == [0, 2] and data["shard_count"] == 3
    write_heartbeat(path, {"connected": True, "default_model_loaded": True})
    data = json.loads(path.read_text())
    assert "shards" in data and data["shards"] is None and data["shard_count"] is None


def test_describe_shards() -> None:
    assert describe_shards(None, None) == ""
    assert describe_shards([], None) == ""
    assert describe_shards([0, 1], 2) == "shards 0,1 of 2"
    assert describe_shards([7], 16) == "shard 7 of 16"
    assert describe_shards(None, 16) == "all 16 shards"
    assert describe_shards(None, 1) == "shard 0 of 1"
    assert describe_shards([4, 5], None) == "shards 4,5"


# -- settings ----------------------------------------------------------------------------------


def test_settings_health_and_log_file() -> None:
    defaults = Settings.from_env({})
    assert defaults.health_file == DEFAULT_HEALTH_FILE == Path("data/health.json")
    assert defaults.health_interval == DEFAULT_HEALTH_INTERVAL == 15.0
    assert defaults.log_file is None
    custom = Settings.from_env({"HEALTH_FILE": "/data/health.json", "HEALTH_INTERVAL": "2.5", "LOG_FILE": "/data/bot.log"})
    assert custom.health_file == Path("/data/health.json")
    assert custom.health_interval == 2.5
    assert custom.log_file == Path("/data/bot.log")
    for bad in ("0", "-1", "soon", "nan", "inf"):
        with pytest.raises(ConfigError, match="HEALTH_INTERVAL"):
            Settings.from_env({"HEALTH_INTERVAL": bad})


def test_env_example_documents_the_new_keys_without_overriding_the_image() -> None:
    text = (ROOT / ".env.example").read_text()
    for key in ("HEALTH_FILE", "HEALTH_INTERVAL", "LOG_FILE"):
        assert key in text
    # `docker run --env-file .env` would override the image's HEALTH_FILE=/data/health.json with
    # an uncommented line, even an empty one: the example leaves it commented out.
    assert not any(line.startswith("HEALTH_FILE=") for line in text.splitlines())


# -- the log file ------------------------------------------------------------------------------


def test_log_file_gets_the_console_format_and_rotates(tmp_path: Path) -> None:
    logger = logging.getLogger("test-health-log-file")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    path = tmp_path / "logs" / "bot.log"
    handler = configure_log_file(path, logger=logger)
    try:
        assert handler is not None
        assert configure_log_file(path, logger=logger) is handler  # once per file
        assert len(logger.handlers) == 1
        assert handler.maxBytes == LOG_FILE_MAX_BYTES == 5 * 1024 * 1024  # pyright: ignore[reportAttributeAccessIssue]
        assert handler.backupCount == LOG_FILE_BACKUPS == 3  # pyright: ignore[reportAttributeAccessIssue]
        assert handler.formatter is not None and handler.formatter._fmt == LOG_FORMAT
        logger.info("connected as %s", "FillMask#0001")
        logger.debug("not at INFO")
        handler.flush()
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1
        assert lines[0].endswith(" INFO    test-health-log-file: connected as FillMask#0001")

        handler.maxBytes = 200  # pyright: ignore[reportAttributeAccessIssue]
        for n in range(50):
            logger.info("line %d %s", n, "x" * 50)
        handler.flush()
        names = sorted(p.name for p in path.parent.iterdir())
        assert names == ["bot.log", "bot.log.1", "bot.log.2", "bot.log.3"]
    finally:
        for h in list(logger.handlers):
            logger.removeHandler(h)
            h.close()


def test_an_unwritable_log_file_is_reported_and_the_bot_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    logger = logging.getLogger("test-health-log-file-unwritable")
    with caplog.at_level(logging.WARNING, logger="bot.logs"):
        assert configure_log_file(blocker / "bot.log", logger=logger) is None
    assert logger.handlers == []
    assert "cannot write the log file" in caplog.text


async def test_the_real_bot_is_unhealthy_while_loading_then_healthy_then_stale(tmp_path: Path, bert_checkpoint: Path) -> None:
    """The whole chain: FillMaskBot's heartbeat task, through a fake Discord, read by check_health."""
    from bot.adapters.discord.bot import FillMaskBot
    from bot.inference.registry import ModelRegistry
    from tests.discord_helpers import SlowLoader, make_settings
    from tests.fakediscord import FakeDiscord, start_bot, stop_bot

    settings = make_settings(tmp_path, bert_checkpoint, health_interval=0.1)
    health = settings.health_file
    async with FakeDiscord():
        bot = FillMaskBot(settings, registry=ModelRegistry(SlowLoader(1.5), max_loaded=1))
        await start_bot(bot)
        try:
            await asyncio.sleep(0.3)
            healthy, reason = check_health(health, max_age=1.0)
            assert not healthy and "loading" in reason
            await bot.registry.get(bot.service.default_model)
            await asyncio.sleep(0.3)
            healthy, reason = check_health(health, max_age=1.0)
            assert healthy, reason
        finally:
            await stop_bot(bot)
    await asyncio.sleep(1.2)
    healthy, reason = check_health(health, max_age=1.0)
    assert not healthy and "stale" in reason
