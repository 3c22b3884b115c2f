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

from bot.core.errors import FillMaskError
from bot.core.model import MaskedLM
from bot.core.types import FillRequest, FillResult

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 32


class ModelClosedError(FillMaskError):
    def __init__(self) -> None:
        super().__init__("That model was just unloaded; please try again.")


@dataclass(slots=True)
class _Pending:
    request: FillRequest
    future: asyncio.Future[FillResult]


class BatchingModel:
    """A :class:`MaskedLM` behind a request queue, usable from any coroutine."""

    def __init__(self, lm: MaskedLM, *, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.lm = lm
        self.max_batch_size = max_batch_size
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
        loop = asyncio.get_running_loop()
        self._ensure_worker()
        assert self._queue is not None
        started = time.perf_counter()
        pending = _Pending(request, loop.create_future())
        self._queue.put_nowait(pending)
        result = await pending.future
        # Report what the caller waited (queue included), not just the batch's compute time.
        return dataclasses.replace(result, elapsed=time.perf_counter() - started)

    async def run_in_model_thread(self, func, /, *args):  # type: ignore[no-untyped-def]
        """Run ``func`` on the model's own thread, after any batch in progress."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

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
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            live = [p for p in batch if not p.future.done()]  # skip callers that gave up
            try:
                if live:
                    outcomes = await loop.run_in_executor(
                        self._executor, self.lm.predict_batch, [p.request for p in live]
                    )
                    for pending, outcome in zip(live, outcomes):
                        if pending.future.done():
                            continue
                        if isinstance(outcome, FillMaskError):
                            pending.future.set_exception(outcome)
                        else:
                            pending.future.set_result(outcome)
                    self.requests_served += len(live)
            except Exception as exc:  # a model failure must reach the callers, not kill the worker
                log.exception("inference failed on %s for a batch of %d", self.name, len(live))
                for pending in live:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
            finally:
                for _ in batch:
                    queue.task_done()
