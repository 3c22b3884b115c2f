"""The HTTP side: the Hub's routes, status codes and headers, as huggingface_hub 2.x reads them.

Routes (``{repo}`` is ``namespace/name`` or a legacy single-segment id):

- ``GET /api/models``: search/author/filter/pipeline_tag/gated, sort (always descending, as the
  Hub does), ``limit`` (the page size, at most ``page_size``), ``expand``/``full``/``cardData``/
  ``config``, and ``Link: <...>; rel="next"`` paging with a ``cursor`` parameter;
- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}`` (``blobs``, ``expand``,
  ``securityStatus``);
- ``GET /api/models/{repo}/tree/{rev}[/{path}]`` (``recursive``, ``expand``);
- ``GET /api/models/{repo}/auth-check`` (``HfApi.auth_check``: may this token read the files?);
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``, with ``Range`` (206/416).

Errors carry ``X-Error-Code``/``X-Error-Message`` and the Hub's ``{"error": ...}`` body:
``RepoNotFound`` (401 without a token, 404 with one, as the Hub answers), ``RevisionNotFound``
and ``EntryNotFound`` (404, the latter with ``X-Repo-Commit`` so the client caches the absence),
``GatedRepo`` (401 anonymous, 403 for a token without access, on every file of a gated repo,
README.md included, while its metadata stays public). Revisions are ``main`` or the
repo's 40-hex sha. A renamed repo's old id answers 307 to the same path under the new id.
Anything else is a 404 without an error code (and is logged, so stray calls show up in tests).
"""

from __future__ import annotations

import hashlib
import json
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from tests.fakehub.faults import Faults
from tests.fakehub.log import HEADERS_OF_INTEREST, LoggedRequest, RequestLog
from tests.fakehub.store import EXPANDABLE, INFO_FIELDS, LAST_MODIFIED, LIST_FIELDS, HubFile, HubRepo, RepoStore

# Words after a repo id in /api/models/... paths (never the second half of an id).
API_SUBPATHS = frozenset(
    {"revision", "tree", "resolve", "refs", "commits", "discussions", "paths-info", "treesize", "auth-check"}
)
SORT_KEYS = {"downloads": "downloads", "likes": "likes", "trendingScore": "trendingScore", "lastModified": "lastModified", "createdAt": "createdAt"}  # fmt: skip
CHUNK = 64 * 1024


@dataclass
class HubState:
    """What the handlers share with the driver."""

    store: RepoStore
    faults: Faults
    log: RequestLog
    token: str
    outsider_token: str
    page_size: int
    base_url: str = ""
    stopping: threading.Event = field(default_factory=threading.Event)


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def json_reply(data: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, {"Content-Type": "application/json; charset=utf-8", **headers}, json.dumps(data).encode())


def hub_error(status: int, message: str, code: str | None = None, **headers: str) -> Reply:
    """An error as the Hub sends it: JSON body, and the headers hf_raise_for_status reads."""
    extra = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
    return json_reply({"error": message}, status, **extra, **headers)


def _truthy(values: list[str] | None) -> bool:
    return values is not None and len(values) > 0 and values[-1].lower() in ("1", "true", "yes")


def _split_repo(segments: list[str]) -> tuple[str, list[str]]:
    """``(repo_id, rest)`` from the segments that start with a repo id."""
    if len(segments) >= 2 and segments[1] not in API_SUBPATHS and segments[1] != "resolve":
        return f"{segments[0]}/{segments[1]}", segments[2:]
    return segments[0], segments[1:]


