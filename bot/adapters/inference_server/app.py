"""The inference service's Ray Serve application: an HTTP ingress and a model deployment.

    client --HTTP--> Ray's proxy --> InferenceIngress (FastAPI: routes, admission, errors)
                                       --handle, multiplexed_model_id=checkpoint--> ModelServer

``ModelServer`` loads checkpoints with ``@serve.multiplexed`` (at most MAX_LOADED_MODELS per
replica, the least recently used evicted by Ray; Ray routes a checkpoint's requests to a
replica that has it loaded) and answers them with ``@serve.batch`` (up to MAX_BATCH_SIZE
requests per forward pass, grouped by checkpoint). Loading and inference run on threads, off
the replica's event loop, with the core the in-process bot uses (:func:`load_masked_lm`,
:meth:`MaskedLM.predict_batch`), so the answers are the bot's and ``pipeline("fill-mask")``'s.

Admission control is the ingress's: each ingress replica lets at most MAX_QUEUE fill and load
requests in at once and answers the rest 429 with ``Retry-After``. Ray's own limits are set so
that they never refuse first (``max_queued_requests=-1``; the ingress's ``max_ongoing_requests``
above MAX_QUEUE), because Ray refuses with a 503.

``build_app`` is the application builder for ``serve run`` / ``serve deploy``
(``import_path: bot.adapters.inference_server.app:build_app``; see deploy/serve.yaml);
``build_application(settings)`` is the same from a :class:`Settings`.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations at runtime
# (``request: Request``), through Ray's ingress wrapper.
import asyncio
import collections
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from bot.inference.checkpoint_policy import check_allowed
from bot.inference.errors import (
    BusyError,
    CheckpointLoadError,
    FillMaskError,
    InvalidRequestError,
    NoMaskError,
    RequestFailedError,
    TooManyMasksError,
    TopKOutOfRangeError,
)
from bot.inference.masks import clean_input, count_masks, normalize_masks
from bot.inference.types import DEFAULT_TOP_K, MAX_MASKS, MAX_TOP_K, FillRequest, FillResult
from bot.inference.wire import SERVICE_NAME, checkpoint_from_path, status_for
from bot.service.fill_mask_service import MAX_TEXT_CHARS
from bot.settings import Settings

if TYPE_CHECKING:
    from ray.serve.deployment import Application

    from bot.inference.masked_lm import MaskedLM

log = logging.getLogger(__name__)

APP_NAME = "fillmask"
INGRESS_NAME = "InferenceIngress"
MODEL_NAME = "ModelServer"
# How long a batch waits for company once its first request is in (seconds): short, because a
# forward pass of a base-size model takes tens of milliseconds and requests that arrive while
# one runs join the next batch anyway.
BATCH_WAIT_TIMEOUT_S = 0.005
# The ingress only parses, counts and forwards: a fraction of a CPU.
INGRESS_CPUS = 0.1
# Requests the ingress admits beyond MAX_QUEUE without counting them (health, stats), so that
# Ray's max_ongoing_requests on the ingress is never what holds them back.
INGRESS_HEADROOM = 64
# How long GET /health waits for a model replica's answer before saying "starting".
HEALTH_PING_TIMEOUT_S = 5.0
# Batch sizes each model replica remembers for GET /stats.
RECENT_BATCHES = 256

# What the model deployment sends back to the ingress: plain data, never an exception object
# (BusyError and friends don't survive pickling with their arguments).
Outcome = dict[str, Any]


def _ok(body: object) -> Outcome:
    return {"status": 200, "body": body}


def _refused(error: FillMaskError) -> Outcome:
    outcome: Outcome = {"status": status_for(error), "body": {"error": str(error)}}
    if isinstance(error, BusyError):
        outcome["retry_after"] = error.retry_after
    return outcome


def _prediction_json(result: FillResult) -> list[dict[str, object]] | list[list[dict[str, object]]]:
    """``pipeline("fill-mask")``'s shape: a list for one mask, a list of lists for several."""
    masks = [
        [{"score": p.score, "token": p.token, "token_str": p.token_str, "sequence": p.sequence} for p in predictions]
        for predictions in result.masks
    ]
    return masks[0] if len(masks) == 1 else masks


