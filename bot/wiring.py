"""Builds what every way into the bot shares: the inference backend, the settings store and
the service, once, from the settings: ``async with running_service(settings) as service``.

The Discord bot, the console and the one-shot ``fill`` command all start here, so they
serve the same checkpoints under the same policy.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import urllib.parse
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from bot.inference.types import InferenceBackend
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import GuildSettings, SettingsStore, SqliteGuildSettings, StorageError
from bot.service.postgres_settings import PostgresGuildSettings
from bot.service.reopening_store import ReopeningStore
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.inference.registry import Loader, ModelRegistry

log = logging.getLogger(__name__)


def build_backend(settings: Settings) -> InferenceBackend:
    """Where fills run: the inference service at INFERENCE_URL (no weights here, no torch
    imported), else in this process."""
    if settings.inference_url:
        from bot.inference.remote import RemoteBackend

        return RemoteBackend(
            settings.inference_url,
            api=inference_api(settings),
            load_timeout=settings.load_timeout_seconds,
            max_in_flight=settings.max_queue,
        )
    return build_registry(settings)


def inference_api(settings: Settings) -> str:
    """The protocol INFERENCE_URL speaks: INFERENCE_API, or by its host when that is "auto"."""
    if settings.inference_api != "auto":
        return settings.inference_api
    host = urllib.parse.urlsplit(settings.inference_url or "").hostname or ""
    return "huggingface" if host.endswith(("huggingface.co", "huggingface.cloud")) else "fillmask"


def checkpoint_loader(settings: Settings) -> Loader:
    """Loads a checkpoint as the settings say (device, pickle weights, precision, size limit):
    the bot's registry and the inference service's replicas load through this one."""
    # Imported here: a bot with INFERENCE_URL never imports torch.
    from bot.inference.loading import load_masked_lm, resolve_device

    return functools.partial(
        load_masked_lm,
        device=resolve_device(settings.device),
        allow_pickle_weights=settings.allow_pickle_weights,
        precision=settings.precision,
        max_parameters=settings.max_model_parameters,
    )


def build_registry(settings: Settings) -> ModelRegistry:
    from bot.inference.registry import ModelRegistry

    return ModelRegistry(
        checkpoint_loader(settings),
        max_loaded=settings.max_loaded_models,
        max_batch_size=settings.max_batch_size,
        max_queue=settings.max_queue,
        max_queued_per_tenant=settings.guild_max_queued_fills,
        load_timeout=settings.load_timeout_seconds,
    )


def settings_database(settings: Settings) -> SqliteGuildSettings | PostgresGuildSettings:
    """The settings database the settings name, not yet opened."""
    return PostgresGuildSettings(settings.database_url) if settings.database_url else SqliteGuildSettings(settings.database_path)


async def open_guild_settings(settings: Settings) -> SettingsStore:
    """The settings database, or (when it can't be opened) a stand-in that keeps the bot serving
    with the default model rather than not starting at all, and opens the database once it can."""
    # With DATABASE_URL, processes (shards) share one PostgreSQL database and nothing is created at DATABASE_PATH.
    store = settings_database(settings)
    try:
        return await store.open()
    except StorageError as exc:
        log.exception("settings database unavailable: every server uses %s until it is reachable", settings.default_model)
        return ReopeningStore(store, str(exc))


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings,
    *,
    registry: InferenceBackend | None = None,
    store: GuildSettings | None = None,
    preload: bool = True,
) -> AsyncIterator[FillMaskService]:
    """The service, with the default checkpoint loading in the background; closed on exit."""
    backend = registry if registry is not None else build_backend(settings)
    if not settings.inference_url:
        from bot.inference.loading import warm_imports

        # Before anything connects: the first from_pretrained would otherwise import transformers'
        # big modules on the loader thread and stall the running event loop.
        warm_imports()
    guild_settings = store if store is not None else await open_guild_settings(settings)
    service = FillMaskService(
        backend,
        guild_settings,
        default_model=settings.default_model,
        policy=settings.checkpoint_policy,
    )
    if preload:
        backend.preload(service.default_model)
    try:
        yield service
    finally:
        await service.model_cards.close()
        await service.hub_search.close()
        await backend.aclose()
        await guild_settings.close()
