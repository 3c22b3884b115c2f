"""A fake Discord (REST API + gateway websocket) on 127.0.0.1 for driving a real discord.py bot.

Usage::

    async with FakeDiscord() as fake:
        bot = MyBot(...)                      # a real commands.Bot
        await start_bot(bot)                  # logs in against the fake, waits for on_ready
        await fake.send_message(fake.member_id, "!echo hi")
        body = await fake.wait_for_message(lambda b: b.get("content") == "hi")
        token = await fake.send_slash(fake.admin_id, "config", {"key": "a"}, subcommand="set")
        await fake.wait_for(kind="interaction.callback", token=token)
        await stop_bot(bot)

Only the parts of Discord that discord.py 2.7 touches for logging in, receiving messages and
application-command interactions, and replying (channel messages, interaction callbacks,
webhook followups/edits) are modelled, in the guild and in direct messages with the bot
(``send_dm``, ``send_slash(..., dm=True)``, ``POST /users/@me/channels``).  Everything else
falls through to a catch-all that records the call and answers 404 like Discord does, so
unexpected calls show up in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import re
import secrets
import socket
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, ClassVar, Iterable

import yarl
from aiohttp import WSMsgType, web

import discord
from discord.gateway import DiscordWebSocket
from discord.http import Route

__all__ = [
    "FakeDiscord",
    "FakeInteraction",
    "GatewayFrame",
    "Opt",
    "RecordedFile",
    "RecordedRequest",
    "SlashCommandUnavailable",
    "start_bot",
    "stop_bot",
    "wait_until_ready",
]

_log = logging.getLogger("tests.fake_discord")

DISCORD_EPOCH_MS = 1420070400000
API_VERSION = 10

# Gateway intents (bit positions from Discord's docs).
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Permission bits we care about.
PERM_ADMINISTRATOR = 1 << 3
PERM_MANAGE_GUILD = 1 << 5
PERMS_ALL: int = discord.Permissions.all().value
# What a fresh guild's @everyone role gets (view, send, history, embeds, files, reactions,
# external emoji, invites, nickname, threads, voice connect/speak, application commands).
PERMS_EVERYONE: int = discord.Permissions(
    create_instant_invite=True,
    add_reactions=True,
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    external_emojis=True,
    connect=True,
    speak=True,
    change_nickname=True,
    use_application_commands=True,
    create_public_threads=True,
    send_messages_in_threads=True,
).value

# What Discord reports as ``app_permissions`` for an interaction in the bot's DM (its docs:
# ATTACH_FILES, EMBED_LINKS and MENTION_EVERYONE, plus USE_EXTERNAL_EMOJIS in the app's bot DM).
PERMS_BOT_DM: int = discord.Permissions(
    attach_files=True, embed_links=True, mention_everyone=True, external_emojis=True
).value

# Channel types.
CHANNEL_DM = 1

# Interaction context types (``context`` of an interaction).
CONTEXT_GUILD = 0
CONTEXT_BOT_DM = 1

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12

# Interaction callback types.
CB_PONG = 1
CB_MESSAGE = 4
CB_DEFERRED_MESSAGE = 5
CB_DEFERRED_UPDATE = 6
CB_UPDATE_MESSAGE = 7

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def _iso(ms_since_unix: float) -> str:
    return datetime.datetime.fromtimestamp(ms_since_unix / 1000, datetime.timezone.utc).isoformat()


def snowflake_time_ms(snowflake: int) -> int:
    return (snowflake >> 22) + DISCORD_EPOCH_MS


class SlashCommandUnavailable(Exception):
    """Raised by ``send_slash(..., enforce_default_permissions=True)`` when Discord would hide the command."""


# --------------------------------------------------------------------------- data model


@dataclass
class FakeUser:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
        }


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    color: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class FakeMember:
    user: FakeUser
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = "2024-01-01T00:00:00+00:00"

    def to_json(self, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.to_json()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass
class FakeChannel:
    id: int
    name: str
    position: int = 0
    type: int = 0  # GUILD_TEXT
    topic: str | None = None

    def to_json(self, guild_id: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "topic": self.topic,
            "nsfw": False,
            "parent_id": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        return data


@dataclass(frozen=True)
class Opt:
    """An explicitly typed slash option value, e.g. ``Opt(fake.member_id, 6)`` for a USER option.

    USER (6), CHANNEL (7), ROLE (8) and MENTIONABLE (9) values that name a known object get a
    matching ``resolved`` entry, as Discord sends them.
    """

    value: Any
    type: int


@dataclass
class RecordedFile:
    field_name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    """One HTTP request the bot made against the fake, with what the fake answered."""

    method: str
    path: str  # relative to /api/v10, e.g. "/channels/123/messages"
    json: Any  # parsed JSON body (``payload_json`` for multipart), or None
    timestamp: float
    query: dict[str, str] = field(default_factory=dict)
    files: list[RecordedFile] = field(default_factory=list)
    kind: str = "unknown"  # e.g. "message.create", "interaction.callback", "followup.create"
    status: int = 0
    response: Any = None
    channel_id: int | None = None
    token: str | None = None  # interaction token, for interaction/webhook routes
    message: dict[str, Any] | None = None  # the message body this request carried, if any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def callback_type(self) -> int | None:
        if self.kind == "interaction.callback" and isinstance(self.json, dict):
            return self.json.get("type")
        return None

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.method} {self.path} kind={self.kind} status={self.status}>"


@dataclass
class GatewayFrame:
    direction: str  # "send" (fake -> bot) or "recv" (bot -> fake)
    op: int
    t: str | None
    d: Any
    timestamp: float


@dataclass
class FakeInteraction:
    id: int
    token: str
    type: int  # 2 application command, 3 component
    channel_id: int
    user_id: int
    name: str  # command name or component custom_id
    payload: dict[str, Any]
    response_type: int | None = None
    original_message_id: int | None = None
    loading: bool = False
    ephemeral_defer: bool = False
    followup_ids: list[int] = field(default_factory=list)
    source_message_id: int | None = None  # for component interactions


@dataclass
class _ReqCtx:
    """Per-request scratch space shared by the recording middleware and the route handlers."""

    path: str
    json: Any = None
    files: list[RecordedFile] = field(default_factory=list)
    kind: str = "unknown"
    bucket: str | None = None
    channel_id: int | None = None
    token: str | None = None
    message: dict[str, Any] | None = None


_CTX = web.RequestKey("fake_discord_ctx", _ReqCtx)


@dataclass
class _GatewayConn:
    ws: web.WebSocketResponse
    compression: str | None
    zctx: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seq: int = 0
    session_id: str | None = None
    intents: int = 0
    shard: tuple[int, int] | None = None
    ready: bool = False


# --------------------------------------------------------------------------- server


class FakeDiscord:
    """Fake Discord REST + gateway.  Use as ``async with FakeDiscord() as fake:``."""

    _active: ClassVar["FakeDiscord | None"] = None

    # Fixed, realistic snowflakes so tests can hard-code them if they want to.
    application_id: int = 1200000000000000001
    bot_user_id: int = 1200000000000000001  # modern apps: bot user id == application id
    guild_id: int = 1300000000000000001
    admin_role_id: int = 1300000000000000002
    bot_role_id: int = 1300000000000000003
    channel_id: int = 1300000000000000010
    other_channel_id: int = 1300000000000000011
    owner_id: int = 1400000000000000001
    admin_id: int = 1400000000000000002
    member_id: int = 1400000000000000003

    def __init__(
        self,
        *,
        token: str | None = None,
        echo_bot_messages: bool = True,
        ratelimit_headers: bool = True,
        allowed_privileged_intents: int = PRIVILEGED_INTENTS,
        heartbeat_interval_ms: int = 41250,
    ) -> None:
        """
        token: if set, REST calls and IDENTIFY must use it (else 401 / close 4004).
        echo_bot_messages: dispatch MESSAGE_CREATE/UPDATE/DELETE for the bot's own messages like Discord.
        ratelimit_headers: send X-RateLimit-* headers (never exhausted) so discord.py's bucket code runs.
        allowed_privileged_intents: privileged intents "enabled in the developer portal"; others -> close 4014.
        """
        self.token = token
        self.echo_bot_messages = echo_bot_messages
        self.ratelimit_headers = ratelimit_headers
        self.allowed_privileged_intents = allowed_privileged_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms

        self.requests: list[RecordedRequest] = []
        self.gateway_log: list[GatewayFrame] = []
        self.gateway_connects: list[dict[str, str]] = []  # query params of each gateway connection
        self.interactions: dict[str, FakeInteraction] = {}
        self.messages: dict[int, dict[str, Any]] = {}  # current state of every message, by id
        self.attachments: dict[int, bytes] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.injected_errors: list[dict[str, Any]] = []

        self.users: dict[int, FakeUser] = {}
        self.members: dict[int, FakeMember] = {}
        self.roles: dict[int, FakeRole] = {}
        self.channels: dict[int, FakeChannel] = {}
        # Direct-message channels with the bot: channel id -> recipient user id (and back).
        self.dm_channels: dict[int, int] = {}
        self._dm_by_user: dict[int, int] = {}
        self._build_guild()

        self._last_snowflake = 0
        self._cond: asyncio.Condition | None = None
        self._conns: list[_GatewayConn] = []
        # session_id -> (last seq, intents, shard): RESUME carries neither intents nor shard.
        self._sessions: dict[str, tuple[int, int, tuple[int, int] | None]] = {}
        self._ready_evt: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bots: list[tuple[discord.Client, asyncio.Task[None]]] = []
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None
        self._saved: tuple[str, yarl.URL] | None = None
        self._command_ids: dict[str, int] = {}
        self.port: int = 0
        self._routes = self._route_table()

    # ------------------------------------------------------------------ guild model

    def _build_guild(self) -> None:
        bot = FakeUser(self.bot_user_id, "FakeBot", None, bot=True)
        owner = FakeUser(self.owner_id, "owner", "Guild Owner")
        admin = FakeUser(self.admin_id, "admin", "Admin Person")
        member = FakeUser(self.member_id, "member", "Plain Member")
        for u in (bot, owner, admin, member):
            self.users[u.id] = u
        self.roles[self.guild_id] = FakeRole(self.guild_id, "@everyone", PERMS_EVERYONE, position=0)
        self.roles[self.admin_role_id] = FakeRole(self.admin_role_id, "Admin", PERM_MANAGE_GUILD, position=1)
        self.roles[self.bot_role_id] = FakeRole(self.bot_role_id, "FakeBot", PERMS_EVERYONE, position=2, managed=True)
        self.members[self.bot_user_id] = FakeMember(bot, [self.bot_role_id])
        self.members[self.owner_id] = FakeMember(owner, [])
        self.members[self.admin_id] = FakeMember(admin, [self.admin_role_id])
        self.members[self.member_id] = FakeMember(member, [])
        self.channels[self.channel_id] = FakeChannel(self.channel_id, "general", 0, topic="General chat")
        self.channels[self.other_channel_id] = FakeChannel(self.other_channel_id, "random", 1)

    def add_role(self, name: str, permissions: int | discord.Permissions) -> int:
        perms = permissions.value if isinstance(permissions, discord.Permissions) else int(permissions)
        rid = self.new_snowflake()
        role = FakeRole(rid, name, perms, position=len(self.roles))
        self.roles[rid] = role
        self._dispatch_soon("GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": role.to_json()})
        return rid

    def add_member(self, username: str, *, roles: Iterable[int] = (), bot: bool = False) -> int:
        """Add a guild member; included in GUILD_CREATE if added before the bot connects."""
        uid = self.new_snowflake()
        user = FakeUser(uid, username, username.title(), bot=bot)
        self.users[uid] = user
        self.members[uid] = FakeMember(user, list(roles))
        payload = self.members[uid].to_json()
        payload["guild_id"] = str(self.guild_id)
        self._dispatch_soon("GUILD_MEMBER_ADD", payload, intent=INTENT_GUILD_MEMBERS)
        return uid

    def add_channel(self, name: str) -> int:
        cid = self.new_snowflake()
        self.channels[cid] = FakeChannel(cid, name, len(self.channels))
        self._dispatch_soon("CHANNEL_CREATE", self.channels[cid].to_json(self.guild_id))
        return cid

    def add_user(self, username: str, *, bot: bool = False) -> int:
        """Add a user who is *not* a member of the fake guild (e.g. to DM the bot); returns its id."""
        uid = self.new_snowflake()
        self.users[uid] = FakeUser(uid, username, username.title(), bot=bot)
        return uid

    def is_dm_channel(self, channel_id: int | None) -> bool:
        return channel_id is not None and int(channel_id) in self.dm_channels

    def dm_channel_id(self, user_id: int) -> int:
        """The id of the bot's DM channel with ``user_id``, created on first use (no event, like Discord)."""
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id}; use fake.add_member() or fake.add_user() first")
        if user_id == self.bot_user_id:
            raise ValueError("the bot cannot have a DM channel with itself")
        cid = self._dm_by_user.get(user_id)
        if cid is None:
            cid = self.new_snowflake()
            self.dm_channels[cid] = user_id
            self._dm_by_user[user_id] = cid
        return cid

    def dm_channel_json(self, channel_id: int) -> dict[str, Any]:
        """A DM channel object (type 1) as Discord returns it to the bot: the other user in ``recipients``."""
        recipient = self.dm_channels[int(channel_id)]
        last = max((mid for mid, m in self.messages.items() if m["channel_id"] == str(channel_id)), default=None)
        return {
            "id": str(channel_id),
            "type": CHANNEL_DM,
            "last_message_id": None if last is None else str(last),
            "flags": 0,
            "recipients": [self.user_json(recipient)],
        }

    def _channel_exists(self, channel_id: int) -> bool:
        return channel_id in self.channels or channel_id in self.dm_channels

    def permissions_for(self, user_id: int) -> int:
        """Guild-level permissions (no channel overwrites are modelled): owner/admin -> all."""
        if user_id == self.owner_id:
            return PERMS_ALL
        member = self.members.get(user_id)
        perms = self.roles[self.guild_id].permissions
        if member is not None:
            for rid in member.roles:
                role = self.roles.get(rid)
                if role is not None:
                    perms |= role.permissions
        if perms & PERM_ADMINISTRATOR:
            return PERMS_ALL
        return perms

    def user_json(self, user_id: int) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None:
            raise KeyError(f"unknown user {user_id}; use fake.add_member() first")
        return user.to_json()

    def guild_json(self, intents: int = 0) -> dict[str, Any]:
        """GUILD_CREATE payload.  Other members only appear with the GUILD_MEMBERS intent, like Discord."""
        members = [
            m.to_json()
            for uid, m in self.members.items()
            if uid == self.bot_user_id or intents & INTENT_GUILD_MEMBERS
        ]
        return {
            "id": str(self.guild_id),
            "name": "Fake Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "roles": [r.to_json() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "channels": [c.to_json() for c in self.channels.values()],
            "threads": [],
            "members": members,
            "member_count": len(self.members),
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "unavailable": False,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "max_members": 500000,
            "premium_progress_bar_enabled": False,
        }

    def application_json(self) -> dict[str, Any]:
        return {
            "id": str(self.application_id),
            "name": "FakeBot",
            "icon": None,
            "description": "A fake application",
            "summary": "",
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.user_json(self.owner_id),
            "team": None,
            "verify_key": "0" * 64,
            # GATEWAY_MESSAGE_CONTENT_LIMITED | APPLICATION_COMMAND_BADGE
            "flags": (1 << 19) | (1 << 23),
            "bot": self.user_json(self.bot_user_id),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": 1,
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def __aenter__(self) -> "FakeDiscord":
        if FakeDiscord._active is not None:
            raise RuntimeError("only one FakeDiscord can be active at a time (it patches discord.py globals)")
        self._cond = asyncio.Condition()
        self._ready_evt = asyncio.Event()
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{aid}/{filename}", self._get_attachment)
        app.router.add_route("*", "/{tail:.*}", self._dispatch_rest)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None, handle_signals=False)
        await self._runner.setup()
        # Bind the socket ourselves: loopback only, OS-chosen free port.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

        self._saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = self.api_base
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        FakeDiscord._active = self
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            for bot, task in list(self._bots):
                with contextlib.suppress(Exception):
                    await stop_bot(bot, task)
            self._bots.clear()
            for conn in list(self._conns):
                # 4004 is not resumable, so a bot nobody stopped gives up instead of reconnecting.
                _log.warning("closing a gateway connection still open at FakeDiscord exit")
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=4004, message=b"fake discord shutting down")
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._runner is not None:
                await self._runner.cleanup()
        finally:
            if self._saved is not None:
                Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved
                self._saved = None
            if self._sock is not None:
                self._sock.close()
            FakeDiscord._active = None

    async def start_bot(self, bot: discord.Client, token: str = "fake-token", **kwargs: Any) -> asyncio.Task[None]:
        """Start ``bot`` against this fake; it is stopped automatically on context exit."""
        return await start_bot(bot, token, **kwargs)

    async def wait_until_ready(self, bot: discord.Client, timeout: float = 10.0) -> None:
        await wait_until_ready(bot, timeout)

    # ------------------------------------------------------------------ ids & messages

    def new_snowflake(self) -> int:
        """Time-based, strictly increasing snowflake (interaction expiry is computed from it)."""
        sf = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        sf = max(sf, self._last_snowflake + 1)
        self._last_snowflake = sf
        return sf

    def _mentions(self, content: str, allowed: dict[str, Any] | None, reply_to: dict[str, Any] | None) -> tuple[list[int], list[int], bool]:
        parse = None if allowed is None else set(allowed.get("parse") or [])
        users: list[int] = []
        for m in _USER_MENTION.finditer(content):
            uid = int(m.group(1))
            if uid in self.users and uid not in users:
                if parse is None or "users" in parse or str(uid) in {str(x) for x in allowed.get("users", [])}:  # type: ignore[union-attr]
                    users.append(uid)
        roles: list[int] = []
        for m in _ROLE_MENTION.finditer(content):
            rid = int(m.group(1))
            if rid in self.roles and rid not in roles:
                if parse is None or "roles" in parse or str(rid) in {str(x) for x in allowed.get("roles", [])}:  # type: ignore[union-attr]
                    roles.append(rid)
        everyone = ("@everyone" in content or "@here" in content) and (parse is None or "everyone" in parse)
        if reply_to is not None:
            # Without allowed_mentions Discord pings the replied-to author; with it, only if replied_user.
            if allowed is None or allowed.get("replied_user", False):
                author_id = int(reply_to["author"]["id"])
                if author_id not in users:
                    users.append(author_id)
        return users, roles, everyone

    def _mention_json(self, uid: int, *, in_guild: bool = True) -> dict[str, Any]:
        data = self.user_json(uid)
        member = self.members.get(uid) if in_guild else None  # DMs carry no member data
        if member is not None:
            data["member"] = member.to_json(with_user=False)
        return data

    def _new_message(
        self,
        *,
        channel_id: int,
        author_id: int,
        body: dict[str, Any],
        files: list[RecordedFile] | None = None,
        msg_type: int = 0,
        webhook: bool = False,
        flags: int = 0,
    ) -> dict[str, Any]:
        mid = self.new_snowflake()
        content = body.get("content") or ""
        ref = body.get("message_reference")
        referenced = None
        if ref and ref.get("message_id") is not None:
            referenced = self.messages.get(int(ref["message_id"]))
            if msg_type == 0:
                msg_type = 19  # REPLY
        users, roles, everyone = self._mentions(content, body.get("allowed_mentions"), referenced)
        msg: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self.user_json(author_id),
            "content": content,
            "timestamp": _iso(snowflake_time_ms(mid)),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": everyone,
            "mentions": [self._mention_json(u, in_guild=not self.is_dm_channel(channel_id)) for u in users],
            "mention_roles": [str(r) for r in roles],
            "attachments": [],
            "embeds": [self._normalize_embed(e) for e in body.get("embeds") or []],
            "components": list(body.get("components") or []),
            "pinned": False,
            "type": msg_type,
            "flags": flags | (int(body.get("flags") or 0) & (FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS)),
        }
        if body.get("nonce") is not None:
            msg["nonce"] = body["nonce"]
        if webhook:
            msg["webhook_id"] = str(self.application_id)
            msg["application_id"] = str(self.application_id)
        if referenced is not None:
            msg["message_reference"] = {
                "type": 0,
                "message_id": referenced["id"],
                "channel_id": referenced["channel_id"],
            }
            if not self.is_dm_channel(int(referenced["channel_id"])):
                msg["message_reference"]["guild_id"] = str(self.guild_id)
            # Discord nests only one level of referenced_message.
            msg["referenced_message"] = {k: v for k, v in referenced.items() if k != "referenced_message"}
        self._add_attachments(msg, files or [])
        self.messages[mid] = msg
        return msg

    def _add_attachments(self, msg: dict[str, Any], files: list[RecordedFile]) -> None:
        for f in files:
            aid = self.new_snowflake()
            name = f.filename or "file"
            self.attachments[aid] = f.data
            url = f"{self.base_url}/attachments/{aid}/{name}"
            msg["attachments"].append(
                {
                    "id": str(aid),
                    "filename": name,
                    "size": len(f.data),
                    "url": url,
                    "proxy_url": url,
                    "content_type": f.content_type,
                }
            )

    @staticmethod
    def _normalize_embed(embed: dict[str, Any]) -> dict[str, Any]:
        e = dict(embed)
        e.setdefault("type", "rich")
        return e

    def _edit_message(self, msg: dict[str, Any], body: dict[str, Any], files: list[RecordedFile]) -> None:
        if "content" in body:
            msg["content"] = body["content"] or ""
        if "embeds" in body:
            msg["embeds"] = [self._normalize_embed(e) for e in body["embeds"] or []]
        if "components" in body:
            msg["components"] = list(body["components"] or [])
        if "flags" in body and body["flags"] is not None:
            keep = msg["flags"] & ~FLAG_SUPPRESS_EMBEDS
            msg["flags"] = keep | (int(body["flags"]) & FLAG_SUPPRESS_EMBEDS)
        if "attachments" in body:
            keep_ids = {str(a.get("id")) for a in body["attachments"] or []}
            msg["attachments"] = [a for a in msg["attachments"] if a["id"] in keep_ids]
        self._add_attachments(msg, files)
        users, roles, everyone = self._mentions(msg["content"], body.get("allowed_mentions"), None)
        msg["mentions"] = [self._mention_json(u, in_guild=not self.is_dm_channel(int(msg["channel_id"]))) for u in users]
        msg["mention_roles"] = [str(r) for r in roles]
        msg["mention_everyone"] = everyone
        msg["edited_timestamp"] = _iso(time.time() * 1000)

    # ------------------------------------------------------------------ validation

    @staticmethod
    def _form_error(errors: dict[str, Any]) -> web.Response:
        return _error(400, 50035, "Invalid Form Body", errors)

    @staticmethod
    def _too_long(limit: int) -> dict[str, Any]:
        return {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}]}

    def _validate_body(self, body: dict[str, Any]) -> web.Response | None:
        """Discord's size limits for message bodies (content, embeds) -> 50035 like the real API."""
        errors: dict[str, Any] = {}
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            errors["content"] = {"_errors": [{"code": "BASE_TYPE_STRING", "message": "Must be a string."}]}
        elif content is not None and len(content) > 2000:
            errors["content"] = self._too_long(2000)
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            errors["embeds"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 10 or fewer in length."}]}
        total = 0
        for i, e in enumerate(embeds):
            eerr: dict[str, Any] = {}

            def check(key: str, value: Any, limit: int, into: dict[str, Any]) -> int:
                if value is None:
                    return 0
                n = len(str(value))
                if n > limit:
                    into[key] = self._too_long(limit)
                return n

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
                eerr["fields"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 25 or fewer in length."}]}
            for j, f in enumerate(fields):
                ferr = {}
                if not f.get("name"):
                    ferr["name"] = {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}
                if not f.get("value"):
                    ferr["value"] = {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}
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
        if errors:
            return self._form_error(errors)
        return None

    @staticmethod
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

    # ------------------------------------------------------------------ recording & waiting

    async def _record(self, rec: RecordedRequest) -> None:
        assert self._cond is not None
        self.requests.append(rec)
        async with self._cond:
            self._cond.notify_all()

    def mark(self) -> int:
        """Index to pass as ``after=`` so a later wait only looks at newer requests."""
        return len(self.requests)

    def find(
        self,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
        kind: str | None = None,
        token: str | None = None,
        channel_id: int | None = None,
        after: int = 0,
    ) -> list[RecordedRequest]:
        """All recorded requests matching every given filter (``path`` is a regex, searched)."""

        def match(r: RecordedRequest) -> bool:
            if method is not None and r.method != method.upper():
                return False
            if path is not None and not re.search(path, r.path):
                return False
            if kind is not None and r.kind != kind:
                return False
            if token is not None and r.token != token:
                return False
            if channel_id is not None and r.channel_id != channel_id:
                return False
            return predicate is None or bool(predicate(r))

        return [r for r in self.requests[after:] if match(r)]

    async def wait_for(
        self,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        timeout: float = 10.0,
        **filters: Any,
    ) -> RecordedRequest:
        """First recorded request (already recorded or arriving later) matching predicate and filters.

        Filters are those of :meth:`find` (method, path, kind, token, channel_id, after).
        """
        assert self._cond is not None
        try:
            async with asyncio.timeout(timeout):
                async with self._cond:
                    while True:
                        found = self.find(predicate, **filters)
                        if found:
                            return found[0]
                        await self._cond.wait()
        except TimeoutError:
            seen = "\n  ".join(f"{r.method} {r.path} [{r.kind} {r.status}] {r.json!r:.200}" for r in self.requests)
            raise TimeoutError(f"no request matched {filters or ''} within {timeout}s; recorded:\n  {seen}") from None

    async def wait_for_message(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10.0,
        *,
        after: int = 0,
        channel_id: int | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """Wait for a successful message-bearing request whose body satisfies ``predicate``; return the body."""
        rec = await self.wait_for(
            lambda r: r.message is not None and r.ok and (predicate is None or predicate(r.message)),
            timeout,
            after=after,
            channel_id=channel_id,
            token=token,
        )
        assert rec.message is not None
        return rec.message

    def messages_sent(
        self, channel_id: int | None = None, *, token: str | None = None, include_failed: bool = False
    ) -> list[dict[str, Any]]:
        """JSON bodies of every message the bot posted or edited, in order, on all paths.

        Channel POST/PATCH bodies, interaction callback ``data`` (types 4 and 7) and webhook
        followup/original-response POST/PATCH bodies.  Type-5 deferrals carry no message.
        """
        return [
            r.message
            for r in self.requests
            if r.message is not None
            and (include_failed or r.ok)
            and (channel_id is None or r.channel_id == channel_id)
            and (token is None or r.token == token)
        ]

    def embeds_sent(self, channel_id: int | None = None, *, token: str | None = None) -> list[dict[str, Any]]:
        return [e for body in self.messages_sent(channel_id, token=token) for e in body.get("embeds") or []]

    def history(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        """Current state (after edits/deletes) of messages in a channel, oldest first."""
        cid = str(channel_id or self.channel_id)
        return [m for _, m in sorted(self.messages.items()) if m["channel_id"] == cid]

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
        """Make the next ``times`` requests matching (method, path regex) fail with ``status``.

        For 429 a ``Via`` header and ``retry_after`` are added: discord.py treats a 429 without
        ``Via`` as a Cloudflare ban and raises instead of retrying.
        """
        hdrs = dict(headers or {})
        if body is None:
            body = {"message": "injected error", "code": 0}
        if status == 429:
            hdrs.setdefault("Via", "1.1 google")
            body = {"message": "You are being rate limited.", "retry_after": 0.01, "global": False, **body}
        self.injected_errors.append(
            {"method": method.upper(), "path": re.compile(path), "status": status, "body": body, "times": times, "headers": hdrs}
        )

    # ------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        compression = request.query.get("compress")
        self.gateway_connects.append(dict(request.query))
        conn = _GatewayConn(ws=ws, compression=compression)
        if compression == "zlib-stream":
            conn.zctx = zlib.compressobj()
        elif compression:
            # e.g. zstd-stream when `zstandard` is installed: answer with plain text frames,
            # which discord.py always accepts.
            _log.info("gateway compression %r not implemented; sending text frames", compression)
            conn.compression = None
        self._conns.append(conn)
        try:
            await self._gw_send(conn, {"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._gw_receive(conn, json.loads(msg.data))
                elif msg.type is WSMsgType.BINARY:
                    await self._gw_receive(conn, json.loads(msg.data.decode()))
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._conns.remove(conn)
            if conn.session_id is not None:
                self._sessions[conn.session_id] = (conn.seq, conn.intents, conn.shard)
            if not any(c.ready for c in self._conns) and self._ready_evt is not None:
                self._ready_evt.clear()
        return ws

    async def _gw_send(self, conn: _GatewayConn, payload: dict[str, Any]) -> None:
        async with conn.lock:
            if conn.ws.closed:
                return
            if payload.get("op") == 0:
                conn.seq += 1
                payload["s"] = conn.seq
            self.gateway_log.append(GatewayFrame("send", payload["op"], payload.get("t"), payload.get("d"), time.time()))
            raw = json.dumps(payload)
            if conn.zctx is not None:
                data = conn.zctx.compress(raw.encode()) + conn.zctx.flush(zlib.Z_SYNC_FLUSH)
                await conn.ws.send_bytes(data)
            else:
                await conn.ws.send_str(raw)

    async def _gw_receive(self, conn: _GatewayConn, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        d = payload.get("d")
        self.gateway_log.append(GatewayFrame("recv", op, None, d, time.time()))
        if op == 1:  # HEARTBEAT
            await self._gw_send(conn, {"op": 11, "s": None, "t": None, "d": None})
        elif op == 2:  # IDENTIFY
            await self._identify(conn, d)
        elif op == 6:  # RESUME
            sid = d.get("session_id")
            if sid in self._sessions and (self.token is None or d.get("token") == self.token):
                last_seq, conn.intents, conn.shard = self._sessions[sid]
                conn.session_id = sid
                conn.seq = int(d.get("seq") or last_seq)
                conn.ready = True
                await self._gw_dispatch_conn(conn, "RESUMED", {})
                assert self._ready_evt is not None
                self._ready_evt.set()
            else:
                await self._gw_send(conn, {"op": 9, "s": None, "t": None, "d": False})
        elif op == 8:  # REQUEST_GUILD_MEMBERS: answer with one chunk
            members = [m.to_json() for m in self.members.values()]
            if d.get("user_ids"):
                wanted = {str(x) for x in d["user_ids"]}
                members = [m for m in members if m["user"]["id"] in wanted]
            elif d.get("query"):
                members = [m for m in members if m["user"]["username"].startswith(d["query"])]
            chunk = {
                "guild_id": str(self.guild_id),
                "members": members[: d.get("limit") or None],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if d.get("nonce"):
                chunk["nonce"] = d["nonce"]
            await self._gw_dispatch_conn(conn, "GUILD_MEMBERS_CHUNK", chunk)
        # op 3 (presence) / op 4 (voice state): recorded in gateway_log only

    async def _identify(self, conn: _GatewayConn, d: dict[str, Any]) -> None:
        if self.token is not None and d.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(d.get("intents") or 0)
        if intents & PRIVILEGED_INTENTS & ~self.allowed_privileged_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        conn.intents = intents
        conn.shard = tuple(d["shard"]) if d.get("shard") else None  # type: ignore[assignment]
        conn.session_id = secrets.token_hex(16)
        self._sessions[conn.session_id] = (0, intents, conn.shard)
        ready: dict[str, Any] = {
            "v": API_VERSION,
            "user": {**self.user_json(self.bot_user_id), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": conn.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self.application_json()["flags"]},
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
        await self._gw_dispatch_conn(conn, "READY", ready)
        if self._guild_on_shard(conn):
            await self._gw_dispatch_conn(conn, "GUILD_CREATE", self.guild_json(intents))
        assert self._ready_evt is not None
        self._ready_evt.set()

    def _guild_on_shard(self, conn: _GatewayConn) -> bool:
        if conn.shard is None:
            return True
        shard_id, count = conn.shard
        return (self.guild_id >> 22) % count == shard_id

    async def _gw_dispatch_conn(self, conn: _GatewayConn, event: str, data: dict[str, Any]) -> None:
        await self._gw_send(conn, {"op": 0, "t": event, "s": None, "d": data})

    async def _dispatch_where(
        self, event: str, data: dict[str, Any], on_shard: Callable[[_GatewayConn], bool], intent: int | None
    ) -> int:
        sent = 0
        for conn in list(self._conns):
            if conn.ready and on_shard(conn) and (intent is None or conn.intents & intent):
                await self._gw_dispatch_conn(conn, event, data)
                sent += 1
        return sent

    def _schedule(self, dispatching: Awaitable[int]) -> None:
        """Dispatch from a sync context / after the current HTTP response, keeping order (FIFO lock)."""
        task = asyncio.get_running_loop().create_task(dispatching)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def dispatch(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> int:
        """Send a raw DISPATCH event to every ready connection holding the guild; returns how many got it."""
        return await self._dispatch_where(event, data, self._guild_on_shard, intent)

    def _dispatch_soon(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> None:
        if self._conns:
            self._schedule(self.dispatch(event, data, intent=intent))

    @staticmethod
    def _dm_on_shard(conn: _GatewayConn) -> bool:
        # Discord delivers DM events (and DM interactions) on shard 0.
        return conn.shard is None or conn.shard[0] == 0

    async def dispatch_dm(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> int:
        """Send a raw DISPATCH event about a DM to every ready connection on shard 0; returns how many got it."""
        return await self._dispatch_where(event, data, self._dm_on_shard, intent)

    def _dispatch_dm_soon(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> None:
        if self._conns:
            self._schedule(self.dispatch_dm(event, data, intent=intent))

    async def request_reconnect(self, timeout: float = 10.0) -> None:
        """Send op 7 RECONNECT to every connection; discord.py RESUMEs on resume_gateway_url.

        Returns once a RESUMED has been dispatched again.
        """
        assert self._ready_evt is not None
        resumed_before = sum(1 for f in self.gateway_log if f.t == "RESUMED")
        for conn in list(self._conns):
            await self._gw_send(conn, {"op": 7, "s": None, "t": None, "d": None})
        async with asyncio.timeout(timeout):
            while sum(1 for f in self.gateway_log if f.t == "RESUMED") <= resumed_before:
                await asyncio.sleep(0.01)

    @property
    def connected(self) -> bool:
        """Whether some bot has an identified gateway session open right now."""
        return any(c.ready for c in self._conns)

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until a bot (in this process or another) has identified on the gateway."""
        await self._wait_connected(timeout)

    async def _wait_connected(self, timeout: float = 10.0) -> None:
        assert self._ready_evt is not None, "use FakeDiscord as an async context manager"
        try:
            await asyncio.wait_for(self._ready_evt.wait(), timeout)
        except TimeoutError:
            raise TimeoutError("no bot is connected to the fake gateway (did you start_bot()?)") from None

    def _gateway_message(self, msg: dict[str, Any]) -> dict[str, Any]:
        data = dict(msg)
        if self.is_dm_channel(int(msg["channel_id"])):
            return data  # a DM: no guild_id, author without member data
        data["guild_id"] = str(self.guild_id)
        member = self.members.get(int(msg["author"]["id"]))
        if member is not None and "webhook_id" not in msg:
            data["member"] = member.to_json(with_user=False)
        return data

    def _echo(self, event: str, msg: dict[str, Any]) -> None:
        if not self.echo_bot_messages or msg["flags"] & FLAG_EPHEMERAL:
            return
        if self.is_dm_channel(int(msg["channel_id"])):
            if event == "MESSAGE_DELETE":
                data = {"id": msg["id"], "channel_id": msg["channel_id"]}
            else:
                data = self._gateway_message(msg)
            self._dispatch_dm_soon(event, data, intent=INTENT_DIRECT_MESSAGES)
            return
        if event == "MESSAGE_DELETE":
            self._dispatch_soon(event, {"id": msg["id"], "channel_id": msg["channel_id"], "guild_id": str(self.guild_id)})
        else:
            self._dispatch_soon(event, self._gateway_message(msg), intent=INTENT_GUILD_MESSAGES)

    # ------------------------------------------------------------------ driving the bot

    async def send_message(
        self,
        author_id: int,
        content: str,
        *,
        channel_id: int | None = None,
        reply_to: int | None = None,
        embeds: list[dict[str, Any]] | None = None,
    ) -> int:
        """Dispatch MESSAGE_CREATE from a guild member (as a user typing in a channel); returns its id.

        Without the MESSAGE_CONTENT intent content/embeds are blanked unless the bot is
        mentioned, like Discord does.
        """
        await self._wait_connected()
        cid = channel_id or self.channel_id
        body: dict[str, Any] = {"content": content, "embeds": embeds or []}
        if reply_to is not None:
            body["message_reference"] = {"message_id": str(reply_to)}
        msg = self._new_message(channel_id=cid, author_id=author_id, body=body)
        for conn in list(self._conns):
            if not (conn.ready and self._guild_on_shard(conn)):
                continue
            if not conn.intents & INTENT_GUILD_MESSAGES:
                _log.warning("bot lacks GUILD_MESSAGES intent; Discord would not deliver message %s", msg["id"])
                continue
            data = self._gateway_message(msg)
            mentioned = any(int(u["id"]) == self.bot_user_id for u in msg["mentions"])
            if not conn.intents & INTENT_MESSAGE_CONTENT and not mentioned:
                data.update(content="", embeds=[], attachments=[], components=[])
            await self._gw_dispatch_conn(conn, "MESSAGE_CREATE", data)
        return int(msg["id"])

    async def send_dm(
        self,
        author_id: int,
        content: str,
        *,
        reply_to: int | None = None,
        embeds: list[dict[str, Any]] | None = None,
    ) -> int:
        """Dispatch MESSAGE_CREATE for a direct message from ``author_id`` to the bot; returns its id.

        The DM channel (type 1) is created on first use; ``fake.dm_channel_id(author_id)`` names it.
        Like Discord: no ``guild_id``, the author is a plain user (no member data), the event needs
        the DIRECT_MESSAGES intent and arrives on shard 0, and content is delivered even without
        the MESSAGE_CONTENT intent (it does not apply to DMs with the app).
        """
        await self._wait_connected()
        cid = self.dm_channel_id(author_id)
        body: dict[str, Any] = {"content": content, "embeds": embeds or []}
        if reply_to is not None:
            body["message_reference"] = {"message_id": str(reply_to)}
        msg = self._new_message(channel_id=cid, author_id=author_id, body=body)
        for conn in list(self._conns):
            if not (conn.ready and self._dm_on_shard(conn)):
                continue
            if not conn.intents & INTENT_DIRECT_MESSAGES:
                _log.warning("bot lacks DIRECT_MESSAGES intent; Discord would not deliver DM %s", msg["id"])
                continue
            await self._gw_dispatch_conn(conn, "MESSAGE_CREATE", self._gateway_message(msg))
        return int(msg["id"])

    def _command_record(self, name: str, guild_command: bool | None) -> tuple[dict[str, Any] | None, bool]:
        guild_cmds = self.guild_commands.get(self.guild_id, [])
        g = next((c for c in guild_cmds if c["name"] == name and c.get("type", 1) == 1), None)
        glob = next((c for c in self.global_commands if c["name"] == name and c.get("type", 1) == 1), None)
        if guild_command is None:
            guild_command = g is not None
        return (g if guild_command else glob), guild_command

    def _option_json(self, name: str, value: Any, resolved: dict[str, dict[str, Any]]) -> dict[str, Any]:
        if isinstance(value, Opt):
            otype, v = value.type, value.value
        elif isinstance(value, bool):  # before int: bool is an int subclass
            otype, v = 5, value
        elif isinstance(value, int):
            otype, v = 4, value
        elif isinstance(value, float):
            otype, v = 10, value
        elif isinstance(value, str):
            otype, v = 3, value
        else:
            raise TypeError(f"cannot infer a slash option type for {value!r}; wrap it in Opt(value, type)")
        if otype in (6, 7, 8, 9):
            sid = int(v)
            if sid in self.users and otype in (6, 9):
                resolved.setdefault("users", {})[str(sid)] = self.user_json(sid)
                if sid in self.members:
                    resolved.setdefault("members", {})[str(sid)] = self.members[sid].to_json(
                        with_user=False, permissions=self.permissions_for(sid)
                    )
            elif sid in self.roles and otype in (8, 9):
                resolved.setdefault("roles", {})[str(sid)] = self.roles[sid].to_json()
            elif sid in self.channels and otype == 7:
                ch = self.channels[sid].to_json(self.guild_id)
                ch["permissions"] = str(PERMS_ALL)
                resolved.setdefault("channels", {})[str(sid)] = ch
            v = str(sid)
        return {"name": name, "type": otype, "value": v}

    def _interaction_base(self, itype: int, author_id: int, channel_id: int, permissions: int | None, locale: str) -> tuple[int, str, dict[str, Any]]:
        member = self.members.get(author_id)
        if member is None:
            raise KeyError(f"{author_id} is not a member of the fake guild")
        iid = self.new_snowflake()
        token = f"fake-interaction-{iid}-{secrets.token_hex(8)}"
        perms = self.permissions_for(author_id) if permissions is None else permissions
        channel = self.channels[channel_id].to_json(self.guild_id)
        channel["permissions"] = str(perms)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": channel,
            "member": member.to_json(permissions=perms),
            "token": token,
            "version": 1,
            "app_permissions": str(self.permissions_for(self.bot_user_id)),
            "locale": locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        return iid, token, payload

    def _dm_interaction_base(self, itype: int, author_id: int, locale: str) -> tuple[int, str, int, dict[str, Any]]:
        """An interaction payload from the bot's DM with ``author_id``, shaped like Discord's.

        No ``guild_id``/``guild``/``member``/``guild_locale``; a top-level ``user``; ``channel`` is
        the DM channel (type 1, with recipients); ``context`` 1 (BOT_DM); and, for a guild-installed
        app used in its bot DM, ``authorizing_integration_owners`` ``{"0": "0"}``.
        """
        cid = self.dm_channel_id(author_id)
        iid = self.new_snowflake()
        token = f"fake-interaction-{iid}-{secrets.token_hex(8)}"
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "channel_id": str(cid),
            "channel": self.dm_channel_json(cid),
            "user": self.user_json(author_id),
            "token": token,
            "version": 1,
            "app_permissions": str(PERMS_BOT_DM),
            "locale": locale,
            "entitlements": [],
            "authorizing_integration_owners": {"0": "0"},
            "context": CONTEXT_BOT_DM,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        return iid, token, cid, payload

    @staticmethod
    def _usable_in_dm(record: dict[str, Any]) -> bool:
        contexts = record.get("contexts")
        if contexts is not None:
            return CONTEXT_BOT_DM in contexts
        return record.get("dm_permission", True) is not False

    async def send_slash(
        self,
        author_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        subcommand: str | None = None,
        channel_id: int | None = None,
        permissions: int | None = None,
        guild_command: bool | None = None,
        enforce_default_permissions: bool = False,
        locale: str = "en-US",
        dm: bool = False,
    ) -> str:
        """Dispatch INTERACTION_CREATE for ``/name [subcommand] options...``; returns the interaction token.

        subcommand: "sub" nests options in a SUB_COMMAND (type 1); "group sub" in a
        SUB_COMMAND_GROUP (type 2) holding a SUB_COMMAND.
        permissions: override ``member.permissions`` (default: computed from the member's roles).
        guild_command: put ``data.guild_id`` (a guild-scoped command); default: True iff a guild
        command of that name was synced to the fake.
        enforce_default_permissions: model Discord hiding the command when the member lacks the
        synced command's ``default_member_permissions`` (raises SlashCommandUnavailable).
        dm: send it from the bot's DM with ``author_id`` instead (any known user, member or not;
        see :meth:`_dm_interaction_base` for the payload shape). Only global commands exist there;
        channel_id/permissions/guild_command=True do not apply. With enforce_default_permissions,
        a synced command whose ``contexts`` (or, without them, ``dm_permission``) exclude the bot
        DM raises SlashCommandUnavailable; ``default_member_permissions`` is not modelled in DMs.
        """
        await self._wait_connected()
        if dm:
            if channel_id is not None or permissions is not None or guild_command:
                raise ValueError("channel_id, permissions and guild_command=True do not apply to a DM slash command")
            iid, token, cid, payload = self._dm_interaction_base(2, author_id, locale)
            record, is_guild = self._command_record(name, False)
        else:
            cid = channel_id or self.channel_id
            iid, token, payload = self._interaction_base(2, author_id, cid, permissions, locale)
            record, is_guild = self._command_record(name, guild_command)
        if enforce_default_permissions and dm:
            if record is None:
                raise SlashCommandUnavailable(f"/{name} was never synced globally to the fake, so Discord would not show it in DMs")
            if not self._usable_in_dm(record):
                raise SlashCommandUnavailable(f"/{name} is not available in DMs (contexts={record.get('contexts')!r})")
        elif enforce_default_permissions:
            if record is None:
                raise SlashCommandUnavailable(f"/{name} was never synced to the fake, so Discord would not show it")
            required = record.get("default_member_permissions")
            perms = int(payload["member"]["permissions"])
            if required is not None and (perms & int(required)) != int(required) and not perms & PERM_ADMINISTRATOR:
                raise SlashCommandUnavailable(f"/{name} needs permissions {required}; member has {perms}")
        if record is not None:
            cmd_id = int(record["id"])
        else:
            cmd_id = self._command_ids.setdefault(name, self.new_snowflake())
        resolved: dict[str, dict[str, Any]] = {}
        opts = [self._option_json(k, v, resolved) for k, v in (options or {}).items()]
        if subcommand:
            parts = subcommand.split()
            if len(parts) == 1:
                opts = [{"name": parts[0], "type": 1, "options": opts}]
            elif len(parts) == 2:
                opts = [{"name": parts[0], "type": 2, "options": [{"name": parts[1], "type": 1, "options": opts}]}]
            else:
                raise ValueError("subcommand must be 'sub' or 'group sub'")
        data: dict[str, Any] = {"id": str(cmd_id), "name": name, "type": 1}
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        if is_guild:
            data["guild_id"] = str(self.guild_id)
        payload["data"] = data
        self.interactions[token] = FakeInteraction(iid, token, 2, cid, author_id, name, payload)
        if dm:
            await self.dispatch_dm("INTERACTION_CREATE", payload)
        else:
            await self.dispatch("INTERACTION_CREATE", payload)
        return token

    async def send_component(
        self,
        author_id: int,
        message_id: int,
        custom_id: str,
        *,
        component_type: int = 2,
        values: list[str] | None = None,
    ) -> str:
        """Dispatch a component interaction (button=2, select=3...) on a stored message; returns token."""
        await self._wait_connected()
        msg = self.messages[message_id]
        cid = int(msg["channel_id"])
        dm = self.is_dm_channel(cid)
        if dm:
            if self.dm_channels[cid] != author_id:
                raise ValueError(f"{author_id} cannot click a component in another user's DM with the bot")
            iid, token, cid, payload = self._dm_interaction_base(3, author_id, "en-US")
        else:
            iid, token, payload = self._interaction_base(3, author_id, cid, None, "en-US")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        payload["data"] = data
        payload["message"] = msg
        self.interactions[token] = FakeInteraction(iid, token, 3, cid, author_id, custom_id, payload, source_message_id=message_id)
        if dm:
            await self.dispatch_dm("INTERACTION_CREATE", payload)
        else:
            await self.dispatch("INTERACTION_CREATE", payload)
        return token

    # ------------------------------------------------------------------ REST plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path == "/gateway" or request.path.startswith("/attachments/"):
            return await handler(request)
        body: Any = None
        files: list[RecordedFile] = []
        ctype = request.content_type
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part is None:
                    break
                raw = await part.read(decode=True)  # type: ignore[union-attr]
                if part.name == "payload_json":  # type: ignore[union-attr]
                    body = json.loads(raw)
                else:
                    files.append(RecordedFile(part.name or "", part.filename, part.headers.get("Content-Type"), bytes(raw)))  # type: ignore[union-attr]
        elif request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
        ctx = request[_CTX] = _ReqCtx(path=request.path, json=body, files=files)
        resp = await handler(request)
        rec = RecordedRequest(
            method=request.method,
            path=ctx.path,
            json=body,
            timestamp=time.time(),
            query=dict(request.query),
            files=files,
            kind=ctx.kind,
            status=resp.status,
            response=getattr(resp, "fake_payload", None),
            channel_id=ctx.channel_id,
            token=ctx.token,
            message=ctx.message,
        )
        if self.ratelimit_headers and ctx.bucket:
            # Never exhausted: lets discord.py run requests concurrently without sleeping.
            resp.headers["X-RateLimit-Limit"] = "50"
            resp.headers["X-RateLimit-Remaining"] = "49"
            resp.headers["X-RateLimit-Reset"] = f"{time.time() + 1:.3f}"
            resp.headers["X-RateLimit-Reset-After"] = "1.000"
            resp.headers["X-RateLimit-Bucket"] = request[_CTX].bucket
        await self._record(rec)
        return resp

    def _route_table(self) -> list[tuple[str, re.Pattern[str], str, Callable[..., Awaitable[web.StreamResponse]]]]:
        S = r"(?P<{}>\d+)"
        table: list[tuple[str, str, str, Callable[..., Awaitable[web.StreamResponse]]]] = [
            ("GET", r"/users/@me", "user.me", self._get_me),
            ("GET", rf"/users/{S.format('user_id')}", "user.get", self._get_user),
            ("POST", r"/users/@me/channels", "dm.create", self._post_dm_channel),
            ("GET", r"/gateway", "gateway.get", self._get_gateway),
            ("GET", r"/gateway/bot", "gateway.bot", self._get_gateway_bot),
            ("GET", r"/oauth2/applications/@me", "application.get", self._get_application),
            ("GET", r"/applications/@me", "application.get", self._get_application),
            ("PATCH", r"/applications/@me", "application.edit", self._patch_application),
            ("GET", rf"/applications/{S.format('app_id')}/emojis", "application.emojis", self._empty_items),
            ("GET", rf"/applications/{S.format('app_id')}/commands", "commands.get", self._get_commands),
            ("PUT", rf"/applications/{S.format('app_id')}/commands", "commands.sync", self._put_commands),
            ("POST", rf"/applications/{S.format('app_id')}/commands", "commands.upsert", self._post_command),
            ("GET", rf"/applications/{S.format('app_id')}/commands/{S.format('cmd_id')}", "commands.get_one", self._get_command),
            ("PATCH", rf"/applications/{S.format('app_id')}/commands/{S.format('cmd_id')}", "commands.edit", self._patch_command),
            ("DELETE", rf"/applications/{S.format('app_id')}/commands/{S.format('cmd_id')}", "commands.delete", self._delete_command),
            ("GET", rf"/applications/{S.format('app_id')}/guilds/{S.format('guild_id')}/commands/permissions", "commands.permissions", self._empty_list),
            ("GET", rf"/applications/{S.format('app_id')}/guilds/{S.format('guild_id')}/commands", "commands.get", self._get_commands),
            ("PUT", rf"/applications/{S.format('app_id')}/guilds/{S.format('guild_id')}/commands", "commands.sync", self._put_commands),
            ("POST", rf"/applications/{S.format('app_id')}/guilds/{S.format('guild_id')}/commands", "commands.upsert", self._post_command),
            ("GET", rf"/applications/{S.format('app_id')}/guilds/{S.format('guild_id')}/commands/{S.format('cmd_id')}", "commands.get_one", self._get_command),
            ("PATCH", rf"/applications/{S.format('app_id')}/guilds/{S.format('guild_id')}/commands/{S.format('cmd_id')}", "commands.edit", self._patch_command),
            ("DELETE", rf"/applications/{S.format('app_id')}/guilds/{S.format('guild_id')}/commands/{S.format('cmd_id')}", "commands.delete", self._delete_command),
            ("GET", rf"/guilds/{S.format('guild_id')}", "guild.get", self._get_guild),
            ("GET", rf"/guilds/{S.format('guild_id')}/channels", "guild.channels", self._get_guild_channels),
            ("GET", rf"/guilds/{S.format('guild_id')}/roles", "guild.roles", self._get_guild_roles),
            ("GET", rf"/guilds/{S.format('guild_id')}/members/{S.format('user_id')}", "guild.member", self._get_guild_member),
            ("GET", rf"/channels/{S.format('channel_id')}", "channel.get", self._get_channel),
            ("POST", rf"/channels/{S.format('channel_id')}/typing", "typing", self._post_typing),
            ("GET", rf"/channels/{S.format('channel_id')}/messages", "message.list", self._list_messages),
            ("POST", rf"/channels/{S.format('channel_id')}/messages", "message.create", self._post_message),
            ("GET", rf"/channels/{S.format('channel_id')}/messages/{S.format('message_id')}", "message.get", self._get_message),
            ("PATCH", rf"/channels/{S.format('channel_id')}/messages/{S.format('message_id')}", "message.edit", self._patch_message),
            ("DELETE", rf"/channels/{S.format('channel_id')}/messages/{S.format('message_id')}", "message.delete", self._delete_message),
            ("PUT", rf"/channels/{S.format('channel_id')}/messages/{S.format('message_id')}/reactions/(?P<emoji>[^/]+)/@me", "reaction.add", self._reaction),
            ("DELETE", rf"/channels/{S.format('channel_id')}/messages/{S.format('message_id')}/reactions/(?P<emoji>[^/]+)/@me", "reaction.remove", self._reaction),
            ("POST", rf"/interactions/{S.format('interaction_id')}/(?P<token>[^/]+)/callback", "interaction.callback", self._interaction_callback),
            ("POST", rf"/webhooks/{S.format('webhook_id')}/(?P<token>[^/]+)", "followup.create", self._webhook_execute),
            ("GET", rf"/webhooks/{S.format('webhook_id')}/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)", "webhook.get", self._webhook_get),
            ("PATCH", rf"/webhooks/{S.format('webhook_id')}/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)", "webhook.edit", self._webhook_edit),
            ("DELETE", rf"/webhooks/{S.format('webhook_id')}/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)", "webhook.delete", self._webhook_delete),
        ]
        return [(m, re.compile(p + r"/?"), kind, h) for m, p, kind, h in table]

    _NO_AUTH_KINDS = frozenset({"interaction.callback", "followup.create", "webhook.get", "webhook.edit", "webhook.delete"})

    async def _dispatch_rest(self, request: web.Request) -> web.StreamResponse:
        prefix = f"/api/v{API_VERSION}"
        path = request.path[len(prefix):] if request.path.startswith(prefix + "/") else request.path
        request[_CTX].path = path
        if not request.path.startswith(prefix + "/"):
            return _error(404, 0, "404: Not Found")
        for method, pattern, kind, handler in self._routes:
            m = pattern.fullmatch(path)
            if m is None or method != request.method:
                continue
            request[_CTX].kind = kind
            request[_CTX].bucket = format(zlib.crc32(f"{method} {pattern.pattern}".encode()), "08x")
            if "token" in m.groupdict():
                request[_CTX].token = m.group("token")
            if kind not in self._NO_AUTH_KINDS:
                auth = request.headers.get("Authorization", "")
                if not auth.startswith("Bot ") or (self.token is not None and auth != f"Bot {self.token}"):
                    return _error(401, 0, "401: Unauthorized")
            for inj in self.injected_errors:
                if inj["times"] > 0 and inj["method"] == request.method and inj["path"].search(path):
                    inj["times"] -= 1
                    return _error_payload(inj["status"], inj["body"], inj["headers"])
            return await handler(request, **{k: v for k, v in m.groupdict().items()})
        request[_CTX].kind = "unknown"
        _log.warning("fake discord: unhandled %s %s", request.method, path)
        return _error(404, 0, "404: Not Found")

    async def _get_attachment(self, request: web.Request) -> web.StreamResponse:
        data = self.attachments.get(int(request.match_info["aid"]))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data)

    # ------------------------------------------------------------------ REST handlers: misc

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json({**self.user_json(self.bot_user_id), "verified": True, "mfa_enabled": False, "flags": 0})

    async def _get_user(self, request: web.Request, user_id: str) -> web.Response:
        if int(user_id) not in self.users:
            return _error(404, 10013, "Unknown User")
        return _json(self.user_json(int(user_id)))

    async def _post_dm_channel(self, request: web.Request) -> web.Response:
        """``POST /users/@me/channels`` (discord.py's ``User.create_dm``): open or return the DM channel."""
        body = request[_CTX].json or {}
        rid = body.get("recipient_id")
        try:
            uid = int(rid)
        except (TypeError, ValueError):
            uid = None
        if uid is None:
            return self._form_error({"recipient_id": {"_errors": [{"code": "NUMBER_TYPE_COERCE", "message": f"Value \"{rid}\" is not snowflake."}]}})
        if uid not in self.users or uid == self.bot_user_id:
            return _error(400, 50033, "Invalid Recipient(s)")
        cid = self.dm_channel_id(uid)
        request[_CTX].channel_id = cid
        return _json(self.dm_channel_json(cid))

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return _json(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            }
        )

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json(self.application_json())

    async def _patch_application(self, request: web.Request) -> web.Response:
        return _json({**self.application_json(), **(request[_CTX].json or {})})

    async def _empty_items(self, request: web.Request, **_: str) -> web.Response:
        return _json({"items": []})

    async def _empty_list(self, request: web.Request, **_: str) -> web.Response:
        return _json([])

    async def _get_guild(self, request: web.Request, guild_id: str) -> web.Response:
        if int(guild_id) != self.guild_id:
            return _error(404, 10004, "Unknown Guild")
        g = self.guild_json()
        for key in ("channels", "members", "threads", "presences", "voice_states", "joined_at", "large", "member_count"):
            g.pop(key, None)
        return _json(g)

    async def _get_guild_channels(self, request: web.Request, guild_id: str) -> web.Response:
        return _json([c.to_json(self.guild_id) for c in self.channels.values()])

    async def _get_guild_roles(self, request: web.Request, guild_id: str) -> web.Response:
        return _json([r.to_json() for r in self.roles.values()])

    async def _get_guild_member(self, request: web.Request, guild_id: str, user_id: str) -> web.Response:
        member = self.members.get(int(user_id))
        if member is None:
            return _error(404, 10007, "Unknown Member")
        return _json(member.to_json())

    async def _get_channel(self, request: web.Request, channel_id: str) -> web.Response:
        if self.is_dm_channel(int(channel_id)):
            return _json(self.dm_channel_json(int(channel_id)))
        ch = self.channels.get(int(channel_id))
        if ch is None:
            return _error(404, 10003, "Unknown Channel")
        return _json(ch.to_json(self.guild_id))

    async def _post_typing(self, request: web.Request, channel_id: str) -> web.Response:
        request[_CTX].channel_id = int(channel_id)
        if not self._channel_exists(int(channel_id)):
            return _error(404, 10003, "Unknown Channel")
        return web.Response(status=204)

    async def _reaction(self, request: web.Request, channel_id: str, message_id: str, emoji: str) -> web.Response:
        request[_CTX].channel_id = int(channel_id)
        if int(message_id) not in self.messages:
            return _error(404, 10008, "Unknown Message")
        return web.Response(status=204)

    # ------------------------------------------------------------------ REST handlers: commands

    def _command_store(self, guild_id: str | None) -> list[dict[str, Any]]:
        if guild_id is None:
            return self.global_commands
        return self.guild_commands.setdefault(int(guild_id), [])

    def _command_json(self, item: dict[str, Any], guild_id: str | None, existing: dict[str, Any] | None) -> dict[str, Any]:
        cmd = dict(item)
        cmd["id"] = existing["id"] if existing else str(self.new_snowflake())
        cmd["application_id"] = str(self.application_id)
        cmd["version"] = str(self.new_snowflake())
        cmd.setdefault("type", 1)
        cmd.setdefault("description", "")
        cmd.setdefault("options", [])
        # discord.py sends an int; Discord stores and returns a string (or null).
        perms = cmd.get("default_member_permissions")
        cmd["default_member_permissions"] = None if perms is None else str(perms)
        cmd.setdefault("nsfw", False)
        if guild_id is not None:
            cmd["guild_id"] = guild_id
        return cmd

    async def _get_commands(self, request: web.Request, app_id: str, guild_id: str | None = None) -> web.Response:
        return _json(self._command_store(guild_id))

    async def _put_commands(self, request: web.Request, app_id: str, guild_id: str | None = None) -> web.Response:
        if int(app_id) != self.application_id:
            return _error(403, 50001, "Missing Access")
        body = request[_CTX].json or []
        store = self._command_store(guild_id)
        old = {(c["name"], c.get("type", 1)): c for c in store}
        new = [self._command_json(item, guild_id, old.get((item["name"], item.get("type", 1)))) for item in body]
        store[:] = new
        return _json(new)

    async def _post_command(self, request: web.Request, app_id: str, guild_id: str | None = None) -> web.Response:
        item = request[_CTX].json or {}
        store = self._command_store(guild_id)
        existing = next((c for c in store if c["name"] == item.get("name") and c.get("type", 1) == item.get("type", 1)), None)
        cmd = self._command_json(item, guild_id, existing)
        if existing is not None:
            store[store.index(existing)] = cmd
            return _json(cmd)
        store.append(cmd)
        return _json(cmd, status=201)

    def _find_command(self, guild_id: str | None, cmd_id: str) -> dict[str, Any] | None:
        return next((c for c in self._command_store(guild_id) if c["id"] == cmd_id), None)

    async def _get_command(self, request: web.Request, app_id: str, cmd_id: str, guild_id: str | None = None) -> web.Response:
        cmd = self._find_command(guild_id, cmd_id)
        return _json(cmd) if cmd else _error(404, 10063, "Unknown application command")

    async def _patch_command(self, request: web.Request, app_id: str, cmd_id: str, guild_id: str | None = None) -> web.Response:
        cmd = self._find_command(guild_id, cmd_id)
        if cmd is None:
            return _error(404, 10063, "Unknown application command")
        cmd.update(request[_CTX].json or {})
        return _json(cmd)

    async def _delete_command(self, request: web.Request, app_id: str, cmd_id: str, guild_id: str | None = None) -> web.Response:
        store = self._command_store(guild_id)
        cmd = self._find_command(guild_id, cmd_id)
        if cmd is None:
            return _error(404, 10063, "Unknown application command")
        store.remove(cmd)
        return web.Response(status=204)

    # ------------------------------------------------------------------ REST handlers: channel messages

    def _channel_message(self, channel_id: str, message_id: str) -> dict[str, Any] | None:
        msg = self.messages.get(int(message_id))
        if msg is None or msg["channel_id"] != channel_id:
            return None
        return msg

    async def _list_messages(self, request: web.Request, channel_id: str) -> web.Response:
        if not self._channel_exists(int(channel_id)):
            return _error(404, 10003, "Unknown Channel")
        limit = int(request.query.get("limit", 50))
        msgs = list(reversed(self.history(int(channel_id))))  # newest first, like Discord
        if "before" in request.query:
            msgs = [m for m in msgs if int(m["id"]) < int(request.query["before"])]
        if "after" in request.query:
            msgs = [m for m in msgs if int(m["id"]) > int(request.query["after"])]
        return _json(msgs[:limit])

    async def _post_message(self, request: web.Request, channel_id: str) -> web.Response:
        cid = int(channel_id)
        request[_CTX].channel_id = cid
        body = request[_CTX].json or {}
        files = request[_CTX].files
        request[_CTX].message = body
        if not self._channel_exists(cid):
            return _error(404, 10003, "Unknown Channel")
        if cid in self.dm_channels and self.users[self.dm_channels[cid]].bot:
            return _error(403, 50007, "Cannot send messages to this user")  # bots cannot DM bots
        if err := self._validate_body(body):
            return err
        if self._is_empty(body, files):
            return _error(400, 50006, "Cannot send an empty message")
        ref = body.get("message_reference")
        if ref and ref.get("message_id") is not None and int(ref["message_id"]) not in self.messages:
            if ref.get("fail_if_not_exists", True):
                return self._form_error(
                    {"message_reference": {"_errors": [{"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}]}}
                )
        msg = self._new_message(channel_id=cid, author_id=self.bot_user_id, body=body, files=files)
        self._echo("MESSAGE_CREATE", msg)
        return _json(msg)

    async def _get_message(self, request: web.Request, channel_id: str, message_id: str) -> web.Response:
        request[_CTX].channel_id = int(channel_id)
        msg = self._channel_message(channel_id, message_id)
        return _json(msg) if msg else _error(404, 10008, "Unknown Message")

    async def _patch_message(self, request: web.Request, channel_id: str, message_id: str) -> web.Response:
        request[_CTX].channel_id = int(channel_id)
        body = request[_CTX].json or {}
        request[_CTX].message = body
        msg = self._channel_message(channel_id, message_id)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        if int(msg["author"]["id"]) != self.bot_user_id and set(body) - {"flags"}:
            return _error(403, 50005, "Cannot edit a message authored by another user")
        return self._apply_edit(msg, body, request[_CTX].files)

    def _apply_edit(self, msg: dict[str, Any], body: dict[str, Any], files: list[RecordedFile]) -> web.Response:
        if err := self._validate_body(body):
            return err
        candidate = json.loads(json.dumps(msg))
        self._edit_message(candidate, body, files)
        if self._is_empty(candidate):
            return _error(400, 50006, "Cannot send an empty message")
        msg.clear()
        msg.update(candidate)
        self._echo("MESSAGE_UPDATE", msg)
        return _json(msg)

    async def _delete_message(self, request: web.Request, channel_id: str, message_id: str) -> web.Response:
        request[_CTX].channel_id = int(channel_id)
        msg = self._channel_message(channel_id, message_id)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        del self.messages[int(message_id)]
        self._echo("MESSAGE_DELETE", msg)
        return web.Response(status=204)

    # ------------------------------------------------------------------ REST handlers: interactions & webhooks

    async def _interaction_callback(self, request: web.Request, interaction_id: str, token: str) -> web.Response:
        inter = self.interactions.get(token)
        if inter is None or inter.id != int(interaction_id):
            return _error(404, 10062, "Unknown interaction")
        request[_CTX].channel_id = inter.channel_id
        body = request[_CTX].json or {}
        files = request[_CTX].files
        ctype = body.get("type")
        data = body.get("data") or {}
        if ctype in (CB_MESSAGE, CB_UPDATE_MESSAGE):
            request[_CTX].message = data
        if inter.response_type is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        is_component = inter.type == 3
        if ctype not in (CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE_MESSAGE, 8, 9, 10, 12) or (
            ctype in (CB_DEFERRED_UPDATE, CB_UPDATE_MESSAGE) and not is_component
        ):
            return self._form_error({"type": {"_errors": [{"code": "INTERACTION_RESPONSE_TYPE_INVALID", "message": "Invalid interaction response type"}]}})
        msg: dict[str, Any] | None = None
        if ctype == CB_MESSAGE:
            if err := self._validate_body(data):
                return err
            if self._is_empty(data, files):
                return _error(400, 50006, "Cannot send an empty message")
            flags = int(data.get("flags") or 0) & FLAG_EPHEMERAL
            msg = self._new_message(
                channel_id=inter.channel_id, author_id=self.bot_user_id, body=data, files=files,
                msg_type=20 if inter.type == 2 else 0, webhook=True, flags=flags,
            )
            inter.original_message_id = int(msg["id"])
            self._echo("MESSAGE_CREATE", msg)
        elif ctype == CB_DEFERRED_MESSAGE:
            flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            msg = self._new_message(
                channel_id=inter.channel_id, author_id=self.bot_user_id, body={}, msg_type=20 if inter.type == 2 else 0,
                webhook=True, flags=flags,
            )
            inter.original_message_id = int(msg["id"])
            inter.loading = True
            inter.ephemeral_defer = bool(flags & FLAG_EPHEMERAL)
        elif ctype in (CB_DEFERRED_UPDATE, CB_UPDATE_MESSAGE):
            inter.original_message_id = inter.source_message_id
            if ctype == CB_UPDATE_MESSAGE and inter.source_message_id in self.messages:
                target = self.messages[inter.source_message_id]
                resp = self._apply_edit(target, data, files)
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

    def _webhook_interaction(self, webhook_id: str, token: str) -> FakeInteraction | None:
        inter = self.interactions.get(token)
        if inter is None or int(webhook_id) != self.application_id or inter.response_type is None:
            return None  # Discord: followups before the initial response -> Unknown Webhook
        return inter

    def _webhook_target(self, inter: FakeInteraction, message_id: str) -> dict[str, Any] | None:
        if message_id == "@original":
            mid = inter.original_message_id
        else:
            mid = int(message_id)
            if mid != inter.original_message_id and mid not in inter.followup_ids:
                return None
        return self.messages.get(mid) if mid is not None else None

    async def _webhook_execute(self, request: web.Request, webhook_id: str, token: str) -> web.Response:
        body = request[_CTX].json or {}
        files = request[_CTX].files
        request[_CTX].message = body
        inter = self._webhook_interaction(webhook_id, token)
        if inter is None:
            return _error(404, 10015, "Unknown Webhook")
        request[_CTX].channel_id = inter.channel_id
        if err := self._validate_body(body):
            return err
        if self._is_empty(body, files):
            return _error(400, 50006, "Cannot send an empty message")
        original = self.messages.get(inter.original_message_id or 0)
        if inter.loading and original is not None:
            # Discord: the first followup after a type-5 deferral replaces the "thinking" message.
            inter.loading = False
            original["flags"] &= ~FLAG_LOADING
            keys = ("content", "embeds", "components", "allowed_mentions")
            self._edit_message(original, {k: body[k] for k in keys if k in body}, files)
            original["edited_timestamp"] = None
            msg = original
            self._echo("MESSAGE_CREATE", msg)
        else:
            flags = int(body.get("flags") or 0) & FLAG_EPHEMERAL
            msg = self._new_message(
                channel_id=inter.channel_id, author_id=self.bot_user_id, body=body, files=files, webhook=True, flags=flags
            )
            inter.followup_ids.append(int(msg["id"]))
            self._echo("MESSAGE_CREATE", msg)
        if request.query.get("wait") in ("1", "true", "True"):
            return _json(msg)
        return web.Response(status=204)

    async def _webhook_get(self, request: web.Request, webhook_id: str, token: str, message_id: str) -> web.Response:
        inter = self._webhook_interaction(webhook_id, token)
        if inter is None:
            return _error(404, 10015, "Unknown Webhook")
        request[_CTX].channel_id = inter.channel_id
        msg = self._webhook_target(inter, message_id)
        return _json(msg) if msg else _error(404, 10008, "Unknown Message")

    async def _webhook_edit(self, request: web.Request, webhook_id: str, token: str, message_id: str) -> web.Response:
        body = request[_CTX].json or {}
        request[_CTX].message = body
        request[_CTX].kind = "original.edit" if message_id == "@original" else "followup.edit"
        inter = self._webhook_interaction(webhook_id, token)
        if inter is None:
            return _error(404, 10015, "Unknown Webhook")
        request[_CTX].channel_id = inter.channel_id
        msg = self._webhook_target(inter, message_id)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        was_loading = bool(msg["flags"] & FLAG_LOADING)
        if was_loading:
            msg["flags"] &= ~FLAG_LOADING
            inter.loading = False
        resp = self._apply_edit(msg, body, request[_CTX].files)
        if resp.status >= 300 and was_loading:
            msg["flags"] |= FLAG_LOADING
            inter.loading = True
        return resp

    async def _webhook_delete(self, request: web.Request, webhook_id: str, token: str, message_id: str) -> web.Response:
        inter = self._webhook_interaction(webhook_id, token)
        if inter is None:
            return _error(404, 10015, "Unknown Webhook")
        request[_CTX].channel_id = inter.channel_id
        msg = self._webhook_target(inter, message_id)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        del self.messages[int(msg["id"])]
        self._echo("MESSAGE_DELETE", msg)
        return web.Response(status=204)


# --------------------------------------------------------------------------- response helpers


def _json(data: Any, status: int = 200) -> web.Response:
    raw = json.dumps(data)
    # Exactly "application/json": discord.py's json_or_text() compares the header verbatim, so
    # aiohttp's default "application/json; charset=utf-8" would hand it a str instead of a dict.
    resp = web.Response(body=raw.encode(), status=status, headers={"Content-Type": "application/json"})
    # Snapshot for the recorder: stored messages keep changing after later edits.
    resp.fake_payload = json.loads(raw)  # type: ignore[attr-defined]
    return resp


def _error(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return _json(body, status=status)


def _error_payload(status: int, body: dict[str, Any], headers: dict[str, str]) -> web.Response:
    resp = _json(body, status=status)
    resp.headers.update(headers)
    return resp


# --------------------------------------------------------------------------- bot helpers


async def wait_until_ready(bot: discord.Client, timeout: float = 10.0) -> None:
    await asyncio.wait_for(bot.wait_until_ready(), timeout)


async def start_bot(
    bot: discord.Client,
    token: str = "fake-token",
    *,
    timeout: float = 10.0,
    guild_ready_timeout: float | None = 0.1,
) -> asyncio.Task[None]:
    """Run ``bot.start(token)`` in a task against the active FakeDiscord and wait for on_ready.

    guild_ready_timeout: discord.py waits this long after the last GUILD_CREATE before firing
    on_ready (default 2 s); we shorten it since the fake sends GUILD_CREATE right after READY.
    Pass None to keep the bot's own setting.
    """
    fake = FakeDiscord._active
    if fake is None:
        raise RuntimeError("start_bot() needs an active `async with FakeDiscord()` (else it would reach real Discord)")
    if guild_ready_timeout is not None:
        bot._connection.guild_ready_timeout = guild_ready_timeout
    task: asyncio.Task[None] = asyncio.create_task(bot.start(token), name=f"fake-discord-bot-{id(bot)}")
    fake._bots.append((bot, task))
    ready = asyncio.create_task(bot.wait_until_ready())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not ready.done():
            ready.cancel()
    if ready in done and not ready.cancelled():
        return task
    if task in done:
        fake._bots.remove((bot, task))
        if not bot.is_closed():
            await bot.close()  # release the HTTP session of a failed login
        exc = task.exception()
        raise RuntimeError(f"bot stopped before becoming ready: {exc!r}") from exc
    await stop_bot(bot, task)
    raise TimeoutError(f"bot did not become ready within {timeout}s")


async def stop_bot(bot: discord.Client, task: asyncio.Task[None] | None = None, timeout: float = 5.0) -> None:
    """Close the bot (gateway close 1000 + HTTP session) and wait for its start() task to end."""
    fake = FakeDiscord._active
    if fake is not None:
        for entry in list(fake._bots):
            if entry[0] is bot:
                task = task or entry[1]
                fake._bots.remove(entry)
    if not bot.is_closed():
        await bot.close()
    if task is not None:
        try:
            await asyncio.wait_for(task, timeout)
        except (asyncio.CancelledError, discord.ConnectionClosed):
            pass