@dataclass(frozen=True, slots=True)
class FillCall:
    """One fill as the ingress forwards it: the JSON already checked for shape."""

    inputs: str
    top_k: int = DEFAULT_TOP_K
    targets: tuple[str, ...] | None = None


def parse_fill_body(body: object) -> FillCall:
    """The Inference API's fill-mask JSON, checked; raises :class:`InvalidRequestError` in plain words."""
    if not isinstance(body, dict):
        raise InvalidRequestError('Send JSON like `{"inputs": "Paris is the <mask> of France."}`.')
    inputs = body.get("inputs")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if not isinstance(inputs, str):
        raise InvalidRequestError('`inputs` must be the sentence to complete, as a string, e.g. "Paris is the <mask> of France."')
    inputs = clean_input(inputs)
    if len(inputs) > MAX_TEXT_CHARS:
        raise InvalidRequestError(f"That's too long: keep it under {MAX_TEXT_CHARS} characters.")
    parameters: object = body.get("parameters") or {}  # pyright: ignore[reportUnknownMemberType]
    if not isinstance(parameters, dict):
        raise InvalidRequestError('`parameters` must be an object, e.g. `{"top_k": 3}`.')
    top_k: object = parameters.get("top_k", DEFAULT_TOP_K)  # pyright: ignore[reportUnknownMemberType]
    if top_k is None:
        top_k = DEFAULT_TOP_K
    if isinstance(top_k, float) and top_k.is_integer():
        top_k = int(top_k)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
        raise TopKOutOfRangeError()
    raw_targets: object = parameters.get("targets")  # pyright: ignore[reportUnknownMemberType]
    targets: tuple[str, ...] | None
    if raw_targets is None:
        targets = None
    elif isinstance(raw_targets, str):
        targets = (clean_input(raw_targets),)
    elif isinstance(raw_targets, list) and all(isinstance(t, str) for t in raw_targets):  # pyright: ignore[reportUnknownVariableType]
        targets = tuple(clean_input(str(t)) for t in raw_targets)  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
    else:
        raise InvalidRequestError('`targets` must be a list of words, e.g. `["bon", "mauvais"]`.')
    return FillCall(inputs=inputs, top_k=top_k, targets=targets)


def fill_request(call: FillCall, mask_token: str) -> FillRequest:
    """The core's request for ``call``: every accepted mask spelling turned into ``mask_token``,
    checked the way the bot's service checks it (same errors, same words)."""
    if not call.inputs.strip():
        raise NoMaskError(mask_token)
    text = normalize_masks(call.inputs, mask_token)
    masks = count_masks(text, mask_token)
    if masks == 0:
        raise NoMaskError(mask_token)
    if masks > MAX_MASKS:
        raise TooManyMasksError(masks, MAX_MASKS)
    return FillRequest(text=text, top_k=call.top_k, targets=call.targets)


def replica_cpus(settings: Settings) -> int:
    """Whole CPUs Ray reserved for this replica (a config file may override SERVE_CPUS_PER_REPLICA),
    at least one: torch's threads, which by default would be the whole machine's cores."""
    import ray

    cpus = settings.serve_cpus_per_replica
    try:
        cpus = float(ray.get_runtime_context().get_assigned_resources().get("CPU", cpus))
    except Exception:  # not in a Ray worker (a unit test): the setting
        pass
    return max(1, math.floor(cpus))


@dataclass(slots=True)
class _Pending:
    """A request waiting in the batch queue, with the model it goes to."""

    checkpoint: str
    model: "MaskedLM"
    request: FillRequest


