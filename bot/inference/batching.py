"""Serving one model to many concurrent callers, fairly between servers.

Requests wait in one queue per tenant (a server). A single worker task takes *whatever is
waiting* when the model becomes free and answers it with one forward pass on the model's own
thread. There is no waiting window, so a lone request at idle goes straight through, while a
burst is answered in a few batched passes instead of one pass per request.

Fairness is plain round robin over the tenants with something waiting: each pass takes one
request from each tenant in turn until the batch is full, and the next pass starts with the
tenant after the last one served. A server flooding the bot therefore fills the batches only
when nobody else is waiting, and a lone request from another server rides in the very next
pass: it waits at most the pass under way plus its own. Weighting by waiting time (deficit round
robin) would buy nothing here, because every request costs about the same (one short sentence).

Each tenant may have ``max_queued_per_tenant`` requests outstanding and the model ``max_queue``
in all; beyond that a request is refused at once with :class:`BusyError` and an estimate of
when there will be room, never left to wait unboundedly.

The model's thread is its only one: a tokenizer must not be used concurrently (tokenizers
#537), and inference must never run on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter, OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.i18n import lazy
from bot.inference.errors import BusyError, FillMaskError, ModelClosedError
from bot.inference.masked_lm import MaskedLM
from bot.inference.types import FillRequest, FillResult

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_QUEUE = 256
DEFAULT_MAX_QUEUED_PER_TENANT = 64
# A lone tenant's burst is regrouped by length over at most this many batches' worth.
_DRAIN_FACTOR = 4


@dataclass(slots=True)
class _Pending:
    request: FillRequest
    future: asyncio.Future[FillResult]


class _FairQueue:
    """Per-tenant FIFO queues served round robin."""

    def __init__(self) -> None:
        self._queues: OrderedDict[int | None, deque[_Pending]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def tenants(self) -> int:
        """How many tenants have something waiting."""
        return len(self._queues)

    def put(self, pending: _Pending) -> None:
        self._queues.setdefault(pending.request.tenant, deque()).append(pending)
        self._size += 1

    def take(self, limit: int) -> list[_Pending]:
        """Up to ``limit`` requests, one per tenant in turn, oldest first within a tenant."""
        taken: list[_Pending] = []
        while len(taken) < limit and self._queues:
            for tenant in list(self._queues):
                queue = self._queues[tenant]
                taken.append(queue.popleft())
                # The next turn starts after this tenant: whoever was not reached goes first.
                self._queues.move_to_end(tenant)
                if not queue:
                    del self._queues[tenant]
                if len(taken) == limit:
                    break
        self._size -= len(taken)
        return taken

    def put_back(self, pending: list[_Pending]) -> None:
        """Return requests taken but not run, ahead of their tenants' newer ones, first in line."""
        for item in reversed(pending):
            tenant = item.request.tenant
            if tenant not in self._queues:
                self._queues[tenant] = deque()
            self._queues[tenant].appendleft(item)
            self._queues.move_to_end(tenant, last=False)
        self._size += len(pending)


class BatchingModel:
    """A :class:`MaskedLM` behind a fair request queue, usable from any coroutine."""

    def __init__(
        self,
        lm: MaskedLM,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_queued_per_tenant: int = DEFAULT_MAX_QUEUED_PER_TENANT,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_queued_per_tenant < 1:
            raise ValueError("max_batch_size, max_queue and max_queued_per_tenant must be at least 1")
        self.lm = lm
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.max_queued_per_tenant = max_queued_per_tenant
        # Requests accepted and not yet answered (queued or in the forward pass), in all and per tenant.
        self.outstanding = 0
        self._outstanding_per_tenant: Counter[int | None] = Counter()
        # Moving average of model time per request, for "try again in N s".
        self.seconds_per_request = 0.05
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{lm.name[-20:]}")
        self._waiting = _FairQueue()
        self._work_ready: asyncio.Event | None = None
        # Set while nothing is waiting or being answered (what aclose waits for).
        self._drained: asyncio.Event | None = None
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
        return len(self._waiting)

    def outstanding_for(self, tenant: int | None) -> int:
        return self._outstanding_per_tenant[tenant]

    async def fill(self, request: FillRequest) -> FillResult:
        """Answer ``request``; raises its :class:`FillMaskError` if it is invalid, or
        :class:`BusyError` if its tenant's share or the whole queue is full."""
        if self._closed:
            raise ModelClosedError()
        tenant = request.tenant
        if self._outstanding_per_tenant[tenant] >= self.max_queued_per_tenant:
            # Round robin serves this tenant about once per batch while others wait too.
            raise BusyError(self._estimate(self._outstanding_per_tenant[tenant]), own_share=True)
        if self.outstanding >= self.max_queue:
            raise BusyError(self._estimate(self.outstanding))
        loop = asyncio.get_running_loop()
        self._ensure_worker()
        assert self._work_ready is not None and self._drained is not None
        started = time.perf_counter()
        pending = _Pending(request, loop.create_future())
        self._waiting.put(pending)
        self._drained.clear()
        self._work_ready.set()
        self.outstanding += 1
        self._outstanding_per_tenant[tenant] += 1
        try:
            result = await pending.future
        finally:
            self.outstanding -= 1
            self._outstanding_per_tenant[tenant] -= 1
            if not self._outstanding_per_tenant[tenant]:
                del self._outstanding_per_tenant[tenant]
        # Report what the caller waited (queue included), not just the batch's compute time.
        return dataclasses.replace(result, elapsed=time.perf_counter() - started)

    def _estimate(self, ahead: int) -> float:
        return ahead * self.seconds_per_request

    async def aclose(self) -> None:
        """Answer what is queued, then stop the worker and the model's thread."""
        self._closed = True
        if self._worker is not None and not self._worker.done():
            assert self._drained is not None
            await self._drained.wait()
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=False)

    # -- the worker ------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            # The events belong to the running loop: recreate them with the worker if the loop changed.
            self._work_ready = asyncio.Event()
            self._drained = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batch-worker:{self.name}")

    async def _work(self) -> None:
        assert self._work_ready is not None and self._drained is not None
        ready, drained = self._work_ready, self._drained
        while True:
            if not len(self._waiting):
                drained.set()
                ready.clear()
                await ready.wait()
            await self._run_batch(self._next_batch())

    def _next_batch(self) -> list[_Pending]:
        """One fair batch; a lone tenant's burst is regrouped by length first.

        With several tenants waiting, a batch is one round-robin take, so a newcomer rides in
        the next pass. With one, a few batches' worth is taken and regrouped by length (less
        padding); the group with the oldest request runs and the rest go back to the head of
        the line, where the next pass takes them fairly with anyone who arrived meanwhile.
        """
        if self._waiting.tenants > 1:
            return self._waiting.take(self.max_batch_size)
        taken = self._waiting.take(self.max_batch_size * _DRAIN_FACTOR)
        oldest = taken[0]
        batch = next(b for b in _length_buckets(taken, self.max_batch_size) if any(p is oldest for p in b))
        chosen = {id(p) for p in batch}
        self._waiting.put_back([p for p in taken if id(p) not in chosen])
        return batch

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
            failure = FillMaskError(lazy("Something went wrong on my side while answering; please try again."))
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
