"""Prometheus metrics of one bot process, served over HTTP on ``METRICS_HOST:METRICS_PORT``.

Each process (one per group of shards) serves its own metrics on its own port; every series is
labelled so that Prometheus can sum them across processes:

``fillmask_requests_total{shard,command,outcome}`` (counter)
    Requests answered, by how they ended: one of :data:`OUTCOMES`.
``fillmask_request_seconds{shard,command}`` (histogram, 10 ms .. 60 s)
    How long requests took, from the command to the reply.
``fillmask_queue_depth{checkpoint}`` (gauge)
    Requests waiting for each loaded checkpoint.
``fillmask_loaded_checkpoint_bytes{checkpoint}``, ``fillmask_loaded_checkpoints`` (gauges)
    The checkpoints in memory and the memory each takes.
``fillmask_shard_latency_seconds{shard}`` (gauge)
    Gateway heartbeat latency of each shard; absent while unknown (no heartbeat acknowledged yet).
``fillmask_guilds{shard}`` (gauge)
    Servers on each shard.
``fillmask_process_shard{shard}``, ``fillmask_shard_count`` (gauges)
    The shards this process runs (value 1 each) and the bot's total shard count; both absent
    when the bot is not sharded.

The ``shard`` label is the shard id as a string (``"0"``); requests that came from a direct
message, which belongs to no server, have ``shard="dm"`` (:data:`DM_SHARD`). An unsharded bot's
servers are on shard ``"0"``, as discord.py counts them.

The last five families are read when Prometheus scrapes, from one snapshot
(:class:`MetricsSnapshot`) that a callback returns. The callback runs on the event loop that
called :meth:`BotMetrics.start`, so it may read the bot's state without locks; it must be quick
and must not block. If it raises, or takes longer than ``snapshot_timeout``, the scrape still
answers, without those families, and the failure is logged once until it recovers.

This module imports neither discord.py nor torch: the Discord adapter feeds it plain data.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import hashlib
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal, Protocol, get_args
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

Outcome = Literal["ok", "invalid", "busy", "limited", "failed"]
# ok: answered. invalid: the user's request was wrong (no mask, bad top-k, unknown checkpoint...).
# busy: refused because a queue was full. limited: refused by a cooldown or rate limit.
# failed: an error on our side (the model failed, Discord failed, a bug).
OUTCOMES: Final[tuple[str, ...]] = get_args(Outcome)

DM_SHARD: Final = "dm"  # the shard label of a request from a direct message

# 10 ms (a cached answer) .. 60 s (a request queued behind a checkpoint loading from the Hub).
LATENCY_BUCKETS: Final[tuple[float, ...]] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)

# Checkpoint names are chosen by users: longer label values are cut (and made unique again).
MAX_LABEL_CHARS: Final = 200

_CONTROL_CHARACTERS: Final = {c: "\ufffd" for c in (*range(32), 127) if chr(c) not in "\n\t"}

DEFAULT_SNAPSHOT_TIMEOUT: Final = 2.0  # seconds a scrape waits for the snapshot from the event loop


class MetricsServerError(Exception):
    """The metrics server could not start; the message says why, in a form fit for the log."""


# -- the snapshot read at scrape time ---------------------------------------------------------


class LoadedCheckpoint(Protocol):
    """A loaded checkpoint; :class:`bot.inference.types.LoadedModel` is one, as is :class:`CheckpointSnapshot`."""

    @property
    def checkpoint(self) -> str: ...

    @property
    def memory_bytes(self) -> int: ...

    @property
    def queue_depth(self) -> int: ...


@dataclass(frozen=True, slots=True)
class CheckpointSnapshot:
    checkpoint: str
    memory_bytes: int
    queue_depth: int


@dataclass(frozen=True, slots=True)
class ShardSnapshot:
    shard: int
    guilds: int
    latency_seconds: float | None = None  # None, NaN or infinite: unknown (the series is left out)


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """What the process looks like now, as one scrape reports it."""

    checkpoints: Sequence[LoadedCheckpoint] = ()  # the loaded checkpoints (e.g. ModelRegistry.loaded_models())
    shards: Sequence[ShardSnapshot] = ()  # the shards this process runs, connected or not
    shard_ids: Sequence[int] = ()  # this process's shard ids; () when the bot is not sharded
    shard_count: int | None = None  # the bot's total shard count; None when not sharded (or not known yet)


SnapshotCallback = Callable[[], MetricsSnapshot]


def shard_label(shard: int | None) -> str:
    """The ``shard`` label value: the id as a string, :data:`DM_SHARD` for ``None`` (a direct message)."""
    return DM_SHARD if shard is None else str(int(shard))


def label_value(value: object, limit: int = MAX_LABEL_CHARS) -> str:
    """``value`` as a label value that cannot break the exposition text or blow up its size.

    prometheus_client escapes quotes, backslashes and newlines itself. This also replaces what
    cannot be encoded as UTF-8 (lone surrogates) with ``?``, control characters other than
    newline and tab (``\\r``, NUL...) with U+FFFD, and cuts values over ``limit`` characters;
    a changed value ends with a hash of the original, so two long names stay two series.
    """
    text = str(value)
    clean = text.encode("utf-8", "replace").decode("utf-8").translate(_CONTROL_CHARACTERS)
    if clean == text and len(clean) <= limit:
        return clean
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{clean[: max(limit - 10, 0)]}…~{digest}"


# -- the collector ----------------------------------------------------------------------------


class _FailureLog:
    """Logs a failing part once, and its recovery once, however many scrapes see it (thread-safe)."""

    def __init__(self) -> None:
        self._failing: set[str] = set()
        self._lock = threading.Lock()

    def failed(self, what: str, exc: BaseException) -> None:
        with self._lock:
            first = what not in self._failing
            self._failing.add(what)
        if first:
            log.warning("metrics: %s failed, left out of the scrapes until it works again: %r", what, exc, exc_info=exc)

    def worked(self, what: str) -> None:
        with self._lock:
            recovered = what in self._failing
            self._failing.discard(what)
        if recovered:
            log.info("metrics: %s works again", what)


def _gauge(name: str, documentation: str, labels: Sequence[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class _SnapshotCollector:
    """The scrape-time families, from ``snapshot()`` (run on ``loop`` when one is set)."""

    # name -> (help, label names); the order is the exposition's.
    FAMILIES: Final = {
        "fillmask_queue_depth": ("Requests waiting for each loaded checkpoint.", ("checkpoint",)),
        "fillmask_loaded_checkpoint_bytes": ("Memory each loaded checkpoint takes, in bytes.", ("checkpoint",)),
        "fillmask_loaded_checkpoints": ("Checkpoints loaded in this process.", ()),
        "fillmask_shard_latency_seconds": ("Gateway heartbeat latency of each shard (absent while unknown).", ("shard",)),
        "fillmask_guilds": ("Servers on each shard.", ("shard",)),
        "fillmask_process_shard": ("The shards this process runs (1 each; absent when not sharded).", ("shard",)),
        "fillmask_shard_count": ("The bot's total shard count (absent when not sharded).", ()),
    }

    def __init__(self, snapshot: SnapshotCallback, timeout: float, failures: _FailureLog) -> None:
        self._snapshot = snapshot
        self._timeout = timeout
        self._failures = failures
        self.loop: asyncio.AbstractEventLoop | None = None

    def describe(self) -> list[Metric]:
        """The names, for the registry's duplicate check, without calling the snapshot callback."""
        return [_gauge(name, doc, labels) for name, (doc, labels) in self.FAMILIES.items()]

    def collect(self) -> list[Metric]:
        try:
            snapshot = self._take_snapshot()
            if not isinstance(snapshot, MetricsSnapshot):
                raise TypeError(f"the snapshot callback returned {type(snapshot).__name__}, not a MetricsSnapshot")
        except Exception as exc:
            self._failures.failed("the snapshot callback", exc)
            return []
        self._failures.worked("the snapshot callback")
        families: list[Metric] = []
        for name, build in (
            ("checkpoint queue depths", self._queues),
            ("loaded checkpoints", self._loaded),
            ("shard latencies", self._latencies),
            ("servers per shard", self._guilds),
            ("process shards", self._process_shards),
        ):
            try:
                built = build(snapshot)  # every value is converted here: nothing can fail later, in the exposition
            except Exception as exc:
                self._failures.failed(name, exc)
                continue
            self._failures.worked(name)
            families.extend(built)
        return families

    def _take_snapshot(self) -> MetricsSnapshot:
        loop = self.loop
        if loop is None or _running_loop() is loop:
            return self._snapshot()
        # A scrape runs on one of the HTTP server's threads: read the bot's state on its own loop.
        result: concurrent.futures.Future[MetricsSnapshot] = concurrent.futures.Future()

        def take() -> None:
            if not result.set_running_or_notify_cancel():
                return  # the scrape gave up waiting
            try:
                result.set_result(self._snapshot())
            except BaseException as exc:
                result.set_exception(exc)

        loop.call_soon_threadsafe(take)  # RuntimeError if the loop is closed: the family is skipped
        try:
            return result.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError:
            result.cancel()
            raise TimeoutError(f"the event loop did not answer within {self._timeout:g} s") from None

    def _family(self, name: str) -> GaugeMetricFamily:
        doc, labels = self.FAMILIES[name]
        return _gauge(name, doc, labels)

    def _per_checkpoint(self, snapshot: MetricsSnapshot, value: Callable[[LoadedCheckpoint], float]) -> dict[str, float]:
        # Two entries cut to the same label (or listed twice) add up: a family has no duplicate series.
        totals: dict[str, float] = {}
        for entry in snapshot.checkpoints:
            label = label_value(entry.checkpoint)
            totals[label] = totals.get(label, 0.0) + value(entry)
        return totals

    def _queues(self, snapshot: MetricsSnapshot) -> list[Metric]:
        family = self._family("fillmask_queue_depth")
        for label, depth in self._per_checkpoint(snapshot, lambda entry: float(int(entry.queue_depth))).items():
            family.add_metric([label], depth)
        return [family]

    def _loaded(self, snapshot: MetricsSnapshot) -> list[Metric]:
        sizes = self._family("fillmask_loaded_checkpoint_bytes")
        per_checkpoint = self._per_checkpoint(snapshot, lambda entry: float(int(entry.memory_bytes)))
        for label, size in per_checkpoint.items():
            sizes.add_metric([label], size)
        count = self._family("fillmask_loaded_checkpoints")
        count.add_metric([], float(len(per_checkpoint)))
        return [sizes, count]

    def _latencies(self, snapshot: MetricsSnapshot) -> list[Metric]:
        family = self._family("fillmask_shard_latency_seconds")
        seen: set[str] = set()
        for shard in snapshot.shards:
            label = shard_label(shard.shard)
            if shard.latency_seconds is None or label in seen:
                continue
            latency = float(shard.latency_seconds)
            if math.isfinite(latency):
                seen.add(label)
                family.add_metric([label], latency)
        return [family]

    def _guilds(self, snapshot: MetricsSnapshot) -> list[Metric]:
        family = self._family("fillmask_guilds")
        totals: dict[str, float] = {}
        for shard in snapshot.shards:
            label = shard_label(shard.shard)
            totals[label] = totals.get(label, 0.0) + float(int(shard.guilds))
        for label, guilds in totals.items():
            family.add_metric([label], guilds)
        return [family]

    def _process_shards(self, snapshot: MetricsSnapshot) -> list[Metric]:
        ids = self._family("fillmask_process_shard")
        for shard in sorted({int(shard) for shard in snapshot.shard_ids}):
            ids.add_metric([str(shard)], 1.0)
        count = self._family("fillmask_shard_count")
        if snapshot.shard_count is not None:
            count.add_metric([], float(int(snapshot.shard_count)))
        return [ids, count]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# -- the process's metrics --------------------------------------------------------------------