@serve.deployment(name=MODEL_NAME, max_queued_requests=-1)
class ModelServer:
    """Loads checkpoints (multiplexed, LRU-evicted by Ray) and answers fills in batches."""

    def __init__(self, settings: Settings) -> None:
        # Imported here: the ingress imports this module too, and needs neither torch nor transformers.
        from bot.inference.loading import configure_threads, resolve_device, warm_imports
        from bot.wiring import checkpoint_loader

        self._settings = settings
        self._device = resolve_device(settings.device)
        self._loader = checkpoint_loader(settings)  # as the in-process bot loads
        self._threads = configure_threads(settings.torch_threads or replica_cpus(settings))
        warm_imports()
        self._batch_sizes: collections.deque[int] = collections.deque(maxlen=RECENT_BATCHES)
        self._loads = 0

        async def load_checkpoint_for_multiplexer(checkpoint: str) -> "MaskedLM":
            # A plain function, not a bound method: Ray's multiplexer keeps its state on it.
            return await self._load(checkpoint)

        # serve.multiplexed's annotations don't describe a decorated coroutine function.
        self._get_model = cast(
            Callable[[str], Awaitable["MaskedLM"]],
            serve.multiplexed(max_num_models_per_replica=settings.max_loaded_models)(load_checkpoint_for_multiplexer),
        )
        self._fill_batched = serve.batch(max_batch_size=settings.max_batch_size, batch_wait_timeout_s=BATCH_WAIT_TIMEOUT_S)(
            self._run_batch
        )
        log.info(
            "model replica ready: device %s, %d torch threads, up to %d checkpoints, batches of up to %d",
            self._device,
            self._threads,
            settings.max_loaded_models,
            settings.max_batch_size,
        )

    async def _load(self, checkpoint: str) -> "MaskedLM":
        settings = self._settings
        # The ingress checked already; checked again here, where the files are read.
        reference = check_allowed(checkpoint, settings.checkpoint_policy)
        started = time.perf_counter()
        log.info("loading %s", reference)
        try:
            model = await asyncio.wait_for(
                asyncio.to_thread(self._loader, reference),
                timeout=settings.load_timeout_seconds,
            )
        except TimeoutError:
            log.warning("loading %s took longer than %.0f s: given up", reference, settings.load_timeout_seconds)
            raise CheckpointLoadError(
                f"Loading that model took longer than {settings.load_timeout_seconds:.0f} s, so I gave up."
            ) from None
        self._loads += 1
        log.info("loaded %s in %.1f s", reference, time.perf_counter() - started)
        return model

    async def _model(self) -> "MaskedLM":
        checkpoint = serve.get_multiplexed_model_id()
        if not checkpoint:
            raise InvalidRequestError("Say which model to use: POST /models/{checkpoint}.")
        return await self._get_model(checkpoint)

    async def load(self) -> Outcome:
        """Load the request's checkpoint (its multiplexed model id) on this replica."""
        try:
            model = await self._model()
        except FillMaskError as exc:
            return _refused(exc)
        return _ok({"model": serve.get_multiplexed_model_id(), "mask_token": model.mask_token})

    async def fill(self, call: FillCall) -> Outcome:
        """Answer one fill with the request's checkpoint, batched with concurrent ones."""
        try:
            model = await self._model()
            request = fill_request(call, model.mask_token)
            outcome: FillResult | FillMaskError = await self._fill_batched(
                _Pending(serve.get_multiplexed_model_id(), model, request)
            )
        except FillMaskError as exc:
            return _refused(exc)
        if isinstance(outcome, FillMaskError):
            return _refused(outcome)
        return _ok(_prediction_json(outcome))

    async def _run_batch(self, batch: list[_Pending]) -> list[FillResult | FillMaskError]:
        """One batch from Ray: a forward pass per checkpoint in it, one after the other, on a thread."""
        self._batch_sizes.append(len(batch))
        groups: dict[str, list[int]] = {}
        for index, pending in enumerate(batch):
            groups.setdefault(pending.checkpoint, []).append(index)
        outcomes: list[FillResult | FillMaskError] = [RequestFailedError()] * len(batch)
        for indexes in groups.values():
            model = batch[indexes[0]].model
            requests = [batch[i].request for i in indexes]
            try:
                answers = await asyncio.to_thread(model.predict_batch, requests)
            except Exception:  # predict_batch answers errors per request; this is a bug
                log.exception("%s: a batch of %d failed", model.name, len(requests))
                continue
            for i, answer in zip(indexes, answers, strict=True):
                outcomes[i] = answer
        return outcomes

    async def ping(self) -> bool:
        """Whether this replica is up (its __init__ finished): the ingress's readiness check."""
        return True

    async def stats(self) -> dict[str, object]:
        """What this replica did: the sizes of its recent batches, its loads, its threads."""
        return {"batch_sizes": list(self._batch_sizes), "loads": self._loads, "torch_threads": self._threads}


