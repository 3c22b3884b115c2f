"""What the fake Discord stores: its guilds, users, DM channels, messages, commands and interactions.

Nothing here speaks HTTP or websocket; REST handlers, the gateway and the test driver all read
and change this one object, and build their JSON payloads from it.
"""

from __future__ import annotations

import re
import time
from typing import Any

from tests.fakediscord.models import (
    CHANNEL_DM,
    DISCORD_EPOCH_MS,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    INTENT_GUILD_MEMBERS,
    MESSAGE_DEFAULT,
    MESSAGE_REPLY,
    PERM_ADMINISTRATOR,
    PERM_MANAGE_GUILD,
    PERMS_ALL,
    PERMS_EVERYONE,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeRole,
    FakeUser,
    RecordedFile,
    WellKnownIds,
    iso_time,
    shard_of,
    snowflake_time_ms,
)

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


class DiscordState(WellKnownIds):
    """Guilds (the first with well-known ids; each: owner, admin, member, the bot; two channels),
    DMs with the bot, and the bot's application."""

    def __init__(self) -> None:
        self.users: dict[int, FakeUser] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self._channel_guild: dict[int, int] = {}  # guild channel id -> its guild's id
        # The first guild's members, roles and channels (the same dicts as in self.guilds).
        self.members: dict[int, FakeMember] = {}
        self.roles: dict[int, FakeRole] = {}
        self.channels: dict[int, FakeChannel] = {}
        # Direct-message channels with the bot: channel id -> recipient user id (and back).
        self.dm_channels: dict[int, int] = {}
        self._dm_by_user: dict[int, int] = {}
        self.messages: dict[int, dict[str, Any]] = {}  # current state of every message, by id
        self.attachments: dict[int, bytes] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        # The body of the last sync Discord accepted, per scope (None: the global commands).
        self.synced_payloads: dict[int | None, list[dict[str, Any]]] = {}
        self.interactions: dict[str, FakeInteraction] = {}  # by token
        self.unsynced_command_ids: dict[str, int] = {}  # stable ids for commands never synced to the fake
        self.base_url = ""  # http://127.0.0.1:PORT once the server listens; attachment URLs use it
        self._last_snowflake = 0
        self._build_guild()

    def _build_guild(self) -> None:
        bot = FakeUser(self.bot_user_id, "FakeBot", None, bot=True)
        owner = FakeUser(self.owner_id, "owner", "Guild Owner")
        admin = FakeUser(self.admin_id, "admin", "Admin Person")
        member = FakeUser(self.member_id, "member", "Plain Member")
        for u in (bot, owner, admin, member):
            self.users[u.id] = u
        self._populate(
            FakeGuild(
                self.guild_id,
                "Fake Guild",
                self.owner_id,
                self.admin_role_id,
                self.bot_role_id,
                self.channel_id,
                self.other_channel_id,
                roles=self.roles,
                members=self.members,
                channels=self.channels,
            )
        )

    def _populate(self, guild: FakeGuild) -> FakeGuild:
        """Give ``guild`` the standard roles, the well-known users as members, and #general/#random."""
        guild.roles[guild.id] = FakeRole(guild.id, "@everyone", PERMS_EVERYONE, position=0)
        guild.roles[guild.admin_role_id] = FakeRole(guild.admin_role_id, "Admin", PERM_MANAGE_GUILD, position=1)
        guild.roles[guild.bot_role_id] = FakeRole(guild.bot_role_id, "FakeBot", PERMS_EVERYONE, position=2, managed=True)
        guild.members[self.bot_user_id] = FakeMember(self.users[self.bot_user_id], [guild.bot_role_id])
        guild.members[self.owner_id] = FakeMember(self.users[self.owner_id], [])
        guild.members[self.admin_id] = FakeMember(self.users[self.admin_id], [guild.admin_role_id])
        guild.members[self.member_id] = FakeMember(self.users[self.member_id], [])
        guild.channels[guild.channel_id] = FakeChannel(guild.channel_id, "general", 0, topic="General chat")
        guild.channels[guild.other_channel_id] = FakeChannel(guild.other_channel_id, "random", 1)
        self.guilds[guild.id] = guild
        for cid in guild.channels:
            self._channel_guild[cid] = guild.id
        return guild

    def add_guild(self, name: str, *, shard: tuple[int, int] | None = None) -> FakeGuild:
        """Another guild, owned by the same owner, with the well-known users as members.

        shard: ``(shard_id, shard_count)`` the guild's id must fall in, ``(id >> 22) % count == shard_id``.
        """
        gid = self.new_snowflake() if shard is None else self.new_snowflake_in_shard(*shard)
        ids = [self.new_snowflake() for _ in range(4)]
        return self._populate(FakeGuild(gid, name, self.owner_id, ids[0], ids[1], ids[2], ids[3]))

    def guild(self, guild_id: int | None = None) -> FakeGuild:
        """The guild ``guild_id`` (default: the first one)."""
        gid = self.guild_id if guild_id is None else int(guild_id)
        try:
            return self.guilds[gid]
        except KeyError:
            raise KeyError(f"unknown guild {gid}; use fake.add_guild() first") from None

    def guild_of_channel(self, channel_id: int) -> FakeGuild | None:
        """The guild a channel belongs to; None for DM channels and unknown ids."""
        gid = self._channel_guild.get(int(channel_id))
        return None if gid is None else self.guilds[gid]

    def new_snowflake(self) -> int:
        """Time-based, strictly increasing snowflake (interaction expiry is computed from it)."""
        sf = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        sf = max(sf, self._last_snowflake + 1)
        self._last_snowflake = sf
        return sf

    def new_snowflake_in_shard(self, shard_id: int, shard_count: int) -> int:
        """The next snowflake whose shard is ``shard_id`` of ``shard_count`` (its timestamp moves on by
        under ``shard_count`` ms)."""
        if not 0 <= shard_id < shard_count:
            raise ValueError(f"shard {shard_id} is not one of 0..{shard_count - 1}")
        sf = self.new_snowflake()
        if shard_of(sf, shard_count) != shard_id:
            ms = sf >> 22
            sf = (ms + (shard_id - ms) % shard_count) << 22  # a later ms, so still above every earlier id
        self._last_snowflake = sf
        return sf

    # ------------------------------------------------------------------ users, members, channels

    def add_user(self, username: str, *, bot: bool = False) -> FakeUser:
        user = FakeUser(self.new_snowflake(), username, username.title(), bot=bot)
        self.users[user.id] = user
        return user

    def add_member(self, username: str, *, roles: list[int], bot: bool = False, guild_id: int | None = None) -> FakeMember:
        member = FakeMember(self.add_user(username, bot=bot), roles)
        self.guild(guild_id).members[member.user.id] = member
        return member

    def is_dm_channel(self, channel_id: int | None) -> bool:
        return channel_id is not None and int(channel_id) in self.dm_channels

    def channel_exists(self, channel_id: int) -> bool:
        return channel_id in self._channel_guild or channel_id in self.dm_channels

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

    def permissions_for(self, user_id: int, guild_id: int | None = None) -> int:
        """Guild-level permissions (no channel overwrites are modelled): owner/admin -> all."""
        guild = self.guild(guild_id)
        if user_id == guild.owner_id:
            return PERMS_ALL
        member = guild.members.get(user_id)
        perms = guild.roles[guild.id].permissions
        if member is not None:
            for rid in member.roles:
                role = guild.roles.get(rid)
                if role is not None:
                    perms |= role.permissions
        if perms & PERM_ADMINISTRATOR:
            return PERMS_ALL
        return perms

    # ------------------------------------------------------------------ JSON payloads

    def user_json(self, user_id: int) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None:
            raise KeyError(f"unknown user {user_id}; use fake.add_member() first")
        return user.to_json()

    def bot_user_json(self) -> dict[str, Any]:
        """The bot's own user, as ``GET /users/@me`` and READY carry it."""
        return {**self.user_json(self.bot_user_id), "verified": True, "mfa_enabled": False, "flags": 0}

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

    def guild_json(self, intents: int = 0, guild_id: int | None = None) -> dict[str, Any]:
        """GUILD_CREATE payload.  Other members only appear with the GUILD_MEMBERS intent, like Discord."""
        guild = self.guild(guild_id)
        members = [m.to_json() for uid, m in guild.members.items() if uid == self.bot_user_id or intents & INTENT_GUILD_MEMBERS]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": guild.preferred_locale,
            "system_channel_id": str(guild.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "roles": [r.to_json() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "channels": [c.to_json() for c in guild.channels.values()],
            "threads": [],
            "members": members,
            "member_count": len(guild.members),
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

    # GATEWAY_MESSAGE_CONTENT_LIMITED | APPLICATION_COMMAND_BADGE
    application_flags = (1 << 19) | (1 << 23)

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
            "flags": self.application_flags,
            "bot": self.user_json(self.bot_user_id),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": len(self.guilds),
        }

    # ------------------------------------------------------------------ messages

    def history(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        """Current state (after edits) of messages in a channel (default: the first guild's #general), oldest first."""
        cid = str(channel_id or self.channel_id)
        return [m for _, m in sorted(self.messages.items()) if m["channel_id"] == cid]

    def channel_message(self, channel_id: str, message_id: str) -> dict[str, Any] | None:
        msg = self.messages.get(int(message_id))
        if msg is None or msg["channel_id"] != channel_id:
            return None
        return msg

    def _mentions(
        self, content: str, allowed: dict[str, Any] | None, reply_to: dict[str, Any] | None
    ) -> tuple[list[int], list[int], bool]:
        parse = None if allowed is None else set(allowed.get("parse") or [])
        allowed_users = {str(x) for x in (allowed or {}).get("users") or []}
        allowed_roles = {str(x) for x in (allowed or {}).get("roles") or []}
        users: list[int] = []
        for m in _USER_MENTION.finditer(content):
            uid = int(m.group(1))
            pinged = parse is None or "users" in parse or str(uid) in allowed_users
            if uid in self.users and uid not in users and pinged:
                users.append(uid)
        roles: list[int] = []
        for m in _ROLE_MENTION.finditer(content):
            rid = int(m.group(1))
            pinged = parse is None or "roles" in parse or str(rid) in allowed_roles
            if any(rid in g.roles for g in self.guilds.values()) and rid not in roles and pinged:
                roles.append(rid)
        everyone = ("@everyone" in content or "@here" in content) and (parse is None or "everyone" in parse)
        # Without allowed_mentions Discord pings the replied-to author; with it, only if replied_user.
        if reply_to is not None and (allowed is None or allowed.get("replied_user", False)):
            author_id = int(reply_to["author"]["id"])
            if author_id not in users:
                users.append(author_id)
        return users, roles, everyone

    def _mention_json(self, uid: int, guild: FakeGuild | None) -> dict[str, Any]:
        data = self.user_json(uid)
        member = guild.members.get(uid) if guild is not None else None  # DMs carry no member data
        if member is not None:
            data["member"] = member.to_json(with_user=False)
        return data

    def _mentions_json(self, channel_id: int, users: list[int]) -> list[dict[str, Any]]:
        guild = self.guild_of_channel(channel_id)
        return [self._mention_json(u, guild) for u in users]

    def new_message(
        self,
        *,
        channel_id: int,
        author_id: int,
        body: dict[str, Any],
        files: list[RecordedFile] | None = None,
        msg_type: int = MESSAGE_DEFAULT,
        webhook: bool = False,
        flags: int = 0,
    ) -> dict[str, Any]:
        """Store a message built from a create-message ``body`` (mentions resolved, as Discord does)."""
        mid = self.new_snowflake()
        content = body.get("content") or ""
        ref = body.get("message_reference")
        referenced = None
        if ref and ref.get("message_id") is not None:
            referenced = self.messages.get(int(ref["message_id"]))
            if msg_type == MESSAGE_DEFAULT:
                msg_type = MESSAGE_REPLY
        users, roles, everyone = self._mentions(content, body.get("allowed_mentions"), referenced)
        msg: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self.user_json(author_id),
            "content": content,
            "timestamp": iso_time(snowflake_time_ms(mid)),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": everyone,
            "mentions": self._mentions_json(channel_id, users),
            "mention_roles": [str(r) for r in roles],
            "attachments": [],
            "embeds": [_normalize_embed(e) for e in body.get("embeds") or []],
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
            ref_guild = self.guild_of_channel(int(referenced["channel_id"]))
            if ref_guild is not None:
                msg["message_reference"]["guild_id"] = str(ref_guild.id)
            # Discord nests only one level of referenced_message.
            msg["referenced_message"] = {k: v for k, v in referenced.items() if k != "referenced_message"}
        self._add_attachments(msg, files or [])
        self.messages[mid] = msg
        return msg

    def delete_message(self, message_id: int) -> dict[str, Any]:
        """Remove a message (a later edit of it answers 404 Unknown Message); returns what it was."""
        try:
            return self.messages.pop(int(message_id))
        except KeyError:
            raise KeyError(f"unknown message {message_id}") from None

    def edit_message(self, msg: dict[str, Any], body: dict[str, Any], files: list[RecordedFile]) -> None:
        """Apply an edit-message ``body`` to ``msg`` in place (no validation: see rest.py)."""
        if "content" in body:
            msg["content"] = body["content"] or ""
        if "embeds" in body:
            msg["embeds"] = [_normalize_embed(e) for e in body["embeds"] or []]
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
        msg["mentions"] = self._mentions_json(int(msg["channel_id"]), users)
        msg["mention_roles"] = [str(r) for r in roles]
        msg["mention_everyone"] = everyone
        msg["edited_timestamp"] = iso_time(time.time() * 1000)

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

    # ------------------------------------------------------------------ application commands

    def command_store(self, guild_id: str | None) -> list[dict[str, Any]]:
        if guild_id is None:
            return self.global_commands
        return self.guild_commands.setdefault(int(guild_id), [])

    def command_json(self, item: dict[str, Any], guild_id: str | None, existing: dict[str, Any] | None) -> dict[str, Any]:
        """A command as Discord stores it from a sync/upsert ``item`` (keeping ``existing``'s id)."""
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

    def slash_command(
        self, name: str, guild_command: bool | None, guild_id: int | None = None
    ) -> tuple[dict[str, Any] | None, bool]:
        """The synced chat-input command ``name`` (guild ``guild_id``'s or global) and whether it is the guild one.

        guild_command None: the guild command if one of that name was synced, else the global one.
        """
        guild_cmds = self.guild_commands.get(self.guild(guild_id).id, [])
        g = next((c for c in guild_cmds if c["name"] == name and c.get("type", 1) == 1), None)
        glob = next((c for c in self.global_commands if c["name"] == name and c.get("type", 1) == 1), None)
        if guild_command is None:
            guild_command = g is not None
        return (g if guild_command else glob), guild_command

    def context_menu_command(
        self, name: str, command_type: int, guild_command: bool | None, guild_id: int | None = None
    ) -> tuple[dict[str, Any] | None, bool]:
        """Like :meth:`slash_command`, for a synced user (2) or message (3) context-menu command.

        guild_id None with guild_command False: only the global commands are looked at (a DM).
        """
        guild_cmds = self.guild_commands.get(guild_id, []) if guild_id is not None else []
        g = next((c for c in guild_cmds if c["name"] == name and c.get("type", 1) == command_type), None)
        glob = next((c for c in self.global_commands if c["name"] == name and c.get("type", 1) == command_type), None)
        if guild_command is None:
            guild_command = g is not None
        return (g if guild_command else glob), guild_command


def _normalize_embed(embed: dict[str, Any]) -> dict[str, Any]:
    e = dict(embed)
    e.setdefault("type", "rich")
    return e
