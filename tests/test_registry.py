"""The registry of loaded checkpoints: shared loads, LRU eviction, memory release, a free loop."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from bot.inference.batching import BatchingModel
from bot.inference.errors import CheckpointNotFoundError, NotMaskedLMError
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.registry import ModelRegistry, ModelState
from bot.inference.types import FillRequest


class CountingLoader:
    """A real loader that counts calls, can be slowed down, and tracks what it returned."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[str] = []
        self.delay = delay
        self.returned: list[weakref.ref[MaskedLM]] = []
        self._lock = threading.Lock()

    def __call__(self, reference: str, *, progress: Any = None) -> MaskedLM:
        with self._lock:
            self.calls.append(reference)
        time.sleep(self.delay)  # a download: blocking, and it must not block the event loop
        lm = load_masked_lm(reference)
        self.returned.append(weakref.ref(lm))
        return lm


async def test_concurrent_gets_share_one_load(bert_checkpoint: Path) -> None:
    loader = CountingLoader(delay=0.3)
    registry = ModelRegistry(loader, max_loaded=2)
    ref = str(bert_checkpoint)
    try:
        models = await asyncio.gather(*(registry.get(ref) for _ in range(10)))
        assert loader.calls == [ref]
        assert all(m is models[0] for m in models)
        assert registry.state(ref) is ModelState.LOADED
    finally:
        await registry.aclose()


async def test_state_reports_loading_while_it_loads(bert_checkpoint: Path) -> None:
    registry = ModelRegistry(CountingLoader(delay=0.3), max_loaded=1)
    ref = str(bert_checkpoint)
    try:
        assert registry.state(ref) is ModelState.NOT_LOADED
        task = asyncio.ensure_future(registry.get(ref))
        await asyncio.sleep(0.05)
        assert registry.state(ref) is ModelState.LOADING
        await task
        assert registry.state(ref) is ModelState.LOADED
    finally:
        await registry.aclose()


async def test_least_recently_used_is_evicted_and_released(bert_checkpoint: Path, camembert_checkpoint: Path) -> None:
    loader = CountingLoader()
    registry = ModelRegistry(loader, max_loaded=1)
    bert, camembert = str(bert_checkpoint), str(camembert_checkpoint)
    try:
        first = await registry.get(bert)
        assert (await first.fill(FillRequest("the cat sat on the [MASK] .", 1))).masks
        del first
        await registry.get(camembert)
        assert registry.loaded == [camembert]
        assert registry.state(bert) is ModelState.NOT_LOADED
        await asyncio.sleep(0.1)  # let the unload task finish
        gc.collect()
        assert loader.returned[0]() is None, "the evicted model is still referenced somewhere"
        # Used again: loaded again.
        await registry.get(bert)
        assert loader.calls == [bert, camembert, bert]
    finally:
        await registry.aclose()


async def test_lru_order_follows_use(bert_checkpoint: Path, camembert_checkpoint: Path, tmp_path: Path) -> None:
    import shutil

    third = tmp_path / "bert-copy"
    shutil.copytree(bert_checkpoint, third)
    registry = ModelRegistry(CountingLoader(), max_loaded=2)
    a, b, c = str(bert_checkpoint), str(camembert_checkpoint), str(third)
    try:
        await registry.get(a)
        await registry.get(b)
        await registry.get(a)  # a is now the most recently used
        await registry.get(c)
        assert set(registry.loaded) == {a, c}
    finally:
        await registry.aclose()


async def test_failed_load_propagates_and_leaves_nothing(not_mlm_checkpoint: Path, tmp_path: Path) -> None:
    loader = CountingLoader(delay=0.1)
    registry = ModelRegistry(loader, max_loaded=2)
    ref = str(not_mlm_checkpoint)
    try:
        results = await asyncio.gather(*(registry.get(ref) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, NotMaskedLMError) for r in results)
        assert loader.calls == [ref]
        assert registry.state(ref) is ModelState.NOT_LOADED and registry.loaded == []
        with pytest.raises(NotMaskedLMError):
            await registry.get(ref)
        assert loader.calls == [ref, ref]  # a later call tries again
        with pytest.raises(CheckpointNotFoundError):
            await registry.get(str(tmp_path / "missing"))
    finally:
        await registry.aclose()


async def test_a_cancelled_caller_does_not_cancel_the_shared_load(bert_checkpoint: Path) -> None:
    registry = ModelRegistry(CountingLoader(delay=0.3), max_loaded=1)
    ref = str(bert_checkpoint)
    try:
        impatient = asyncio.ensure_future(registry.get(ref))
        patient = asyncio.ensure_future(registry.get(ref))
        await asyncio.sleep(0.05)
        impatient.cancel()
        model = await patient
        assert isinstance(model, BatchingModel)
    finally:
        await registry.aclose()


async def test_event_loop_keeps_ticking_while_a_checkpoint_loads(bert_checkpoint: Path) -> None:
    """A 10 ms ticker must never stall while a (slow) checkpoint loads."""
    registry = ModelRegistry(CountingLoader(delay=1.0), max_loaded=1)
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick_task = asyncio.ensure_future(ticker())
    try:
        await registry.get(str(bert_checkpoint))
    finally:
        done.set()
        await tick_task
        await registry.aclose()
    assert len(gaps) >= 50, "the ticker barely ran: the loop was blocked"
    assert max(gaps) < 0.2, f"the event loop stalled for {max(gaps) * 1000:.0f} ms during the load"


