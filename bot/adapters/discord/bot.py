"""The discord.py bot: start-up (``setup_hook``), shutdown, and the central error handler."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

import discord
from discord.ext import commands

from bot.adapters.discord.channel_traffic import ChannelPacing, ChannelTyping
from bot.adapters.discord.checks import ShuttingDown
from bot.adapters.discord.cogs import EXTENSIONS
from bot.adapters.discord.context import FillContext
from bot.adapters.discord.error_replies import reply_for_error
from bot.adapters.health import bot_state, run_heartbeat
from bot.inference.types import InferenceBackend
from bot.service.fill_mask_service import FillMaskService
from bot.settings import Settings
from bot.wiring import build_registry, running_service

log = logging.getLogger(__name__)

# How long a shutdown waits for replies already being computed, then for the notices of
# commands it stopped to be edited: together well within a container's 20 s stop timeout.
SHUTDOWN_GRACE_SECONDS = 15.0
FINAL_EDIT_SECONDS = 3.0


class FillMaskBot(commands.Bot):
    """The bot. ``setup_hook`` builds its service with :func:`bot.wiring.running_service`
    (over ``registry`` when given) and ``close()`` closes it."""

    def __init__(self, settings: Settings, *, registry: InferenceBackend | None = None) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # the prefix path reads message text
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.command_prefix),
            intents=intents,
            # Echoed text must never ping anyone (@everyone injection).
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            chunk_guilds_at_startup=False,
            member_cache_flags=discord.MemberCacheFlags.none(),
        )
        self.settings = settings
        self._service: FillMaskService | None = None
        self.registry = registry if registry is not None else build_registry(settings)
        self._service_scope = contextlib.AsyncExitStack()
        self._release_task: asyncio.Future[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self.shutting_down = False
        # Per channel: one typing indicator however many commands run there, and one request at
        # a time per route, so that a burst stays within Discord's buckets.
        self.typing_indicators = ChannelTyping()
        self.pacing = ChannelPacing()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.add_check(self._accepting_commands)

    @property
    def service(self) -> FillMaskService:
        if self._service is None:
            raise RuntimeError("the service is created in setup_hook")
        return self._service

    def default_model_loaded(self) -> bool:
        return self._service is not None and self._service.default_model_has_loaded()

    def default_model_progress(self) -> str | None:
        return self._service.default_model_progress() if self._service is not None else None

    async def setup_hook(self) -> None:
        # The health file (HEALTH_FILE), rewritten every HEALTH_INTERVAL s for `python -m bot health`.
        self._heartbeat = asyncio.create_task(
            run_heartbeat(self.settings.health_file, self.settings.health_interval, functools.partial(bot_state, self)),
            name="heartbeat",
        )
        self._service = await self._service_scope.enter_async_context(running_service(self.settings, registry=self.registry))
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.dev_guild_id:
            guild = discord.Object(id=self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
            log.info("slash commands synced to the dev guild %s", self.settings.dev_guild_id)

    async def get_context(
        self, origin: discord.Message | discord.Interaction, /, *, cls: type[commands.Context[commands.Bot]] = FillContext
    ) -> commands.Context[commands.Bot]:
        return await super().get_context(origin, cls=cls)

    async def _accepting_commands(self, ctx: commands.Context[commands.Bot]) -> bool:
        if self.shutting_down:
            raise ShuttingDown("shutting down")
        return True

    @contextlib.asynccontextmanager
    async def reply_in_flight(self) -> AsyncIterator[None]:
        """Mark a reply as being computed: a shutdown waits for it (up to a grace period)."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d server(s)", self.user, getattr(self.user, "id", "?"), len(self.guilds))

    async def on_command_error(self, ctx: commands.Context[commands.Bot], error: commands.CommandError) -> None:
        reply = reply_for_error(ctx, error)
        if reply is None or not isinstance(ctx, FillContext):
            return
        try:
            await ctx.send_reply(reply, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not deliver an error reply in channel %s", getattr(ctx.channel, "id", "?"))

    async def close(self) -> None:
        if not self.shutting_down:
            # Refuse new commands, let the replies being computed reach their users, then go.
            self.shutting_down = True
            if self._in_flight:
                log.info("waiting for %d reply(ies) in flight", self._in_flight)
            try:
                await asyncio.wait_for(self._idle.wait(), SHUTDOWN_GRACE_SECONDS)
            except TimeoutError:
                # Whatever still waits for a load gives up, and its notice says why instead of
                # "loading…" forever; a stuck load itself is abandoned with its thread.
                if self._service is not None:
                    self._service.begin_shutdown()
                try:
                    await asyncio.wait_for(self._idle.wait(), FINAL_EDIT_SECONDS)
                except TimeoutError:
                    log.warning("%d reply(ies) still in flight at shutdown; closing anyway", self._in_flight)
        await super().close()
        # close() runs again when ``async with bot`` exits after a signal: release things once,
        # and let the second caller wait for the first.
        if self._release_task is None:
            self._release_task = asyncio.ensure_future(self._release_resources())
        await asyncio.shield(self._release_task)

    async def _release_resources(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()  # the file goes stale: the check reports the bot down
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        await self._service_scope.aclose()  # the models and the settings database
        log.info("closed")
