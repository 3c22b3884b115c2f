"""Faults the stand-in injects: failures, truncated and stalled bodies, slow transfers.

Each fault matches requests by a regex searched in the (decoded) path, optionally by method,
and applies ``times`` times (None: until cleared). A request takes at most one fault of each
kind, and taking one is atomic, so concurrent downloads never share a single ``times=1``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["fail", "cut_short", "stall"]


@dataclass
class Fault:
    kind: FaultKind
    path: re.Pattern[str]
    method: str | None
    times: int | None  # how many more requests it applies to; None: all of them
    status: int = 0  # fail
    retry_after: int | None = None  # fail
    after_bytes: int = 0  # cut_short
    seconds: float = 0.0  # stall

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path.search(path) is not None


@dataclass(frozen=True)
class Throttle:
    bytes_per_second: int
    path: re.Pattern[str]


class Faults:
    """The faults armed on one stand-in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._throttle: Throttle | None = None

    def add(self, fault: Fault) -> Fault:
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, kind: FaultKind, method: str, path: str) -> Fault | None:
        """The first armed fault of ``kind`` for this request, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        """Faults not used up yet (a test can check that its fault was hit)."""
        with self._lock:
            return list(self._faults)

    def set_throttle(self, bytes_per_second: int | None, path: str) -> None:
        if bytes_per_second is not None and bytes_per_second < 1:
            raise ValueError("bytes_per_second must be positive (or None to stop throttling)")
        with self._lock:
            self._throttle = None if bytes_per_second is None else Throttle(bytes_per_second, re.compile(path))

    def rate_for(self, path: str) -> int | None:
        with self._lock:
            throttle = self._throttle
        return throttle.bytes_per_second if throttle and throttle.path.search(path) else None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._throttle = None