async def test_inference_never_runs_in_two_threads_at_once(bert_checkpoint: Path) -> None:
    lm = load_masked_lm(str(bert_checkpoint))
    active = 0
    peak = 0
    threads: set[int] = set()
    guard = threading.Lock()
    original = lm.predict_batch

    def watched(requests):  # type: ignore[no-untyped-def]
        nonlocal active, peak
        with guard:
            active += 1
            peak = max(peak, active)
            threads.add(threading.get_ident())
        try:
            time.sleep(0.01)
            return original(requests)
        finally:
            with guard:
                active -= 1

    lm.predict_batch = watched  # type: ignore[method-assign]
    served = BatchingModel(lm, max_batch_size=8)
    loop_thread = threading.get_ident()
    try:
        results = await asyncio.gather(*(served.fill(FillRequest(f"the cat sat on the [MASK] {i} .", 2)) for i in range(40)))
    finally:
        await served.aclose()
    assert len(results) == 40
    assert peak == 1
    assert loop_thread not in threads
    assert max(r.batch_size for r in results) > 1


async def test_a_fill_racing_an_eviction_is_still_answered(bert_checkpoint: Path, camembert_checkpoint: Path) -> None:
    from bot.service.fill_mask_service import FillMaskService
    from bot.service.guild_settings import DefaultOnlySettings

    registry = ModelRegistry(CountingLoader(), max_loaded=1)
    service = FillMaskService(registry, DefaultOnlySettings(), default_model=str(bert_checkpoint))
    try:
        bert = await registry.get(str(bert_checkpoint))
        registry.evict(str(bert_checkpoint))
        await asyncio.sleep(0.05)
        with pytest.raises(Exception, match="just unloaded"):
            await bert.fill(FillRequest("the cat sat on the [MASK] .", 1))
        # The service got the model just before it was evicted: it reloads and answers.
        real_get = registry.get
        calls: list[str] = []

        async def stale_then_real(reference: str) -> BatchingModel:
            calls.append(reference)
            return bert if len(calls) == 1 else await real_get(reference)

        registry.get = stale_then_real  # type: ignore[method-assign]
        result = await service.fill(None, "the cat sat on the <mask> .")
        assert result.masks[0][0].word == "mat"
        assert len(calls) == 2
    finally:
        await registry.aclose()


def test_bursts_are_regrouped_by_length_into_bounded_batches() -> None:
    from bot.inference.batching import _length_buckets, _Pending

    loop = asyncio.new_event_loop()
    try:
        waiting = [_Pending(FillRequest("x" * n + " [MASK]"), loop.create_future()) for n in (50, 3, 20, 7, 41, 1, 33)]
        buckets = _length_buckets(waiting, 3)
    finally:
        loop.close()
    assert [len(b) for b in buckets] == [3, 3, 1]
    lengths = [[len(p.request.text) for p in b] for b in buckets]
    flat = [n for b in lengths for n in b]
    assert flat == sorted(flat)  # short with short, long with long
    assert sorted(id(p) for b in buckets for p in b) == sorted(id(p) for p in waiting)  # nobody lost
    loop = asyncio.new_event_loop()
    try:
        burst = [_Pending(FillRequest(f"{i} [MASK]"), loop.create_future()) for i in range(64)]
        assert [len(b) for b in _length_buckets(burst, 32)] == [32, 32]
        assert [len(b) for b in _length_buckets(burst[:40], 32)] == [20, 20]
    finally:
        loop.close()


async def test_concurrent_loads_of_different_checkpoints_all_succeed(bert_checkpoint: Path, camembert_checkpoint: Path) -> None:
    """Regression: parallel loads raced in transformers' lazy imports (ImportError)."""
    loader = CountingLoader()
    registry = ModelRegistry(loader, max_loaded=2)
    refs = [str(bert_checkpoint), str(camembert_checkpoint)] * 10
    try:
        models = await asyncio.gather(*(registry.get(r) for r in refs))
        assert {m.name for m in models} == set(refs)
        assert sorted(loader.calls) == sorted({*refs})
    finally:
        await registry.aclose()


async def test_a_failing_forward_pass_is_a_friendly_error_and_the_worker_survives(bert_checkpoint: Path) -> None:
    from bot.inference.errors import FillMaskError

    lm = load_masked_lm(str(bert_checkpoint))
    real = lm.predict_batch
    calls = 0

    def flaky(requests):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("CUDA out of memory (pretend)")
        return real(requests)

    lm.predict_batch = flaky  # type: ignore[method-assign]
    served = BatchingModel(lm)
    try:
        with pytest.raises(FillMaskError) as caught:
            await served.fill(FillRequest("the cat sat on the [MASK] .", 1))
        assert "went wrong on my side" in str(caught.value) and "CUDA" not in str(caught.value)
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert (await served.fill(FillRequest("the cat sat on the [MASK] .", 1))).masks[0][0].word == "mat"
    finally:
        await served.aclose()
