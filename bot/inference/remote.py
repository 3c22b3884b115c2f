"""The remote inference backend: checkpoints run by another process, reached over HTTP.

A bot started with ``INFERENCE_URL`` keeps no model in memory: every fill is one
``POST {url}/models/{checkpoint}`` (:mod:`bot.inference.wire`, the Hugging Face Inference API's
fill-mask task) to one of two servers (``api``):

- ``"fillmask"``: this bot's own inference service (``python -m bot serve``). ``get()`` asks it to
  load the checkpoint (``POST {url}/load/{checkpoint}``, waiting up to ``load_timeout``), which
  also tells the mask token; refusals come back as ``{"error": "<plain words>"}``.
- ``"huggingface"``: Hugging Face's hosted inference (``https://router.huggingface.co/hf-inference``)
  or a stand-in for it. There is no load route: the mask token comes from the Hub (the model's
  ``mask_token``, else its ``tokenizer_config.json``), and ``get()`` sends one small fill, which
  makes Hugging Face load the model. While it loads, Hugging Face answers 503
  ``{"error": "Model X is currently loading", "estimated_time": 20.0}``: the checkpoint is then
  LOADING (the bot shows its loading notice) and the fill is sent again after
  ``min(estimated_time, loading_retry_cap)`` seconds, until it is answered or ``load_timeout`` passes.

The requests are built by huggingface_hub's own fill-mask request helper (the one
``AsyncInferenceClient.fill_mask`` uses: same URL handling, headers, token and payload) and
parsed with its ``FillMaskOutputElement``; they are sent with an ``httpx2.AsyncClient`` of this
module's own rather than through ``AsyncInferenceClient`` itself, because (1) ``fill_mask`` is
typed and documented for one mask while a text with several masks gets a list of lists,
(2) its session refuses every request under ``HF_HUB_OFFLINE=1`` (an offline bot may still use
its own inference service), and (3) it takes a single timeout and pools at most 100
connections, where a fill needs a short connect timeout, an overall bound and ``max_in_flight``
requests at once.

Every failure reaches the user as a :class:`~bot.inference.errors.FillMaskError` in plain words:
an outage (refused connection, timeout, 5xx) as :class:`InferenceUnavailableError`, a full
server as :class:`BusyError`, a refusal with the server's words (:func:`wire.error_for`). The
details are logged. Nothing is cached between calls: the next call after an outage simply tries
again, and a fill's answer is always its own.

Neither torch nor transformers is imported, here or by anything imported here.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
from huggingface_hub import FillMaskOutputElement, HfApi, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from huggingface_hub.inference._providers import get_provider_helper
from huggingface_hub.utils import HFValidationError, build_hf_headers, get_token

from bot.i18n import N_, Message, lazy
from bot.inference import wire
from bot.inference.checkpoint_policy import is_local_reference, printable, shown
from bot.inference.errors import (
    BusyError,
    CheckpointLoadError,
    CheckpointNotAllowedError,
    CheckpointNotFoundError,
    FillMaskError,
    InferenceUnavailableError,
    InvalidRequestError,
    NoMaskTokenError,
)
from bot.inference.progress import LoadProgress
from bot.inference.types import FillRequest, FillResult, LoadedModel, ModelState, Prediction

log = logging.getLogger(__name__)

Api = Literal["fillmask", "huggingface"]
APIS: tuple[Api, ...] = ("fillmask", "huggingface")

HF_INFERENCE_URL = "https://router.huggingface.co/hf-inference"

DEFAULT_FILL_TIMEOUT = 15.0
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_MAX_IN_FLIGHT = 256
# The longest wait between two tries while Hugging Face loads a model (it often says 20 s).
DEFAULT_LOADING_RETRY_CAP = 10.0
# How many checkpoints ``loaded`` remembers (the server decides what it keeps in memory).
DEFAULT_MAX_REMEMBERED = 64

_UNREACHABLE = lazy("I can't reach the model server right now; please try again in a minute.")
_TOO_SLOW = lazy("The model server took too long to answer; please try again in a minute.")
_GARBLED = lazy("The model server sent an answer I can't read; please try again in a minute.")


class InferenceTokenRefusedError(InferenceUnavailableError):
    """The server refused the bot's credentials (HF_TOKEN): the owner's problem, not the user's."""

    title = N_("Model server refused the bot")

    def __init__(self) -> None:
        super().__init__(
            lazy(
                "The model server refused the bot's token (HF_TOKEN), so I can't fill blanks right now. "
                "The bot's owner needs to check that token."
            )
        )


