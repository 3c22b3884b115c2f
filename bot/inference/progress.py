"""Progress of a checkpoint load, reported from the loader thread and read by whoever waits.

The loader calls a :data:`ProgressCallback` with immutable :class:`LoadProgress` snapshots;
readers on the event loop poll the latest one (a single reference assignment, so no lock is
needed), which also throttles chat edits to the reader's pace.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

STAGES = ("checking", "downloading", "loading weights", "warming up", "ready")


@dataclass(frozen=True, slots=True)
class LoadProgress:
    stage: str
    elapsed: float
    done_bytes: int = 0
    total_bytes: int = 0
    note: str = ""  # e.g. "retrying" after a failed download

    def describe(self) -> str:
        """``downloading 120.4 of 445.0 MB (27 %) · 12 s``, or ``loading weights · 3 s``."""
        text = self.stage
        if self.stage == "downloading" and self.total_bytes:
            percent = 100 * self.done_bytes / self.total_bytes
            text += f" {self.done_bytes / 1e6:.1f} of {self.total_bytes / 1e6:.1f} MB ({percent:.0f} %)"
        if self.note:
            text += f" ({self.note})"
        return f"{text} · {self.elapsed:.0f} s"


ProgressCallback = Callable[[LoadProgress], None]


class ProgressTracker:
    """Turns ``stage(...)`` calls into timestamped snapshots for a callback (or nobody)."""

    def __init__(self, callback: ProgressCallback | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._callback = callback
        self._clock = clock
        self._started = clock()

    def stage(self, name: str, done_bytes: int = 0, total_bytes: int = 0, *, note: str = "") -> None:
        if self._callback is not None:
            self._callback(LoadProgress(name, self._clock() - self._started, done_bytes, total_bytes, note))
