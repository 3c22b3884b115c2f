"""Fetching a checkpoint from the Hugging Face Hub into the cache, before anything loads it.

One ``model_info`` call says what the repo is (its canonical id after a rename, its commit,
its files and sizes, its safetensors parameter count), so the bot can refuse a checkpoint
*before* downloading it: too many parameters, or only pickle (``.bin``) weights when those
are not allowed. Then ``snapshot_download`` fetches exactly the files a load reads, reporting bytes through huggingface_hub's own progress hook (``tqdm_class``); the
model then loads from that folder alone, so transformers never talks to the Hub itself:
no second download of a cut file, no safetensors "conversion" through a third-party Space,
no weights from an unmerged ``refs/pr/N`` branch.

Offline (``HF_HUB_OFFLINE=1``) or with the Hub unreachable, a checkpoint already in the cache
loads from it. Every failure becomes a :class:`~bot.inference.errors.CheckpointError` that
says what it is: unknown, gated, the Hub unreachable or failing, a download cut short.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.i18n import N_, lazy
from bot.inference.checkpoint_policy import shown
from bot.inference.errors import CheckpointError, CheckpointLoadError, CheckpointNotAllowedError, CheckpointNotFoundError
from bot.inference.progress import ProgressTracker

log = logging.getLogger(__name__)

# transformers would otherwise ask a public Space to convert a .bin-only repo and load the
# weights from the pull request it opens (transformers 5.x honours this variable).
os.environ.setdefault("DISABLE_SAFETENSORS_CONVERSION", "1")

# What a load reads: configuration, tokenizer files, weights. Sub-folders hold other formats.
_TEXT_SUFFIXES = (".json", ".model", ".txt")
SAFETENSORS_SUFFIX = ".safetensors"
PICKLE_SUFFIX = ".bin"
# A cut download is tried this many times in all (huggingface_hub resumes the partial file).
DOWNLOAD_ATTEMPTS = 2


class HubUnavailableError(CheckpointError):
    """The Hub could not be asked, or failed: the name may be right."""

    title = N_("Hub unavailable")


@dataclass(frozen=True, slots=True)
class HubCheckpoint:
    """What the Hub says about a repo, as far as loading it goes."""

    repo_id: str  # canonical: a renamed repo's new id
    files: tuple[str, ...]  # what a load will read
    total_bytes: int
    parameters: int | None  # from the Hub's safetensors metadata; None when it has none


def canonical_hub_id(reference: str) -> str:
    """The id the Hub answers with for ``reference`` (a renamed repo's new id); the reference
    itself when offline or when the Hub cannot be asked (the load then explains why)."""
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        return reference
    try:
        return str(HfApi().model_info(reference).id or reference)
    except Exception as exc:  # unknown, gated, unreachable: the load says which
        log.info("no canonical id for %s (%s)", reference, type(exc).__name__)
        return reference


def describe(reference: str, *, allow_pickle_weights: bool) -> HubCheckpoint:
    """Ask the Hub what ``reference`` holds, refusing a repo whose weights may not be loaded."""
    from huggingface_hub import HfApi

    display = shown(reference)
    try:
        info = HfApi().model_info(reference, files_metadata=True)
    except Exception as exc:
        raise hub_failure(exc, reference) from None
    siblings = [s for s in info.siblings or [] if "/" not in s.rfilename]
    names = {s.rfilename for s in siblings}
    safetensors = [n for n in names if n.endswith(SAFETENSORS_SUFFIX)]
    pickled = [n for n in names if n.endswith(PICKLE_SUFFIX) and n.startswith("pytorch_model")]
    if safetensors:
        weights = safetensors
    elif pickled and allow_pickle_weights:
        weights = pickled
    elif pickled:
        raise CheckpointNotAllowedError(
            lazy(
                "{checkpoint} has no safetensors weights, only pickle (`.bin`) ones, which can run code when loaded. "
                "The bot owner can allow them with `ALLOW_PICKLE_WEIGHTS=1`.",
                checkpoint=display,
            )
        )
    else:
        raise CheckpointLoadError(
            lazy("{checkpoint} has no weights file on the Hub, so there is nothing to load.", checkpoint=display)
        )
    files = sorted({n for n in names if n.endswith(_TEXT_SUFFIXES)} | set(weights))
    sizes = {s.rfilename: s.size or 0 for s in siblings}
    parameters = None
    if info.safetensors is not None and safetensors:
        parameters = int(info.safetensors.total or sum(info.safetensors.parameters.values()))
    return HubCheckpoint(
        repo_id=str(info.id or reference),
        files=tuple(files),
        total_bytes=sum(sizes.get(f, 0) for f in files),
        parameters=parameters,
    )


def fetch(checkpoint: HubCheckpoint, tracker: ProgressTracker, *, files: tuple[str, ...] | None = None) -> Path:
    """Download ``files`` (default: all the load reads) at the checkpoint's commit; the folder they are in."""
    from huggingface_hub import snapshot_download

    wanted = list(files if files is not None else checkpoint.files)
    progress = _ByteCounter(tracker, checkpoint.total_bytes if files is None else None)
    last: Exception | None = None
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            # By "main", not by commit: the cache then records which commit main is, so a later
            # offline start finds it (describe() saw main's files a moment ago).
            folder = snapshot_download(
                checkpoint.repo_id,
                revision="main",
                allow_patterns=wanted,
                tqdm_class=progress.bar_class(),  # pyright: ignore[reportArgumentType]  (a tqdm subclass)
            )
            progress.finish()
            return Path(folder)
        except Exception as exc:
            last = exc
            failure = hub_failure(exc, checkpoint.repo_id)
            # huggingface_hub already resumed a cut file a few times; a Hub that stopped
            # answering altogether (a read timeout) is not retried: the admin would only wait longer.
            if not isinstance(failure, HubUnavailableError) or attempt == DOWNLOAD_ATTEMPTS or _is_timeout(exc):
                raise failure from None
            log.warning("download of %s failed (%s); retrying once", checkpoint.repo_id, type(exc).__name__)
            tracker.stage("downloading", progress.done, progress.total, note=lazy("retrying"))
    raise hub_failure(last or RuntimeError("download failed"), checkpoint.repo_id)


def cached_folder(reference: str) -> Path | None:
    """The cached snapshot of ``reference``'s main revision, if one was downloaded before.

    Found through its ``config.json``: a snapshot holds only the files a load read, so
    ``snapshot_download(local_files_only=True)``, which wants the whole repo, would call it incomplete.
    """
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(reference, "config.json")
    except Exception:  # a malformed id or a broken cache entry
        return None
    return Path(config).parent if isinstance(config, str) else None


def hub_failure(exc: BaseException, reference: str) -> CheckpointError:
    """A huggingface_hub failure as the error an admin reads (no exception text: it may hold URLs)."""
    from huggingface_hub import errors as hub_errors

    display = shown(reference)
    # Subclasses first: GatedRepoError is a RepositoryNotFoundError.
    if isinstance(exc, hub_errors.GatedRepoError):
        return CheckpointNotAllowedError(
            lazy(
                "{checkpoint} needs access: accept its terms on its Hub page and give the bot a token with `HF_TOKEN`.",
                checkpoint=display,
            )
        )
    if isinstance(exc, hub_errors.RepositoryNotFoundError):
        if _status(exc) == 403:
            return CheckpointNotAllowedError(
                lazy("{checkpoint} needs access that the bot's `HF_TOKEN` doesn't have.", checkpoint=display)
            )
        # The Hub answers an unknown and a private repo alike (401), so as not to reveal either.
        return CheckpointNotFoundError(
            lazy(
                "There is no model called {checkpoint} on the Hugging Face Hub (check the spelling; "
                "a private one needs a bot token with access, `HF_TOKEN`).",
                checkpoint=display,
            )
        )
    if isinstance(exc, hub_errors.RevisionNotFoundError):
        return CheckpointNotFoundError(lazy("{checkpoint} has no such revision on the Hub.", checkpoint=display))
    if isinstance(exc, (hub_errors.OfflineModeIsEnabled, hub_errors.LocalEntryNotFoundError)):
        return HubUnavailableError(
            lazy(
                "I can't reach the Hugging Face Hub right now, and {checkpoint} isn't in the bot's cache. Try again later.",
                checkpoint=display,
            )
        )
    status = _status(exc)
    if status == 429:
        return HubUnavailableError(lazy("The Hugging Face Hub is rate-limiting the bot right now; try again in a minute."))
    if status is not None and status >= 500:
        return HubUnavailableError(lazy("The Hugging Face Hub is failing right now; try again in a few minutes."))
    if is_transport_error(exc):
        return HubUnavailableError(
            lazy("I can't reach the Hugging Face Hub right now (or it stopped answering); try again later.")
        )
    if isinstance(exc, OSError) and "consistency check" in str(exc).lower():
        return HubUnavailableError(lazy("The download of {checkpoint} was cut short; try again in a moment.", checkpoint=display))
    log.warning("unexpected Hub failure for %s: %s: %s", reference, type(exc).__name__, exc)
    return HubUnavailableError(
        lazy("The Hugging Face Hub answered in a way I didn't expect for {checkpoint}; try again later.", checkpoint=display)
    )


def _status(exc: BaseException) -> int | None:
    response: Any = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


# Transport failures (no answer, a cut body, a timeout), by class name: huggingface_hub 2.x
# raises httpx2's, 1.x httpx's (same names, unrelated classes).
_TRANSPORT = frozenset(
    {"TransportError", "TimeoutException", "NetworkError", "RemoteProtocolError", "ConnectError", "ReadTimeout"}
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during, innermost last."""
    chain: BaseException | None = exc
    while chain is not None:
        yield chain
        chain = chain.__cause__ or chain.__context__


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(e, TimeoutError) or any("Timeout" in c.__name__ for c in type(e).__mro__) for e in _causes(exc))


def is_transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means the Hub gave no usable answer."""
    return any(
        isinstance(e, (ConnectionError, TimeoutError)) or {c.__name__ for c in type(e).__mro__} & _TRANSPORT for e in _causes(exc)
    )


class _ByteCounter:
    """Bytes written by huggingface_hub's downloads, as the tracker's "downloading" stage.

    snapshot_download builds its byte bars from ``tqdm_class`` and updates them from every
    file's download threads; the bars here are never drawn (a service log has no place for
    them) and only count.
    """

    def __init__(self, tracker: ProgressTracker, total: int | None) -> None:
        self.tracker = tracker
        self.total = total or 0
        self.done = 0
        self._lock = threading.Lock()
        tracker.stage("downloading", 0, self.total)

    def add(self, n: float) -> None:
        with self._lock:
            self.done += int(n)
            done = min(self.done, self.total) if self.total else self.done
        self.tracker.stage("downloading", done, self.total or done)

    def finish(self) -> None:
        self.tracker.stage("downloading", self.total or self.done, self.total or self.done)

    def bar_class(self) -> type:
        from tqdm.auto import tqdm

        counter = self

        class CountingBar(tqdm):  # pyright: ignore[reportUntypedBaseClass]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs["disable"] = True
                kwargs.pop("name", None)
                # Only the bytes written count (the "Reconstructing" bar); the others are files or network.
                self._counts = kwargs.get("unit") == "B" and str(kwargs.get("desc", "")).startswith("Reconstructing")
                super().__init__(*args, **kwargs)

            def update(self, n: float | None = 1) -> bool | None:
                if self._counts and n:
                    counter.add(n)
                return super().update(n)

        return CountingBar