class _NoAnswerInTime(InferenceUnavailableError):
    """The server took longer than the call's timeout (a fill's: an outage; a load's: given up)."""

    def __init__(self) -> None:
        super().__init__(_TOO_SLOW)


class _StillLoading(Exception):
    """Hugging Face's 503 while it loads the model: try again after ``estimated`` seconds."""

    def __init__(self, estimated: float) -> None:
        super().__init__(estimated)
        self.estimated = estimated


@dataclass(slots=True)
class _Cold:
    """A checkpoint the server said it is still loading."""

    since: float
    estimated: float
    waiting: int = 0


class RemoteModel:
    """One checkpoint on the remote server (a :class:`~bot.inference.types.FillModel`)."""

    def __init__(self, backend: RemoteBackend, name: str, mask_token: str) -> None:
        self._backend = backend
        self._name = name
        self._mask_token = mask_token
        self.queue_depth = 0  # fills of this model sent and not yet answered
        self.requests_served = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def mask_token(self) -> str:
        return self._mask_token

    async def fill(self, request: FillRequest) -> FillResult:
        return await self._backend.fill(self, request)

    def __repr__(self) -> str:
        return f"RemoteModel({self._name!r}, mask_token={self._mask_token!r})"


class RemoteBackend:
    """An :class:`~bot.inference.types.InferenceBackend` whose checkpoints run on a server at ``url``."""

    def __init__(
        self,
        url: str,
        *,
        api: str,  # "fillmask" or "huggingface" (Api); checked here, so a setting's string passes as it is
        token: str | None = None,
        load_timeout: float,
        fill_timeout: float = DEFAULT_FILL_TIMEOUT,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        loading_retry_cap: float = DEFAULT_LOADING_RETRY_CAP,
    ) -> None:
        if api != "fillmask" and api != "huggingface":
            raise ValueError(f"api must be one of {', '.join(APIS)}, not {api!r}")
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"the inference URL must start with http:// or https://, not {url!r}")
        if load_timeout <= 0 or fill_timeout <= 0 or connect_timeout <= 0 or loading_retry_cap <= 0:
            raise ValueError("load_timeout, fill_timeout, connect_timeout and loading_retry_cap must be above 0")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.url = url.rstrip("/")
        self.api: Api = api
        # Hugging Face: the token huggingface_hub finds (HF_TOKEN, then the stored login) unless one
        # is given. This bot's service: only a token given on purpose (HF_TOKEN is not its secret).
        self._token = token if token else (get_token() if api == "huggingface" else None)
        self.load_timeout = load_timeout
        self.fill_timeout = fill_timeout
        self.connect_timeout = min(connect_timeout, fill_timeout)
        self.max_in_flight = max_in_flight
        self.loading_retry_cap = loading_retry_cap
        self._models: OrderedDict[str, RemoteModel] = OrderedDict()
        self._loading: dict[str, asyncio.Task[RemoteModel]] = {}
        self._load_started: dict[str, float] = {}
        self._cold: dict[str, _Cold] = {}
        self.load_seconds: dict[str, float] = {}
        self._in_flight = 0
        self._client: httpx2.AsyncClient | None = None

    # -- description -----------------------------------------------------------------------

    @property
    def where(self) -> str:
        """Where the models run, for ``model show``, in the current locale."""
        return self._where().localized()

    def _where(self) -> Message:
        parsed = urllib.parse.urlsplit(self.url)
        host = parsed.hostname or ""
        netloc = f"{host}:{parsed.port}" if parsed.port else host
        if self.api == "fillmask":
            return lazy("the inference service at {address}", address=netloc)
        if host == "huggingface.co" or host.endswith(".huggingface.co"):
            return lazy("Hugging Face's hosted inference")
        return lazy("the hosted-inference API at {address}", address=netloc)

    @property
    def in_flight(self) -> int:
        """Fills sent and not yet answered, all checkpoints together."""
        return self._in_flight

    # -- queries ---------------------------------------------------------------------------

    def state(self, reference: str) -> ModelState:
        if reference in self._loading or reference in self._cold:
            return ModelState.LOADING
        if reference in self._models:
            return ModelState.LOADED
        return ModelState.NOT_LOADED

    def progress(self, reference: str) -> LoadProgress | None:
        now = time.monotonic()
        cold = self._cold.get(reference)
        if cold is not None:
            started = min(cold.since, self._load_started.get(reference, cold.since))
            if self.api == "huggingface":
                note = lazy("Hugging Face expects about {seconds} s", seconds=format(cold.estimated, ".0f"))
            else:
                note = lazy("on the model server")
            return LoadProgress("loading weights", now - started, note=note)
        started = self._load_started.get(reference)
        if started is not None and reference in self._loading:
            return LoadProgress("loading weights", now - started, note=lazy("on the model server"))
        return None

    def peek(self, reference: str) -> RemoteModel | None:
        return self._models.get(reference)

    def has_loaded(self, reference: str) -> bool:
        return reference in self.load_seconds

    @property
    def loaded(self) -> list[str]:
        return list(self._models)

    def loaded_models(self) -> list[LoadedModel]:
        # The weights live on the server: nothing in this process's memory.
        return [LoadedModel(name, 0, model.queue_depth, model.requests_served, "remote") for name, model in self._models.items()]

    # -- loading ---------------------------------------------------------------------------

    async def get(self, reference: str) -> RemoteModel:
        model = self._models.get(reference)
        if model is not None:
            self._models.move_to_end(reference)
            return model
        task = self._loading.get(reference)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(reference), name=f"remote-load:{reference}")
            self._loading[reference] = task
        # shield: a caller that gives up must not cancel the load others wait on.
        return await asyncio.shield(task)

    def preload(self, reference: str) -> asyncio.Task[RemoteModel]:
        task = asyncio.get_running_loop().create_task(self.get(reference), name=f"remote-preload:{reference}")
        task.add_done_callback(_log_preload_failure)
        return task

    async def _load(self, reference: str) -> RemoteModel:
        started = time.monotonic()
        self._load_started[reference] = started
        try:
            if self.api == "fillmask":
                model = await self._load_from_service(reference)
            else:
                model = await self._load_from_hugging_face(reference)
        finally:
            self._loading.pop(reference, None)
            self._load_started.pop(reference, None)
        self.load_seconds[reference] = time.monotonic() - started
        self._models[reference] = model
        while len(self._models) > DEFAULT_MAX_REMEMBERED:
            self._models.popitem(last=False)
        log.info("%s is ready on %s (mask %s)", reference, self._where(), model.mask_token)  # English: str(Message)
        return model

    async def _load_from_service(self, reference: str) -> RemoteModel:
        url = f"{self.url}{wire.load_path(reference)}"
        try:
            body = await self._post(url, None, reference, timeout=self.load_timeout)
        except _StillLoading:
            log.warning("the load route of %s answered 'loading' for %s", self.url, reference)
            raise InferenceUnavailableError(_UNREACHABLE) from None
        except _NoAnswerInTime:
            raise CheckpointLoadError(
                lazy(
                    "Loading {checkpoint} on the model server took more than {seconds} s, so I gave up.",
                    checkpoint=shown(reference),
                    seconds=format(self.load_timeout, ".0f"),
                )
            ) from None
        mask_token = body.get("mask_token") if isinstance(body, dict) else None
        if not isinstance(mask_token, str) or not mask_token:
            log.warning("the load route of %s answered %r for %s", self.url, body, reference)
            raise InferenceUnavailableError(_GARBLED)
        return RemoteModel(self, reference, mask_token)

    async def _load_from_hugging_face(self, reference: str) -> RemoteModel:
        if is_local_reference(reference):
            raise CheckpointNotAllowedError(
                lazy(
                    "{checkpoint} is a folder on this machine, but the models here run on Hugging Face's "
                    "hosted inference, which only serves models from the Hugging Face Hub.",
                    checkpoint=shown(reference),
                )
            )
        mask_token = await asyncio.to_thread(self._hub_mask_token, reference)
        model = RemoteModel(self, reference, mask_token)
        # One small fill: Hugging Face loads the model now (503s meanwhile), and a model it doesn't
        # serve is refused here, when the admin picks it, not at a user's first fill.
        await self._send_fill(model, FillRequest(f"Hello {mask_token} world.", top_k=1))
        return model

    def _hub_mask_token(self, reference: str) -> str:
        """The checkpoint's mask token, from the Hub's model info or its tokenizer files (blocking)."""
        reached = True
        mask_token: str | None = None
        try:
            info = HfApi(token=self._token or None).model_info(reference)
            mask_token = info.mask_token
        except GatedRepoError:
            raise CheckpointNotAllowedError(
                lazy(
                    "{checkpoint} is gated on the Hugging Face Hub, and the bot's account hasn't been granted access.",
                    checkpoint=shown(reference),
                )
            ) from None
        except (RepositoryNotFoundError, HFValidationError):
            raise CheckpointNotFoundError(
                lazy(
                    "I can't find {checkpoint} on the Hugging Face Hub. Check the spelling (`owner/name`).",
                    checkpoint=shown(reference),
                )
            ) from None
        except (HfHubHTTPError, OfflineModeIsEnabled, httpx2.HTTPError, OSError) as exc:
            log.warning("model info of %s: %s: %s", reference, type(exc).__name__, exc)
            if _status_of(exc) == 401:  # the Hub and its inference take the same token
                raise InferenceTokenRefusedError() from None
            reached = False
        if not mask_token:
            mask_token = _mask_token_from_files(reference, self._token)
        if mask_token:
            return mask_token
        if not reached:
            raise InferenceUnavailableError(
                lazy(
                    "I can't reach the Hugging Face Hub to look up {checkpoint} right now; please try again in a minute.",
                    checkpoint=shown(reference),
                )
            )
        raise NoMaskTokenError(
            lazy("{checkpoint}'s tokenizer has no mask token, so there is no blank it can fill.", checkpoint=shown(reference))
        )

    # -- filling ---------------------------------------------------------------------------

    async def fill(self, model: RemoteModel, request: FillRequest) -> FillResult:
        """Send ``request`` to the server (concurrently with the others, ``max_in_flight`` at most)."""
        if self._in_flight >= self.max_in_flight:
            raise BusyError(1.0)
        self._in_flight += 1
        model.queue_depth += 1
        started = time.perf_counter()
        try:
            result = await self._send_fill(model, request)
        finally:
            self._in_flight -= 1
            model.queue_depth -= 1
        model.requests_served += 1
        return FillResult(
            checkpoint=result.checkpoint,
            text=result.text,
            masks=result.masks,
            best_sequence=result.best_sequence,
            elapsed=time.perf_counter() - started,
            batch_size=1,
        )

    async def _send_fill(self, model: RemoteModel, request: FillRequest) -> FillResult:
        """The server's answer to ``request``, waiting (up to ``load_timeout``) while it loads the model."""
        name = model.name
        url = f"{self.url}{wire.fill_path(name)}"
        parameters: dict[str, Any] = {
            "top_k": request.top_k,
            "targets": list(request.targets) if request.targets is not None else None,
        }
        prepared = get_provider_helper("hf-inference", task="fill-mask", model=url).prepare_request(
            inputs=request.text, parameters=parameters, headers={}, model=url, api_key=self._token
        )
        headers = dict(prepared.headers)
        if not self._token:  # the helper adds whatever token it finds; send none unless the bot has one
            headers.pop("authorization", None)
        cold: _Cold | None = None
        first_loading: float | None = None
        try:
            while True:
                try:
                    body = await self._post(prepared.url, prepared.json, name, timeout=self.fill_timeout, headers=headers)
                except _StillLoading as loading:
                    now = time.monotonic()
                    if first_loading is None:
                        first_loading = now
                    if cold is None or self._cold.get(name) is not cold:  # first 503, or another fill was answered since
                        if cold is not None:
                            cold.waiting -= 1
                        cold = self._cold.setdefault(name, _Cold(now, loading.estimated))
                        cold.waiting += 1
                    cold.estimated = loading.estimated
                    left = first_loading + self.load_timeout - now
                    if left <= 0:
                        raise InferenceUnavailableError(
                            lazy(
                                "The model server is still loading {checkpoint} after {seconds} s; "
                                "please try again in a few minutes.",
                                checkpoint=shown(name),
                                seconds=format(self.load_timeout, ".0f"),
                            )
                        ) from None
                    await asyncio.sleep(min(max(loading.estimated, 0.05), self.loading_retry_cap, left))
                    continue
                self._cold.pop(name, None)  # answered: whatever said "loading" is over
                return _result(name, model.mask_token, request, body)
        finally:
            if cold is not None:
                cold.waiting -= 1
                if cold.waiting <= 0 and self._cold.get(name) is cold:
                    del self._cold[name]

    # -- HTTP ------------------------------------------------------------------------------

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx2.AsyncClient(
                timeout=httpx2.Timeout(self.fill_timeout, connect=self.connect_timeout),
                limits=httpx2.Limits(
                    max_connections=self.max_in_flight + 8, max_keepalive_connections=min(self.max_in_flight, 64)
                ),
                follow_redirects=False,
            )
        return self._client

    async def _post(
        self, url: str, payload: Any, checkpoint: str, *, timeout: float, headers: dict[str, str] | None = None
    ) -> Any:
        """POST and read the JSON answer, or raise the error it stands for (:class:`_StillLoading` for HF's 503)."""
        if headers is None:
            headers = build_hf_headers(token=self._token or False)
        client = self._http()
        try:
            async with asyncio.timeout(timeout):  # all told, connecting included
                response = await client.post(
                    url,
                    json=payload,
                    headers=headers,
                    timeout=httpx2.Timeout(timeout, connect=self.connect_timeout),
                )
        except (TimeoutError, httpx2.TimeoutException) as exc:
            log.warning("POST %s: no answer in time (%s)", url, type(exc).__name__)
            raise _NoAnswerInTime() from None
        except (httpx2.HTTPError, OSError) as exc:
            log.warning("POST %s failed: %s: %s", url, type(exc).__name__, exc)
            raise InferenceUnavailableError(_UNREACHABLE) from None
        return self._read(response, checkpoint)

    def _read(self, response: httpx2.Response, checkpoint: str) -> Any:
        status = response.status_code
        if status == 200:
            try:
                return response.json()
            except ValueError:
                log.warning("POST %s: 200 with a body that isn't JSON: %r", response.url, response.text[:200])
                raise InferenceUnavailableError(_GARBLED) from None
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            pass
        message = body.get("error") if isinstance(body, dict) else None
        if not isinstance(message, str):
            message = None
        log.info("POST %s: %d %s", response.url, status, (message or response.text[:200]).replace("\n", " "))
        if status == 503 and isinstance(body, dict) and isinstance(body.get("estimated_time"), int | float):
            raise _StillLoading(float(body["estimated_time"]))
        if status == wire.STATUS_BUSY:
            raise BusyError(_retry_after(response.headers.get("Retry-After"), response.headers.get("RateLimit")))
        if status == 402 and self.api == "huggingface":
            log.warning("%s: the bot's account is out of credits (402): %s", self.url, message)
            raise InferenceUnavailableError(
                lazy(
                    "Hugging Face's hosted inference won't take more requests from the bot's account right now "
                    "(its included credits are used up). The bot's owner needs to check the account."
                )
            )
        if status == 401 or (status == 403 and self.api == "huggingface"):
            log.warning("%s refused the bot's token (%d): %s", self.url, status, message)
            raise InferenceTokenRefusedError()
        if 400 <= status < 500:
            if self.api == "huggingface":
                raise _hugging_face_refusal(status, message, checkpoint)
            if message:
                # The service's own words, in English as it sent them (not translated here).
                raise wire.error_for(status, _plain(message))
            if status == wire.STATUS_NOT_FOUND:
                raise CheckpointNotFoundError(lazy("The model server has no model {checkpoint}.", checkpoint=shown(checkpoint)))
            raise InvalidRequestError(lazy("The model server couldn't read that request."))
        if status == wire.STATUS_FAILED and self.api == "fillmask" and message:
            # The service's own words for a request that failed there (already logged there).
            raise wire.error_for(status, _plain(message))
        log.warning("POST %s: the model server failed with %d", response.url, status)
        raise InferenceUnavailableError(
            lazy("The model server had a problem (error {status}); please try again in a minute.", status=status)
        )

    async def aclose(self) -> None:
        for task in list(self._loading.values()):
            task.cancel()
        self._models.clear()
        self._cold.clear()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