app = FastAPI(title=SERVICE_NAME)


@serve.deployment(name=INGRESS_NAME, max_queued_requests=-1, ray_actor_options={"num_cpus": INGRESS_CPUS})
@serve.ingress(app)
class InferenceIngress:
    """The HTTP side: routes, the checkpoint policy, admission control, errors as JSON."""

    def __init__(self, model: DeploymentHandle, settings: Settings) -> None:
        self._model = model
        self._settings = settings
        self._in_flight = 0
        self._ready = False
        # Recent seconds per admitted request, for Retry-After.
        self._latency = 0.5

    # -- routes ----------------------------------------------------------------------------

    @app.get("/health")
    async def health(self) -> JSONResponse:
        """200 once a model replica has answered (once, then remembered: a busy replica must not
        make the service look down); 503 while none is up yet."""
        if not self._ready:
            try:
                self._ready = bool(await asyncio.wait_for(self._ping(), timeout=HEALTH_PING_TIMEOUT_S))
            except Exception:  # not up yet (or Ray is still placing it): not ready
                log.info("health: no model replica answers yet")
        if not self._ready:
            return JSONResponse({"status": "starting", "service": SERVICE_NAME}, status_code=503)
        return JSONResponse({"status": "ok", "service": SERVICE_NAME})

    async def _ping(self) -> bool:
        return bool(await self._model.ping.remote())

    @app.get("/stats")
    async def stats(self) -> JSONResponse:
        replica: dict[str, object] = await self._model.stats.remote()
        return JSONResponse({**replica, "in_flight": self._in_flight, "max_queue": self._settings.max_queue})

    @app.post("/models/{checkpoint:path}")
    async def fill(self, request: Request, checkpoint: str) -> JSONResponse:
        try:
            reference = self._checkpoint(request, "/models/", checkpoint)
            try:
                body: object = await request.json()
            except ValueError:
                raise InvalidRequestError('Send JSON like `{"inputs": "Paris is the <mask> of France."}`.') from None
            call = parse_fill_body(body)
        except FillMaskError as exc:
            return self._respond(_refused(exc))
        return await self._forward(reference, "fill", call)

    @app.post("/load/{checkpoint:path}")
    async def load(self, request: Request, checkpoint: str) -> JSONResponse:
        try:
            reference = self._checkpoint(request, "/load/", checkpoint)
        except FillMaskError as exc:
            return self._respond(_refused(exc))
        return await self._forward(reference, "load", None)

    # -- steps -----------------------------------------------------------------------------

    def _checkpoint(self, request: Request, route: str, decoded: str) -> str:
        """The checkpoint in the path, read from the raw (still percent-encoded) path when the
        server passes it on, so that an encoded ``%25`` or ``%2F`` is decoded exactly once; then
        the owner's policy (the canonical reference, or :class:`CheckpointNotAllowedError`)."""
        raw_path = request.scope.get("raw_path")
        checkpoint = decoded
        if isinstance(raw_path, bytes):
            raw = raw_path.decode("latin-1").split("?", 1)[0]
            at = raw.find(route)
            if at >= 0:
                checkpoint = checkpoint_from_path(raw[at + len(route) :])
        return check_allowed(checkpoint, self._settings.checkpoint_policy)

    async def _forward(self, reference: str, method: str, call: FillCall | None) -> JSONResponse:
        settings = self._settings
        if self._in_flight >= settings.max_queue:
            batches = math.ceil((self._in_flight + 1) / settings.max_batch_size)
            return self._respond(_refused(BusyError(min(60.0, max(1.0, self._latency * batches)))))
        self._in_flight += 1
        started = time.perf_counter()
        try:
            handle = self._model.options(multiplexed_model_id=reference)
            if method == "fill":
                outcome: Outcome = await handle.fill.remote(call)
            else:
                outcome = await handle.load.remote()
        except Exception:  # the model replica died, or a bug: logged, answered in plain words
            log.exception("%s of %s failed", method, reference)
            return self._respond(_refused(RequestFailedError()))
        finally:
            self._in_flight -= 1
        if method == "fill":
            self._latency = 0.8 * self._latency + 0.2 * (time.perf_counter() - started)
        return self._respond(outcome)

    @staticmethod
    def _respond(outcome: Outcome) -> JSONResponse:
        headers: dict[str, str] = {}
        retry_after = outcome.get("retry_after")
        if isinstance(retry_after, int | float):
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return JSONResponse(outcome["body"], status_code=int(outcome["status"]), headers=headers)


