"""The fake Discord REST API (``/api/v10/...``) and attachment downloads, on aiohttp's router.

Every API request passes one middleware that parses the body (JSON or multipart), checks the
bot token, enforces rate limits (when enabled: ratelimits.py), applies injected errors, adds
X-RateLimit-* headers and records the request. Paths not modelled reach a catch-all that answers
404 like Discord, so unexpected calls show up in tests.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import re
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakediscord.app_commands import command_errors
from tests.fakediscord.gateway import Gateway
from tests.fakediscord.models import (
    API_PREFIX,
    CB_ACCEPTED,
    CB_DEFERRED_MESSAGE,
    CB_DEFERRED_UPDATE,
    CB_MESSAGE,
    CB_UPDATE_MESSAGE,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTERACTION_COMMAND,
    INTERACTION_COMPONENT,
    MESSAGE_CHAT_INPUT_COMMAND,
    MESSAGE_CONTEXT_MENU_COMMAND,
    MESSAGE_DEFAULT,
    FakeInteraction,
    RecordedFile,
    RecordedRequest,
)
from tests.fakediscord.ratelimits import Admission, RateLimiter
from tests.fakediscord.state import DiscordState

_log = logging.getLogger("tests.fakediscord")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestLog:
    """Every API request the bot made, in order; ``changed`` is notified after each one."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.changed = asyncio.Condition()

    async def add(self, rec: RecordedRequest) -> None:
        self.requests.append(rec)
        async with self.changed:
            self.changed.notify_all()


@dataclass
class _ReqCtx:
    """Per-request scratch space shared by the middleware (which records it) and the route handlers."""

    path: str  # relative to /api/v10
    json: Any = None
    files: list[RecordedFile] = field(default_factory=list)
    kind: str = "unknown"
    channel_id: int | None = None
    token: str | None = None
    message: dict[str, Any] | None = None


_CTX = web.RequestKey("fakediscord_ctx", _ReqCtx)


@dataclass(frozen=True)
class _RouteSpec:
    kind: str  # RecordedRequest.kind, e.g. "message.create"
    auth: bool  # interaction callbacks and webhooks authenticate by their token, not the bot's
    bucket: str | None  # X-RateLimit-Bucket; None only for the catch-all


@dataclass
class _InjectedError:
    method: str
    path: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