# -- answers ---------------------------------------------------------------------------------


def _result(name: str, mask_token: str, request: FillRequest, body: Any) -> FillResult:
    """The server's answer as a :class:`FillResult` (one list per mask, or one list for one mask)."""
    try:
        parsed: Any = FillMaskOutputElement.parse_obj(body)
        if not isinstance(parsed, list) or not parsed:
            raise ValueError("not a non-empty list")
        per_mask: list[Any] = parsed if all(isinstance(item, list) for item in parsed) else [parsed]
        masks = tuple(tuple(_prediction(item) for item in ranked) for ranked in per_mask)
        if any(not ranked for ranked in masks):
            raise ValueError("a mask without predictions")
    except (TypeError, ValueError, KeyError, json.JSONDecodeError) as exc:
        log.warning("fill of %s: an answer I can't read (%s): %r", name, exc, str(body)[:300])
        raise InferenceUnavailableError(_GARBLED) from None
    expected = request.text.count(mask_token)
    if expected and expected != len(masks):
        log.warning("fill of %s: %d masks in the text, %d in the answer", name, expected, len(masks))
    if len(masks) == 1:
        best = masks[0][0].sequence
    else:
        best = (
            _merged_sequences(request.text, mask_token, [ranked[0].sequence for ranked in masks])
            or _filled_text(request.text, mask_token, [ranked[0].token_str for ranked in masks])
            or masks[0][0].sequence
        )
    return FillResult(checkpoint=name, text=request.text, masks=masks, best_sequence=best)