class RequestRecord:
    """What :meth:`BotMetrics.track_request` records when its block ends; set ``outcome`` in it."""

    __slots__ = ("outcome",)

    def __init__(self) -> None:
        self.outcome: Outcome | None = None


class BotMetrics:
    """The metrics of one bot process, in their own registry, and the HTTP server that serves them.

    Recording works whether or not the server runs: the bot can always call
    :meth:`record_request`, and :meth:`start` only when ``METRICS_PORT`` is set.
    """

    def __init__(self, snapshot: SnapshotCallback | None = None, *, snapshot_timeout: float = DEFAULT_SNAPSHOT_TIMEOUT) -> None:
        if not snapshot_timeout > 0:
            raise ValueError("snapshot_timeout must be positive")
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "fillmask_requests",  # exposed as fillmask_requests_total
            "Requests answered, by shard, command and outcome (ok, invalid, busy, limited, failed).",
            ("shard", "command", "outcome"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "fillmask_request_seconds",
            "How long requests took, from the command to the reply, in seconds.",
            ("shard", "command"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._collector: _SnapshotCollector | None = None
        if snapshot is not None:
            self._collector = _SnapshotCollector(snapshot, snapshot_timeout, _FailureLog())
            self.registry.register(self._collector)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- recording ------------------------------------------------------------------------

    def record_request(self, shard: int | None, command: str, outcome: Outcome, seconds: float | None = None) -> None:
        """Count one request; with ``seconds``, also observe its latency.

        ``shard`` is the shard id of the server it came from, ``None`` for a direct message.
        Raises ``ValueError`` for an outcome not in :data:`OUTCOMES` (a bug in the caller).
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown request outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")
        shard_text, command_text = shard_label(shard), label_value(command)
        self._requests.labels(shard_text, command_text, outcome).inc()
        if seconds is not None:
            self._latency.labels(shard_text, command_text).observe(max(float(seconds), 0.0))

    def observe_latency(self, shard: int | None, command: str, seconds: float) -> None:
        """Observe a request's latency alone (when :meth:`record_request` counted it without one)."""
        self._latency.labels(shard_label(shard), label_value(command)).observe(max(float(seconds), 0.0))

    @contextmanager
    def track_request(self, shard: int | None, command: str) -> Iterator[RequestRecord]:
        """Time the block and record it: the ``outcome`` it set, else ``ok``, or ``failed`` if it raised.

        ::

            with metrics.track_request(guild_shard, "fill") as request:
                ...
                request.outcome = "busy"
        """
        record = RequestRecord()
        started = time.perf_counter()
        try:
            yield record
        except BaseException:
            if record.outcome is None:
                record.outcome = "failed"
            raise
        finally:
            self.record_request(shard, command, record.outcome or "ok", time.perf_counter() - started)

    def render(self) -> bytes:
        """The exposition text a scrape gets (for tests and debugging)."""
        return generate_latest(self.registry)

    # -- the server -----------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` the server listens on (the real port when started on port 0); None when stopped."""
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    async def start(self, host: str, port: int) -> None:
        """Serve ``/metrics`` (any path, in fact) on ``host:port``, on a daemon thread.

        Call it on the event loop the snapshot callback must run on. Raises
        :class:`MetricsServerError` if the address cannot be used (the port is taken, the host
        does not resolve), with a message fit for the log.
        """
        if self._server is not None:
            raise RuntimeError("the metrics server is already running")
        if not 0 <= port <= 65535:
            raise MetricsServerError(f"cannot serve metrics on port {port}: ports are 1 to 65535")
        if self._collector is not None:
            self._collector.loop = asyncio.get_running_loop()
        try:
            server, thread = await asyncio.to_thread(start_http_server, port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsServerError(_bind_error(host, port, exc)) from exc
        self._server, self._thread = server, thread
        bound_host, bound_port = server.server_address[:2]
        log.info("serving Prometheus metrics on http://%s/metrics", _host_port(str(bound_host), int(bound_port)))

    async def close(self) -> None:
        """Stop the server and free its port (idempotent). Scrapes under way may still finish."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        await asyncio.to_thread(_stop_server, server, thread)


def _stop_server(server: WSGIServer, thread: threading.Thread | None) -> None:
    server.shutdown()  # waits for serve_forever to return (at most its 0.5 s poll)
    server.server_close()  # closes the listening socket: the port is free again
    if thread is not None:
        thread.join(timeout=5)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_error(host: str, port: int, exc: OSError) -> str:
    where = f"cannot serve metrics on {_host_port(host, port)}"
    if isinstance(exc, socket.gaierror):
        return f"{where}: cannot resolve the host ({exc.strerror or exc}; check METRICS_HOST)"
    if exc.errno == errno.EADDRINUSE:
        return f"{where}: the port is already in use (another program, or another bot process with the same METRICS_PORT)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: this machine has no such address (check METRICS_HOST)"
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges)"
    return f"{where}: {exc.strerror or exc}"
