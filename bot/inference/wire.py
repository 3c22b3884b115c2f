"""The inference service's HTTP protocol, shared by the server (``bot.adapters.inference_server``)
and the bot's remote backend (``bot.inference.remote``). No torch here.

The fill call is the Hugging Face Inference API's fill-mask task, so the same client talks to
this bot's Ray Serve service and to Hugging Face's hosted inference:

    POST {base}/models/{checkpoint}
    {"inputs": "Le camembert est <mask> :)", "parameters": {"top_k": 5, "targets": ["bon"]}}
    -> 200 [{"score": 0.49, "token": 1234, "token_str": "délicieux", "sequence": "..."}, ...]
       (one list per mask, in mask order, when the text has several masks)

The checkpoint is the whole rest of the path, percent-decoded: a Hub id as ``owner/name``, a local
folder percent-encoded whole (``%2Fsrv%2Fmodels%2Fx``). This service adds:

    POST {base}/load/{checkpoint}  -> 200 {"model": checkpoint, "mask_token": "<mask>"} once loaded
    GET  {base}/health             -> 200 {"status": "ok", "service": SERVICE_NAME} once ready

A refusal is a 4xx other than 429 with ``{"error": "<plain words for the user>"}``; a full
service is 429 with a numeric ``Retry-After`` (seconds), never 503.
"""

from __future__ import annotations

import urllib.parse

from bot.inference.errors import (
    BusyError,
    CheckpointError,
    CheckpointLoadError,
    CheckpointNotAllowedError,
    CheckpointNotFoundError,
    FillMaskError,
    InvalidRequestError,
    NoMaskTokenError,
    NotMaskedLMError,
)

SERVICE_NAME = "fillmask-bot-inference"

# The status each refusal travels as; the client turns a status back into an error of the class
# that shows the same words.
STATUS_INVALID = 400
STATUS_NOT_ALLOWED = 403
STATUS_NOT_FOUND = 404
STATUS_UNUSABLE = 422
STATUS_BUSY = 429
STATUS_FAILED = 500


def checkpoint_path(checkpoint: str) -> str:
    """The checkpoint as it goes in a URL path: a Hub id keeps its slash, anything else
    (a local folder, a name with odd characters) is percent-encoded whole."""
    parts = checkpoint.split("/")
    if len(parts) <= 2 and all(part not in ("", ".", "..") for part in parts):
        return "/".join(urllib.parse.quote(part, safe="") for part in parts)
    # Dots too: a client or proxy must not read a ``..`` segment as "the folder above".
    return urllib.parse.quote(checkpoint, safe="").replace(".", "%2E")


def fill_path(checkpoint: str) -> str:
    return f"/models/{checkpoint_path(checkpoint)}"


def load_path(checkpoint: str) -> str:
    return f"/load/{checkpoint_path(checkpoint)}"


def checkpoint_from_path(raw: str) -> str:
    """What the server reads from the rest of the path (already split off ``/models/``)."""
    return urllib.parse.unquote(raw)


def status_for(error: FillMaskError) -> int:
    if isinstance(error, BusyError):
        return STATUS_BUSY
    if isinstance(error, InvalidRequestError):
        return STATUS_INVALID
    if isinstance(error, CheckpointNotAllowedError):
        return STATUS_NOT_ALLOWED
    if isinstance(error, CheckpointNotFoundError):
        return STATUS_NOT_FOUND
    if isinstance(error, CheckpointError):
        return STATUS_UNUSABLE
    return STATUS_FAILED


def error_for(status: int, message: str, *, retry_after: float | None = None) -> FillMaskError:
    """The error a refusal stands for, carrying the server's words."""
    # Not marked for translation: the service sends its errors as English text (``str(error)``),
    # and those words are shown as they came. Only BusyError, rebuilt here, speaks the user's language.
    if status == STATUS_BUSY:
        return BusyError(retry_after if retry_after is not None else 1.0)
    if status == STATUS_NOT_ALLOWED:
        return CheckpointNotAllowedError(message)
    if status == STATUS_NOT_FOUND:
        return CheckpointNotFoundError(message)
    if status == STATUS_UNUSABLE:
        return _unusable(message)
    if 400 <= status < 500:
        return InvalidRequestError(message)
    return FillMaskError(message)


def _unusable(message: str) -> CheckpointError:
    lowered = message.lower()
    if "mask token" in lowered:
        return NoMaskTokenError(message)
    if "masked" in lowered or "fill-mask" in lowered:
        return NotMaskedLMError(message)
    return CheckpointLoadError(message)
