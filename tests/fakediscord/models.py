"""Wire constants and the data classes of the fake Discord: Discord objects and what the fake records."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import discord

DISCORD_EPOCH_MS = 1420070400000
API_VERSION = 10
API_PREFIX = f"/api/v{API_VERSION}"

# Gateway intents (bit positions from Discord's docs).
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15

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
PERMS_BOT_DM: int = discord.Permissions(attach_files=True, embed_links=True, mention_everyone=True, external_emojis=True).value

# Channel types.
CHANNEL_DM = 1

# Interaction types and context types (``context`` of an interaction).
INTERACTION_COMMAND = 2
INTERACTION_COMPONENT = 3
CONTEXT_GUILD = 0
CONTEXT_BOT_DM = 1

# Application command types (``data.type`` of a command interaction, ``type`` of a synced command).
COMMAND_CHAT_INPUT = 1
COMMAND_USER = 2
COMMAND_MESSAGE = 3

# Message types.
MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_CHAT_INPUT_COMMAND = 20
MESSAGE_CONTEXT_MENU_COMMAND = 23

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12

# Interaction callback types.
CB_MESSAGE = 4
CB_DEFERRED_MESSAGE = 5
CB_DEFERRED_UPDATE = 6
CB_UPDATE_MESSAGE = 7
# Everything Discord accepts as a callback (8 autocomplete, 9 modal, 10 premium, 12 launch activity).
CB_ACCEPTED = frozenset({CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE_MESSAGE, 8, 9, 10, 12})


def iso_time(ms_since_unix: float) -> str:
    return datetime.datetime.fromtimestamp(ms_since_unix / 1000, datetime.UTC).isoformat()


def snowflake_time_ms(snowflake: int) -> int:
    return (snowflake >> 22) + DISCORD_EPOCH_MS


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that holds a guild, as Discord computes it: ``(guild_id >> 22) % shard_count``."""
    return (int(guild_id) >> 22) % shard_count


class WellKnownIds:
    """Fixed, realistic snowflakes of the fake's first guild, so tests can hard-code them."""

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


# --------------------------------------------------------------------------- Discord objects


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


@dataclass
class FakeGuild:
    """A guild: its roles (``@everyone`` has the guild's id), members and text channels."""

    id: int
    name: str
    owner_id: int
    admin_role_id: int  # "Admin" (Manage Server)
    bot_role_id: int  # the bot's managed role
    channel_id: int  # #general, where messages go by default
    other_channel_id: int  # #random
    roles: dict[int, FakeRole] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    # Server Settings → Community → Server Primary Language.
    preferred_locale: str = "en-US"


@dataclass
class FakeInteraction:
    id: int
    token: str
    type: int  # INTERACTION_COMMAND or INTERACTION_COMPONENT
    channel_id: int
    user_id: int
    name: str  # command name or component custom_id
    payload: dict[str, Any]
    response_type: int | None = None
    original_message_id: int | None = None
    loading: bool = False  # a type-5 deferral whose "thinking" message no followup has replaced yet
    followup_ids: list[int] = field(default_factory=list)
    source_message_id: int | None = None  # for component interactions
    # For command interactions sent by ``send_message_command``: COMMAND_MESSAGE (None: a slash command).
    command_type: int | None = None
    target_message_id: int | None = None  # the message a message command was used on


@dataclass(frozen=True)
class Opt:
    """An explicitly typed slash option value, e.g. ``Opt(fake.member_id, 6)`` for a USER option.

    USER (6), CHANNEL (7), ROLE (8) and MENTIONABLE (9) values that name a known object get a
    matching ``resolved`` entry, as Discord sends them.
    """

    value: Any
    type: int


# --------------------------------------------------------------------------- what the fake records


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
    # The rate-limit bucket it counted against (e.g. "message.create:<channel id>"), when enforced.
    bucket: str | None = None
    received_at: float = 0.0  # time.time() when it arrived (``timestamp`` is when it was answered)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def rate_limited(self) -> bool:
        return self.status == 429

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


class RecordedIdentify(NamedTuple):
    """An IDENTIFY the gateway received (accepted, or refused by the identify rate limit).

    An IDENTIFY without ``shard`` is recorded as shard 0 of 1, as Discord counts it.
    """

    at: float  # time.monotonic() when the fake received it
    shard_id: int
    shard_count: int