def _prediction(item: Any) -> Prediction:
    if not isinstance(item, FillMaskOutputElement):
        raise TypeError(f"{type(item).__name__}, not a prediction")
    score, token, token_str, sequence = item.score, item.token, item.token_str, item.sequence
    if not isinstance(score, int | float) or isinstance(score, bool) or not isinstance(token, int) or isinstance(token, bool):
        raise TypeError("a prediction without a numeric score and token id")
    if not isinstance(token_str, str) or not isinstance(sequence, str):
        raise TypeError("a prediction without token_str and sequence")
    return Prediction(score=float(score), token=token, token_str=token_str, sequence=sequence)


def _merged_sequences(text: str, mask_token: str, sequences: Sequence[str]) -> str | None:
    """The sentence with every mask filled, from each mask's best sequence (several masks).

    With several masks the pipeline decodes each prediction's sequence with the other masks left
    in and the special tokens kept; the core decodes its ``best_sequence`` from all the best ids
    with the special tokens dropped. The same text comes out of merging the sequences: start
    from the first mask's; for each next mask, take its own sequence from just after the mask
    before it (still masked there) to just before the mask after it (or to the end), and put it
    in place of the text from where that stretch starts (it overlaps the end of what is built so
    far) through the mask. So each filled word keeps the spacing the tokenizer's decode gave it.
    Then the special tokens around the sentence go (the ones the user didn't type). None when
    the sequences don't fit together.
    """
    built = sequences[0]
    for m, sequence in enumerate(sequences[1:], start=1):
        # In its own sequence, mask m is filled and masks 0..m-1, m+1.. are still there.
        pieces = sequence.split(mask_token)
        if len(pieces) != len(sequences):
            return None
        stretch = pieces[m]  # from after mask m-1 to before mask m+1 (or to the end)
        at = built.find(mask_token)
        if at < 0:
            return None
        before, after = built[:at], built[at + len(mask_token) :]
        overlap = next((k for k in range(min(len(before), len(stretch)), 0, -1) if before.endswith(stretch[:k])), 0)
        rest = after[after.find(mask_token) :] if m < len(sequences) - 1 and mask_token in after else ""
        if m < len(sequences) - 1 and not rest:
            return None
        built = before[: len(before) - overlap] + stretch + rest
    if mask_token in built:
        return None
    return _without_special_ends(built, text).strip()


