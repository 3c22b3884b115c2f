"""What the stand-in was asked, and what it answered."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

# Request headers worth asserting on (names lower-cased); others are not kept.
HEADERS_OF_INTEREST = (
    "authorization",
    "range",
    "accept-encoding",
    "user-agent",
    "x-hf-download-counter",
    "if-none-match",
)


@dataclass
class LoggedRequest:
    """One request. ``status`` is None until the headers went out; ``bytes_sent`` counts body bytes."""

    method: str
    path: str  # decoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int | None = None
    bytes_sent: int = 0
    fault: str | None = None  # the fault injected into this answer, if any
    started: float = field(default_factory=time.monotonic)

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}" + (f" [{self.fault}]" if self.fault else "")


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def append(self, entry: LoggedRequest) -> LoggedRequest:
        with self._lock:
            self._entries.append(entry)
        return entry

    def snapshot(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def find(
        self, *, method: str | None = None, path: str | None = None, status: int | None = None, fault: str | None = None
    ) -> list[LoggedRequest]:
        """Requests matching every filter given; ``path`` is a regex searched in the decoded path."""
        pattern = re.compile(path) if path is not None else None
        return [
            entry
            for entry in self.snapshot()
            if (method is None or entry.method == method)
            and (pattern is None or pattern.search(entry.path))
            and (status is None or entry.status == status)
            and (fault is None or entry.fault == fault)
        ]
