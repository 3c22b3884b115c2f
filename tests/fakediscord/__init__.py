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
webhook followups/edits) are modelled, in guilds (one at first, more with ``add_guild``) and in
direct messages with the bot (``send_dm``, ``send_slash(..., dm=True)``, ``POST /users/@me/channels``).
Everything else falls through to a catch-all that records the call and answers 404 like Discord
does, so unexpected calls show up in tests. Discord's rate limits are enforced on request
(``FakeDiscord(rate_limits=True)`` or ``fake.enforce_rate_limits()``; see ``ratelimits``).

Sharding works as on Discord: a connection that IDENTIFYs with ``shard: [id, count]`` gets only the
guilds with ``(guild_id >> 22) % count == id`` (``add_guild(name, shard=(id, count))`` picks such an
id) and their events; DM events go to shard 0. ``FakeDiscord(shards=..., min_shards=...,
max_concurrency=..., identify_window=..., identify_limit=..., session_start_limit=...)`` sets what
``GET /gateway/bot`` recommends and reports, the least shard count accepted (else close 4011), and
the identify rate limit (one IDENTIFY per bucket ``shard_id % max_concurrency`` per window, else
op 9 Invalid Session); an invalid shard closes 4010. ``fake.identifies`` and
``fake.identify_violations`` record what was accepted and refused.

Command syncs (``PUT /applications/{id}/commands`` and the guild variant) are checked as Discord
checks them (``app_commands``: names, descriptions, options, choices and their localizations):
a violation is answered 400 Invalid Form Body (code 50035) with Discord's ``errors`` tree, and
``fake.last_synced_commands(guild_id=None)`` is the body of the last sync accepted.

Modules: ``models`` (wire constants, Discord objects, what is recorded), ``state`` (everything the
fake stores), ``rest`` (the HTTP API), ``ratelimits`` (Discord's buckets), ``app_commands`` (what
a command sync must satisfy), ``gateway`` (the websocket), ``driver`` (``FakeDiscord``,
``start_bot``, ``stop_bot``: what tests use).
"""

from tests.fakediscord.driver import (
    FakeDiscord,
    SlashCommandUnavailable,
    start_bot,
    stop_bot,
)
from tests.fakediscord.models import (
    FakeGuild,
    FakeInteraction,
    GatewayFrame,
    Opt,
    RecordedFile,
    RecordedRequest,
)
from tests.fakediscord.ratelimits import RateLimit

__all__ = [
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "GatewayFrame",
    "Opt",
    "RateLimit",
    "RecordedFile",
    "RecordedRequest",
    "SlashCommandUnavailable",
    "start_bot",
    "stop_bot",
]