# Special tokens a decode keeps around a sentence (BERT's, RoBERTa's/CamemBERT's, XLNet's...).
_SPECIAL_START = re.compile(r"^\s*(\[CLS\]|\[BOS\]|<s>|<cls>|<bos>|<\|endoftext\|>)\s*")
_SPECIAL_END = re.compile(r"\s*(\[SEP\]|\[EOS\]|</s>|<sep>|<eos>|<\|endoftext\|>)(\s*(\[PAD\]|<pad>))*\s*$")


def _without_special_ends(sequence: str, text: str) -> str:
    for pattern in (_SPECIAL_START, _SPECIAL_END):
        found = pattern.search(sequence)
        if found is not None and found.group(1) not in text:
            sequence = (
                sequence[: found.start()]
                + (" " if found.start() > 0 and found.end() < len(sequence) else "")
                + sequence[found.end() :]
            )
    return sequence


def _filled_text(text: str, mask_token: str, words: Sequence[str]) -> str | None:
    """``text`` with each mask replaced by its word, as the pipeline's decode would space it.

    The server gives each prediction's sequence with the other masks left in (and, as the pipeline
    decodes several masks, special tokens kept); the sentence with every mask filled is rebuilt
    from the text and the best ``token_str`` of each mask: a WordPiece continuation (``##s``) is
    glued to what precedes it, a leading space (byte-level BPE) is not doubled.
    """
    pieces = text.split(mask_token)
    if len(pieces) != len(words) + 1:
        return None
    out = pieces[0]
    for word, after in zip(words, pieces[1:], strict=True):
        if word.startswith("##"):
            out = out.rstrip() + word[2:]
        elif word[:1].isspace() and (not out or out[-1:].isspace()):
            out += word.lstrip()
        else:
            out += word
        out += after
    return out.strip()


