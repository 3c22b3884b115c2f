"""A heartbeat file the running bot keeps fresh, and the check that reads it.

The bot writes ``HEALTH_FILE`` (default ``data/health.json``; ``/data/health.json`` in the
Docker image) every ``HEALTH_INTERVAL`` seconds::

    {"time": 1732240000.5, "connected": true, "default_model_loaded": true, "pid": 7,
     "shards": [0, 1], "shard_count": 2}

``shards`` (this process's shard ids) and ``shard_count`` (the bot's total) are ``null`` when
the bot is not sharded; a file written before they existed reads as unsharded. Each process of a
sharded bot writes its own ``HEALTH_FILE``, and the check names the shards it is about.

``python -m bot health`` (Docker's HEALTHCHECK) exits 0 only if that file is fresh (younger
than 3 × ``HEALTH_INTERVAL``), the bot is connected to Discord and its default checkpoint has
loaded; otherwise it prints why and exits 1.

This module imports neither discord.py nor torch (nor does :mod:`bot.settings`): the check
runs in its own short-lived process every 30 s next to the bot, and must stay quick and small.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from bot.settings import DEFAULT_HEALTH_INTERVAL, ConfigError, Settings

log = logging.getLogger(__name__)

# The file may miss this many beats before it counts as stale.
STALE_AFTER_INTERVALS = 3


def default_max_age(interval: float) -> float:
    return STALE_AFTER_INTERVALS * interval


# -- the bot's side ---------------------------------------------------------------------------


class HealthSource(Protocol):
    """What the heartbeat reports on: the running ``FillMaskBot``."""

    def is_ready(self) -> bool: ...

    def is_closed(self) -> bool: ...

    def default_model_progress(self) -> str | None:
        """How far the default checkpoint's load has got (``downloading camembert-base: 210 of 445 MB``), while it loads."""
        ...

    def default_model_loaded(self) -> bool:
        """Loaded once since the start (a later eviction to make room is normal operation)."""
        ...


class ShardedHealthSource(HealthSource, Protocol):
    """A :class:`HealthSource` that also says which shards it runs. Both methods are optional:
    :func:`bot_state` calls each one the source has, and reports ``None`` for a missing one.

    (Not ``shard_ids``/``shard_count``: discord.py's clients have attributes of those names.)
    """

    def health_shard_ids(self) -> Sequence[int] | None:
        """This process's shard ids; ``None`` (or empty) when the bot is not sharded."""
        ...

    def health_shard_count(self) -> int | None:
        """The bot's total shard count; ``None`` when not sharded (or not known yet: SHARD_COUNT=auto before login)."""
        ...


def bot_state(bot: HealthSource) -> dict[str, Any]:
    """``connected``, ``default_model_loaded``, the default model's load progress, ``shards`` and
    ``shard_count`` of a running bot."""
    shard_ids = getattr(bot, "health_shard_ids", None)
    shard_count = getattr(bot, "health_shard_count", None)
    return {
        "connected": bool(bot.is_ready()) and not bot.is_closed(),
        "default_model_loaded": bot.default_model_loaded(),
        "default_model_progress": bot.default_model_progress(),
        "shards": _shard_list(shard_ids()) if callable(shard_ids) else None,
        "shard_count": _shard_total(shard_count()) if callable(shard_count) else None,
    }


def _shard_list(value: object) -> list[int] | None:
    """Sorted shard ids from ``value``; ``None`` for nothing, an empty list, or anything but shard numbers."""
    if not isinstance(value, Iterable) or isinstance(value, str | bytes | Mapping):
        return None
    ids: set[int] = set()
    for item in value:
        if not isinstance(item, int) or isinstance(item, bool) or item < 0:
            return None
        ids.add(item)
    return sorted(ids) or None


