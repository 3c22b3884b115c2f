"""The fake gateway websocket: HELLO, IDENTIFY -> READY + GUILD_CREATE (one per guild), heartbeats,
RESUME, dispatch.

Connections may IDENTIFY with ``shard: [id, count]``: guild events go to the shard that holds the
guild ((guild_id >> 22) % count), DM events to shard 0, like Discord. As Discord does, IDENTIFY is
checked (``ShardingConfig``): an invalid shard closes 4010, a shard count under the required
minimum closes 4011, and, when the identify limit is enforced, a second IDENTIFY in a rate-limit
bucket (shard_id % max_concurrency) within the window gets op 9 Invalid Session (d=false) instead
of READY. Every IDENTIFY accepted counts against the session start limit that ``GET /gateway/bot``
reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakediscord.models import (
    API_VERSION,
    FLAG_EPHEMERAL,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_MESSAGE_CONTENT,
    GatewayFrame,
    RecordedIdentify,
    shard_of,
)
from tests.fakediscord.state import DiscordState

_log = logging.getLogger("tests.fakediscord")

HEARTBEAT_INTERVAL_MS = 41250  # Discord's usual value: no heartbeat falls due in a test

# Opcodes.
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_RESUME = 6
OP_RECONNECT = 7
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

# Close codes discord.py does not reconnect after (it raises ConnectionClosed from start()).
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011

SESSION_START_PERIOD_S = 24 * 3600.0  # session_start_limit resets this long after the first IDENTIFY


@dataclass
class ShardingConfig:
    """How the gateway shards and rate-limits IDENTIFY; ``FakeDiscord``'s constructor fills it in.

    recommended_shards: ``shards`` in ``GET /gateway/bot`` (what AutoShardedClient uses without shard_count).
    min_shards: an IDENTIFY with a lower shard count (or without ``shard``, i.e. 1) closes 4011.
    max_concurrency: identify rate-limit buckets (bucket = shard_id % max_concurrency).
    identify_window: seconds a bucket allows one IDENTIFY in (Discord: 5).
    enforce_identify_limit: answer an IDENTIFY over the limit with op 9; else only count it.
    session_start_total: ``session_start_limit.total``.
    """

    recommended_shards: int = 1
    min_shards: int = 1
    max_concurrency: int = 1
    identify_window: float = 5.0
    enforce_identify_limit: bool = False
    session_start_total: int = 1000

    def __post_init__(self) -> None:
        if self.recommended_shards < 1 or self.min_shards < 1 or self.max_concurrency < 1:
            raise ValueError("shards, min_shards and max_concurrency must be at least 1")
        if self.identify_window < 0 or self.session_start_total < 0:
            raise ValueError("identify_window and session_start_limit must not be negative")


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    zctx: Any = None  # zlib compressor shared by every frame, for compress=zlib-stream
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seq: int = 0
    session_id: str | None = None
    intents: int = 0
    shard: tuple[int, int] | None = None
    ready: bool = False


@dataclass
class _Session:
    """What a RESUME restores: it carries neither intents nor shard."""

    seq: int
    intents: int
    shard: tuple[int, int] | None


class Gateway:
    """Every bot connection to ``GET /gateway``, and the events sent to them."""

    def __init__(self, state: DiscordState, *, token: str | None, sharding: ShardingConfig | None = None) -> None:
        self.state = state
        self.token = token  # if set, IDENTIFY/RESUME must carry it (else close 4004)
        self.sharding = sharding or ShardingConfig()
        self.identifies: list[RecordedIdentify] = []  # accepted, in order (RESUMEs are not IDENTIFYs)
        self.identify_violations: list[RecordedIdentify] = []  # over the identify rate limit
        self._bucket_identified: dict[int, float] = {}  # bucket -> monotonic time of its last accepted IDENTIFY
        self._session_starts: list[float] = []  # monotonic times of accepted IDENTIFYs in this period
        self.url = ""  # ws://127.0.0.1:PORT/gateway once the server listens
        self.log: list[GatewayFrame] = []
        self.connects: list[dict[str, str]] = []  # query params of each connection
        self._conns: list[_Connection] = []
        self._sessions: dict[str, _Session] = {}
        self._ready = asyncio.Event()  # set while some connection has identified or resumed
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ the websocket

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        compression = request.query.get("compress")
        self.connects.append(dict(request.query))
        conn = _Connection(ws=ws)
        if compression == "zlib-stream":
            conn.zctx = zlib.compressobj()
        elif compression:
            # e.g. zstd-stream when `zstandard` is installed: text frames, which discord.py always accepts.
            _log.info("gateway compression %r not implemented; sending text frames", compression)
        self._conns.append(conn)
        try:
            await self._send(conn, {"op": OP_HELLO, "s": None, "t": None, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._receive(conn, json.loads(msg.data))
                elif msg.type is WSMsgType.BINARY:
                    await self._receive(conn, json.loads(msg.data.decode()))
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._conns.remove(conn)
            if conn.session_id is not None:
                self._sessions[conn.session_id] = _Session(conn.seq, conn.intents, conn.shard)
            if not self.connected:
                self._ready.clear()
        return ws

    async def _send(self, conn: _Connection, payload: dict[str, Any]) -> None:
        # One lock per connection: sequence numbers and the zlib stream must follow send order.
        async with conn.lock:
            if conn.ws.closed:
                return
            if payload.get("op") == OP_DISPATCH:
                conn.seq += 1
                payload["s"] = conn.seq
            self.log.append(GatewayFrame("send", payload["op"], payload.get("t"), payload.get("d"), time.time()))
            raw = json.dumps(payload)
            if conn.zctx is not None:
                await conn.ws.send_bytes(conn.zctx.compress(raw.encode()) + conn.zctx.flush(zlib.Z_SYNC_FLUSH))
            else:
                await conn.ws.send_str(raw)

    async def _receive(self, conn: _Connection, payload: dict[str, Any]) -> None:
        op: Any = payload.get("op")
        d: Any = payload.get("d")
        self.log.append(GatewayFrame("recv", op, None, d, time.time()))
        if op == OP_HEARTBEAT:
            await self._send(conn, {"op": OP_HEARTBEAT_ACK, "s": None, "t": None, "d": None})
        elif op == OP_IDENTIFY:
            await self._identify(conn, d)
        elif op == OP_RESUME:
            await self._resume(conn, d)
        # other ops (presence, voice state, member requests): recorded in the log only

    async def _identify(self, conn: _Connection, d: dict[str, Any]) -> None:
        received = time.monotonic()
        if self.token is not None and d.get("token") != self.token:
            await conn.ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        sharded = d.get("shard") is not None
        shard = _parse_shard(d.get("shard")) if sharded else (0, 1)  # no shard: Discord counts it as [0, 1]
        if shard is None or not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
            await conn.ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
            return
        shard_id, count = shard
        if count < self.sharding.min_shards:
            await conn.ws.close(code=CLOSE_SHARDING_REQUIRED, message=b"Sharding required.")
            return
        if not self._admit_identify(RecordedIdentify(received, shard_id, count)):
            # Like Discord: no READY; discord.py closes, waits (before_identify_hook) and identifies again.
            await self._send(conn, {"op": OP_INVALID_SESSION, "s": None, "t": None, "d": False})
            return
        conn.intents = int(d.get("intents") or 0)
        conn.shard = shard if sharded else None
        conn.session_id = secrets.token_hex(16)
        self._sessions[conn.session_id] = _Session(0, conn.intents, conn.shard)
        state = self.state
        ready: dict[str, Any] = {
            "v": API_VERSION,
            "user": state.bot_user_json(),
            "guilds": [{"id": str(gid), "unavailable": True} for gid in state.guilds if self._holds_guild(conn, gid)],
            "session_id": conn.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "application": {"id": str(state.application_id), "flags": state.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
        }
        if conn.shard is not None:
            ready["shard"] = list(conn.shard)
        conn.ready = True
        await self._dispatch_to(conn, "READY", ready)
        for gid in list(state.guilds):
            if self._holds_guild(conn, gid):
                await self._dispatch_to(conn, "GUILD_CREATE", state.guild_json(conn.intents, gid))
        self._ready.set()

    def _admit_identify(self, identify: RecordedIdentify) -> bool:
        """Apply the identify rate limit (when enforced) and count a session start; False if refused."""
        cfg = self.sharding
        bucket = identify.shard_id % cfg.max_concurrency
        last = self._bucket_identified.get(bucket)
        if cfg.enforce_identify_limit and last is not None and identify.at - last < cfg.identify_window:
            _log.warning(
                "IDENTIFY of shard %s %.3fs after the last in bucket %s: Invalid Session",
                identify.shard_id,
                identify.at - last,
                bucket,
            )
            self.identify_violations.append(identify)
            return False
        self._bucket_identified[bucket] = identify.at
        self._expire_session_starts(identify.at)
        self._session_starts.append(identify.at)
        self.identifies.append(identify)
        return True

    def _expire_session_starts(self, now: float) -> None:
        if self._session_starts and now - self._session_starts[0] >= SESSION_START_PERIOD_S:
            self._session_starts.clear()

    def session_start_limit(self) -> dict[str, int]:
        """``session_start_limit`` as ``GET /gateway/bot`` returns it: each accepted IDENTIFY uses one
        start; the count resets 24 h after the first of the period (``reset_after``, in ms)."""
        now = time.monotonic()
        self._expire_session_starts(now)
        total = self.sharding.session_start_total
        reset_after = 0
        if self._session_starts:
            reset_after = int((self._session_starts[0] + SESSION_START_PERIOD_S - now) * 1000)
        return {
            "total": total,
            "remaining": max(0, total - len(self._session_starts)),
            "reset_after": reset_after,
            "max_concurrency": self.sharding.max_concurrency,
        }

    async def _resume(self, conn: _Connection, d: dict[str, Any]) -> None:
        session_id: str = d.get("session_id") or ""
        session = self._sessions.get(session_id)
        if session is None or (self.token is not None and d.get("token") != self.token):
            await self._send(conn, {"op": OP_INVALID_SESSION, "s": None, "t": None, "d": False})
            return
        conn.session_id = session_id
        conn.intents, conn.shard = session.intents, session.shard
        conn.seq = int(d.get("seq") or session.seq)
        conn.ready = True
        await self._dispatch_to(conn, "RESUMED", {})
        self._ready.set()

    # ------------------------------------------------------------------ dispatching events

    def _holds_guild(self, conn: _Connection, guild_id: int | None = None) -> bool:
        if conn.shard is None:
            return True
        shard_id, count = conn.shard
        return shard_of(guild_id or self.state.guild_id, count) == shard_id

    @staticmethod
    def _holds_dms(conn: _Connection) -> bool:
        # Discord delivers DM events (and DM interactions) on shard 0.
        return conn.shard is None or conn.shard[0] == 0

    async def _dispatch_to(self, conn: _Connection, event: str, data: dict[str, Any]) -> None:
        await self._send(conn, {"op": OP_DISPATCH, "t": event, "s": None, "d": data})

    async def _dispatch_where(
        self, event: str, data: dict[str, Any], holds: Callable[[_Connection], bool], intent: int | None
    ) -> int:
        sent = 0
        for conn in list(self._conns):
            if conn.ready and holds(conn) and (intent is None or conn.intents & intent):
                await self._dispatch_to(conn, event, data)
                sent += 1
        return sent

    async def dispatch(self, event: str, data: dict[str, Any], *, intent: int | None = None, guild_id: int | None = None) -> int:
        """Send a guild DISPATCH event to every ready connection holding the guild (default: the first);
        returns how many got it."""
        return await self._dispatch_where(event, data, lambda conn: self._holds_guild(conn, guild_id), intent)

    async def dispatch_dm(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> int:
        """Send a DISPATCH event about a DM to every ready connection on shard 0; returns how many got it."""
        return await self._dispatch_where(event, data, self._holds_dms, intent)

    def _schedule(self, dispatching: Coroutine[Any, Any, int]) -> None:
        """Dispatch from a sync context / after the current HTTP response, keeping order (FIFO lock)."""
        if not self._conns:
            dispatching.close()
            return
        task = asyncio.get_running_loop().create_task(dispatching)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def dispatch_soon(self, event: str, data: dict[str, Any], *, intent: int | None = None, guild_id: int | None = None) -> None:
        self._schedule(self.dispatch(event, data, intent=intent, guild_id=guild_id))

    def dispatch_dm_soon(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> None:
        self._schedule(self.dispatch_dm(event, data, intent=intent))

    def run_soon(self, dispatching: Coroutine[Any, Any, int]) -> None:
        """Run a coroutine of dispatches after the current call, in order with the other scheduled events."""
        self._schedule(dispatching)

    def announce_guild(self, guild_id: int) -> None:
        """GUILD_CREATE for a guild the bot joined while connected (members as each connection's intents allow)."""

        async def announce() -> int:
            sent = 0
            for conn in list(self._conns):
                if conn.ready and self._holds_guild(conn, guild_id):
                    payload = self.state.guild_json(conn.intents, guild_id)
                    # No "unavailable" key: that is how a join differs from a guild coming back online.
                    del payload["unavailable"]
                    await self._dispatch_to(conn, "GUILD_CREATE", payload)
                    sent += 1
            return sent

        self._schedule(announce())

    async def flush(self) -> None:
        """Wait for the events scheduled so far (e.g. a GUILD_CREATE) to be sent, so later ones follow them."""
        pending = list(self._tasks)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def message_json(self, msg: dict[str, Any]) -> dict[str, Any]:
        """A stored message as MESSAGE_CREATE/UPDATE carry it: guild messages get guild_id and member."""
        data = dict(msg)
        guild = self.state.guild_of_channel(int(msg["channel_id"]))
        if guild is None:
            return data  # a DM: no guild_id, author without member data
        data["guild_id"] = str(guild.id)
        member = guild.members.get(int(msg["author"]["id"]))
        if member is not None and "webhook_id" not in msg:
            data["member"] = member.to_json(with_user=False)
        return data

    def echo(self, event: str, msg: dict[str, Any]) -> None:
        """Tell the bot about its own MESSAGE_CREATE/UPDATE, like Discord (not for ephemeral ones)."""
        if msg["flags"] & FLAG_EPHEMERAL:
            return
        guild = self.state.guild_of_channel(int(msg["channel_id"]))
        if guild is None:
            self.dispatch_dm_soon(event, self.message_json(msg), intent=INTENT_DIRECT_MESSAGES)
        else:
            self.dispatch_soon(event, self.message_json(msg), intent=INTENT_GUILD_MESSAGES, guild_id=guild.id)

    async def deliver_user_message(self, msg: dict[str, Any]) -> None:
        """MESSAGE_CREATE for a message a user posted in a guild channel.

        Needs GUILD_MESSAGES; without MESSAGE_CONTENT, content/embeds are blanked unless the bot
        is mentioned, like Discord does.
        """
        mentioned = any(int(u["id"]) == self.state.bot_user_id for u in msg["mentions"])
        guild = self.state.guild_of_channel(int(msg["channel_id"]))
        guild_id = guild.id if guild is not None else None
        for conn in list(self._conns):
            if not (conn.ready and self._holds_guild(conn, guild_id)):
                continue
            if not conn.intents & INTENT_GUILD_MESSAGES:
                _log.warning("bot lacks GUILD_MESSAGES intent; Discord would not deliver message %s", msg["id"])
                continue
            data = self.message_json(msg)
            if not conn.intents & INTENT_MESSAGE_CONTENT and not mentioned:
                data.update(content="", embeds=[], attachments=[], components=[])
            await self._dispatch_to(conn, "MESSAGE_CREATE", data)

    async def deliver_user_dm(self, msg: dict[str, Any]) -> None:
        """MESSAGE_CREATE for a DM a user sent the bot: needs DIRECT_MESSAGES, not MESSAGE_CONTENT."""
        for conn in list(self._conns):
            if not (conn.ready and self._holds_dms(conn)):
                continue
            if not conn.intents & INTENT_DIRECT_MESSAGES:
                _log.warning("bot lacks DIRECT_MESSAGES intent; Discord would not deliver DM %s", msg["id"])
                continue
            await self._dispatch_to(conn, "MESSAGE_CREATE", self.message_json(msg))

    # ------------------------------------------------------------------ connection state

    @property
    def connected(self) -> bool:
        """Whether some bot has an identified (or resumed) gateway session open right now."""
        return any(c.ready for c in self._conns)

    async def wait_connected(self, timeout: float = 10.0) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise TimeoutError("no bot is connected to the fake gateway (did you start_bot()?)") from None

    async def request_reconnect(self, timeout: float = 10.0) -> None:
        """Send op 7 RECONNECT to every connection; returns once a RESUMED has been dispatched again."""
        resumed_before = sum(1 for f in self.log if f.t == "RESUMED")
        for conn in list(self._conns):
            await self._send(conn, {"op": OP_RECONNECT, "s": None, "t": None, "d": None})
        async with asyncio.timeout(timeout):
            while sum(1 for f in self.log if f.t == "RESUMED") <= resumed_before:
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Close connections nobody stopped (non-resumable, so the bot gives up) and drop pending dispatches."""
        for conn in list(self._conns):
            _log.warning("closing a gateway connection still open at FakeDiscord exit")
            with contextlib.suppress(Exception):
                await conn.ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"fake discord shutting down")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _parse_shard(raw: Any) -> tuple[int, int] | None:
    """IDENTIFY's ``shard`` as ``(id, count)``; None when it is not two integers."""
    if not isinstance(raw, list | tuple) or len(raw) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        return None
    return (raw[0], raw[1])