# -- helpers ---------------------------------------------------------------------------------


def _plain(message: str) -> str:
    """A server's words, made safe to show (no invisible marks, bounded)."""
    text = printable(message).strip()
    return text[:497] + "..." if len(text) > 500 else text


def _hugging_face_refusal(status: int, message: str | None, checkpoint: str) -> FillMaskError:
    if status == wire.STATUS_NOT_FOUND:
        return CheckpointNotFoundError(
            lazy(
                "Hugging Face's hosted inference doesn't run {checkpoint}: "
                "the model doesn't exist or isn't deployed there for fill-mask.",
                checkpoint=shown(checkpoint),
            )
        )
    if message:
        # Hugging Face's own words stay as it wrote them (English).
        return InvalidRequestError(
            lazy("Hugging Face's hosted inference refused that sentence: {reason}", reason=_plain(message))
        )
    return InvalidRequestError(lazy("Hugging Face's hosted inference refused that sentence."))


_RATELIMIT_RESET = re.compile(r";\s*t=(\d+(?:\.\d+)?)")


def _retry_after(value: str | None, ratelimit: str | None = None) -> float:
    """``Retry-After`` in seconds (a number, or an HTTP date), else the reset time of the Hub's
    IETF ``RateLimit`` header (``"api";r=0;t=55``); 1 s when neither says."""
    if not value:
        found = _RATELIMIT_RESET.search(ratelimit or "")
        return float(found.group(1)) if found else 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, when.timestamp() - time.time())


def _mask_token_from_files(reference: str, token: str | None) -> str | None:
    """The mask token a repo's tokenizer files declare (read as JSON: no transformers needed)."""
    for filename in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            path = hf_hub_download(reference, filename, token=token or None)
            with open(path, encoding="utf-8") as file:
                config = json.load(file)
        except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled, httpx2.HTTPError) as exc:
            log.info("%s of %s: %s", filename, reference, type(exc).__name__)
            continue
        except (OSError, ValueError) as exc:
            log.warning("%s of %s can't be read: %s", filename, reference, exc)
            continue
        mask = config.get("mask_token") if isinstance(config, dict) else None
        if isinstance(mask, dict):  # older files: {"content": "<mask>", "lstrip": true, ...}
            mask = mask.get("content")
        if isinstance(mask, str) and mask:
            return mask
    return None


def _status_of(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _log_preload_failure(task: asyncio.Task[RemoteModel]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("preloading failed: %s", exc)
