"""A stand-in for Hugging Face's hosted inference (the fill-mask task) on 127.0.0.1, for tests.

It answers like ``https://router.huggingface.co/hf-inference``::

    POST /models/{owner/name or name}
    {"inputs": "Paris is the [MASK] of France.", "parameters": {"top_k": 5, "targets": ["france"]}}
    -> 200 [{"score": 0.9, "token": 42, "token_str": "france", "sequence": "paris is the france of france."}, ...]
       (a list per mask, in order, when the text has several masks, as ``pipeline("fill-mask")`` gives)

with real results: each model id maps to a :class:`~bot.inference.masked_lm.MaskedLM` (a loaded
test checkpoint, or a folder loaded on first use with ``load_masked_lm``), run through
``predict_batch``, one request at a time per model, off the event loop. And it fails the way
Hugging Face does:

- ``Authorization: Bearer <token>`` checked when a token is set: 401
  ``{"error": "Invalid credentials in Authorization header"}``;
- an unknown id: 404 ``{"error": "Model X does not exist"}``;
- a text it can't fill (no mask, too long, bad targets...): 400 ``{"error": "<why>"}``;
- a cold model (:meth:`cold`): 503 ``{"error": "Model X is currently loading", "estimated_time": N}``
  for its next K calls (the loading also counts wall time: ``for_seconds``);
- throttling (:meth:`throttle`): 429 ``{"error": "Rate limit reached..."}`` with ``Retry-After``, or
  with the Hub's IETF ``RateLimit`` header only (huggingface_hub #3553; its 429s often lack ``Retry-After``);
- an outage (:attr:`outage`): ``"502"`` answers 502 with an HTML page, as a proxy in front does,
  ``"close"`` drops the connection without an answer; :meth:`stop` and :meth:`start` (same port)
  make it unreachable and back.

``flavour="fillmask"`` makes it this bot's own inference service instead (``python -m bot serve``):
the same fill route, plus ``POST /load/{checkpoint}`` -> ``{"model", "mask_token"}`` and
``GET /health``, refusals with :func:`bot.inference.wire.status_for`'s statuses and the core's own
words, the checkpoint in the path as :func:`bot.inference.wire.checkpoint_path` writes it.

Usage::

    async with FakeHFInference({"someone/tiny-bert": bert_lm}, token="hf_test") as hf:
        hf.cold("someone/tiny-bert", calls=2, estimated_time=0.2)
        ...  # POST f"{hf.url}/models/someone/tiny-bert"
        hf.requests  # what was asked, and answered
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from bot.inference import wire
from bot.inference.errors import BusyError, FillMaskError
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.types import DEFAULT_TOP_K, FillRequest, FillResult, Prediction

Flavour = Literal["huggingface", "fillmask"]
Outage = Literal["502", "close"]

RATE_LIMIT_MESSAGE = (
    "Rate limit reached. You reached free usage limit (reset hourly). "
    "Please subscribe to a plan at https://huggingface.co/pricing to use the API at this rate"
)
BAD_GATEWAY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"
)


@dataclass(frozen=True, slots=True)
class Answered:
    """One request and what it got."""

    method: str
    path: str
    model: str | None
    status: int
    authorization: str | None
    body: Any


@dataclass(slots=True)
class _Cold:
    calls: int
    estimated_time: float
    until: float  # monotonic time: loading until then, too


def serialize(result: FillResult) -> list[Any]:
    """A result as the pipeline (and so Hugging Face) gives it: flat for one mask, nested for several."""

    def item(prediction: Prediction) -> dict[str, Any]:
        return {
            "score": prediction.score,
            "token": prediction.token,
            "token_str": prediction.token_str,
            "sequence": prediction.sequence,
        }

    per_mask = [[item(p) for p in ranked] for ranked in result.masks]
    return per_mask[0] if len(per_mask) == 1 else per_mask


class FakeHFInference:
    def __init__(
        self,
        models: Mapping[str, MaskedLM | Path | str],
        *,
        token: str | None = None,
        flavour: Flavour = "huggingface",
        latency: float = 0.0,
        load_delay: float = 0.0,
        port: int = 0,
    ) -> None:
        self._models: dict[str, MaskedLM | Path | str] = dict(models)
        self._locks: dict[str, threading.Lock] = {name: threading.Lock() for name in self._models}
        self.token = token
        self.flavour: Flavour = flavour
        self.latency = latency  # extra seconds per fill, slept concurrently (a network, a big model)
        self.load_delay = load_delay  # seconds the fillmask flavour's /load takes
        self.outage: Outage | None = None
        self.requests: list[Answered] = []
        self._cold: dict[str, _Cold] = {}
        self._throttled = 0
        self._retry_after = 1.0
        self._throttle_header: Literal["Retry-After", "RateLimit"] = "Retry-After"
        self._port = port
        self._runner: web.AppRunner | None = None
        self.in_flight = 0
        self.most_in_flight = 0

    # -- life --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> FakeHFInference:
        """Listen (again on the same port after :meth:`stop`)."""
        if self._runner is not None:
            return self
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port, reuse_address=True)
        await site.start()
        self._port = int(runner.addresses[0][1])
        self._runner = runner
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection: the port refuses connections until :meth:`start`."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeHFInference:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    # -- behaviour ---------------------------------------------------------------------------

    def add_model(self, model_id: str, model: MaskedLM | Path | str) -> None:
        self._models[model_id] = model
        self._locks.setdefault(model_id, threading.Lock())

    def cold(self, model_id: str, *, calls: int = 2, estimated_time: float = 20.0, for_seconds: float = 0.0) -> None:
        """The next ``calls`` fills of ``model_id`` (and any within ``for_seconds``) answer 503 "loading"."""
        self._cold[model_id] = _Cold(calls, estimated_time, time.monotonic() + for_seconds)

    def throttle(
        self, *, calls: int = 1, retry_after: float = 1.0, header: Literal["Retry-After", "RateLimit"] = "Retry-After"
    ) -> None:
        """The next ``calls`` requests answer 429 with ``Retry-After: retry_after``, or (as the Hub
        does now) ``RateLimit: "api";r=0;t=<retry_after>`` and no ``Retry-After``."""
        self._throttled = calls
        self._retry_after = retry_after
        self._throttle_header = header

    def fills(self, model: str | None = None) -> list[Answered]:
        """The fill requests answered so far (of ``model``)."""
        return [r for r in self.requests if r.path.startswith("/models/") and (model is None or r.model == model)]

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path.split("?", 1)[0]
        model: str | None = None
        for route in ("/models/", "/load/"):
            if raw.startswith(route):
                model = wire.checkpoint_from_path(raw[len(route) :])
        body: Any = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = "<not JSON>"
        response = await self._answer(request, raw, model, body)
        self.requests.append(Answered(request.method, raw, model, response.status, request.headers.get("Authorization"), body))
        return response

    async def _answer(self, request: web.Request, raw: str, model: str | None, body: Any) -> web.StreamResponse:
        if self.outage == "close":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=502)  # never arrives: the connection is gone
        if self.outage == "502":
            return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
        if self.flavour == "fillmask" and raw == "/health" and request.method == "GET":
            return web.json_response({"status": "ok", "service": wire.SERVICE_NAME})
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "Invalid credentials in Authorization header")
        if self._throttled > 0:
            self._throttled -= 1
            if self._throttle_header == "RateLimit":
                headers = {
                    "RateLimit": f'"api";r=0;t={self._retry_after:g}',
                    "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
                }
            else:
                headers = {"Retry-After": f"{self._retry_after:g}"}
            return _error(429, RATE_LIMIT_MESSAGE, headers=headers)
        if request.method != "POST" or model is None:
            return _error(404, "Not Found") if self.flavour == "huggingface" else _error(404, "No such route.")
        if model not in self._models:
            if self.flavour == "huggingface":
                return _error(404, f"Model {model} does not exist")
            return _error(wire.STATUS_NOT_FOUND, f"I can't find `{model}` on the Hugging Face Hub.")
        if raw.startswith("/load/"):
            if self.flavour != "fillmask":
                return _error(404, "Not Found")
            if self.load_delay:
                await asyncio.sleep(self.load_delay)
            lm = await self._model(model)
            return web.json_response({"model": model, "mask_token": lm.mask_token})
        cold = self._cold.get(model)
        if cold is not None:
            if cold.calls > 0 or time.monotonic() < cold.until:
                cold.calls -= 1
                return web.json_response(
                    {"error": f"Model {model} is currently loading", "estimated_time": cold.estimated_time}, status=503
                )
            del self._cold[model]
        return await self._fill(model, body)

    async def _fill(self, model: str, body: Any) -> web.Response:
        try:
            request = _fill_request(body)
        except ValueError as exc:
            return _error(400, str(exc))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            lm = await self._model(model)
            outcome = await asyncio.to_thread(self._predict, model, lm, request)
        finally:
            self.in_flight -= 1
        if isinstance(outcome, FillMaskError):
            status = wire.status_for(outcome) if self.flavour == "fillmask" else 400
            headers = {"Retry-After": f"{outcome.retry_after:g}"} if isinstance(outcome, BusyError) else None
            return _error(status, str(outcome), headers=headers)
        return web.json_response(serialize(outcome))

    async def _model(self, model: str) -> MaskedLM:
        found = self._models[model]
        if isinstance(found, MaskedLM):
            return found
        lm = await asyncio.to_thread(load_masked_lm, str(found))
        self._models[model] = lm
        return lm

    def _predict(self, model: str, lm: MaskedLM, request: FillRequest) -> FillResult | FillMaskError:
        with self._locks[model]:  # a tokenizer is not thread-safe
            (outcome,) = lm.predict_batch([request])
        return outcome


def _fill_request(body: Any) -> FillRequest:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), str):
        raise ValueError('Body needs to provide a "inputs" key')
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError('"parameters" must be an object')
    top_k = parameters.get("top_k", DEFAULT_TOP_K)
    if not isinstance(top_k, int) or isinstance(top_k, bool):
        raise ValueError('"top_k" must be an integer')
    targets = parameters.get("targets")
    if targets is not None:
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise ValueError('"targets" must be a list of strings')
        targets = tuple(targets)
    return FillRequest(text=body["inputs"], top_k=top_k, targets=targets)


def _error(status: int, message: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps({"error": message}), content_type="application/json", headers=dict(headers or {})
    )