def _shard_total(value: object) -> int | None:
    """A shard count from ``value``: a positive int, else ``None``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def describe_shards(shards: Sequence[int] | None, shard_count: int | None) -> str:
    """``shards 0,1 of 2``, ``shard 3 of 4``, ``all 4 shards``, ``shards 0,1``; ``""`` when not sharded."""
    if shards:
        ids = ",".join(str(i) for i in shards)
        noun = "shard" if len(shards) == 1 else "shards"
        return f"{noun} {ids} of {shard_count}" if shard_count else f"{noun} {ids}"
    if shard_count:
        return f"all {shard_count} shards" if shard_count > 1 else "shard 0 of 1"
    return ""


def write_heartbeat(path: Path, state: Mapping[str, Any], *, now: float | None = None) -> None:
    """Write ``state`` plus ``time`` and ``pid`` to ``path`` atomically (blocking).

    A reader sees the old file or the new one, never half of one: the JSON goes to a temporary
    file in the same directory, which then replaces ``path``.
    """
    payload = {
        "time": time.time() if now is None else now,
        "connected": bool(state.get("connected", False)),
        "default_model_loaded": bool(state.get("default_model_loaded", False)),
        "default_model_progress": state.get("default_model_progress") or None,
        "pid": os.getpid(),
        "shards": _shard_list(state.get("shards")),
        "shard_count": _shard_total(state.get("shard_count")),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.chmod(temp_name, 0o644)  # mkstemp makes it 0600; a monitoring user may read it
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        raise


async def run_heartbeat(path: Path, interval: float, state: Callable[[], dict[str, Any]]) -> None:
    """Write the heartbeat file now and then every ``interval`` seconds, until cancelled.

    ``state()`` is called on the event loop; the file is written on a worker thread. A failed
    write (disk full, read-only volume) is logged and retried at the next beat: the bot keeps
    serving, and the check reports the file as stale.
    """
    if interval <= 0:
        raise ValueError("interval must be positive")
    failing = False
    while True:
        try:
            await asyncio.to_thread(write_heartbeat, path, state())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not failing:  # once per outage, not every beat
                log.warning("cannot write the health file %s: %s", path, exc)
            failing = True
        else:
            if failing:
                log.info("health file %s written again", path)
            failing = False
        await asyncio.sleep(interval)


# -- the check --------------------------------------------------------------------------------


def check_health(
    path: Path, max_age: float = default_max_age(DEFAULT_HEALTH_INTERVAL), *, now: float | None = None
) -> tuple[bool, str]:
    """``(healthy, reason)`` from the heartbeat file at ``path``."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False, f"unhealthy: no health file at {path} (the bot is not running, has not started yet, or HEALTH_FILE differs)"
    except OSError as exc:
        return False, f"unhealthy: cannot read the health file {path}: {exc.strerror or exc}"
    try:
        data = json.loads(raw)
        written = float(data["time"])
    except (ValueError, KeyError, TypeError):
        return False, f"unhealthy: the health file {path} is not a heartbeat written by the bot"
    # Written by an older bot, or not sharded: no shards to name.
    shards = describe_shards(_shard_list(data.get("shards")), _shard_total(data.get("shard_count")))
    about = f"{shards}: " if shards else ""
    age = (time.time() if now is None else now) - written
    if age > max_age:
        return (
            False,
            f"unhealthy: {about}the health file is stale ({age:.0f} s old, limit {max_age:.0f} s): the bot is stuck or stopped",
        )
    problems = []
    if data.get("connected") is not True:
        problems.append("not connected to Discord")
    if data.get("default_model_loaded") is not True:
        progress = data.get("default_model_progress")
        if isinstance(progress, str) and progress:
            problems.append(f"the default model is still loading ({progress})")
        else:
            problems.append("the default model is still loading (or failed to load: see the logs)")
    if problems:
        return False, f"unhealthy: {about}" + "; ".join(problems)
    about = f"{shards}, " if shards else ""
    return True, f"healthy: {about}connected, default model loaded, heartbeat {max(age, 0.0):.0f} s old"


def _positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {raw!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0 (got {raw!r})")
    return value


def health_main(argv: list[str], *, env: Mapping[str, str] | None = None) -> int:
    """``python -m bot health``: print the verdict; exit 0 if healthy, 1 if not.

    Never 2: Docker reserves that exit code of a HEALTHCHECK.
    """
    parser = argparse.ArgumentParser(
        prog="python -m bot health",
        description="Exit 0 if the running bot's health file is fresh, it is connected and its default model has loaded; 1 otherwise.",
    )
    parser.add_argument("--file", type=Path, help="the health file (default: HEALTH_FILE, else data/health.json)")
    parser.add_argument(
        "--max-age", type=_positive_seconds, help="seconds after which the file is stale (default: 3 x HEALTH_INTERVAL)"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help exits 0; a usage error must not exit 2
        return 0 if exc.code in (0, None) else 1
    try:
        # As the bot reads them: the environment, then .env (real environment variables win).
        settings = Settings.from_env(env)
    except ConfigError as exc:
        print(f"unhealthy: configuration error: {exc}")
        return 1
    healthy, reason = check_health(args.file or settings.health_file, args.max_age or default_max_age(settings.health_interval))
    print(reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(health_main(sys.argv[1:]))
