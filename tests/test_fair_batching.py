"""The batcher shares batches fairly between servers and bounds each server's share (issue 10).

The scheduling is tested with a recording stand-in for the model (what matters is which
requests go into which pass, and when); answers through the real model and the real bot are
tested at the end and in ``test_bursts.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.inference.batching import BatchingModel
from bot.inference.errors import BusyError, FillMaskError
from bot.inference.loading import load_masked_lm
from bot.inference.types import FillRequest, FillResult


class RecordingModel:
    """Answers every request after ``seconds`` per pass and records each pass's requests."""

    name = "recording"
    mask_token = "[MASK]"

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.passes: list[list[FillRequest]] = []
        self.gate = threading.Event()
        self.gate.set()

    def predict_batch(self, requests: Sequence[FillRequest]) -> list[FillResult | FillMaskError]:
        self.gate.wait()
        self.passes.append(list(requests))
        time.sleep(self.seconds)
        return [FillResult(checkpoint=self.name, text=r.text, masks=(), best_sequence=r.text) for r in requests]


def batcher(model: RecordingModel, **kwargs: int) -> BatchingModel:
    return BatchingModel(model, **kwargs)  # pyright: ignore[reportArgumentType]  (duck-typed stand-in)


def request(tenant: int | None, text: str = "a [MASK] b") -> FillRequest:
    return FillRequest(text, 5, tenant=tenant)


async def test_a_lone_request_from_another_server_rides_in_the_next_pass() -> None:
    model = RecordingModel(seconds=0.05)
    batching = batcher(model, max_batch_size=8, max_queue=512, max_queued_per_tenant=256)
    flood = [asyncio.ensure_future(batching.fill(request(1, f"flood {i} [MASK]"))) for i in range(200)]
    while not model.passes:  # the first pass of the flood is under way
        await asyncio.sleep(0.005)
    started = time.perf_counter()
    await batching.fill(request(2))
    waited = time.perf_counter() - started
    tenants_per_pass = [[r.tenant for r in p] for p in model.passes]
    arrival = next(i for i, tenants in enumerate(tenants_per_pass) if 2 in tenants)
    assert arrival <= 2, tenants_per_pass[:4]  # the pass under way, then (at the latest) the next one
    assert waited < 3 * model.seconds + 0.1  # about two passes, not the 25 passes of the flood
    await asyncio.gather(*flood)
    await batching.aclose()


async def test_each_pass_takes_from_every_waiting_server_in_turn() -> None:
    model = RecordingModel(seconds=0.01)
    model.gate.clear()  # hold the first pass until everything is queued
    batching = batcher(model, max_batch_size=12, max_queue=512, max_queued_per_tenant=256)
    calls = [batching.fill(request(1)) for _ in range(40)]
    calls += [batching.fill(request(2)) for _ in range(40)]
    calls += [batching.fill(request(3)) for _ in range(2)]
    pending = [asyncio.ensure_future(c) for c in calls]
    await asyncio.sleep(0.05)
    model.gate.set()
    await asyncio.gather(*pending)
    # Everything was queued before the first pass: it holds both of server 3's requests, and
    # servers 1 and 2 share the rest equally, however early their 40 arrived.
    first = [r.tenant for r in model.passes[0]]
    assert len(first) == 12 and first.count(3) == 2 and first.count(1) == first.count(2) == 5, first
    served = sum(len(p) for p in model.passes)
    assert served == 82
    await batching.aclose()


async def test_a_full_server_share_is_refused_and_other_servers_are_not() -> None:
    model = RecordingModel(seconds=0.01)
    model.gate.clear()
    batching = batcher(model, max_batch_size=4, max_queue=100, max_queued_per_tenant=3)
    held = [asyncio.ensure_future(batching.fill(request(1))) for _ in range(3)]
    await asyncio.sleep(0.01)
    with pytest.raises(BusyError) as refused:
        await batching.fill(request(1))
    assert refused.value.own_share and "This server" in str(refused.value)
    other = asyncio.ensure_future(batching.fill(request(2)))  # another server still gets in
    model.gate.set()
    await asyncio.gather(*held, other)
    await batching.fill(request(1))  # room again once answered
    await batching.aclose()


async def test_the_whole_queue_bound_still_holds() -> None:
    model = RecordingModel(seconds=0.01)
    model.gate.clear()
    batching = batcher(model, max_batch_size=4, max_queue=5, max_queued_per_tenant=64)
    held = [asyncio.ensure_future(batching.fill(request(tenant))) for tenant in range(5)]
    await asyncio.sleep(0.01)
    with pytest.raises(BusyError) as refused:
        await batching.fill(request(99))
    assert not refused.value.own_share
    model.gate.set()
    await asyncio.gather(*held)
    await batching.aclose()


async def test_one_servers_burst_is_still_regrouped_by_length() -> None:
    model = RecordingModel(seconds=0.01)
    model.gate.clear()
    batching = batcher(model, max_batch_size=4, max_queue=100, max_queued_per_tenant=100)
    texts = ["s [MASK]", "a much much longer sentence with a [MASK] in it"] * 4
    first = asyncio.ensure_future(batching.fill(request(1, "first [MASK]")))
    await asyncio.sleep(0.01)
    rest = [asyncio.ensure_future(batching.fill(request(1, t))) for t in texts]
    model.gate.set()
    await asyncio.gather(first, *rest)
    later = model.passes[1:]
    assert [len({len(r.text) for r in p}) for p in later] == [1, 1], [[r.text for r in p] for p in later]
    await batching.aclose()


async def test_aclose_answers_what_is_queued(bert_checkpoint: Path) -> None:
    batching = BatchingModel(load_masked_lm(str(bert_checkpoint)), max_batch_size=4)
    calls = [asyncio.ensure_future(batching.fill(FillRequest("the cat sat on the [MASK] .", 1, tenant=t % 3))) for t in range(10)]
    await asyncio.sleep(0)
    await batching.aclose()
    results = await asyncio.gather(*calls)
    assert all(r.masks[0][0].word == "mat" for r in results)
