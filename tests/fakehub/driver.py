"""``FakeHub``: what tests use to run the stand-in, fill it with repos and inject faults."""

from __future__ import annotations

import atexit
import re
import threading
import weakref
from pathlib import Path
from types import TracebackType
from typing import Literal

from tests.fakehub.faults import Fault, Faults
from tests.fakehub.handlers import HubServer, HubState
from tests.fakehub.log import LoggedRequest, RequestLog
from tests.fakehub.store import Gated, HubRepo, RepoStore, WeightsFormat, build_repo

# Every stand-in still running when the interpreter exits is stopped then (at the latest).
_RUNNING: weakref.WeakSet[FakeHub] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for hub in list(_RUNNING):
        hub.stop()


class FakeHub:
    """A Hugging Face Hub stand-in on 127.0.0.1, served from its own thread.

    ``token`` may read every repo (private and gated ones included); ``outsider_token`` is a valid
    account without access (403 on gated files, RepoNotFound on private repos); any other bearer
    token is refused like an invalid one (401 "Invalid credentials in Authorization header").
    """

    def __init__(
        self, *, page_size: int = 5, token: str = "hf_fakehub_member", outsider_token: str = "hf_fakehub_outsider"
    ) -> None:
        self.token = token
        self.outsider_token = outsider_token
        self._state = HubState(RepoStore(), Faults(), RequestLog(), token, outsider_token, page_size)
        self._server: HubServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: what HF_ENDPOINT must be for the clients to come here."""
        if self._server is None:
            raise RuntimeError("the fake hub is not started")
        return self._state.base_url

    def start(self) -> FakeHub:
        if self._server is not None:
            return self
        self._state.stopping.clear()
        self._server = HubServer(self._state)
        host, port = self._server.server_address[:2]
        self._state.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-hub", daemon=True)  # fmt: skip
        self._thread.start()
        _RUNNING.add(self)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._state.stopping.set()  # releases stalled and throttled answers
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        _RUNNING.discard(self)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- repos -------------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        folder: Path | str,
        *,
        card: str | None = None,
        downloads: int = 0,
        likes: int = 0,
        pipeline_tag: str | None = "fill-mask",
        language: str | list[str] | None = None,
        license: str | None = None,  # the Hub's field name
        gated: bool | Gated = False,
        private: bool = False,
        weights: WeightsFormat = "safetensors",
    ) -> HubRepo:
        """Serve ``folder``'s files as ``repo_id`` at ``main`` (and at its sha).

        ``card`` becomes README.md (its YAML header is the ``cardData``); ``language``/``license``
        fill ``cardData`` where the card does not say. ``weights="safetensors"`` serves the folder
        as it is; ``"bin"`` serves a ``pytorch_model.bin`` (torch.save of the state dict) instead of
        ``model.safetensors``, ``"both"`` serves the two. The sha depends only on the files.
        """
        repo = build_repo(
            repo_id,
            Path(folder),
            card=card,
            downloads=downloads,
            likes=likes,
            pipeline_tag=pipeline_tag,
            language=language,
            license=license,
            gated=gated,
            private=private,
            weights=weights,
        )
        self._state.store.add(repo)
        return repo

    def repo(self, repo_id: str) -> HubRepo:
        repo = self._state.store.get(repo_id)
        if repo is None:
            raise KeyError(repo_id)
        return repo

    def rename(self, old: str, new: str) -> HubRepo:
        """Move ``old`` to ``new``; requests for ``old`` then answer 307 to the same path under ``new``."""
        return self._state.store.rename(old, new)

    # -- faults ------------------------------------------------------------------------------------

    def throttle(self, bytes_per_second: int | None, path: str = r"/resolve/") -> None:
        """Send matching bodies at about ``bytes_per_second`` (None: full speed again)."""
        self._state.faults.set_throttle(bytes_per_second, path)

    def cut_short(self, path: str, after_bytes: int, *, times: int | None = 1, method: str | None = "GET") -> Fault:
        """Send the full Content-Length but only ``after_bytes`` of the body, then close the connection."""
        return self._state.faults.add(Fault("cut_short", re.compile(path), method, times, after_bytes=after_bytes))

    def stall(self, path: str, *, times: int | None = 1, seconds: float = 60.0, method: str | None = "GET") -> Fault:
        """Send the headers, then no body byte for ``seconds`` (or until the client hangs up), then close."""
        return self._state.faults.add(Fault("stall", re.compile(path), method, times, seconds=seconds))

    def fail(
        self,
        path: str,
        status: int,
        *,
        times: int | None = 1,
        retry_after: int | Literal["auto"] | None = "auto",
        method: str | None = None,
    ) -> Fault:
        """Answer ``status`` with the Hub's JSON error instead of the real answer.

        ``retry_after``: the ``Retry-After`` seconds to send; "auto" sends 1 on a 429 and none
        otherwise, None never sends one (the client then backs off 1, 2, 4, 8, 8 s).
        """
        seconds = (1 if status == 429 else None) if retry_after == "auto" else retry_after
        fault = Fault("fail", re.compile(path), method, times, status=status, retry_after=seconds)
        return self._state.faults.add(fault)

    def pending_faults(self) -> list[Fault]:
        return self._state.faults.pending()

    def clear_faults(self) -> None:
        """Disarm every fault and the throttle."""
        self._state.faults.clear()

    # -- the request log ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request so far, oldest first (a copy)."""
        return self._state.log.snapshot()

    def find(
        self, *, method: str | None = None, path: str | None = None, status: int | None = None, fault: str | None = None
    ) -> list[LoggedRequest]:
        """Logged requests matching all the filters given (``path``: a regex searched in the decoded path)."""
        return self._state.log.find(method=method, path=path, status=status, fault=fault)

    def clear_requests(self) -> None:
        self._state.log.clear()
