"""The discord.py bot: start-up (``setup_hook``), shutdown, and the central error handler."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import discord
from discord.ext import commands

from bot.adapters.discord.channel_traffic import ChannelPacing, ChannelTyping
from bot.adapters.discord.checks import ShuttingDown
from bot.adapters.discord.cogs import EXTENSIONS
from bot.adapters.discord.context import ExpiredInteractionError, FillContext
from bot.adapters.discord.error_replies import reply_for_error
from bot.adapters.discord.locales import command_locale
from bot.adapters.discord.translator import CatalogTranslator
from bot.adapters.health import bot_state, run_heartbeat
from bot.adapters.metrics import BotMetrics, MetricsServerError, MetricsSnapshot, Outcome, ShardSnapshot
from bot.i18n import set_locale
from bot.inference.types import InferenceBackend
from bot.service.cluster import HEARTBEAT_STALE_AFTER, LocalIdentifyTurns, ProcessHeartbeat, process_name
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import SettingsStore, StorageError
from bot.settings import Settings
from bot.wiring import build_backend, open_guild_settings, running_service

log = logging.getLogger(__name__)

# How long a shutdown waits for replies already being computed, then for the notices of
# commands it stopped to be edited: together well within a container's 20 s stop timeout.
SHUTDOWN_GRACE_SECONDS = 15.0
FINAL_EDIT_SECONDS = 3.0


class FillMaskBot(commands.AutoShardedBot):
    """The bot. ``setup_hook`` builds its service with :func:`bot.wiring.running_service`
    (over ``registry`` when given) and ``close()`` closes it.

    Sharded as the settings say: SHARD_COUNT unset is one shard, ``auto`` Discord's recommended
    count; SHARD_IDS the shards this process runs. Processes sharing a settings database take
    turns to identify through it, so together they stay within Discord's ``max_concurrency``.
    """

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
            shard_count=None if settings.shard_count == 0 else (settings.shard_count or 1),
            shard_ids=list(settings.shard_ids) or None,  # pyright: ignore[reportArgumentType]  # None means all
        )
        self.settings = settings
        self.process = process_name()
        self.started_at = time.time()
        self._service: FillMaskService | None = None
        self._store: SettingsStore | None = None
        self._max_concurrency: int | None = None
        self._local_turns = LocalIdentifyTurns()
        self._cluster_heartbeat: asyncio.Task[None] | None = None
        self.metrics = BotMetrics(self._metrics_snapshot)
        self.registry = registry if registry is not None else build_backend(settings)
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

    @property
    def store(self) -> SettingsStore:
        if self._store is None:
            raise RuntimeError("the settings store is opened in setup_hook")
        return self._store

    @property
    def running_shards(self) -> tuple[int, ...]:
        """The shard ids this process runs (all of them when SHARD_IDS is unset)."""
        return tuple(self.shard_ids) if self.shard_ids else tuple(range(self.shard_count or 1))

    # The health file names shards only when the owner configured sharding.
    def health_shard_ids(self) -> tuple[int, ...] | None:
        return self.running_shards if self.settings.shard_count is not None else None

    def health_shard_count(self) -> int | None:
        return self.shard_count if self.settings.shard_count is not None else None

    def _metrics_snapshot(self) -> MetricsSnapshot:
        per_shard: dict[int, int] = dict.fromkeys(self.running_shards, 0)
        for guild in self.guilds:
            per_shard[guild.shard_id] = per_shard.get(guild.shard_id, 0) + 1
        latencies = {shard_id: shard.latency for shard_id, shard in self.shards.items()}
        return MetricsSnapshot(
            # The loaded models alone: stats_snapshot() would also sort the hour's latency samples at each scrape.
            checkpoints=self.registry.loaded_models(),
            shards=[ShardSnapshot(shard, guilds, latencies.get(shard)) for shard, guilds in sorted(per_shard.items())],
            shard_ids=self.running_shards,
            shard_count=self.shard_count,
        )

    def _record_command(self, ctx: commands.Context[Any], failure: Outcome | None) -> None:
        """Count a finished command for the metrics: ``failure`` when it raised, else what its reply reported."""
        if ctx.command is None or not isinstance(ctx, FillContext) or not ctx.started:
            return
        shard = ctx.guild.shard_id if ctx.guild is not None else None  # None: a DM
        self.metrics.record_request(shard, ctx.command.qualified_name, failure or ctx.outcome, time.monotonic() - ctx.started)

    async def on_command_completion(self, ctx: commands.Context[Any]) -> None:
        self._record_command(ctx, None)

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
        self._store = await open_guild_settings(self.settings)
        self._service = await self._service_scope.enter_async_context(
            running_service(self.settings, registry=self.registry, store=self._store)
        )
        self._cluster_heartbeat = asyncio.create_task(self._beat_to_store(), name="cluster-heartbeat")
        if self.settings.metrics_port is not None:
            try:
                await self.metrics.start(self.settings.metrics_host, self.settings.metrics_port)
            except MetricsServerError as exc:
                log.error("%s; the bot runs without metrics", exc)  # chat keeps working
            else:
                log.info("Prometheus metrics on http://%s:%d/metrics", self.settings.metrics_host, self.settings.metrics_port)
        await self.tree.set_translator(CatalogTranslator())  # command names and descriptions in fr and ko
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.dev_guild_id:
            guild = discord.Object(id=self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
            log.info("slash commands synced to the dev guild %s", self.settings.dev_guild_id)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # Discord allows one IDENTIFY per 5 s in each of max_concurrency buckets (shard id modulo
        # max_concurrency), counted across every process of the bot: take the bucket's turn
        # through the shared database, or within this process when it is unreachable.
        bucket = (shard_id or 0) % await self._identify_concurrency()
        try:
            await self.store.take_identify_turn(bucket)
        except StorageError as exc:
            log.warning("identify pacing within this process only (the database is unavailable: %s)", exc)
            await self._local_turns.take_identify_turn(bucket)
        log.info("identifying shard %s (bucket %d)", shard_id, bucket)

    async def _identify_concurrency(self) -> int:
        if self._max_concurrency is None:
            try:
                _, _, limits = await self.http.get_bot_gateway()
                self._max_concurrency = max(1, int(limits.get("max_concurrency", 1)))
            except (discord.HTTPException, discord.GatewayNotFound, KeyError, TypeError, ValueError) as exc:
                log.warning("cannot read the session start limit (%s): one identify per 5 s", exc)
                return 1
        return self._max_concurrency

    def heartbeat(self) -> ProcessHeartbeat:
        """This process, for the other processes' ``stats``."""
        stats = self.service.stats_snapshot()
        return ProcessHeartbeat(
            process=self.process,
            shard_ids=self.running_shards,
            shard_count=self.shard_count or 1,
            guilds=len(self.guilds),
            loaded=tuple(model.checkpoint for model in stats.loaded),
            served=stats.served,
            refused=stats.refused,
            started_at=self.started_at,
        )

    async def other_processes(self) -> list[ProcessHeartbeat]:
        """The heartbeats of this bot's running processes (this one included, fresh)."""
        newer_than = time.time() - HEARTBEAT_STALE_AFTER * self.settings.health_interval
        try:
            beats = await self.store.heartbeats(newer_than=newer_than)
        except StorageError as exc:
            log.warning("cannot read the other processes' heartbeats: %s", exc)
            beats = []
        return [beat for beat in beats if beat.process != self.process] + [self.heartbeat()]

    async def _beat_to_store(self) -> None:
        failing = False
        while True:
            try:
                await self.store.write_heartbeat(self.heartbeat())
            except StorageError as exc:
                if not failing:
                    log.warning("cannot write this process's heartbeat row: %s", exc)
                failing = True
            else:
                failing = False
            await asyncio.sleep(self.settings.health_interval)

    async def get_context(
        self, origin: discord.Message | discord.Interaction, /, *, cls: type[commands.Context[Any]] = FillContext
    ) -> commands.Context[Any]:
        ctx = await super().get_context(origin, cls=cls)
        if isinstance(ctx, FillContext):
            ctx.started = time.monotonic()
        if ctx.command is not None or isinstance(origin, discord.Interaction):
            # For the rest of this task: the command, its checks, its error reply (dispatched from
            # here, so it inherits the locale) all speak the asker's language (a chat message that is
            # no command costs no settings read).
            set_locale(await command_locale(self.service, origin))
        return ctx

    async def _accepting_commands(self, ctx: commands.Context[commands.AutoShardedBot]) -> bool:
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

    async def on_command_error(self, ctx: commands.Context[commands.AutoShardedBot], error: commands.CommandError) -> None:
        reply = reply_for_error(ctx, error)
        if reply is None or not isinstance(ctx, FillContext):
            return
        try:
            await ctx.send_reply(reply, ephemeral=True)
        except (discord.HTTPException, ExpiredInteractionError):
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
        if self._cluster_heartbeat is not None:
            self._cluster_heartbeat.cancel()
            await asyncio.gather(self._cluster_heartbeat, return_exceptions=True)
            with contextlib.suppress(StorageError):
                await self.store.remove_heartbeat(self.process)  # a stopped process is not counted
        await self.metrics.close()
        await self._service_scope.aclose()  # the models and the settings database
        log.info("closed")
