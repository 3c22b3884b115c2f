"""Self-tests for tests/fakediscord/: a real commands.Bot driven through the fake Discord."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.fakediscord import (
    FakeDiscord,
    Opt,
    SlashCommandUnavailable,
    start_bot,
    stop_bot,
)


class ProbeCog(commands.Cog):
    """Throwaway commands exercising each reply path."""

    def __init__(self, bot: ProbeBot) -> None:
        self.bot = bot

    @commands.hybrid_command(name="echo", description="Echo text back")
    async def echo(self, ctx: commands.Context, *, text: str) -> None:
        await ctx.send(text)

    @commands.hybrid_command(name="slow", description="Defer, then answer with an embed")
    async def slow(self, ctx: commands.Context) -> None:
        await ctx.defer()
        msg = await ctx.send(embed=discord.Embed(title="Result", description="done"))
        await msg.edit(embed=discord.Embed(title="Result", description="edited"))

    @commands.hybrid_command(name="add", description="Typed options")
    async def add(self, ctx: commands.Context, a: int, b: float, loud: bool, who: discord.Member) -> None:
        text = f"{a + b} for {who.id}"
        await ctx.send(text.upper() if loud else text)

    @commands.hybrid_group(name="config", description="Server settings", fallback="show")
    @app_commands.default_permissions(manage_guild=True)
    async def config(self, ctx: commands.Context) -> None:
        await ctx.send("config: empty")

    @config.command(name="set", description="Change a setting")
    @commands.has_guild_permissions(manage_guild=True)
    async def config_set(self, ctx: commands.Context, key: str, value: str) -> None:
        self.bot.ran.append(f"set {key}={value}")
        await ctx.send(f"set {key}={value}")


class ProbeBot(commands.Bot):
    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # intents.members stays False
        super().__init__(
            command_prefix="!",
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
        )
        self.command_errors: list[commands.CommandError] = []
        self.ran: list[str] = []

    async def setup_hook(self) -> None:
        await self.add_cog(ProbeCog(self))

    async def on_command_error(self, ctx: commands.Context, error: commands.CommandError) -> None:
        self.command_errors.append(error)
        if isinstance(error, commands.MissingPermissions):
            await ctx.send("You need Manage Server for that.", ephemeral=True)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as f:
        yield f


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[ProbeBot]:
    b = ProbeBot()
    await start_bot(b)
    yield b
    await stop_bot(b)


async def test_login_and_guild_cache(fake: FakeDiscord, bot: ProbeBot) -> None:
    assert bot.user is not None and bot.user.id == fake.bot_user_id
    assert bot.application_id == fake.application_id
    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.owner_id == fake.owner_id
    assert guild.get_channel(fake.channel_id) is not None
    assert guild.get_role(fake.admin_role_id).permissions.manage_guild  # type: ignore[union-attr]
    assert guild.me is not None  # the bot member is always in GUILD_CREATE
    assert guild.get_member(fake.member_id) is None  # no GUILD_MEMBERS intent -> not sent
    # discord.py 2.7.1 asks for zlib-stream; the fake speaks it.
    assert fake.gateway_connects[0]["compress"] == "zlib-stream"
    assert fake.gateway_connects[0]["encoding"] == "json"
    assert [r.path for r in fake.requests[:2]] == ["/users/@me", "/oauth2/applications/@me"]


async def test_prefix_echo(fake: FakeDiscord, bot: ProbeBot) -> None:
    await fake.send_message(fake.member_id, "!echo hi")
    body = await fake.wait_for_message(lambda b: b.get("content") == "hi")
    req = fake.find(kind="message.create")[-1]
    assert req.method == "POST" and req.path == f"/channels/{fake.channel_id}/messages"
    assert req.response["author"]["id"] == str(fake.bot_user_id)
    # (e) bot-level AllowedMentions.none() reaches the wire
    assert body["allowed_mentions"] == {"parse": []}


async def test_allowed_mentions_suppress_pings(fake: FakeDiscord, bot: ProbeBot) -> None:
    await fake.send_message(fake.member_id, f"!echo hello <@{fake.admin_id}> @everyone")
    req = await fake.wait_for(kind="message.create")
    assert req.json["allowed_mentions"] == {"parse": []}
    assert req.response["mentions"] == [] and req.response["mention_everyone"] is False


async def test_slash_echo(fake: FakeDiscord, bot: ProbeBot) -> None:
    token = await fake.send_slash(fake.member_id, "echo", {"text": "hi"})
    req = await fake.wait_for(kind="interaction.callback", token=token)
    assert req.callback_type == 4
    assert req.json["data"]["content"] == "hi"
    assert req.json["data"]["allowed_mentions"] == {"parse": []}
    assert fake.messages_sent(token=token) == [req.json["data"]]
    assert fake.interactions[token].response_type == 4


async def test_slash_option_types(fake: FakeDiscord, bot: ProbeBot) -> None:
    token = await fake.send_slash(fake.owner_id, "add", {"a": 2, "b": 0.5, "loud": True, "who": Opt(fake.member_id, 6)})
    body = await fake.wait_for_message(token=token)
    assert body["content"] == f"2.5 FOR {fake.member_id}"
    opts = fake.interactions[token].payload["data"]["options"]
    assert [o["type"] for o in opts] == [4, 10, 5, 6]


async def test_deferred_followup_with_embed_then_edit(fake: FakeDiscord, bot: ProbeBot) -> None:
    token = await fake.send_slash(fake.member_id, "slow")
    edit = await fake.wait_for(kind="followup.edit", token=token)
    kinds = [(r.kind, r.method) for r in fake.find(token=token)]
    assert kinds == [
        ("interaction.callback", "POST"),
        ("followup.create", "POST"),
        ("followup.edit", "PATCH"),
    ]
    callback, followup, _ = fake.find(token=token)
    assert callback.callback_type == 5
    assert followup.path == f"/webhooks/{fake.application_id}/{token}" and followup.query["wait"] == "1"
    assert followup.json["embeds"][0]["title"] == "Result"
    assert followup.json["embeds"][0]["description"] == "done"
    assert edit.path == f"/webhooks/{fake.application_id}/{token}/messages/{followup.response['id']}"
    assert edit.json["embeds"][0]["description"] == "edited"
    assert [e["description"] for e in fake.embeds_sent(token=token)] == ["done", "edited"]
    # The first followup replaced the "thinking" message: one message, final state edited.
    [final] = [m for m in fake.history() if m["id"] == followup.response["id"]]
    assert final["embeds"][0]["description"] == "edited" and not final["flags"] & 128


async def test_deferred_on_prefix_path_is_plain_channel_post(fake: FakeDiscord, bot: ProbeBot) -> None:
    await fake.send_message(fake.member_id, "!slow")
    edit = await fake.wait_for(kind="message.edit")
    create = fake.find(kind="message.create")[-1]
    assert create.json["embeds"][0]["description"] == "done"
    assert edit.path == f"/channels/{fake.channel_id}/messages/{create.response['id']}"
    assert not fake.find(kind="interaction.callback")


async def test_guarded_subcommand_prefix(fake: FakeDiscord, bot: ProbeBot) -> None:
    await fake.send_message(fake.member_id, "!config set color blue")
    refusal = await fake.wait_for_message(lambda b: "Manage Server" in (b.get("content") or ""))
    assert "flags" not in refusal or not refusal["flags"] & 64  # ephemeral is ignored off-interaction
    assert isinstance(bot.command_errors[-1], commands.MissingPermissions)
    assert bot.ran == []

    mark = fake.mark()
    await fake.send_message(fake.admin_id, "!config set color blue")
    await fake.wait_for_message(lambda b: b.get("content") == "set color=blue", after=mark)
    assert bot.ran == ["set color=blue"]


async def test_guarded_subcommand_slash(fake: FakeDiscord, bot: ProbeBot) -> None:
    token = await fake.send_slash(fake.member_id, "config", {"key": "color", "value": "blue"}, subcommand="set")
    req = await fake.wait_for(kind="interaction.callback", token=token)
    assert req.callback_type == 4 and req.json["data"]["flags"] & 64  # ephemeral refusal
    assert isinstance(bot.command_errors[-1], commands.MissingPermissions)
    assert bot.ran == []
    member_perms = discord.Permissions(int(fake.interactions[token].payload["member"]["permissions"]))
    assert not member_perms.manage_guild

    # has_guild_permissions reads the member's *roles* (Member.guild_permissions), not the
    # interaction's member.permissions (that feeds ctx.permissions / interaction.permissions).
    errors_before = len(bot.command_errors)
    token = await fake.send_slash(
        fake.member_id, "config", {"key": "k", "value": "v"}, subcommand="set", permissions=discord.Permissions.all().value
    )
    await fake.wait_for(kind="interaction.callback", token=token)
    assert isinstance(bot.command_errors[errors_before], commands.MissingPermissions) and bot.ran == []

    token = await fake.send_slash(fake.admin_id, "config", {"key": "color", "value": "blue"}, subcommand="set")
    body = await fake.wait_for_message(token=token)
    assert body["content"] == "set color=blue" and bot.ran == ["set color=blue"]
    options = fake.interactions[token].payload["data"]["options"]
    assert options == [
        {
            "name": "set",
            "type": 1,
            "options": [
                {"name": "key", "type": 3, "value": "color"},
                {"name": "value", "type": 3, "value": "blue"},
            ],
        }
    ]

    token = await fake.send_slash(fake.owner_id, "config", subcommand="show")  # the hybrid fallback
    assert (await fake.wait_for_message(token=token))["content"] == "config: empty"


async def test_sync_and_default_member_permissions(fake: FakeDiscord, bot: ProbeBot) -> None:
    synced = await bot.tree.sync()
    assert {c.name for c in synced} == {"echo", "slow", "add", "config"}
    put = fake.find(method="PUT", path=rf"^/applications/{fake.application_id}/commands$")[0]
    config = next(c for c in put.json if c["name"] == "config")
    assert config["default_member_permissions"] == discord.Permissions(manage_guild=True).value  # int on the wire
    stored = next(c for c in fake.global_commands if c["name"] == "config")
    assert stored["default_member_permissions"] == "32"  # Discord answers with a string
    assert {o["name"] for o in config["options"]} == {"set", "show"}
    assert [c.name for c in await bot.tree.fetch_commands()] == [c.name for c in synced]

    with pytest.raises(SlashCommandUnavailable):
        await fake.send_slash(
            fake.member_id, "config", {"key": "k", "value": "v"}, subcommand="set", enforce_default_permissions=True
        )
    token = await fake.send_slash(
        fake.admin_id, "config", {"key": "k", "value": "v"}, subcommand="set", enforce_default_permissions=True
    )
    assert fake.interactions[token].payload["data"]["id"] == stored["id"] == str(next(c.id for c in synced if c.name == "config"))
    await fake.wait_for_message(token=token)


async def test_unknown_route_and_errors(fake: FakeDiscord, bot: ProbeBot) -> None:
    with pytest.raises(discord.NotFound):
        await bot.http.request(Route("GET", "/nope/{x}", x=1))
    assert fake.find(kind="unknown", path="^/nope/1$")[0].status == 404

    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as info:
        await channel.send("x" * 2001)
    assert info.value.code == 50035 and "content" in str(info.value)

    fake.inject_error("POST", r"/channels/\d+/messages", 403, {"message": "Missing Permissions", "code": 50013})
    with pytest.raises(discord.Forbidden):
        await channel.send("nope")
    fake.inject_error("POST", r"/channels/\d+/messages", 429)
    msg = await channel.send("retried")  # discord.py retries a 429 that has a Via header
    assert msg.content == "retried"


async def test_files_via_multipart(fake: FakeDiscord, bot: ProbeBot) -> None:
    import io

    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    msg = await channel.send("see file", file=discord.File(io.BytesIO(b"hello"), filename="a.txt"))
    req = fake.find(kind="message.create")[-1]
    assert req.json["content"] == "see file" and req.files[0].data == b"hello"
    assert msg.attachments[0].filename == "a.txt"
    assert await msg.attachments[0].read() == b"hello"


async def test_gateway_realism_content_intent_echo_and_resume(fake: FakeDiscord) -> None:
    intents = discord.Intents.default()  # no message_content
    plain = commands.Bot(command_prefix="!", intents=intents)
    seen: list[discord.Message] = []

    async def record(message: discord.Message) -> None:
        seen.append(message)

    plain.add_listener(record, "on_message")
    await start_bot(plain)

    await fake.send_message(fake.member_id, "secret")
    await fake.send_message(fake.member_id, f"<@{fake.bot_user_id}> hi")
    channel = plain.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    own = asyncio.ensure_future(plain.wait_for("message", check=lambda m: m.author == plain.user, timeout=5))
    await channel.send("from the bot")
    assert (await own).content == "from the bot"  # Discord echoes the bot's own messages
    assert [m.content for m in seen[:2]] == ["", f"<@{fake.bot_user_id}> hi"]  # blanked unless mentioned

    await fake.request_reconnect()  # op 7 -> discord.py RESUMEs on resume_gateway_url
    assert len(fake.gateway_connects) == 2 and not plain.is_closed()
    await fake.send_message(fake.member_id, f"<@{fake.bot_user_id}> again")
    await plain.wait_for("message", check=lambda m: m.content.endswith("again"), timeout=5)
    await stop_bot(plain)


async def test_component_button_updates_message(fake: FakeDiscord, bot: ProbeBot) -> None:
    class Press(discord.ui.View):
        @discord.ui.button(label="Press", custom_id="press")
        async def press(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            await interaction.response.edit_message(content="pressed")

    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("press me", view=Press())
    token = await fake.send_component(fake.member_id, sent.id, "press")
    req = await fake.wait_for(kind="interaction.callback", token=token)
    assert req.callback_type == 7 and req.json["data"]["content"] == "pressed"
    assert fake.messages[sent.id]["content"] == "pressed"


async def test_wrong_token_is_a_login_failure() -> None:
    async with FakeDiscord(token="right") as fake:
        b = ProbeBot()
        with pytest.raises(RuntimeError, match="LoginFailure"):
            await start_bot(b, "wrong")
        assert b.is_closed() and fake.requests[0].status == 401


async def test_server_is_loopback_and_patches_are_restored() -> None:
    old = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    async with FakeDiscord() as fake:
        assert Route.BASE.startswith("http://127.0.0.1:")
        assert str(DiscordWebSocket.DEFAULT_GATEWAY).startswith("ws://127.0.0.1:")
        assert fake._sock is not None and fake._sock.getsockname()[0] == "127.0.0.1"
        port = fake.port
        b = ProbeBot()
        await start_bot(b)  # left running on purpose: the fake stops it on exit
    assert old == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    assert b.is_closed()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


# -- several guilds --------------------------------------------------------------------


async def test_several_guilds(fake: FakeDiscord) -> None:
    second = fake.add_guild("Second Guild")  # before the bot connects: in READY and GUILD_CREATE
    b = ProbeBot()
    await start_bot(b)
    try:
        assert {g.id for g in b.guilds} == {fake.guild_id, second}
        g2 = fake.guild(second)
        guild = b.get_guild(second)
        assert guild is not None and guild.name == "Second Guild" and guild.owner_id == fake.owner_id
        assert guild.get_channel(g2.channel_id) is not None and guild.get_channel(fake.channel_id) is None
        assert guild.get_role(g2.admin_role_id) is not None and guild.me is not None

        message_id = await fake.send_message(fake.member_id, "!echo hi there", guild_id=second)
        req = await fake.wait_for(kind="message.create", channel_id=g2.channel_id)
        assert req.json["content"] == "hi there"
        seen = next(f for f in fake.gateway_log if f.t == "MESSAGE_CREATE" and f.d["id"] == str(message_id))
        assert seen.d["guild_id"] == str(second) and seen.d["channel_id"] == str(g2.channel_id)
        with pytest.raises(ValueError, match="not in guild"):
            await fake.send_message(fake.member_id, "!echo x", channel_id=fake.channel_id, guild_id=second)

        # Roles are per guild: the admin has Manage Server through this guild's Admin role.
        token = await fake.send_slash(fake.admin_id, "config", {"key": "k", "value": "v"}, subcommand="set", guild_id=second)
        body = await fake.wait_for_message(token=token)
        assert body["content"] == "set k=v"
        payload = fake.interactions[token].payload
        assert payload["guild_id"] == str(second) and payload["channel_id"] == str(g2.channel_id)
        assert payload["member"]["roles"] == [str(g2.admin_role_id)]

        # Members are per guild, added in bulk.
        users = fake.add_members([f"bulk{i:02d}" for i in range(64)], guild_id=second)
        assert len(set(users)) == 64 and all(u in g2.members and u not in fake.guild().members for u in users)
        await fake.send_message(users[-1], "!echo from a new member", guild_id=second)
        await fake.wait_for_message(lambda m: m.get("content") == "from a new member")

        # A guild added while connected arrives as GUILD_CREATE (on_guild_join).
        joined = asyncio.ensure_future(b.wait_for("guild_join", timeout=5))
        await asyncio.sleep(0)
        third = fake.add_guild("Third Guild")
        assert (await joined).id == third and b.get_guild(third) is not None
        await fake.send_message(fake.member_id, "!echo third", guild_id=third)
        req = await fake.wait_for(kind="message.create", channel_id=fake.guild(third).channel_id)
        assert req.json["content"] == "third"
    finally:
        await stop_bot(b)


# -- rate limits -------------------------------------------------------------------------


async def test_rate_limits_answer_like_discord(fake: FakeDiscord) -> None:
    import aiohttp

    from tests.fakediscord.ratelimits import MESSAGE_CREATE, RateLimit

    assert (MESSAGE_CREATE.limit, MESSAGE_CREATE.per) == (5, 5.0)  # Discord's per-channel limit; shortened below for speed
    fake.enforce_rate_limits(message_create=RateLimit(5, 1.0))
    url = f"{fake.api_base}/channels/{fake.channel_id}/messages"
    async with aiohttp.ClientSession(headers={"Authorization": "Bot x"}) as http:
        answers = []
        for i in range(6):
            async with http.post(url, json={"content": f"m{i}"}) as resp:
                answers.append((resp.status, dict(resp.headers), await resp.json()))
        assert [a[0] for a in answers] == [200] * 5 + [429]
        assert [a[1]["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
        assert {a[1]["X-RateLimit-Limit"] for a in answers} == {"5"}
        assert len({a[1]["X-RateLimit-Bucket"] for a in answers}) == 1
        assert all(0 < float(a[1]["X-RateLimit-Reset-After"]) <= 1.0 for a in answers)
        _, headers, body = answers[-1]
        assert body["message"] == "You are being rate limited." and body["global"] is False
        assert 0 < body["retry_after"] <= 1.0
        assert headers["X-RateLimit-Scope"] == "user" and headers["Retry-After"] == "1" and headers["Via"]
        assert "X-RateLimit-Global" not in headers
        assert [m["content"] for m in fake.history()] == ["m0", "m1", "m2", "m3", "m4"]  # the refused one was not applied
        assert fake.rate_limited() == [fake.requests[-1]]
        assert fake.requests[-1].bucket == f"message_create:{fake.channel_id}"
        # Per channel: another channel has its own bucket.
        async with http.post(f"{fake.api_base}/channels/{fake.other_channel_id}/messages", json={"content": "x"}) as resp:
            assert resp.status == 200 and resp.headers["X-RateLimit-Remaining"] == "4"
        await asyncio.sleep(body["retry_after"])
        async with http.post(url, json={"content": "again"}) as resp:
            assert resp.status == 200 and resp.headers["X-RateLimit-Remaining"] == "4"

        # The global limit: per bot, any route; refused requests use no route bucket.
        fake.enforce_rate_limits(global_=RateLimit(3, 1.0))
        statuses = []
        for _ in range(3):
            async with http.get(f"{fake.api_base}/users/@me") as resp:
                statuses.append(resp.status)
        async with http.post(url, json={"content": "over"}) as resp:
            statuses.append(resp.status)
            body = await resp.json()
            assert resp.headers["X-RateLimit-Global"] == "true" and resp.headers["X-RateLimit-Scope"] == "global"
            assert body["global"] is True and body["retry_after"] > 0 and resp.headers["Via"]
        assert statuses == [200, 200, 200, 429]
        assert fake.history()[-1]["content"] == "again"
        # Still checked before any limit: a missing token is 401.
        async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{fake.api_base}/users/@me") as resp:
            assert resp.status == 401

        fake.enforce_rate_limits(False)
        for _ in range(8):
            async with http.post(url, json={"content": "free"}) as resp:
                assert resp.status == 200 and resp.headers["X-RateLimit-Remaining"] == "49"


async def test_discord_py_waits_out_the_buckets(fake: FakeDiscord, bot: ProbeBot) -> None:
    from tests.fakediscord.ratelimits import RateLimit

    fake.enforce_rate_limits(message_create=RateLimit(3, 1.0), typing=RateLimit(1, 1.0))
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    mark = fake.mark()
    sent = await asyncio.gather(*(channel.send(f"n{i}") for i in range(8)))
    assert sorted(m.content for m in sent) == sorted(f"n{i}" for i in range(8))
    creates = fake.find(kind="message.create", after=mark)
    assert len([r for r in creates if r.ok]) == 8 and len(fake.history()) == 8
    # discord.py read the headers and waited: at most 3 per window, and no 429 at all.
    times = sorted(r.received_at for r in creates if r.ok)
    assert all(sum(1 for u in times if t <= u < t + 0.95) <= 3 for t in times), times
    assert not fake.rate_limited(after=mark)

    # A bucket spent behind discord.py's back: the fake's own 429 is waited out and retried.
    import aiohttp

    mark = fake.mark()
    typing_url = f"{fake.api_base}/channels/{fake.other_channel_id}/typing"
    as_the_bot = {"Authorization": "Bot fake-token"}  # start_bot's token: the same bot, the same buckets
    async with aiohttp.ClientSession(headers=as_the_bot) as http, http.post(typing_url) as resp:
        assert resp.status == 204
    await bot.http.send_typing(fake.other_channel_id)
    typing = fake.find(kind="typing", after=mark)
    assert [r.status for r in typing] == [204, 429, 204]
    assert typing[2].received_at - typing[1].received_at >= typing[1].response["retry_after"] - 0.01

    # Slash: callback, followup and its edit go through the interaction's buckets.
    token = await fake.send_slash(fake.member_id, "slow")
    await fake.wait_for(kind="followup.edit", token=token)
    assert all(r.ok for r in fake.find(token=token))
    assert {r.bucket for r in fake.find(token=token)} == {
        f"interaction_callback:{fake.interactions[token].id}:{token}",
        f"webhook:{fake.application_id}:{token}",
    }


async def test_injected_errors_and_deleted_messages_under_rate_limits(fake: FakeDiscord, bot: ProbeBot) -> None:
    fake.enforce_rate_limits()
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    fake.inject_error("POST", r"/channels/\d+/messages$", 500)
    msg = await channel.send("after a 500")  # discord.py retries 5xx
    assert [r.status for r in fake.find(kind="message.create")] == [500, 200]
    assert [m["content"] for m in fake.history()] == ["after a 500"]

    deleted = asyncio.ensure_future(bot.wait_for("raw_message_delete", timeout=5))
    await asyncio.sleep(0)
    fake.delete_message(msg.id)
    with pytest.raises(discord.NotFound) as info:
        await msg.edit(content="too late")
    assert info.value.code == 10008
    assert not fake.history()
    event = await deleted
    assert event.message_id == msg.id and event.guild_id == fake.guild_id
