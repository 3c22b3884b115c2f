"""bot.adapters.metrics: a real HTTP server in the test process, scraped over HTTP and parsed with
prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bot.adapters.metrics import (
    DM_SHARD,
    LATENCY_BUCKETS,
    MAX_LABEL_CHARS,
    OUTCOMES,
    BotMetrics,
    CheckpointSnapshot,
    MetricsServerError,
    MetricsSnapshot,
    ShardSnapshot,
    label_value,
    shard_label,
)
from bot.inference.types import LoadedModel

ROOT = Path(__file__).resolve().parent.parent
LOGGER = "bot.adapters.metrics"


def sharded_snapshot() -> MetricsSnapshot:
    return MetricsSnapshot(
        checkpoints=[
            CheckpointSnapshot("camembert-base", 445_000_000, 3),
            CheckpointSnapshot("bert-base-uncased", 420_000_000, 0),
        ],
        shards=[ShardSnapshot(0, guilds=12, latency_seconds=0.042), ShardSnapshot(1, guilds=7, latency_seconds=float("inf"))],
        shard_ids=(1, 0),
        shard_count=4,
    )


class Snapshots:
    """A snapshot callback the test steers: what it returns, whether it fails, which thread ran it."""

    def __init__(self, snapshot: MetricsSnapshot | None = None) -> None:
        self.snapshot = snapshot or sharded_snapshot()
        self.error: Exception | None = None
        self.calls = 0
        self.threads: set[int] = set()

    def __call__(self) -> MetricsSnapshot:
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self.error is not None:
            raise self.error
        return self.snapshot


def fetch(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode("utf-8")


async def scrape(metrics: BotMetrics) -> list[Sample]:
    """Over real HTTP, from another thread (as Prometheus would, while the loop goes on)."""
    address = metrics.address
    assert address is not None
    text = await asyncio.to_thread(fetch, address[1])
    return parse(text)


def parse(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) <= 1, f"{name}{labels} appears {len(found)} times"
    return found[0] if found else None


def names(samples: list[Sample]) -> set[str]:
    return {s.name for s in samples}


@pytest.fixture
async def served() -> AsyncIterator[tuple[BotMetrics, Snapshots]]:
    snapshots = Snapshots()
    metrics = BotMetrics(snapshots)
    await metrics.start("127.0.0.1", 0)  # a free port, chosen by the kernel
    try:
        yield metrics, snapshots
    finally:
        await metrics.close()


async def test_requests_latencies_and_the_snapshot_over_http(served: tuple[BotMetrics, Snapshots]) -> None:
    metrics, snapshots = served
    for _ in range(3):
        metrics.record_request(0, "fill", "ok", 0.2)
    metrics.record_request(0, "fill", "busy", 0.004)
    metrics.record_request(1, "fill", "ok", 1.5)
    metrics.record_request(1, "model set", "invalid")  # counted, no latency
    metrics.record_request(None, "fill", "failed", 45.0)  # a direct message
    metrics.observe_latency(1, "model set", 0.03)

    samples = await scrape(metrics)

    def count(shard: str, command: str, outcome: str) -> float | None:
        return value(samples, "fillmask_requests_total", shard=shard, command=command, outcome=outcome)

    assert count("0", "fill", "ok") == 3
    assert count("0", "fill", "busy") == 1
    assert count("1", "fill", "ok") == 1
    assert count("1", "model set", "invalid") == 1
    assert count(DM_SHARD, "fill", "failed") == 1
    assert count("0", "fill", "failed") is None  # no series before its first request

    def latency(suffix: str, shard: str, command: str, **extra: str) -> float | None:
        return value(samples, f"fillmask_request_seconds_{suffix}", shard=shard, command=command, **extra)

    assert latency("count", "0", "fill") == 4
    assert latency("sum", "0", "fill") == pytest.approx(3 * 0.2 + 0.004)
    assert latency("bucket", "0", "fill", le="0.01") == 1  # the busy one
    assert latency("bucket", "0", "fill", le="0.25") == 4
    assert latency("bucket", "0", "fill", le="+Inf") == 4
    assert latency("count", "1", "fill") == 1 and latency("sum", "1", "fill") == pytest.approx(1.5)
    assert latency("count", "1", "model set") == 1 and latency("sum", "1", "model set") == pytest.approx(0.03)
    assert latency("bucket", DM_SHARD, "fill", le="30.0") == 0 and latency("bucket", DM_SHARD, "fill", le="60.0") == 1
    buckets = sorted(
        float(s.labels["le"]) for s in samples if s.name == "fillmask_request_seconds_bucket" and s.labels["shard"] == "0"
    )
    assert buckets[0] == 0.01 and buckets[-2] == 60.0 and math.isinf(buckets[-1])
    assert tuple(buckets[:-1]) == LATENCY_BUCKETS

    assert value(samples, "fillmask_queue_depth", checkpoint="camembert-base") == 3
    assert value(samples, "fillmask_queue_depth", checkpoint="bert-base-uncased") == 0
    assert value(samples, "fillmask_loaded_checkpoint_bytes", checkpoint="camembert-base") == 445_000_000
    assert value(samples, "fillmask_loaded_checkpoint_bytes", checkpoint="bert-base-uncased") == 420_000_000
    assert value(samples, "fillmask_loaded_checkpoints") == 2
    assert value(samples, "fillmask_shard_latency_seconds", shard="0") == pytest.approx(0.042)
    assert value(samples, "fillmask_shard_latency_seconds", shard="1") is None  # no heartbeat acknowledged yet (inf)
    assert value(samples, "fillmask_guilds", shard="0") == 12
    assert value(samples, "fillmask_guilds", shard="1") == 7
    assert value(samples, "fillmask_process_shard", shard="0") == 1
    assert value(samples, "fillmask_process_shard", shard="1") == 1
    assert value(samples, "fillmask_shard_count") == 4

    # The snapshot is read at each scrape, on the event loop's thread (not the HTTP server's).
    snapshots.snapshot = MetricsSnapshot(checkpoints=[CheckpointSnapshot("camembert-base", 445_000_000, 9)])
    samples = await scrape(metrics)
    assert value(samples, "fillmask_queue_depth", checkpoint="camembert-base") == 9
    assert value(samples, "fillmask_loaded_checkpoints") == 1
    assert value(samples, "fillmask_queue_depth", checkpoint="bert-base-uncased") is None
    assert snapshots.threads == {threading.get_ident()}
    assert count("0", "fill", "ok") == 3  # counters keep their values


async def test_the_registrys_loaded_models_and_an_unsharded_bot(served: tuple[BotMetrics, Snapshots]) -> None:
    metrics, snapshots = served
    # ModelRegistry.loaded_models() can be passed as it is.
    snapshots.snapshot = MetricsSnapshot(
        checkpoints=[LoadedModel("distilroberta-base", 330_000_000, 2, 17, "fp16")],
        shards=[ShardSnapshot(0, guilds=3, latency_seconds=float("nan"))],
    )
    samples = await scrape(metrics)
    assert value(samples, "fillmask_queue_depth", checkpoint="distilroberta-base") == 2
    assert value(samples, "fillmask_loaded_checkpoint_bytes", checkpoint="distilroberta-base") == 330_000_000
    assert value(samples, "fillmask_guilds", shard="0") == 3
    assert "fillmask_shard_latency_seconds" not in names(samples)  # NaN: unknown
    assert not names(samples) & {"fillmask_process_shard", "fillmask_shard_count"}  # not sharded

    snapshots.snapshot = MetricsSnapshot()  # nothing loaded yet, not connected
    samples = await scrape(metrics)
    assert value(samples, "fillmask_loaded_checkpoints") == 0
    assert not names(samples) & {"fillmask_queue_depth", "fillmask_loaded_checkpoint_bytes", "fillmask_guilds"}


async def test_a_failing_snapshot_callback_is_logged_once_and_the_scrape_still_answers(
    served: tuple[BotMetrics, Snapshots], caplog: pytest.LogCaptureFixture
) -> None:
    metrics, snapshots = served
    metrics.record_request(0, "fill", "ok", 0.1)
    snapshots.error = RuntimeError("registry exploded")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(3):
            samples = await scrape(metrics)
            assert value(samples, "fillmask_requests_total", shard="0", command="fill", outcome="ok") == 1
            assert value(samples, "fillmask_request_seconds_count", shard="0", command="fill") == 1
            assert not any(
                name.startswith(("fillmask_queue", "fillmask_loaded", "fillmask_guilds", "fillmask_shard"))
                for name in names(samples)
            )
        warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "snapshot callback" in warnings[0].getMessage()
        assert "registry exploded" in warnings[0].getMessage()

        snapshots.error = None  # it recovers
        samples = await scrape(metrics)
        assert value(samples, "fillmask_loaded_checkpoints") == 2
    assert any("works again" in r.getMessage() for r in caplog.records if r.name == LOGGER)
    assert snapshots.calls == 4


async def test_one_bad_value_skips_its_family_only(
    served: tuple[BotMetrics, Snapshots], caplog: pytest.LogCaptureFixture
) -> None:
    metrics, snapshots = served
    bad_size = CheckpointSnapshot("camembert-base", "lots", 1)  # pyright: ignore[reportArgumentType]  # a bug in the caller
    snapshots.snapshot = MetricsSnapshot(checkpoints=[bad_size], shards=[ShardSnapshot(0, guilds=5, latency_seconds=0.1)])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        samples = await scrape(metrics)
        samples = await scrape(metrics)
    assert value(samples, "fillmask_queue_depth", checkpoint="camembert-base") == 1
    assert not names(samples) & {"fillmask_loaded_checkpoint_bytes", "fillmask_loaded_checkpoints"}
    assert value(samples, "fillmask_guilds", shard="0") == 5
    assert value(samples, "fillmask_shard_latency_seconds", shard="0") == pytest.approx(0.1)
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1 and "loaded checkpoints" in warnings[0]

    snapshots.snapshot = "not a snapshot"  # pyright: ignore[reportAttributeAccessIssue]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        samples = await scrape(metrics)
    assert "fillmask_guilds" not in names(samples)
    assert "returned str, not a MetricsSnapshot" in caplog.records[-1].getMessage()


async def test_a_stuck_event_loop_does_not_hang_the_scrape() -> None:
    snapshots = Snapshots()
    metrics = BotMetrics(snapshots, snapshot_timeout=0.3)
    await metrics.start("127.0.0.1", 0)
    try:
        metrics.record_request(2, "fill", "ok", 0.5)
        address = metrics.address
        assert address is not None
        started = time.monotonic()
        text = fetch(address[1])  # blocks the event loop itself: the snapshot cannot be taken on it
        assert time.monotonic() - started < 5
        samples = parse(text)
        assert value(samples, "fillmask_requests_total", shard="2", command="fill", outcome="ok") == 1
        assert "fillmask_loaded_checkpoints" not in names(samples)
        await asyncio.sleep(0.05)  # the abandoned snapshot request runs now, harmlessly
        assert value(await scrape(metrics), "fillmask_loaded_checkpoints") == 2
    finally:
        await metrics.close()


async def test_render_on_the_loop_calls_the_snapshot_directly() -> None:
    snapshots = Snapshots()
    metrics = BotMetrics(snapshots)
    await metrics.start("127.0.0.1", 0)
    try:
        samples = parse(metrics.render().decode())  # on the loop's own thread: no waiting on itself
        assert value(samples, "fillmask_loaded_checkpoints") == 2
    finally:
        await metrics.close()
    # Never started, no event loop: the callback is called where the scrape is.
    assert value(parse(BotMetrics(Snapshots()).render().decode()), "fillmask_shard_count") == 4
    assert "fillmask_loaded_checkpoints" not in names(parse(BotMetrics().render().decode()))


def listening_socket() -> socket.socket:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    return blocker


async def test_a_port_in_use_gives_a_clear_error() -> None:
    blocker = listening_socket()
    port = blocker.getsockname()[1]
    try:
        metrics = BotMetrics(Snapshots())
        with pytest.raises(MetricsServerError) as raised:
            await metrics.start("127.0.0.1", port)
        message = str(raised.value)
        assert message == (
            f"cannot serve metrics on 127.0.0.1:{port}: the port is already in use"
            " (another program, or another bot process with the same METRICS_PORT)"
        )
        assert "Traceback" not in message and "\n" not in message
        assert metrics.address is None
        await metrics.close()  # nothing to close: harmless
    finally:
        blocker.close()
    # The same object can start once the port is free.
    await metrics.start("127.0.0.1", port)
    try:
        assert metrics.address == ("127.0.0.1", port)
        # Two processes on one METRICS_PORT: the second one hears why.
        with pytest.raises(MetricsServerError, match="already in use"):
            await BotMetrics().start("127.0.0.1", port)
    finally:
        await metrics.close()


async def test_bad_hosts_and_ports_give_clear_errors() -> None:
    with pytest.raises(MetricsServerError, match=r"cannot serve metrics on no-such-host\.invalid:9100: cannot resolve the host"):
        await BotMetrics().start("no-such-host.invalid", 9100)
    with pytest.raises(MetricsServerError, match="no such address"):
        await BotMetrics().start("192.0.2.1", 0)  # TEST-NET-1: not this machine's
    with pytest.raises(MetricsServerError, match="1 to 65535"):
        await BotMetrics().start("127.0.0.1", 70000)


async def test_close_frees_the_port_and_a_second_start_on_it_works() -> None:
    first = BotMetrics(Snapshots())
    await first.start("127.0.0.1", 0)
    address = first.address
    assert address is not None
    port = address[1]
    first.record_request(0, "fill", "ok", 0.1)
    assert value(await scrape(first), "fillmask_requests_total", shard="0", command="fill", outcome="ok") == 1
    with pytest.raises(RuntimeError, match="already running"):
        await first.start("127.0.0.1", 0)
    await first.close()
    assert first.address is None
    await first.close()  # idempotent
    with pytest.raises(OSError):
        await asyncio.to_thread(fetch, port)  # nobody listens any more

    second = BotMetrics(Snapshots())
    await second.start("127.0.0.1", port)
    try:
        samples = await scrape(second)
        assert "fillmask_requests_total" not in names(samples)  # its own registry, not the first one's
        assert value(samples, "fillmask_loaded_checkpoints") == 2
    finally:
        await second.close()

    again = BotMetrics()
    for _ in range(2):  # start, close, start again: the same object reuses the port too
        await again.start("127.0.0.1", port)
        await again.close()


async def test_hostile_checkpoint_labels_scrape_as_valid_exposition_text(served: tuple[BotMetrics, Snapshots]) -> None:
    metrics, snapshots = served
    hostile = 'evil"} fillmask_guilds{shard="9"} 1\n# TYPE x counter\n\\' + "x" * 1000
    other = hostile + "y"  # the same first 1000 characters: must stay a series of its own
    strange = "a\rb\x00c\ud800d"  # carriage return, NUL, a lone surrogate (not encodable as UTF-8)
    snapshots.snapshot = MetricsSnapshot(
        checkpoints=[CheckpointSnapshot(hostile, 1, 1), CheckpointSnapshot(other, 2, 2), CheckpointSnapshot(strange, 3, 3)],
        shards=[ShardSnapshot(0, guilds=1)],
    )
    metrics.record_request(0, 'fill"\n' + "z" * 500, "ok", 0.1)  # commands are capped the same way
    address = metrics.address
    assert address is not None
    text = await asyncio.to_thread(fetch, address[1])
    samples = parse(text)  # prometheus_client's parser accepts it
    queues = {s.labels["checkpoint"]: s.value for s in samples if s.name == "fillmask_queue_depth"}
    assert len(queues) == 3 and sorted(queues.values()) == [1, 2, 3]
    assert all(len(label) <= MAX_LABEL_CHARS for label in queues)
    assert queues[label_value(hostile)] == 1 and queues[label_value(other)] == 2
    assert label_value(hostile).startswith(hostile[:150])  # the quotes and newlines survive, escaped
    assert re.fullmatch("a\ufffdb\ufffdc[?]d…~[0-9a-f]{8}", label_value(strange)) and queues[label_value(strange)] == 3
    assert value(samples, "fillmask_guilds", shard="9") is None  # no injected series
    assert value(samples, "fillmask_guilds", shard="0") == 1
    assert [s.name for s in samples].count("fillmask_loaded_checkpoints") == 1
    commands = {s.labels["command"] for s in samples if s.name == "fillmask_requests_total"}
    assert len(commands) == 1 and len(commands.pop()) == MAX_LABEL_CHARS
    assert all(line.startswith(("#", "fillmask_")) for line in text.splitlines())  # no line broken open
    text.encode("utf-8")


def test_label_values() -> None:
    assert label_value("camembert-base") == "camembert-base"
    assert label_value("x" * MAX_LABEL_CHARS) == "x" * MAX_LABEL_CHARS
    cut = label_value("x" * (MAX_LABEL_CHARS + 1))
    assert len(cut) == MAX_LABEL_CHARS and cut.startswith("x" * 150) and "…~" in cut
    assert label_value('quote" and\nnewline') == 'quote" and\nnewline'  # left to prometheus_client's escaping
    assert label_value("tab\there") == "tab\there"
    assert shard_label(0) == "0" and shard_label(12) == "12" and shard_label(None) == DM_SHARD == "dm"


async def test_outcomes_are_checked_and_track_request_records_them() -> None:
    assert OUTCOMES == ("ok", "invalid", "busy", "limited", "failed")
    metrics = BotMetrics()
    with pytest.raises(ValueError, match="unknown request outcome 'weird'"):
        metrics.record_request(0, "fill", "weird")  # pyright: ignore[reportArgumentType]

    with metrics.track_request(0, "fill"):
        await asyncio.sleep(0.02)
    with metrics.track_request(0, "fill") as request:
        request.outcome = "limited"
    with pytest.raises(KeyError), metrics.track_request(None, "fill"):
        raise KeyError("boom")
    with pytest.raises(asyncio.CancelledError), metrics.track_request(None, "fill") as request:
        request.outcome = "busy"  # an outcome set before the error stands
        raise asyncio.CancelledError
    samples = parse(metrics.render().decode())
    assert value(samples, "fillmask_requests_total", shard="0", command="fill", outcome="ok") == 1
    assert value(samples, "fillmask_requests_total", shard="0", command="fill", outcome="limited") == 1
    assert value(samples, "fillmask_requests_total", shard="dm", command="fill", outcome="failed") == 1
    assert value(samples, "fillmask_requests_total", shard="dm", command="fill", outcome="busy") == 1
    assert value(samples, "fillmask_request_seconds_count", shard="0", command="fill") == 2
    total = value(samples, "fillmask_request_seconds_sum", shard="0", command="fill")
    assert total is not None and 0.02 <= total < 5


def test_each_instance_has_its_own_registry() -> None:
    first, second = BotMetrics(Snapshots()), BotMetrics(Snapshots())  # no DuplicateTimeseries
    first.record_request(0, "fill", "ok")
    assert value(parse(second.render().decode()), "fillmask_requests_total", shard="0", command="fill", outcome="ok") is None
    with pytest.raises(ValueError, match="snapshot_timeout"):
        BotMetrics(snapshot_timeout=0)


def test_the_module_imports_neither_torch_nor_discord() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, bot.adapters.metrics; print(sorted({'torch', 'discord', 'transformers'} & set(sys.modules)))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines()[-1] == "[]"
