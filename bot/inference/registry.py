"""The checkpoints in memory: shared, loaded once, bounded, and released when evicted.

- Servers on the same checkpoint share one loaded copy (keyed by canonical reference).
- Concurrent requests for a checkpoint that is loading wait on the same load.
- At most ``max_loaded`` checkpoints stay loaded; the least recently used one is evicted
  and its memory released (``del`` + ``gc.collect()``, transformers #18782).
- Loading runs off the event loop (so the Discord heartbeat keeps going), one load at a time;
  but a load that has run ``load_lease`` seconds stops holding up the next one, and one that
  runs ``load_timeout`` seconds is given up. Each load has its own thread, so a read that never
  returns (a hung network mount) wedges only itself; the process exits without joining it.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, TypeVar

import torch

from bot.i18n import DEFAULT_LOCALE, _, lazy, using_locale
from bot.inference.batching import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUED_PER_TENANT, BatchingModel
from bot.inference.checkpoint_policy import shown
from bot.inference.errors import CheckpointLoadError
from bot.inference.masked_lm import MaskedLM
from bot.inference.progress import LoadProgress, ProgressCallback
from bot.inference.types import LoadedModel, ModelState

log = logging.getLogger(__name__)

T = TypeVar("T")

# A load's turn ends when it finishes or after this long: a slow or stuck load (a big download,
# a hung mount) must not keep other servers' switches waiting.
DEFAULT_LOAD_LEASE = 20.0
DEFAULT_LOAD_TIMEOUT = 600.0


class Loader(Protocol):
    """Loads a checkpoint (blocking), reporting progress if it can."""

    def __call__(self, reference: str, *, progress: ProgressCallback | None = None) -> MaskedLM: ...


class ModelRegistry:
    def __init__(
        self,
        loader: Loader,
        *,
        max_loaded: int = 2,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_queued_per_tenant: int = DEFAULT_MAX_QUEUED_PER_TENANT,
        load_lease: float = DEFAULT_LOAD_LEASE,
        load_timeout: float = DEFAULT_LOAD_TIMEOUT,
    ) -> None:
        if max_loaded < 1:
            raise ValueError("max_loaded must be at least 1")
        if load_lease <= 0 or load_timeout <= 0:
            raise ValueError("load_lease and load_timeout must be above 0")
        self._loader = loader
        self.max_loaded = max_loaded
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.max_queued_per_tenant = max_queued_per_tenant
        self._loaded: OrderedDict[str, BatchingModel] = OrderedDict()
        self._loading: dict[str, asyncio.Task[BatchingModel]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.load_lease = load_lease
        self.load_timeout = load_timeout
        # One load at a time: parallel loads race in transformers' lazy imports (ImportError seen
        # with concurrent `model set`s), double peak memory, and gain nothing on a few cores.
        self._load_turn = asyncio.Lock()
        self.load_seconds: dict[str, float] = {}
        # The latest progress of each load under way, written by the loader thread.
        self._progress: dict[str, LoadProgress] = {}

    # -- queries ---------------------------------------------------------------------------

    def state(self, reference: str) -> ModelState:
        if reference in self._loaded:
            return ModelState.LOADED
        if reference in self._loading:
            return ModelState.LOADING
        return ModelState.NOT_LOADED

    def progress(self, reference: str) -> LoadProgress | None:
        """How far the load of ``reference`` has got, while it is loading."""
        return self._progress.get(reference) if reference in self._loading else None

    def peek(self, reference: str) -> BatchingModel | None:
        """The loaded model, without loading it or touching the LRU order."""
        return self._loaded.get(reference)

    @property
    def where(self) -> str:
        """Where the models run, for ``model show``, in the current locale."""
        return _("this bot's process")

    @property
    def loaded(self) -> list[str]:
        """Loaded checkpoints, least recently used first."""
        return list(self._loaded)

    def has_loaded(self, reference: str) -> bool:
        return reference in self.load_seconds

    def loaded_models(self) -> list[LoadedModel]:
        return [
            LoadedModel(name, model.lm.memory_bytes, model.queue_depth, model.requests_served, model.lm.precision)
            for name, model in self._loaded.items()
        ]

    # -- loading ---------------------------------------------------------------------------

    async def get(self, reference: str) -> BatchingModel:
        """The model for ``reference``, loading it first (once, however many callers) if needed.

        Raises the loader's error (a :class:`~bot.inference.errors.CheckpointError` for anything a
        user can act on); a failed load leaves nothing behind, so a later call tries again.
        """
        model = self._loaded.get(reference)
        if model is not None:
            self._loaded.move_to_end(reference)
            return model
        task = self._loading.get(reference)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(reference), name=f"load:{reference}")
            self._loading[reference] = task
        # shield: a caller that gives up (a cancelled command) must not cancel the shared load.
        return await asyncio.shield(task)

    def preload(self, reference: str) -> asyncio.Task[BatchingModel]:
        """Start loading in the background; failures are logged, not raised."""
        task = asyncio.get_running_loop().create_task(self.get(reference), name=f"preload:{reference}")
        task.add_done_callback(_log_preload_failure)
        return task

    async def _load(self, reference: str) -> BatchingModel:
        started = time.perf_counter()
        try:
            report = _LoggedProgress(reference, self._progress)
            lm = await self._run_load(reference, functools.partial(self._loader, reference, progress=report))
        except BaseException:
            self._loading.pop(reference, None)
            self._progress.pop(reference, None)
            gc.collect()  # whatever the failed load allocated goes now, not at some later GC
            raise
        model = BatchingModel(
            lm, max_batch_size=self.max_batch_size, max_queue=self.max_queue, max_queued_per_tenant=self.max_queued_per_tenant
        )
        self.load_seconds[reference] = time.perf_counter() - started
        self._loaded[reference] = model
        self._loading.pop(reference, None)
        self._progress.pop(reference, None)
        self._evict_over_limit(keep=reference)
        return model

    async def _run_load(self, reference: str, load: Callable[[], MaskedLM]) -> MaskedLM:
        """Run ``load`` on its own thread once the previous load is done or past its lease."""
        await self._load_turn.acquire()
        loop = asyncio.get_running_loop()
        released = False

        def end_turn(*_: object) -> None:
            nonlocal released
            if not released:
                released = True
                self._load_turn.release()

        lease = loop.call_later(self.load_lease, end_turn)
        try:
            finished = _run_in_thread(loop, load, name=f"loader:{reference[-30:]}")
        except BaseException:
            lease.cancel()
            end_turn()
            raise
        finished.add_done_callback(end_turn)
        finished.add_done_callback(lambda _: lease.cancel())
        try:
            # shield: a timeout or cancel gives up waiting; the thread cannot be stopped, and is
            # left to finish (its result is dropped) without holding up anything else.
            return await asyncio.wait_for(asyncio.shield(finished), self.load_timeout)
        except TimeoutError:
            log.warning("loading %s took more than %.0f s; given up", reference, self.load_timeout)
            raise CheckpointLoadError(
                lazy(
                    "Loading {checkpoint} took more than {seconds} s, so I gave up. "
                    "Its files may sit on a disk or network share that doesn't answer.",
                    checkpoint=shown(reference),
                    seconds=format(self.load_timeout, ".0f"),
                )
            ) from None

    # -- eviction --------------------------------------------------------------------------

    def _evict_over_limit(self, *, keep: str) -> None:
        while len(self._loaded) > self.max_loaded:
            victim = next(name for name in self._loaded if name != keep)
            self.evict(victim)

    def evict(self, reference: str) -> bool:
        """Unload ``reference``; requests already queued on it are still answered."""
        model = self._loaded.pop(reference, None)
        if model is None:
            return False
        log.info("unloading %s", reference)
        task = asyncio.get_running_loop().create_task(self._release(model), name=f"unload:{reference}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        return True

    @staticmethod
    async def _release(model: BatchingModel) -> None:
        await model.aclose()
        del model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    async def aclose(self) -> None:
        for task in list(self._loading.values()):
            task.cancel()
        for name in list(self._loaded):
            self.evict(name)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


class _LoggedProgress:
    """Keeps a load's latest progress for readers, and logs it now and then (a service's only view)."""

    INTERVAL = 5.0

    def __init__(self, reference: str, latest: dict[str, LoadProgress]) -> None:
        self.reference = reference
        self.latest = latest
        self._logged_at = -self.INTERVAL
        self._stage = ""

    def __call__(self, progress: LoadProgress) -> None:
        self.latest[self.reference] = progress
        now = time.monotonic()
        if progress.stage != self._stage or now - self._logged_at >= self.INTERVAL:
            self._stage, self._logged_at = progress.stage, now
            with using_locale(DEFAULT_LOCALE):  # the log is in English, whoever's load this is
                described = progress.describe()
            log.info("loading %s: %s", self.reference, described)


# Load threads still running; a stopping process must not wait for one that is stuck.
_load_threads: set[threading.Thread] = set()


def loads_still_running() -> int:
    """How many load threads have not returned (a read that never returns keeps one forever)."""
    return sum(1 for thread in list(_load_threads) if thread.is_alive())


def _run_in_thread(loop: asyncio.AbstractEventLoop, func: Callable[[], T], *, name: str) -> asyncio.Future[T]:
    """``func()`` on a new thread of its own, its outcome as a future of ``loop``.

    Not a shared executor thread: a stuck read would then hold up every later load. Not a
    daemon either: torch aborts the interpreter's exit if a thread that ran it is still alive
    while it tears down; a process left with a stuck load thread ends with ``os._exit`` instead
    (``bot.__main__``), and never joins it.
    """
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if future.done():  # cancelled: nobody waits for it any more
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # pyright: ignore[reportArgumentType]  (None only with an error)

    def run() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = func()
        except BaseException as exc:
            error = exc
        finally:
            _load_threads.discard(threading.current_thread())
        try:
            loop.call_soon_threadsafe(deliver, result, error)
        except RuntimeError:  # the loop closed while we ran: nobody is waiting any more
            pass

    thread = threading.Thread(target=run, name=name)
    _load_threads.add(thread)
    thread.start()
    return future


def _log_preload_failure(task: asyncio.Task[BatchingModel]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("preloading failed: %s", exc)
