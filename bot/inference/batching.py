"""Serving one model to many concurrent callers.

Requests wait in a queue; a single worker task takes *whatever is waiting* when the model
becomes free (up to ``max_batch_size``) and answers it with one forward pass on the model's
own thread. There is no waiting window, so a lone request at idle goes straight through,
while a burst is answered in a few batched passes instead of one pass per request.

The model's thread is its only one: a tokenizer must not be used concurrently (tokenizers
#537), and inference must never run on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.inference.errors import BusyError, FillMaskError, ModelClosedError
from bot.inference.masked_lm import MaskedLM
from bot.inference.types import FillRequest, FillResult

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_QUEUE = 256


@dataclass(slots=True)
class _Pending:
    request: FillRequest
    future: asyncio.Future[FillResult]


class BatchingModel:
    """A :class:`MaskedLM` behind a request queue, usable from any coroutine."""

    def __init__(self, lm: MaskedLM, *, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        if max_batch_size < 1 or max_queue < 1:
            raise ValueError("max_batch_size and max_queue must be at least 1")
        self.lm = lm
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        # Requests accepted and not yet answered (queued or in the forward pass).
        self.outstanding = 0
        # Moving average of model time per request, for "try again in N s".
        self.seconds_per_request = 0.05
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{lm.name[-20:]}")
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.requests_served = 0

    @property
    def name(self) -> str:
        return self.lm.name

    @property
    def mask_token(self) -> str:
        return self.lm.mask_token

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def fill(self, request: FillRequest) -> FillResult:
        """Answer ``request``; raises its :class:`FillMaskError` if it is invalid."""
        if self._closed:
            raise ModelClosedError()
        if self.outstanding >= self.max_queue:
            raise BusyError(self.outstanding * self.seconds_per_request)
        loop = asyncio.get_running_loop()
        self._ensure_worker()
        assert self._queue is not None
        started = time.perf_counter()
        pending = _Pending(request, loop.create_future())
        self._queue.put_nowait(pending)
        self.outstanding += 1
        try:
            result = await pending.future
        finally:
            self.outstanding -= 1
        # Report what the caller waited (queue included), not just the batch's compute time.
        return dataclasses.replace(result, elapsed=time.perf_counter() - started)

    async def aclose(self) -> None:
        """Answer what is queued, then stop the worker and the model's thread."""
        self._closed = True
        if self._worker is not None and not self._worker.done():
            assert self._queue is not None
            await self._queue.join()
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=False)

    # -- the worker ------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            # The queue belongs to the running loop: recreate both if the loop changed.
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batch-worker:{self.name}")

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            waiting = [await queue.get()]
            while len(waiting) < self.max_batch_size * _DRAIN_FACTOR and not queue.empty():
                waiting.append(queue.get_nowait())
            try:
                for batch in _length_buckets(waiting, self.max_batch_size):
                    await self._run_batch(batch)
            finally:
                for _ in waiting:
                    queue.task_done()

    async def _run_batch(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.done()]  # skip callers that gave up
        if not live:
            return
        started = time.perf_counter()
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.lm.predict_batch, [p.request for p in live]
            )
            per_request = (time.perf_counter() - started) / len(live)
            self.seconds_per_request = 0.8 * self.seconds_per_request + 0.2 * per_request
        except Exception as exc:  # a model failure must reach the callers, not kill the worker
            log.exception("inference failed on %s for a batch of %d", self.name, len(live))
            # Callers get a friendly error; the cause is in the log above.
            failure = FillMaskError("Something went wrong on my side while answering; please try again.")
            failure.__cause__ = exc
            outcomes = [failure] * len(live)
        for pending, outcome in zip(live, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, FillMaskError):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)
        self.requests_served += len(live)


# A burst is drained up to this many batches at once, so that it can be regrouped by length.
_DRAIN_FACTOR = 4


def _length_buckets(waiting: list[_Pending], max_batch_size: int) -> list[list[_Pending]]:
    """Split what is waiting into near-equal batches of similar lengths.

    A batch is padded to its longest member, so grouping short with short and long with
    long wastes less compute on padding (bench/: 10-20 % of a burst). Characters stand in
    for tokens: tokenizing here would use the tokenizer outside the model's thread.
    """
    count = -(-len(waiting) // max_batch_size)  # ceil
    ordered = sorted(waiting, key=lambda p: len(p.request.text))
    size = -(-len(ordered) // count)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]