def deployment_options(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ray Serve options for (the model deployment, the ingress) from the settings."""
    scaling: dict[str, Any]
    if settings.serve_replicas > 0:
        scaling = {"num_replicas": settings.serve_replicas}
    else:
        scaling = {
            "autoscaling_config": {
                "min_replicas": settings.serve_min_replicas,
                "max_replicas": settings.serve_max_replicas,
                # A replica counts as busy with a batch's worth of requests in it.
                "target_ongoing_requests": settings.max_batch_size,
            }
        }
    model = {
        **scaling,
        # Ray caps a replica's batch at max_ongoing_requests: room for a full batch running and
        # the next one gathering. Requests beyond it wait in the ingress's handle, not refused.
        "max_ongoing_requests": 2 * settings.max_batch_size,
        "max_queued_requests": -1,
        "ray_actor_options": {
            "num_cpus": settings.serve_cpus_per_replica,
            "num_gpus": settings.serve_gpus_per_replica,
        },
    }
    ingress = {
        "num_replicas": 1,
        # Above MAX_QUEUE, so that our 429 (not Ray's queueing or 503) is what a full service answers.
        "max_ongoing_requests": settings.max_queue + INGRESS_HEADROOM,
        "max_queued_requests": -1,
    }
    return model, ingress


def build_application(settings: Settings) -> "Application":
    """The Serve application for ``settings``: the ingress bound to the model deployment."""
    model_options, ingress_options = deployment_options(settings)
    model = ModelServer.options(**model_options).bind(settings)
    return InferenceIngress.options(**ingress_options).bind(model, settings)


def build_app(args: Mapping[str, str] | None = None) -> "Application":
    """The application builder for ``serve run`` / ``serve deploy``: settings from the environment
    (and ``.env``); ``args`` (``serve run ... key=value`` or a config's ``args:``) override keys of
    the environment, e.g. ``{"MAX_BATCH_SIZE": "16"}``."""
    import os

    settings = Settings.from_env()  # also loads .env into the environment
    overrides = {str(k).upper(): str(v) for k, v in (args or {}).items()}
    if overrides:
        settings = Settings.from_env({**os.environ, **overrides})
    return build_application(settings)
