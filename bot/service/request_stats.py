"""Request statistics for the owner's ``stats`` command: counts and recent latency percentiles."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bot.i18n import _

WINDOW_SECONDS = 3600.0
# Bounds memory under any load: percentiles over the newest samples of the hour.
MAX_SAMPLES = 100_000


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50: float | None
    p95: float | None


class RequestStats:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.served = 0
        self.failed = 0
        self._samples: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)

    def record(self, latency: float) -> None:
        self.served += 1
        self._samples.append((self._clock(), latency))

    def record_failure(self) -> None:
        self.failed += 1

    @property
    def uptime(self) -> float:
        return self._clock() - self.started

    def latency(self, window: float = WINDOW_SECONDS) -> LatencySummary:
        cutoff = self._clock() - window
        while self._samples and self._samples[0][0] < cutoff:
            self._samples.popleft()
        values = sorted(latency for _, latency in self._samples)
        return LatencySummary(len(values), percentile(values, 50), percentile(values, 95))


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def format_duration(seconds: float) -> str:
    """``seconds`` as "2 d 3 h 5 min" (or "42 s"), in the current locale: for a reply being built."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = (
        [_("{days} d", days=days)] * bool(days)
        + [_("{hours} h", hours=hours)] * bool(hours)
        + [_("{minutes} min", minutes=minutes)] * bool(minutes)
    )
    return " ".join(parts) or _("{seconds} s", seconds=secs)