class HubServer(ThreadingHTTPServer):
    daemon_threads = True  # a stalled or keep-alive connection never blocks the test run's exit
    block_on_close = False

    def __init__(self, state: HubState) -> None:
        self.state = state
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), HubHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up mid-body on purpose in fault tests; nothing to report.
        pass

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect
    server: HubServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log keeps everything

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- dispatch ------------------------------------------------------------------------------

    @property
    def state(self) -> HubState:
        return self.server.state

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        raw_segments = split.path.split("/")[1:]
        segments = [unquote(s) for s in raw_segments]
        path = "/" + "/".join(segments)
        headers = {name: self.headers[name] for name in HEADERS_OF_INTEREST if self.headers.get(name) is not None}
        entry = self.state.log.append(LoggedRequest(method, path, parse_qs(split.query, keep_blank_values=True), headers))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # a request body we never need, read so keep-alive stays in sync
        fault = self.state.faults.take("fail", method, path)
        if fault is not None:
            entry.fault = "fail"
            reply = self._fault_reply(fault.status, fault.retry_after)
        else:
            try:
                reply = self._route(method, raw_segments, segments, entry.query, split.query)
            except Exception as exc:  # a bug in the stand-in: answer like a broken Hub, loudly
                reply = hub_error(500, f"fake hub error: {type(exc).__name__}: {exc}")
        self._send(method, reply, entry)

    def _fault_reply(self, status: int, retry_after: int | None) -> Reply:
        messages = {429: "You have exceeded our hourly quotas for action: resolve.", 500: "Internal Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip
        reply = json_reply({"error": messages.get(status, f"Error {status}")}, status)
        if retry_after is not None:
            reply.headers["Retry-After"] = str(retry_after)
        return reply

    def _route(self, method: str, raw: list[str], segments: list[str], query: dict[str, list[str]], raw_query: str) -> Reply:
        if segments[:2] == ["api", "models"]:
            rest = segments[2:]
            if not rest or rest == [""]:
                return self._list_models(query) if method == "GET" else hub_error(405, "Method not allowed")
            repo_id, sub = _split_repo(rest)
            redirect = self._redirect(repo_id, raw[:2], raw[2 + (len(rest) - len(sub)) :], raw_query)
            if redirect:
                return redirect
            repo, problem = self._access(repo_id)
            if problem:
                return problem
            assert repo is not None
            if method != "GET":
                return hub_error(405, "Method not allowed")
            if not sub:
                return self._model_info(repo, None, query)
            if sub[0] == "revision" and len(sub) == 2:
                return self._model_info(repo, sub[1], query)
            if sub[0] == "tree" and len(sub) >= 2:
                return self._tree(repo, sub[1], "/".join(sub[2:]), query)
            if sub == ["auth-check"]:
                return self._gate(repo) or json_reply({})
            return hub_error(404, "Not Found")
        if "resolve" in segments[1:3]:
            repo_id, sub = _split_repo(segments)
            if len(sub) >= 3 and sub[0] == "resolve" and method in ("GET", "HEAD"):
                redirect = self._redirect(repo_id, [], raw[len(segments) - len(sub) :], raw_query)
                if redirect:
                    return redirect
                return self._resolve(repo_id, sub[1], "/".join(sub[2:]))
        return hub_error(404, "Not Found")

    # -- access ----------------------------------------------------------------------------------

    def _token_kind(self) -> str:
        authorization = self.headers.get("Authorization") or ""
        if not authorization:
            return "anonymous"
        token = authorization.removeprefix("Bearer ").strip()
        if token == self.state.token:
            return "member"  # may read everything, private and gated included
        if token == self.state.outsider_token:
            return "outsider"  # a valid account without access to gated or private repos
        return "invalid"

    def _access(self, repo_id: str) -> tuple[HubRepo | None, Reply | None]:
        kind = self._token_kind()
        if kind == "invalid":
            message = "Invalid credentials in Authorization header"
            return None, hub_error(401, message)
        repo = self.state.store.get(repo_id)
        if repo is None or (repo.private and kind != "member"):
            # The Hub does not say whether a repo is private or missing; 401 when anonymous.
            return None, hub_error(401 if kind == "anonymous" else 404, "Repository not found", "RepoNotFound")
        return repo, None

    def _gate(self, repo: HubRepo) -> Reply | None:
        # Every file is gated, README.md and .gitattributes included (the metadata API is not).
        if not repo.gated:
            return None
        kind = self._token_kind()
        if kind == "member":
            return None
        if kind == "anonymous":
            message = f"Access to model {repo.repo_id} is restricted. You must have access to it and be authenticated to access it. Please log in."
            return hub_error(401, message, "GatedRepo")
        message = f"Access to model {repo.repo_id} is restricted and you are not in the authorized list. Visit {self.state.base_url}/{repo.repo_id} to ask for access."
        return hub_error(403, message, "GatedRepo")

    def _redirect(self, repo_id: str, prefix: list[str], rest: list[str], raw_query: str) -> Reply | None:
        new = self.state.store.renamed_to(repo_id)
        if new is None:
            return None
        location = "/" + "/".join([*prefix, quote(new, safe="/"), *rest]) + (f"?{raw_query}" if raw_query else "")
        return json_reply({"error": f"Temporary Redirect. Redirecting to {location}"}, 307, Location=location)

    # -- routes ----------------------------------------------------------------------------------

    def _revision_error(self, repo: HubRepo, revision: str) -> Reply | None:
        if repo.revision_matches(revision):
            return None
        return hub_error(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _model_info(self, repo: HubRepo, revision: str | None, query: dict[str, list[str]]) -> Reply:
        if revision is not None and (problem := self._revision_error(repo, revision)):
            return problem
        expand = query.get("expand", []) + query.get("expand[]", [])
        if expand:
            unknown = sorted(set(expand) - EXPANDABLE)
            if unknown:
                return hub_error(400, f'"expand" must be one of {sorted(EXPANDABLE)}, got {unknown}')
            data = repo.info(("_id", "id", *expand))
        else:
            data = repo.info(INFO_FIELDS, blobs=_truthy(query.get("blobs")))
        if _truthy(query.get("securityStatus")):
            data["securityRepoStatus"] = {"scansDone": True, "filesWithIssues": []}
        return json_reply(data)

    def _tree(self, repo: HubRepo, revision: str, path: str, query: dict[str, list[str]]) -> Reply:
        if problem := self._revision_error(repo, revision):
            return problem
        path = path.strip("/")
        directories = repo.directories()
        if path and path not in directories:
            return hub_error(404, f"Entry not found: {path}", "EntryNotFound", **{"X-Repo-Commit": repo.sha})
        prefix = f"{path}/" if path else ""
        recursive = _truthy(query.get("recursive"))

        def listed(name: str) -> bool:
            return name.startswith(prefix) and (recursive or "/" not in name[len(prefix) :])

        extra: dict[str, Any] = {}
        if _truthy(query.get("expand")):
            extra["lastCommit"] = {"id": repo.sha, "title": "Upload model", "date": LAST_MODIFIED}
        entries: list[dict[str, Any]] = [
            {"type": "directory", "oid": _tree_oid(repo, d), "size": 0, "path": d, **extra} for d in directories if listed(d)
        ]
        for name in sorted(repo.files):
            if listed(name):
                f = repo.files[name]
                entry: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size, "path": name}
                if f.lfs:
                    entry["lfs"] = f.lfs_json(tree=True)
                if extra:
                    scan = {"status": "safe", "avScan": {"virusFound": False, "virusNames": None}, "pickleImportScan": None}
                    entry.update(extra, securityFileStatus=scan)
                entries.append(entry)
        return json_reply(entries)

    def _list_models(self, query: dict[str, list[str]]) -> Reply:
        member = self._token_kind() == "member"
        repos = [r for r in self.state.store.all() if member or not r.private]
        if search := (query.get("search") or [""])[-1].lower():
            repos = [r for r in repos if search in r.repo_id.lower()]
        if author := (query.get("author") or [""])[-1]:
            repos = [r for r in repos if r.author == author]
        if pipeline_tag := (query.get("pipeline_tag") or [""])[-1]:
            repos = [r for r in repos if r.pipeline_tag == pipeline_tag]
        for tag in query.get("filter", []):
            repos = [r for r in repos if tag in r.tags or tag in (r.library_name, r.pipeline_tag)]
        if gated := query.get("gated"):
            repos = [r for r in repos if bool(r.gated) is _truthy(gated)]
        repos.sort(key=lambda r: r.repo_id)
        if sort := (query.get("sort") or [""])[-1]:
            if sort not in SORT_KEYS:
                return hub_error(400, f"Invalid sort: {sort}")
            repos.sort(key=lambda r: r.value(SORT_KEYS[sort]) or 0, reverse=True)  # stable: ties stay by id
        limit = int((query.get("limit") or [str(self.state.page_size)])[-1])
        page_size = max(1, min(limit, self.state.page_size))
        start = int((query.get("cursor") or ["0"])[-1])
        page = repos[start : start + page_size]

        expand = query.get("expand", []) + query.get("expand[]", [])
        if expand:
            fields: tuple[str, ...] = ("_id", "id", *expand)
        else:
            fields = LIST_FIELDS
            if _truthy(query.get("full")):
                fields += ("author", "sha", "lastModified", "gated", "disabled", "siblings", "mask_token")
            if _truthy(query.get("cardData")):
                fields += ("cardData",)
            if _truthy(query.get("config")):
                fields += ("config",)
        reply = json_reply([r.info(fields) for r in page])
        if start + page_size < len(repos):
            pairs = [(k, v) for k, values in query.items() if k != "cursor" for v in values]
            pairs.append(("cursor", str(start + page_size)))
            reply.headers["Link"] = f'<{self.state.base_url}/api/models?{urlencode(pairs)}>; rel="next"'
        return reply

    def _resolve(self, repo_id: str, revision: str, filename: str) -> Reply:
        repo, problem = self._access(repo_id)
        if problem:
            return problem
        assert repo is not None
        if problem := self._revision_error(repo, revision) or self._gate(repo):
            return problem
        f = repo.files.get(filename)
        if f is None:
            return hub_error(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": repo.sha})
        headers = _file_headers(repo, f)
        wanted = self.headers.get("Range")
        if wanted is None:
            return Reply(200, headers, f.data)
        span = _parse_range(wanted, f.size)
        if span is None:
            return Reply(416, {**headers, "Content-Range": f"bytes */{f.size}"})
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{f.size}"
        return Reply(206, headers, f.data[first : last + 1])

    # -- sending ---------------------------------------------------------------------------------

    def _send(self, method: str, reply: Reply, entry: LoggedRequest) -> None:
        faults = self.state.faults
        body = reply.body if method != "HEAD" else b""
        stall = cut = None
        if body and 200 <= reply.status < 300:
            stall = faults.take("stall", method, entry.path)
            cut = None if stall else faults.take("cut_short", method, entry.path)
        # Logged before sending: the client may act on the answer before this thread runs again.
        entry.status = reply.status
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))  # HEAD too: the size the GET would send
            self.end_headers()
            if stall is not None:
                entry.fault = "stall"
                self._stall(stall.seconds)
                self.close_connection = True
                return
            limit = len(body) if cut is None else min(cut.after_bytes, len(body))
            if cut is not None:
                entry.fault = "cut_short"
            self._write_body(body[:limit], entry, faults.rate_for(entry.path))
            if cut is not None:
                self.close_connection = True  # the client sees the body end early
        except OSError:  # the client went away (timeouts, cancelled downloads)
            self.close_connection = True

    def _write_body(self, body: bytes, entry: LoggedRequest, rate: int | None) -> None:
        # Throttled: ~20 writes a second, so bytes keep coming well inside any read timeout.
        chunk = CHUNK if rate is None else max(1, min(CHUNK, rate // 20))
        began = time.monotonic()
        for start in range(0, len(body), chunk):
            if self.state.stopping.is_set():
                return
            piece = body[start : start + chunk]
            entry.bytes_sent += len(piece)  # counted first, for the same reason as the status
            try:
                self.wfile.write(piece)
            except OSError:
                entry.bytes_sent -= len(piece)
                raise
            if rate is not None and (ahead := began + entry.bytes_sent / rate - time.monotonic()) > 0:
                self.state.stopping.wait(ahead)

    def _stall(self, seconds: float) -> None:
        """Send nothing until ``seconds`` pass, the client hangs up, or the stand-in stops."""
        deadline = time.monotonic() + seconds
        while not self.state.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(0.1, left))
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client closed the connection (its read timeout fired)
                except OSError:
                    return
                time.sleep(0.05)


def _tree_oid(repo: HubRepo, directory: str) -> str:
    return hashlib.sha1(f"{repo.sha}:{directory}".encode()).hexdigest()


def _file_headers(repo: HubRepo, f: HubFile) -> dict[str, str]:
    name = f.path.rsplit("/", 1)[-1]
    content_type = (
        "application/json; charset=utf-8"
        if name.endswith(".json")
        else "text/plain; charset=utf-8"
        if name.endswith((".md", ".txt", ".gitattributes"))
        else "application/octet-stream"
    )
    headers = {
        "Content-Type": content_type,
        "Accept-Ranges": "bytes",
        "ETag": f'"{f.etag}"',
        "X-Repo-Commit": repo.sha,
    }
    if f.lfs:
        # What the Hub puts on LFS files (served here directly, with no CDN redirect).
        headers["X-Linked-Etag"] = f'"{f.sha256}"'
        headers["X-Linked-Size"] = str(f.size)
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"
    return headers


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` for ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``; None if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first_text, _, last_text = spec.strip().partition("-")
    try:
        if first_text == "":
            first, last = max(0, size - int(last_text)), size - 1
        else:
            first = int(first_text)
            last = min(int(last_text), size - 1) if last_text else size - 1
    except ValueError:
        return None
    return (first, last) if 0 <= first <= last else None
