"""What the bot's commands do, independent of how they arrive (Discord or console).

The service ties the inference core to per-server settings: which checkpoint a server
uses, filling a sentence with it, and switching it. It raises
:class:`~bot.inference.errors.FillMaskError` with a friendly message for anything the user can act on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.inference.batching import BatchingModel, ModelClosedError
from bot.inference.errors import (
    CheckpointError,
    FillMaskError,
    InvalidRequestError,
    NoMaskError,
    TooManyMasksError,
)
from bot.inference.masks import count_masks, normalize_masks, parse_fill_text, parse_targets
from bot.inference.masked_lm import DEFAULT_MAX_MASKS
from bot.inference.checkpoint_policy import CheckpointPolicy, canonical_reference, check_allowed
from bot.inference.progress import LoadProgress
from bot.inference.registry import ModelRegistry, ModelState
from bot.inference.types import FillRequest, FillResult
from bot.service.request_stats import RequestStats
from bot.service.guild_settings import GuildSettingsStore, StorageError

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 5
MAX_TOP_K = 10
# Longer than any Discord message can be; stops absurd console or API input early.
MAX_TEXT_CHARS = 4000
# Progress of a long `model set` is reported at most this often (seconds).
PROGRESS_INTERVAL = 1.0


class SettingsUnavailableError(FillMaskError):
    def __init__(self) -> None:
        super().__init__(
            "I couldn't save that setting: the bot's settings database is unavailable right now. "
            "Nothing was changed; the bot owner can see why in the logs."
        )


class ServerModelUnavailableError(FillMaskError):
    pass


@dataclass(frozen=True, slots=True)
class ModelStatus:
    checkpoint: str
    is_default: bool
    state: ModelState
    mask_token: str | None


class FillMaskService:
    def __init__(
        self,
        registry: ModelRegistry,
        store: GuildSettingsStore | None,
        *,
        default_model: str,
        policy: CheckpointPolicy = CheckpointPolicy(),
        max_masks: int = DEFAULT_MAX_MASKS,
    ) -> None:
        self.registry = registry
        # None when the database could not be opened: every server then uses the default.
        self.store = store
        self.default_model = canonical_reference(default_model)
        self.policy = policy
        self.max_masks = max_masks
        self.stats = RequestStats()

    # -- which checkpoint --------------------------------------------------------------------

    async def checkpoint_for(self, guild_id: int | None) -> str:
        """The server's chosen checkpoint, or the default (also in DMs and when storage fails)."""
        if guild_id is None or self.store is None:
            return self.default_model
        try:
            return await self.store.get_checkpoint(guild_id) or self.default_model
        except StorageError:
            log.exception("reading settings for guild %s failed; using the default model", guild_id)
            return self.default_model

    async def is_ready(self, guild_id: int | None) -> bool:
        """Whether a fill for this server can start without loading a checkpoint first."""
        return self.registry.state(await self.checkpoint_for(guild_id)) is ModelState.LOADED

    async def status(self, guild_id: int | None) -> ModelStatus:
        checkpoint = await self.checkpoint_for(guild_id)
        loaded = self.registry.peek(checkpoint)
        return ModelStatus(
            checkpoint=checkpoint,
            is_default=checkpoint == self.default_model,
            state=self.registry.state(checkpoint),
            mask_token=loaded.mask_token if loaded is not None else None,
        )

    # -- fill ------------------------------------------------------------------------------

    async def fill(
        self,
        guild_id: int | None,
        raw_text: str,
        *,
        top_k: int | None = None,
        targets: str | None = None,
    ) -> FillResult:
        """Complete ``raw_text`` with the server's checkpoint.

        ``raw_text`` may carry inline options (``k=3 ... | word, word``, see
        :func:`~bot.inference.masks.parse_fill_text`); explicit ``top_k``/``targets`` win over them.
        """
        if len(raw_text) > MAX_TEXT_CHARS:
            raise InvalidRequestError(f"That's too long: keep it under {MAX_TEXT_CHARS} characters.")
        parsed = parse_fill_text(raw_text)
        k = top_k if top_k is not None else parsed.top_k if parsed.top_k is not None else DEFAULT_TOP_K
        if not 1 <= k <= MAX_TOP_K:
            raise InvalidRequestError(f"`top_k` must be a whole number from 1 to {MAX_TOP_K}.")
        wanted = parse_targets(targets) if targets is not None else parsed.targets
        if not parsed.text:
            raise NoMaskError("<mask>")

        checkpoint = await self.checkpoint_for(guild_id)
        model = await self._model(checkpoint)
        text = normalize_masks(parsed.text, model.mask_token)
        masks = count_masks(text, model.mask_token)
        if masks == 0:
            raise NoMaskError(model.mask_token)
        if masks > self.max_masks:
            raise TooManyMasksError(masks, self.max_masks)
        request = FillRequest(text=text, top_k=k, targets=wanted)
        try:
            try:
                result = await model.fill(request)
            except ModelClosedError:
                # Evicted between lookup and queueing (another server needed the room): once more.
                result = await (await self._model(checkpoint)).fill(request)
        except FillMaskError:
            self.stats.record_failure()
            raise
        self.stats.record(result.elapsed)
        return result

    async def _model(self, checkpoint: str) -> BatchingModel:
        try:
            return await self.registry.get(checkpoint)
        except CheckpointError as exc:
            hint = "" if checkpoint == self.default_model else " A server admin can run `model reset` to go back to the default."
            raise ServerModelUnavailableError(f"This server's model can't be used right now. {exc}{hint}") from exc

    # -- admin -----------------------------------------------------------------------------

    async def set_checkpoint(
        self,
        guild_id: int,
        reference: str,
        *,
        user_id: int | None = None,
        on_progress: Callable[[LoadProgress], Awaitable[None]] | None = None,
    ) -> ModelStatus:
        """Load ``reference`` and, only once that worked, make it the server's checkpoint.

        While it loads, ``on_progress`` gets the load's progress at most once per
        ``PROGRESS_INTERVAL`` seconds, and only when it changed (chat edits are rate-limited).
        """
        checkpoint = reference.strip()
        if canonical_reference(checkpoint) != self.default_model:
            checkpoint = check_allowed(checkpoint, self.policy)
        else:
            checkpoint = self.default_model
        model = await self._load_reporting(checkpoint, on_progress)  # CheckpointError: the old choice stays
        if self.store is None:
            raise SettingsUnavailableError()
        try:
            await self.store.set_checkpoint(guild_id, checkpoint, updated_by=user_id)
        except StorageError:
            log.exception("saving checkpoint %s for guild %s failed", checkpoint, guild_id)
            raise SettingsUnavailableError() from None
        log.info("guild %s now uses %s", guild_id, checkpoint)
        return ModelStatus(checkpoint, checkpoint == self.default_model, ModelState.LOADED, model.mask_token)

    async def _load_reporting(
        self, checkpoint: str, on_progress: Callable[[LoadProgress], Awaitable[None]] | None
    ) -> BatchingModel:
        loading = asyncio.ensure_future(self.registry.get(checkpoint))
        last: LoadProgress | None = None
        try:
            while True:
                done, _ = await asyncio.wait({loading}, timeout=PROGRESS_INTERVAL)
                if done:
                    return loading.result()
                current = self.registry.progress(checkpoint)
                if on_progress is not None and current is not None and current != last:
                    last = current
                    try:
                        await on_progress(current)
                    except Exception:  # a failed progress edit must not fail the switch
                        log.warning("progress report failed", exc_info=True)
        finally:
            if not loading.done():
                loading.cancel()  # the registry's shared load is shielded and goes on

    async def reset_checkpoint(self, guild_id: int) -> ModelStatus:
        if self.store is None:
            raise SettingsUnavailableError()
        try:
            await self.store.clear_checkpoint(guild_id)
        except StorageError:
            log.exception("resetting the checkpoint for guild %s failed", guild_id)
            raise SettingsUnavailableError() from None
        log.info("guild %s back to the default model", guild_id)
        return await self.status(guild_id)
