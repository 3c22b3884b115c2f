"""Progress of a checkpoint load, reported from the loader thread and read by whoever waits.

The loader calls a :data:`ProgressCallback` with immutable :class:`LoadProgress` snapshots;
readers on the event loop poll the latest one (a single reference assignment, so no lock is
needed), which also throttles chat edits to the reader's pace.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.i18n import N_, Text, _, with_decimal_mark

STAGES = ("checking", "downloading", "loading weights", "warming up", "ready")
# How each stage is shown (``stage`` itself stays the English key the readers compare).
_STAGE_LABELS = {
    "checking": N_("checking"),
    "downloading": N_("downloading"),
    "loading weights": N_("loading weights"),
    "warming up": N_("warming up"),
    "ready": N_("ready"),
}


@dataclass(frozen=True, slots=True)
class LoadProgress:
    stage: str
    elapsed: float
    done_bytes: int = 0
    total_bytes: int = 0
    note: Text = ""  # e.g. "retrying" after a failed download (a message, translated when shown)

    def describe(self) -> str:
        """``downloading 120.4 of 445.0 MB (27 %) · 12 s``, or ``loading weights · 3 s``, in the current locale."""
        seconds = f"{self.elapsed:.0f}"
        if self.stage == "downloading" and self.total_bytes:
            done = with_decimal_mark(f"{self.done_bytes / 1e6:.1f}")
            total = with_decimal_mark(f"{self.total_bytes / 1e6:.1f}")
            percent = f"{100 * self.done_bytes / self.total_bytes:.0f}"
            if self.note:
                return _(
                    "downloading {done_mb} of {total_mb} MB ({percent} %) ({note}) · {seconds} s",
                    done_mb=done,
                    total_mb=total,
                    percent=percent,
                    note=self.note,
                    seconds=seconds,
                )
            return _(
                "downloading {done_mb} of {total_mb} MB ({percent} %) · {seconds} s",
                done_mb=done,
                total_mb=total,
                percent=percent,
                seconds=seconds,
            )
        label = self.stage
        if self.stage in _STAGE_LABELS:
            label = _(_STAGE_LABELS[self.stage])
        if self.note:
            return _("{stage} ({note}) · {seconds} s", stage=label, note=self.note, seconds=seconds)
        return _("{stage} · {seconds} s", stage=label, seconds=seconds)


ProgressCallback = Callable[[LoadProgress], None]


class ProgressTracker:
    """Turns ``stage(...)`` calls into timestamped snapshots for a callback (or nobody)."""

    def __init__(self, callback: ProgressCallback | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._callback = callback
        self._clock = clock
        self._started = clock()

    def stage(self, name: str, done_bytes: int = 0, total_bytes: int = 0, *, note: Text = "") -> None:
        if self._callback is not None:
            self._callback(LoadProgress(name, self._clock() - self._started, done_bytes, total_bytes, note))
