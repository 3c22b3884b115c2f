"""What tests hold: ``FakeDiscord`` (the server's lifecycle, users acting on the bot, waiting for
its replies) and ``start_bot`` / ``stop_bot``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Self

import discord
import yarl
from aiohttp import web
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.fakediscord.gateway import Gateway, ShardingConfig
from tests.fakediscord.models import (
    API_PREFIX,
    COMMAND_MESSAGE,
    CONTEXT_BOT_DM,
    CONTEXT_GUILD,
    INTENT_GUILD_MEMBERS,
    INTERACTION_COMMAND,
    INTERACTION_COMPONENT,
    PERM_ADMINISTRATOR,
    PERMS_ALL,
    PERMS_BOT_DM,
    FakeGuild,
    FakeInteraction,
    GatewayFrame,
    Opt,
    RecordedIdentify,
    RecordedRequest,
    WellKnownIds,
    shard_of,
)
from tests.fakediscord.ratelimits import RateLimit
from tests.fakediscord.rest import RequestLog, RestApi
from tests.fakediscord.state import DiscordState

LOCALE = "en-US"  # of every user's client, unless set_user_locale() says otherwise


class SlashCommandUnavailable(Exception):
    """Raised by ``send_slash(..., enforce_default_permissions=True)`` when Discord would hide the command."""


class FakeDiscord(WellKnownIds):
    """Fake Discord REST + gateway on 127.0.0.1.  Use as ``async with FakeDiscord() as fake:``.

    token: if set, REST calls and IDENTIFY must use it (else 401 / close 4004).
    rate_limits: enforce Discord's rate limits from the start (see :meth:`enforce_rate_limits`).

    Sharding, as Discord does it (the defaults keep one unsharded, unlimited connection working):

    shards: the recommended shard count ``GET /gateway/bot`` returns (default 1).
    min_shards: the least shard count Discord accepts (default 1); an IDENTIFY with fewer shards,
        or without ``shard`` when it is over 1, is closed with 4011 Sharding required.
    max_concurrency: identify rate-limit buckets (default 1), reported in ``session_start_limit``;
        an IDENTIFY's bucket is ``shard_id % max_concurrency`` (no ``shard``: shard 0).
    identify_window: seconds in which a bucket accepts one IDENTIFY (Discord: 5.0).
    identify_limit: enforce that limit: a second IDENTIFY in a bucket within the window gets op 9
        Invalid Session (d=false) instead of READY and lands in :attr:`identify_violations`. Default
        (None): enforced iff ``shards``, ``min_shards`` or ``max_concurrency`` is given.
    session_start_limit: ``session_start_limit.total``; each IDENTIFY accepted (not RESUME) lowers
        ``remaining`` by one.
    An IDENTIFY whose shard is invalid (id < 0, id >= count, count < 1) is always closed with 4010.
    """

    _active: ClassVar[FakeDiscord | None] = None

    def __init__(
        self,
        *,
        token: str | None = None,
        rate_limits: bool = False,
        shards: int | None = None,
        min_shards: int | None = None,
        max_concurrency: int | None = None,
        identify_window: float = 5.0,
        identify_limit: bool | None = None,
        session_start_limit: int = 1000,
    ) -> None:
        if identify_limit is None:
            identify_limit = shards is not None or min_shards is not None or max_concurrency is not None
        sharding = ShardingConfig(
            recommended_shards=1 if shards is None else shards,
            min_shards=1 if min_shards is None else min_shards,
            max_concurrency=1 if max_concurrency is None else max_concurrency,
            identify_window=identify_window,
            enforce_identify_limit=identify_limit,
            session_start_total=session_start_limit,
        )
        self.state = DiscordState()
        self.gateway = Gateway(self.state, token=token, sharding=sharding)
        self.log = RequestLog()
        self.rest = RestApi(self.state, self.gateway, self.log, token=token)
        if rate_limits:
            self.enforce_rate_limits()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None
        self._saved: tuple[str, yarl.URL] | None = None
        self._bots: list[tuple[discord.Client, asyncio.Task[None]]] = []  # stopped on exit if a test did not
        # Each user's Discord client language (User Settings → Language), sent as interactions' `locale`.
        self.user_locales: dict[int, str] = {}

    # ------------------------------------------------------------------ what tests read

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.log.requests

    @property
    def messages(self) -> dict[int, dict[str, Any]]:
        """Current state of every message, by id."""
        return self.state.messages

    @property
    def interactions(self) -> dict[str, FakeInteraction]:
        return self.state.interactions

    @property
    def global_commands(self) -> list[dict[str, Any]]:
        return self.state.global_commands

    def last_synced_commands(self, guild_id: int | None = None) -> list[dict[str, Any]] | None:
        """The body of the last ``PUT .../commands`` the fake accepted (as the bot sent it, with its
        localizations), for the guild ``guild_id`` or, with None, the global commands; None when
        none was. A refused sync (400, code 50035) changes nothing: it is in ``requests``."""
        return self.state.synced_payloads.get(guild_id)

    @property
    def dm_channels(self) -> dict[int, int]:
        """DM channel id -> the user the bot talks to there."""
        return self.state.dm_channels

    @property
    def gateway_log(self) -> list[GatewayFrame]:
        return self.gateway.log

    @property
    def gateway_connects(self) -> list[dict[str, str]]:
        """Query parameters of each gateway connection."""
        return self.gateway.connects

    @property
    def connected(self) -> bool:
        """Whether some bot has an identified gateway session open right now."""
        return self.gateway.connected

    @property
    def sharding(self) -> ShardingConfig:
        """The shard count, identify limit and session start limit the fake was configured with."""
        return self.gateway.sharding

    @property
    def identifies(self) -> list[RecordedIdentify]:
        """Every IDENTIFY accepted (answered READY), in order: ``(at, shard_id, shard_count)``, ``at``
        from time.monotonic(); without ``shard`` it is ``(at, 0, 1)``. RESUMEs are not included."""
        return self.gateway.identifies

    @property
    def identify_violations(self) -> list[RecordedIdentify]:
        """Every IDENTIFY refused (op 9) for exceeding the identify rate limit, in order."""
        return self.gateway.identify_violations

    @property
    def session_start_limit(self) -> dict[str, int]:
        """``session_start_limit`` as ``GET /gateway/bot`` returns it now."""
        return self.gateway.session_start_limit()

    @staticmethod
    def shard_of(guild_id: int, shard_count: int) -> int:
        """The shard holding a guild: ``(guild_id >> 22) % shard_count``."""
        return shard_of(guild_id, shard_count)

    @property
    def guilds(self) -> dict[int, FakeGuild]:
        """Every guild, by id; the first (``fake.guild_id``) was there from the start."""
        return self.state.guilds

    def guild(self, guild_id: int | None = None) -> FakeGuild:
        """A guild (default: the first): its ids (``channel_id``, ``admin_role_id``...), members, roles, channels."""
        return self.state.guild(guild_id)

    def guild_json(self, intents: int = 0, guild_id: int | None = None) -> dict[str, Any]:
        return self.state.guild_json(intents, guild_id)

    def rate_limited(self, *, after: int = 0, kind: str | None = None) -> list[RecordedRequest]:
        """Every request answered 429 (by the enforced limits or an injected error), in order."""
        return self.find(lambda r: r.rate_limited, kind=kind, after=after)

    def history(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        """Current state (after edits) of messages in a channel (default: #general), oldest first."""
        return self.state.history(channel_id)

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def __aenter__(self) -> Self:
        if FakeDiscord._active is not None:
            raise RuntimeError("only one FakeDiscord can be active at a time (it patches discord.py globals)")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("GET", "/gateway", self.gateway.handle)
        self.rest.install(app)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None, handle_signals=False)
        await self._runner.setup()
        # Bind the socket ourselves: loopback only, OS-chosen free port.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.port = sock.getsockname()[1]
        self.state.base_url = self.base_url
        self.gateway.url = self.gateway_url
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
            await self.gateway.close()
            if self._runner is not None:
                await self._runner.cleanup()
        finally:
            if self._saved is not None:
                Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved
                self._saved = None
            if self._sock is not None:
                self._sock.close()
            FakeDiscord._active = None

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until a bot (in this process or another) has identified on the gateway."""
        await self.gateway.wait_connected(timeout)

    async def request_reconnect(self, timeout: float = 10.0) -> None:
        """Send op 7 RECONNECT to every connection; discord.py RESUMEs on resume_gateway_url.

        Returns once a RESUMED has been dispatched again.
        """
        await self.gateway.request_reconnect(timeout)

    # ------------------------------------------------------------------ the world

    def add_member(self, username: str, *, roles: Iterable[int] = (), bot: bool = False, guild_id: int | None = None) -> int:
        """Add a member to a guild (default: the first); included in GUILD_CREATE if added before the bot connects."""
        return self.add_members([username], roles=roles, bot=bot, guild_id=guild_id)[0]

    def add_members(
        self, usernames: Iterable[str], *, roles: Iterable[int] = (), bot: bool = False, guild_id: int | None = None
    ) -> list[int]:
        """Add several members at once (e.g. ``[f"user{i}" for i in range(64)]``); returns their ids.

        One scheduled dispatch carries all their GUILD_MEMBER_ADD events (sent only to bots with
        the GUILD_MEMBERS intent, like Discord), so bulk creation stays cheap.
        """
        guild = self.state.guild(guild_id)
        role_ids = list(roles)
        members = [self.state.add_member(name, roles=list(role_ids), bot=bot, guild_id=guild.id) for name in usernames]
        payloads = [{**m.to_json(), "guild_id": str(guild.id)} for m in members]

        async def announce() -> int:
            for payload in payloads:
                await self.gateway.dispatch("GUILD_MEMBER_ADD", payload, intent=INTENT_GUILD_MEMBERS, guild_id=guild.id)
            return len(payloads)

        self.gateway.run_soon(announce())
        return [m.user.id for m in members]

    def add_guild(self, name: str = "Other Guild", *, shard: tuple[int, int] | None = None) -> int:
        """Add a guild (same owner; owner, admin and member as members, with their roles; #general
        and #random) and return its id. A connected bot gets GUILD_CREATE at once, one connecting
        later finds it in READY. Its ids: ``fake.guild(gid).channel_id`` etc.

        shard: ``(shard_id, shard_count)``: pick the id so the guild falls in that shard."""
        guild = self.state.add_guild(name, shard=shard)
        self.gateway.announce_guild(guild.id)
        return guild.id

    def set_user_locale(self, user_id: int, locale: str) -> None:
        """The language of ``user_id``'s Discord client: their interactions carry it as ``locale``."""
        self.user_locales[user_id] = locale

    def set_guild_locale(self, locale: str, guild_id: int | None = None) -> None:
        """Change a guild's "Server Primary Language": a connected bot gets GUILD_UPDATE (Discord
        sends it when a Community server changes it); interactions carry it as ``guild_locale``."""
        guild = self.state.guild(guild_id)
        guild.preferred_locale = locale
        payload = self.state.guild_json(0, guild.id)
        for key in ("members", "channels", "threads", "presences", "voice_states", "member_count", "large"):
            payload.pop(key, None)
        self.gateway.dispatch_soon("GUILD_UPDATE", payload, guild_id=guild.id)

    def delete_message(self, message_id: int) -> None:
        """Delete a message as a moderator would: later edits of it answer 404 Unknown Message (10008)."""
        msg = self.state.delete_message(message_id)
        cid = int(msg["channel_id"])
        data: dict[str, Any] = {"id": msg["id"], "channel_id": msg["channel_id"]}
        guild = self.state.guild_of_channel(cid)
        if guild is None:
            self.gateway.dispatch_dm_soon("MESSAGE_DELETE", data)
        else:
            data["guild_id"] = str(guild.id)
            self.gateway.dispatch_soon("MESSAGE_DELETE", data, guild_id=guild.id)

    def enforce_rate_limits(self, enabled: bool = True, **overrides: RateLimit) -> None:
        """Enforce Discord's rate limits (tests/fakediscord/ratelimits.py) from now on; off by default.

        Per-route buckets per channel (message create, message edit, typing) or per interaction
        token (webhook followups/edits, callbacks), and the global 50 requests/s per bot. A request
        over a limit gets 429 (body and headers as Discord sends them) and is not applied.
        overrides: a bucket's limit by name (message_create, message_edit, typing, webhook,
        interaction_callback, global_), e.g. ``message_edit=RateLimit(2, 5.0)``.
        Every window starts afresh.
        """
        self.rest.limiter.configure(enabled, overrides)

    def add_user(self, username: str, *, bot: bool = False) -> int:
        """Add a user who is *not* a member of the fake guild (e.g. to DM the bot); returns its id."""
        return self.state.add_user(username, bot=bot).id

    def dm_channel_id(self, user_id: int) -> int:
        """The id of the bot's DM channel with ``user_id``, created on first use (no event, like Discord)."""
        return self.state.dm_channel_id(user_id)

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
        self.rest.inject_error(method, path, status, body, times=times, headers=headers)

    # ------------------------------------------------------------------ what the bot sent

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
        try:
            async with asyncio.timeout(timeout):
                async with self.log.changed:
                    while True:
                        found = self.find(predicate, **filters)
                        if found:
                            return found[0]
                        await self.log.changed.wait()
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

    def messages_sent(self, channel_id: int | None = None, *, token: str | None = None) -> list[dict[str, Any]]:
        """JSON bodies of every message the bot successfully posted or edited, in order, on all paths.

        Channel POST/PATCH bodies, interaction callback ``data`` (types 4 and 7) and webhook
        followup/original-response POST/PATCH bodies.  Type-5 deferrals carry no message.
        """
        return [
            r.message
            for r in self.requests
            if r.message is not None
            and r.ok
            and (channel_id is None or r.channel_id == channel_id)
            and (token is None or r.token == token)
        ]

    def embeds_sent(self, channel_id: int | None = None, *, token: str | None = None) -> list[dict[str, Any]]:
        return [e for body in self.messages_sent(channel_id, token=token) for e in body.get("embeds") or []]

    # ------------------------------------------------------------------ users acting on the bot

    async def send_message(
        self,
        author_id: int,
        content: str,
        *,
        channel_id: int | None = None,
        guild_id: int | None = None,
    ) -> int:
        """Dispatch MESSAGE_CREATE from a guild member (as a user typing in a channel); returns its id.

        channel_id: default the #general of guild ``guild_id`` (default: the first guild).
        Without the MESSAGE_CONTENT intent content/embeds are blanked unless the bot is
        mentioned, like Discord does.
        """
        await self.wait_connected()
        cid = self._guild_channel(channel_id, guild_id)
        msg = self.state.new_message(channel_id=cid, author_id=author_id, body=_user_message(content))
        await self.gateway.flush()  # after a GUILD_CREATE just scheduled, like Discord's ordering
        await self.gateway.deliver_user_message(msg)
        return int(msg["id"])

    def _guild_channel(self, channel_id: int | None, guild_id: int | None) -> int:
        """``channel_id``, checked against ``guild_id`` if both are given; else that guild's #general."""
        if channel_id is None:
            return self.state.guild(guild_id).channel_id
        if guild_id is not None:
            guild = self.state.guild_of_channel(channel_id)
            if guild is None or guild.id != guild_id:
                raise ValueError(f"channel {channel_id} is not in guild {guild_id}")
        return channel_id

    async def send_dm(self, author_id: int, content: str) -> int:
        """Dispatch MESSAGE_CREATE for a direct message from ``author_id`` to the bot; returns its id.

        The DM channel (type 1) is created on first use; ``fake.dm_channel_id(author_id)`` names it.
        Like Discord: no ``guild_id``, the author is a plain user (no member data), the event needs
        the DIRECT_MESSAGES intent and arrives on shard 0, and content is delivered even without
        the MESSAGE_CONTENT intent (it does not apply to DMs with the app).
        """
        await self.wait_connected()
        msg = self.state.new_message(channel_id=self.dm_channel_id(author_id), author_id=author_id, body=_user_message(content))
        await self.gateway.deliver_user_dm(msg)
        return int(msg["id"])

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
        dm: bool = False,
        guild_id: int | None = None,
    ) -> str:
        """Dispatch INTERACTION_CREATE for ``/name [subcommand] options...``; returns the interaction token.

        subcommand: "sub" nests options in a SUB_COMMAND (type 1); "group sub" in a
        SUB_COMMAND_GROUP (type 2) holding a SUB_COMMAND.
        permissions: override ``member.permissions`` (default: computed from the member's roles).
        guild_command: put ``data.guild_id`` (a guild-scoped command); default: True iff a guild
        command of that name was synced to the fake.
        enforce_default_permissions: model Discord hiding the command when the member lacks the
        synced command's ``default_member_permissions`` (raises SlashCommandUnavailable).
        guild_id: the guild it comes from (default: the first; channel_id defaults to its #general).
        dm: send it from the bot's DM with ``author_id`` instead (any known user, member or not;
        see :meth:`_dm_interaction` for the payload shape). Only global commands exist there;
        channel_id/permissions/guild_command=True do not apply. With enforce_default_permissions,
        a synced command whose ``contexts`` (or, without them, ``dm_permission``) exclude the bot
        DM raises SlashCommandUnavailable; ``default_member_permissions`` is not modelled in DMs.
        """
        await self.wait_connected()
        await self.gateway.flush()
        guild: FakeGuild | None = None
        if dm:
            if channel_id is not None or permissions is not None or guild_command or guild_id is not None:
                raise ValueError("channel_id, guild_id, permissions and guild_command=True do not apply to a DM slash command")
            iid, token, cid, payload = self._dm_interaction(INTERACTION_COMMAND, author_id)
            record, is_guild = self.state.slash_command(name, False)
        else:
            cid = self._guild_channel(channel_id, guild_id)
            guild = self.state.guild_of_channel(cid)
            assert guild is not None
            iid, token, payload = self._guild_interaction(INTERACTION_COMMAND, author_id, cid, permissions)
            record, is_guild = self.state.slash_command(name, guild_command, guild.id)
        if enforce_default_permissions and dm:
            if record is None:
                raise SlashCommandUnavailable(
                    f"/{name} was never synced globally to the fake, so Discord would not show it in DMs"
                )
            if not _usable_in_dm(record):
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
            cmd_id = self.state.unsynced_command_ids.setdefault(name, self.state.new_snowflake())
        resolved: dict[str, dict[str, Any]] = {}
        opts = [self._option_json(k, v, resolved, guild) for k, v in (options or {}).items()]
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
        if is_guild and guild is not None:
            data["guild_id"] = str(guild.id)
        payload["data"] = data
        self.state.interactions[token] = FakeInteraction(iid, token, INTERACTION_COMMAND, cid, author_id, name, payload)
        if dm:
            await self.gateway.dispatch_dm("INTERACTION_CREATE", payload)
        else:
            await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return token

    async def send_message_command(
        self,
        author_id: int,
        name: str,
        target_message_id: int,
        *,
        permissions: int | None = None,
        guild_command: bool | None = None,
        enforce_default_permissions: bool = False,
    ) -> str:
        """Dispatch INTERACTION_CREATE for the message context-menu command ``name`` (right-click a
        message → Apps → ``name``) used by ``author_id`` on the stored message ``target_message_id``;
        returns the interaction token.

        Shaped like Discord's: interaction ``type`` 2 from the message's channel, ``data`` ``{id,
        name, type: 3, target_id, resolved: {messages: {target_id: message}}}`` (plus ``guild_id``
        for a guild command). The resolved message carries its content whatever the bot's intents
        (MESSAGE_CONTENT does not apply to the target of a message command).

        A message in the bot's DM with ``author_id`` gives a DM interaction (see
        :meth:`_dm_interaction`; only global commands, permissions/guild_command=True do not apply);
        a message in another user's DM raises ValueError. permissions, guild_command and
        enforce_default_permissions are as for :meth:`send_slash`: the command must have been synced
        as a type-3 command, its ``default_member_permissions`` (in a guild) or ``contexts`` /
        ``dm_permission`` (in a DM) allowing it, else SlashCommandUnavailable.
        """
        await self.wait_connected()
        await self.gateway.flush()
        msg = self.state.messages.get(int(target_message_id))
        if msg is None:
            raise KeyError(f"unknown message {target_message_id}")
        cid = int(msg["channel_id"])
        guild = self.state.guild_of_channel(cid)
        if guild is None:
            if self.state.dm_channels.get(cid) != author_id:
                raise ValueError(f"{author_id} cannot see a message in another user's DM with the bot")
            if permissions is not None or guild_command:
                raise ValueError("permissions and guild_command=True do not apply to a DM message command")
            iid, token, cid, payload = self._dm_interaction(INTERACTION_COMMAND, author_id)
            record, is_guild = self.state.context_menu_command(name, COMMAND_MESSAGE, False)
        else:
            iid, token, payload = self._guild_interaction(INTERACTION_COMMAND, author_id, cid, permissions)
            record, is_guild = self.state.context_menu_command(name, COMMAND_MESSAGE, guild_command, guild.id)
        if enforce_default_permissions:
            if record is None:
                raise SlashCommandUnavailable(f"message command {name!r} was never synced to the fake")
            if guild is None and not _usable_in_dm(record):
                raise SlashCommandUnavailable(f"{name!r} is not available in DMs (contexts={record.get('contexts')!r})")
            required = record.get("default_member_permissions")
            if guild is not None and required is not None:
                perms = int(payload["member"]["permissions"])
                if (perms & int(required)) != int(required) and not perms & PERM_ADMINISTRATOR:
                    raise SlashCommandUnavailable(f"{name!r} needs permissions {required}; member has {perms}")
        if record is not None:
            cmd_id = int(record["id"])
        else:
            key = f"{name} (message command)"  # never a chat-input name: those have no spaces
            cmd_id = self.state.unsynced_command_ids.setdefault(key, self.state.new_snowflake())
        data: dict[str, Any] = {
            "id": str(cmd_id),
            "name": name,
            "type": COMMAND_MESSAGE,
            "target_id": msg["id"],
            "resolved": {"messages": {msg["id"]: self.gateway.message_json(msg)}},
        }
        if is_guild and guild is not None:
            data["guild_id"] = str(guild.id)
        payload["data"] = data
        self.state.interactions[token] = FakeInteraction(
            iid,
            token,
            INTERACTION_COMMAND,
            cid,
            author_id,
            name,
            payload,
            command_type=COMMAND_MESSAGE,
            target_message_id=int(msg["id"]),
        )
        if guild is None:
            await self.gateway.dispatch_dm("INTERACTION_CREATE", payload)
        else:
            await self.gateway.dispatch("INTERACTION_CREATE", payload, guild_id=guild.id)
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
        await self.wait_connected()
        msg = self.state.messages[message_id]
        cid = int(msg["channel_id"])
        dm = self.state.is_dm_channel(cid)
        if dm:
            if self.state.dm_channels[cid] != author_id:
                raise ValueError(f"{author_id} cannot click a component in another user's DM with the bot")
            iid, token, cid, payload = self._dm_interaction(INTERACTION_COMPONENT, author_id)
        else:
            iid, token, payload = self._guild_interaction(INTERACTION_COMPONENT, author_id, cid, None)
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        payload["data"] = data
        payload["message"] = msg
        self.state.interactions[token] = FakeInteraction(
            iid, token, INTERACTION_COMPONENT, cid, author_id, custom_id, payload, source_message_id=message_id
        )
        if dm:
            await self.gateway.dispatch_dm("INTERACTION_CREATE", payload)
        else:
            await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return token

    # ------------------------------------------------------------------ interaction payloads

    def _new_token(self) -> tuple[int, str]:
        iid = self.state.new_snowflake()
        return iid, f"fake-interaction-{iid}-{secrets.token_hex(8)}"

    def _guild_interaction(
        self, itype: int, author_id: int, channel_id: int, permissions: int | None
    ) -> tuple[int, str, dict[str, Any]]:
        state = self.state
        guild = state.guild_of_channel(channel_id)
        if guild is None:
            raise KeyError(f"{channel_id} is not a guild channel of the fake")
        member = guild.members.get(author_id)
        if member is None:
            raise KeyError(f"{author_id} is not a member of the fake guild {guild.id}")
        iid, token = self._new_token()
        perms = state.permissions_for(author_id, guild.id) if permissions is None else permissions
        channel = guild.channels[channel_id].to_json(guild.id)
        channel["permissions"] = str(perms)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
            "channel_id": str(channel_id),
            "channel": channel,
            "member": member.to_json(permissions=perms),
            "token": token,
            "version": 1,
            "app_permissions": str(state.permissions_for(self.bot_user_id, guild.id)),
            "locale": self.user_locales.get(author_id, LOCALE),
            "guild_locale": guild.preferred_locale,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": CONTEXT_GUILD,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        return iid, token, payload

    def _dm_interaction(self, itype: int, author_id: int) -> tuple[int, str, int, dict[str, Any]]:
        """An interaction payload from the bot's DM with ``author_id``, shaped like Discord's.

        No ``guild_id``/``guild``/``member``/``guild_locale``; a top-level ``user``; ``channel`` is
        the DM channel (type 1, with recipients); ``context`` 1 (BOT_DM); and, for a guild-installed
        app used in its bot DM, ``authorizing_integration_owners`` ``{"0": "0"}``.
        """
        cid = self.state.dm_channel_id(author_id)
        iid, token = self._new_token()
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "channel_id": str(cid),
            "channel": self.state.dm_channel_json(cid),
            "user": self.state.user_json(author_id),
            "token": token,
            "version": 1,
            "app_permissions": str(PERMS_BOT_DM),
            "locale": self.user_locales.get(author_id, LOCALE),
            "entitlements": [],
            "authorizing_integration_owners": {"0": "0"},
            "context": CONTEXT_BOT_DM,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        return iid, token, cid, payload

    def _option_json(
        self, name: str, value: Any, resolved: dict[str, dict[str, Any]], guild: FakeGuild | None = None
    ) -> dict[str, Any]:
        """A slash option, its type inferred from the Python value unless given by ``Opt``.

        guild: where the command was used (members and roles resolve there); None in a DM.
        """
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
        if otype in (6, 7, 8, 9):  # USER, CHANNEL, ROLE, MENTIONABLE: a snowflake, plus `resolved`
            state = self.state
            sid = int(v)
            channel_guild = state.guild_of_channel(sid)
            if sid in state.users and otype in (6, 9):
                resolved.setdefault("users", {})[str(sid)] = state.user_json(sid)
                if guild is not None and sid in guild.members:
                    resolved.setdefault("members", {})[str(sid)] = guild.members[sid].to_json(
                        with_user=False, permissions=state.permissions_for(sid, guild.id)
                    )
            elif guild is not None and sid in guild.roles and otype in (8, 9):
                resolved.setdefault("roles", {})[str(sid)] = guild.roles[sid].to_json()
            elif channel_guild is not None and otype == 7:
                ch = channel_guild.channels[sid].to_json(channel_guild.id)
                ch["permissions"] = str(PERMS_ALL)
                resolved.setdefault("channels", {})[str(sid)] = ch
            v = str(sid)
        return {"name": name, "type": otype, "value": v}


def _user_message(content: str) -> dict[str, Any]:
    """The create-message body of what a user typed."""
    return {"content": content, "embeds": []}


def _usable_in_dm(record: dict[str, Any]) -> bool:
    contexts = record.get("contexts")
    if contexts is not None:
        return CONTEXT_BOT_DM in contexts
    return record.get("dm_permission", True) is not False


# --------------------------------------------------------------------------- bot helpers


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