class RestApi:
    """The REST routes, answering from and writing to ``state``; the bot's own messages echo on ``gateway``."""

    def __init__(self, state: DiscordState, gateway: Gateway, log: RequestLog, *, token: str | None) -> None:
        self.state = state
        self.gateway = gateway
        self.log = log
        self.token = token  # if set, API calls must send "Bot <token>" (else 401)
        self.injected_errors: list[_InjectedError] = []
        self.limiter = RateLimiter()
        self._specs: dict[web.AbstractRoute, _RouteSpec] = {}

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self._middleware)
        app.router.add_route("GET", r"/attachments/{aid:\d+}/{filename}", self._get_attachment)
        app_cmds = r"/applications/{app_id:\d+}/commands"
        guild_cmds = r"/applications/{app_id:\d+}/guilds/{guild_id:\d+}/commands"  # the bot's guild sync
        webhook_message = r"/webhooks/{webhook_id:\d+}/{token}/messages/{message_id:@original|\d+}"
        api: list[tuple[str, str, str, Handler]] = [
            ("GET", "/users/@me", "user.me", self._get_me),
            ("GET", r"/users/{user_id:\d+}", "user.get", self._get_user),
            ("POST", "/users/@me/channels", "dm.create", self._post_dm_channel),
            ("GET", "/gateway/bot", "gateway.bot", self._get_gateway_bot),  # AutoShardedClient's shard count
            ("GET", "/oauth2/applications/@me", "application.get", self._get_application),
            ("GET", "/applications/@me", "application.get", self._get_application),
            ("GET", app_cmds, "commands.get", self._get_commands),
            ("PUT", app_cmds, "commands.sync", self._put_commands),
            ("GET", guild_cmds, "commands.get", self._get_commands),
            ("PUT", guild_cmds, "commands.sync", self._put_commands),
            ("POST", r"/channels/{channel_id:\d+}/typing", "typing", self._post_typing),
            ("POST", r"/channels/{channel_id:\d+}/messages", "message.create", self._post_message),
            ("PATCH", r"/channels/{channel_id:\d+}/messages/{message_id:\d+}", "message.edit", self._patch_message),
            ("POST", r"/interactions/{interaction_id:\d+}/{token}/callback", "interaction.callback", self._interaction_callback),
            ("POST", r"/webhooks/{webhook_id:\d+}/{token}", "followup.create", self._webhook_execute),
            ("PATCH", webhook_message, "webhook.edit", self._webhook_edit),
        ]
        for method, path, kind, handler in api:
            route = app.router.add_route(method, API_PREFIX + path, handler)
            # One bucket per route, like Discord's per-route buckets (major parameters not modelled).
            # Routes with an interaction token in the path need no bot token.
            self._specs[route] = _RouteSpec(kind, auth="{token}" not in path, bucket=_bucket_hash(method, path))
        # Last, so it only gets what no route above takes (a known path with another method included).
        catch_all = app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._specs[catch_all] = _RouteSpec("unknown", auth=False, bucket=None)

    def inject_error(
        self,
        method: str,
        path: str,
        status: int,
        body: dict[str, Any] | None = None,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        hdrs = dict(headers or {})
        if body is None:
            body = {"message": "injected error", "code": 0}
        if status == 429:
            # discord.py takes a 429 without Via for a Cloudflare ban and raises instead of retrying.
            hdrs.setdefault("Via", "1.1 google")
            body = {"message": "You are being rate limited.", "retry_after": 0.01, "global": False, **body}
            hdrs.setdefault("Retry-After", str(max(1, math.ceil(float(body["retry_after"])))))
            hdrs.setdefault("X-RateLimit-Scope", "global" if body["global"] else "user")
        self.injected_errors.append(_InjectedError(method.upper(), re.compile(path), status, body, hdrs, times))

    # ------------------------------------------------------------------ plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        spec = self._specs.get(request.match_info.route)
        if spec is None:  # the gateway websocket and attachment downloads are not API calls
            return await handler(request)
        received_at = time.time()
        body, files = await _read_body(request)
        info = request.match_info
        ctx = request[_CTX] = _ReqCtx(
            path=_api_path(request.path),
            json=body,
            files=files,
            kind=spec.kind,
            # Known before the handler runs, so refused requests (429, injected errors) name their channel too.
            channel_id=int(info["channel_id"]) if "channel_id" in info else None,
            token=info.get("token"),
        )
        admission = Admission()
        if spec.bucket is None:
            resp = await handler(request)
        else:
            resp = self._unauthorized(request, spec)
            if resp is None:
                bot_token = request.headers.get("Authorization") if spec.auth else None
                admission = self.limiter.admit(kind=spec.kind, resource=_resource(request), bot_token=bot_token)
                if admission.refused is not None:
                    resp = _json(admission.body(), status=429)  # refused: the handler never runs
            resp = resp or self._injected(request, ctx.path) or await handler(request)
            if admission.headers:
                resp.headers.update(admission.headers)
            else:
                # Never exhausted: lets discord.py run requests concurrently without sleeping.
                resp.headers["X-RateLimit-Limit"] = "50"
                resp.headers["X-RateLimit-Remaining"] = "49"
                resp.headers["X-RateLimit-Reset"] = f"{time.time() + 1:.3f}"
                resp.headers["X-RateLimit-Reset-After"] = "1.000"
                resp.headers["X-RateLimit-Bucket"] = spec.bucket
            resp.headers.setdefault("Via", "1.1 google")  # as on every Discord API response
        await self.log.add(
            RecordedRequest(
                method=request.method,
                path=ctx.path,
                json=body,
                timestamp=time.time(),
                query=dict(request.query),
                files=files,
                kind=ctx.kind,
                status=resp.status,
                response=resp.fake_payload if isinstance(resp, _JsonResponse) else None,
                channel_id=ctx.channel_id,
                token=ctx.token,
                message=ctx.message,
                bucket=admission.bucket,
                received_at=received_at,
            )
        )
        return resp

    def _unauthorized(self, request: web.Request, spec: _RouteSpec) -> web.Response | None:
        """401 for a missing or wrong bot token."""
        if spec.auth:
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bot ") or (self.token is not None and auth != f"Bot {self.token}"):
                return _error(401, 0, "401: Unauthorized")
        return None

    def _injected(self, request: web.Request, path: str) -> web.Response | None:
        """The first injected error for this request, if any (it counts against rate limits like any request)."""
        for inj in self.injected_errors:
            if inj.times > 0 and inj.method == request.method and inj.path.search(path):
                inj.times -= 1
                resp = _json(inj.body, status=inj.status)
                resp.headers.update(inj.headers)
                return resp
        return None

    async def _unknown(self, request: web.Request) -> web.Response:
        if request.path.startswith(API_PREFIX + "/"):
            _log.warning("fake discord: unhandled %s %s", request.method, request[_CTX].path)
        return _error(404, 0, "404: Not Found")

    async def _get_attachment(self, request: web.Request) -> web.StreamResponse:
        data = self.state.attachments.get(int(request.match_info["aid"]))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data)

    # ------------------------------------------------------------------ users, gateway, application

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json(self.state.bot_user_json())

    async def _get_user(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        if user_id not in self.state.users:
            return _error(404, 10013, "Unknown User")
        return _json(self.state.user_json(user_id))

    async def _post_dm_channel(self, request: web.Request) -> web.Response:
        """``POST /users/@me/channels`` (discord.py's ``User.create_dm``): open or return the DM channel."""
        body = request[_CTX].json or {}
        rid: Any = body.get("recipient_id")
        try:
            uid = int(rid)
        except (TypeError, ValueError):
            error = {"code": "NUMBER_TYPE_COERCE", "message": f'Value "{rid}" is not snowflake.'}
            return _form_error({"recipient_id": {"_errors": [error]}})
        if uid not in self.state.users or uid == self.state.bot_user_id:
            return _error(400, 50033, "Invalid Recipient(s)")
        cid = self.state.dm_channel_id(uid)
        request[_CTX].channel_id = cid
        return _json(self.state.dm_channel_json(cid))

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        """The recommended shard count and the session start limit (one start per IDENTIFY accepted)."""
        gateway = self.gateway
        return _json(
            {
                "url": gateway.url,
                "shards": gateway.sharding.recommended_shards,
                "session_start_limit": gateway.session_start_limit(),
            }
        )

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json(self.state.application_json())

    # ------------------------------------------------------------------ application commands

    async def _get_commands(self, request: web.Request) -> web.Response:
        return _json(self.state.command_store(request.match_info.get("guild_id")))

    async def _put_commands(self, request: web.Request) -> web.Response:
        if int(request.match_info["app_id"]) != self.state.application_id:
            return _error(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        body = request[_CTX].json
        body = [] if body is None else body
        # What Discord checks (names, descriptions, their localizations, options): 50035 and
        # nothing changed when one fails, as Discord answers a sync it refuses.
        if errors := command_errors(body):
            return _form_error(errors)
        store = self.state.command_store(guild_id)
        old = {(c["name"], c.get("type", 1)): c for c in store}
        store[:] = [self.state.command_json(item, guild_id, old.get((item["name"], item.get("type", 1)))) for item in body]
        self.state.synced_payloads[None if guild_id is None else int(guild_id)] = copy.deepcopy(body)
        return _json(store)

    # ------------------------------------------------------------------ channels and their messages

    async def _post_typing(self, request: web.Request) -> web.Response:
        cid = request[_CTX].channel_id = int(request.match_info["channel_id"])
        if not self.state.channel_exists(cid):
            return _error(404, 10003, "Unknown Channel")
        return web.Response(status=204)

    async def _post_message(self, request: web.Request) -> web.Response:
        state = self.state
        ctx = request[_CTX]
        cid = ctx.channel_id = int(request.match_info["channel_id"])
        body = ctx.json or {}
        ctx.message = body
        if not state.channel_exists(cid):
            return _error(404, 10003, "Unknown Channel")
        if cid in state.dm_channels and state.users[state.dm_channels[cid]].bot:
            return _error(403, 50007, "Cannot send messages to this user")  # bots cannot DM bots
        if err := _invalid_body(body):
            return err
        if _is_empty(body, ctx.files):
            return _error(400, 50006, "Cannot send an empty message")
        ref = body.get("message_reference") or {}
        unknown_ref = ref.get("message_id") is not None and int(ref["message_id"]) not in state.messages
        if unknown_ref and ref.get("fail_if_not_exists", True):
            error = {"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}
            return _form_error({"message_reference": {"_errors": [error]}})
        msg = state.new_message(channel_id=cid, author_id=state.bot_user_id, body=body, files=ctx.files)
        self.gateway.echo("MESSAGE_CREATE", msg)
        return _json(msg)

    async def _patch_message(self, request: web.Request) -> web.Response:
        ctx = request[_CTX]
        ctx.channel_id = int(request.match_info["channel_id"])
        body = ctx.json or {}
        ctx.message = body
        msg = self.state.channel_message(request.match_info["channel_id"], request.match_info["message_id"])
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        if int(msg["author"]["id"]) != self.state.bot_user_id and set(body) - {"flags"}:
            return _error(403, 50005, "Cannot edit a message authored by another user")
        return self._apply_edit(msg, body, ctx.files)

    def _apply_edit(self, msg: dict[str, Any], body: dict[str, Any], files: list[RecordedFile]) -> web.Response:
        """Validate and apply an edit; a refused edit leaves ``msg`` untouched."""
        if err := _invalid_body(body):
            return err
        candidate = json.loads(json.dumps(msg))
        self.state.edit_message(candidate, body, files)
        if _is_empty(candidate):
            return _error(400, 50006, "Cannot send an empty message")
        msg.clear()
        msg.update(candidate)
        self.gateway.echo("MESSAGE_UPDATE", msg)
        return _json(msg)

    # ------------------------------------------------------------------ interactions and their webhooks

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        ctx = request[_CTX]
        inter = self.state.interactions.get(request.match_info["token"])
        if inter is None or inter.id != int(request.match_info["interaction_id"]):
            return _error(404, 10062, "Unknown interaction")
        ctx.channel_id = inter.channel_id
        body = ctx.json or {}
        ctype = body.get("type")
        data = body.get("data") or {}
        if ctype in (CB_MESSAGE, CB_UPDATE_MESSAGE):
            ctx.message = data
        if inter.response_type is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        if ctype not in CB_ACCEPTED or (ctype in (CB_DEFERRED_UPDATE, CB_UPDATE_MESSAGE) and inter.type != INTERACTION_COMPONENT):
            error = {"code": "INTERACTION_RESPONSE_TYPE_INVALID", "message": "Invalid interaction response type"}
            return _form_error({"type": {"_errors": [error]}})
        msg_type = MESSAGE_CHAT_INPUT_COMMAND if inter.type == INTERACTION_COMMAND else MESSAGE_DEFAULT
        if inter.type == INTERACTION_COMMAND and inter.command_type is not None:
            msg_type = MESSAGE_CONTEXT_MENU_COMMAND  # the response to a user or message command
        msg: dict[str, Any] | None = None
        if ctype == CB_MESSAGE:
            if err := _invalid_body(data):
                return err
            if _is_empty(data, ctx.files):
                return _error(400, 50006, "Cannot send an empty message")
            msg = self.state.new_message(
                channel_id=inter.channel_id,
                author_id=self.state.bot_user_id,
                body=data,
                files=ctx.files,
                msg_type=msg_type,
                webhook=True,
                flags=int(data.get("flags") or 0) & FLAG_EPHEMERAL,
            )
            inter.original_message_id = int(msg["id"])
            self.gateway.echo("MESSAGE_CREATE", msg)
        elif ctype == CB_DEFERRED_MESSAGE:
            # The "thinking" message; the first followup (or an @original edit) replaces it.
            msg = self.state.new_message(
                channel_id=inter.channel_id,
                author_id=self.state.bot_user_id,
                body={},
                msg_type=msg_type,
                webhook=True,
                flags=FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL),
            )
            inter.original_message_id = int(msg["id"])
            inter.loading = True
        elif ctype in (CB_DEFERRED_UPDATE, CB_UPDATE_MESSAGE):
            inter.original_message_id = inter.source_message_id
            if ctype == CB_UPDATE_MESSAGE and inter.source_message_id in self.state.messages:
                target = self.state.messages[inter.source_message_id]
                resp = self._apply_edit(target, data, ctx.files)
                if resp.status >= 300:
                    return resp
                msg = target
        inter.response_type = ctype
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        payload: dict[str, Any] = {
            "interaction": {
                "id": str(inter.id),
                "type": inter.type,
                "response_message_loading": ctype == CB_DEFERRED_MESSAGE,
                "response_message_ephemeral": bool(msg and msg["flags"] & FLAG_EPHEMERAL),
            }
        }
        if msg is not None:
            payload["interaction"]["response_message_id"] = msg["id"]
            payload["resource"] = {"type": ctype, "message": msg}
        return _json(payload)

    def _webhook_interaction(self, request: web.Request) -> FakeInteraction | None:
        """The interaction whose token the webhook URL carries, once it has been answered."""
        inter = self.state.interactions.get(request.match_info["token"])
        if inter is None or int(request.match_info["webhook_id"]) != self.state.application_id or inter.response_type is None:
            return None  # Discord: followups before the initial response -> Unknown Webhook
        request[_CTX].channel_id = inter.channel_id
        return inter

    def _webhook_target(self, inter: FakeInteraction, message_id: str) -> dict[str, Any] | None:
        if message_id == "@original":
            mid = inter.original_message_id
        else:
            mid = int(message_id)
            if mid != inter.original_message_id and mid not in inter.followup_ids:
                return None
        return self.state.messages.get(mid) if mid is not None else None

    async def _webhook_execute(self, request: web.Request) -> web.Response:
        ctx = request[_CTX]
        body = ctx.json or {}
        ctx.message = body
        inter = self._webhook_interaction(request)
        if inter is None:
            return _error(404, 10015, "Unknown Webhook")
        if err := _invalid_body(body):
            return err
        if _is_empty(body, ctx.files):
            return _error(400, 50006, "Cannot send an empty message")
        original = self.state.messages.get(inter.original_message_id or 0)
        if inter.loading and original is not None:
            # Discord: the first followup after a type-5 deferral replaces the "thinking" message.
            inter.loading = False
            original["flags"] &= ~FLAG_LOADING
            keys = ("content", "embeds", "components", "allowed_mentions")
            self.state.edit_message(original, {k: body[k] for k in keys if k in body}, ctx.files)
            original["edited_timestamp"] = None
            msg = original
        else:
            msg = self.state.new_message(
                channel_id=inter.channel_id,
                author_id=self.state.bot_user_id,
                body=body,
                files=ctx.files,
                webhook=True,
                flags=int(body.get("flags") or 0) & FLAG_EPHEMERAL,
            )
            inter.followup_ids.append(int(msg["id"]))
        self.gateway.echo("MESSAGE_CREATE", msg)
        if request.query.get("wait") in ("1", "true", "True"):
            return _json(msg)
        return web.Response(status=204)

    async def _webhook_edit(self, request: web.Request) -> web.Response:
        ctx = request[_CTX]
        body = ctx.json or {}
        ctx.message = body
        message_id = request.match_info["message_id"]
        ctx.kind = "original.edit" if message_id == "@original" else "followup.edit"
        inter = self._webhook_interaction(request)
        if inter is None:
            return _error(404, 10015, "Unknown Webhook")
        msg = self._webhook_target(inter, message_id)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        was_loading = bool(msg["flags"] & FLAG_LOADING)
        if was_loading:
            msg["flags"] &= ~FLAG_LOADING
            inter.loading = False
        resp = self._apply_edit(msg, body, ctx.files)
        if resp.status >= 300 and was_loading:
            msg["flags"] |= FLAG_LOADING
            inter.loading = True
        return resp


# --------------------------------------------------------------------------- requests


def _api_path(path: str) -> str:
    return path[len(API_PREFIX) :] if path.startswith(API_PREFIX + "/") else path


def _bucket_hash(method: str, path: str) -> str:
    return format(zlib.crc32(f"{method} {path}".encode()), "08x")


def _resource(request: web.Request) -> str | None:
    """A request's top-level resource, which its route's rate-limit bucket is per: channel or token."""
    info = request.match_info
    if "channel_id" in info:
        return info["channel_id"]
    if "token" in info:
        return f"{info.get('interaction_id') or info.get('webhook_id')}:{info['token']}"
    return None


async def _read_body(request: web.Request) -> tuple[Any, list[RecordedFile]]:
    """The JSON body (``payload_json`` of a multipart body, whose other parts are files), or None."""
    body: Any = None
    files: list[RecordedFile] = []
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            raw = await part.read(decode=True)
            if part.name == "payload_json":
                body = json.loads(raw)
            else:
                files.append(RecordedFile(part.name or "", part.filename, part.headers.get("Content-Type"), bytes(raw)))
    elif request.can_read_body:
        raw = await request.read()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
    return body, files


# --------------------------------------------------------------------------- message-body rules


def _too_long(limit: int) -> dict[str, Any]:
    return {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}]}


def _required() -> dict[str, Any]:
    return {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}


def _invalid_body(body: dict[str, Any]) -> web.Response | None:
    """Discord's size limits for message bodies (content, embeds) -> 50035 like the real API."""
    errors: dict[str, Any] = {}
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        errors["content"] = {"_errors": [{"code": "BASE_TYPE_STRING", "message": "Must be a string."}]}
    elif content is not None and len(content) > 2000:
        errors["content"] = _too_long(2000)
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        errors["embeds"] = _too_long(10)
    total = 0

    def check(key: str, value: Any, limit: int, into: dict[str, Any]) -> int:
        if value is None:
            return 0
        n = len(str(value))
        if n > limit:
            into[key] = _too_long(limit)
        return n

    for i, e in enumerate(embeds):
        eerr: dict[str, Any] = {}
        total += check("title", e.get("title"), 256, eerr)
        total += check("description", e.get("description"), 4096, eerr)
        if e.get("footer"):
            ferr: dict[str, Any] = {}
            total += check("text", e["footer"].get("text"), 2048, ferr)
            if ferr:
                eerr["footer"] = ferr
        if e.get("author"):
            aerr: dict[str, Any] = {}
            total += check("name", e["author"].get("name"), 256, aerr)
            if aerr:
                eerr["author"] = aerr
        fields = e.get("fields") or []
        if len(fields) > 25:
            eerr["fields"] = _too_long(25)
        for j, f in enumerate(fields):
            ferr = {}
            if not f.get("name"):
                ferr["name"] = _required()
            if not f.get("value"):
                ferr["value"] = _required()
            total += check("name", f.get("name"), 256, ferr)
            total += check("value", f.get("value"), 1024, ferr)
            if ferr:
                eerr.setdefault("fields", {})[str(j)] = ferr
        if eerr:
            errors.setdefault("embeds", {})[str(i)] = eerr
    if total > 6000:
        errors.setdefault("embeds", {})["_errors"] = [
            {"code": "MAX_EMBED_SIZE_EXCEEDED", "message": "Embed size exceeds maximum size of 6000"}
        ]
    return _form_error(errors) if errors else None


def _is_empty(msg_or_body: dict[str, Any], files: list[RecordedFile] | None = None) -> bool:
    return not (
        msg_or_body.get("content")
        or msg_or_body.get("embeds")
        or msg_or_body.get("attachments")
        or msg_or_body.get("components")
        or msg_or_body.get("sticker_ids")
        or msg_or_body.get("poll")
        or files
    )


# --------------------------------------------------------------------------- responses


class _JsonResponse(web.Response):
    fake_payload: Any = None  # what was sent, for the recorder: stored messages keep changing after later edits


def _json(data: Any, status: int = 200) -> web.Response:
    raw = json.dumps(data)
    # Exactly "application/json": discord.py's json_or_text() compares the header verbatim, so
    # aiohttp's default "application/json; charset=utf-8" would hand it a str instead of a dict.
    resp = _JsonResponse(body=raw.encode(), status=status, headers={"Content-Type": "application/json"})
    resp.fake_payload = json.loads(raw)
    return resp


def _error(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return _json(body, status=status)


def _form_error(errors: dict[str, Any]) -> web.Response:
    return _error(400, 50035, "Invalid Form Body", errors)
