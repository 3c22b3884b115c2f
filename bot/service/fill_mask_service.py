"""What the bot's commands do, independent of how they arrive (Discord or console).

The service ties an inference backend to per-server settings: which checkpoint a server
uses, filling a sentence with it, and switching it. It raises
:class:`~bot.inference.errors.FillMaskError` with a friendly message for anything the user
can act on, and renders nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from bot.i18n import DEFAULT_LOCALE, LANGUAGE_NAMES, LOCALES, N_, Locale, lazy, supported_locale
from bot.inference.checkpoint_policy import (
    CheckpointPolicy,
    canonical_reference,
    check_allowed,
    display_name,
    is_local_reference,
)
from bot.inference.errors import (
    CheckpointError,
    CheckpointNotAllowedError,
    FillMaskError,
    InvalidRequestError,
    ModelClosedError,
    NoMaskError,
    TooManyMasksError,
    TopKOutOfRangeError,
)
from bot.inference.hub_download import canonical_hub_id
from bot.inference.masks import VariantGroup, clean_input, count_masks, normalize_masks, parse_fill_text, parse_targets
from bot.inference.progress import LoadProgress
from bot.inference.types import (
    DEFAULT_TOP_K,
    MAX_MASKS,
    MAX_TOP_K,
    FillModel,
    FillRequest,
    FillResult,
    InferenceBackend,
    LoadedModel,
    ModelState,
)
from bot.service.catalog import CatalogEntry, is_pattern, offered_models
from bot.service.guild_settings import GuildSettings, StorageError
from bot.service.hub_search import HubSearch, ModelSearch, allowed_only, hub_entry, model_search, parse_terms
from bot.service.joint_fill import JointSentence, joint_fill
from bot.service.model_cards import ModelCardCache, ModelCardInfo
from bot.service.request_stats import LatencySummary, RequestStats

log = logging.getLogger(__name__)

T = TypeVar("T")

# Longer than any Discord message can be; stops absurd console or API input early.
MAX_TEXT_CHARS = 4000
# A bias lens (`{man|woman}`): how many alternatives, and how long each may be (a word or a
# short phrase; the reply puts each at the head of a column).
MIN_VARIANTS = 2
MAX_VARIANTS = 4
MAX_VARIANT_CHARS = 40
# Progress of a long `model set` is reported at most this often (seconds).
PROGRESS_INTERVAL = 1.0


class SettingsUnavailableError(FillMaskError):
    def __init__(self) -> None:
        super().__init__(
            lazy(
                "I couldn't save that setting: the bot's settings database is unavailable right now. "
                "Nothing was changed; the bot owner can see why in the logs."
            )
        )


class ServerModelUnavailableError(FillMaskError):
    pass


class ComparedModelUnavailableError(FillMaskError):
    pass


class RestartingError(FillMaskError):
    title = N_("Restarting")

    def __init__(self) -> None:
        super().__init__(lazy("The bot is restarting, so I stopped waiting for the model. Try again in a minute."))


class SwitchSupersededError(FillMaskError):
    title = N_("Superseded")

    def __init__(self) -> None:
        super().__init__(
            lazy(
                "A newer `model set` or `model reset` for this server was sent while this one was loading, "
                "so that one decides the server's model and this one changed nothing."
            )
        )


@dataclass(eq=False, slots=True)
class _PendingSwitch:
    """A ``model set`` under way; a newer command for the same server sets ``superseded``."""

    superseded: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class ModelStatus:
    checkpoint: str
    is_default: bool
    state: ModelState
    mask_token: str | None
    # Where the model runs (this process, the inference service at INFERENCE_URL, ...).
    where: str = ""


@dataclass(frozen=True, slots=True)
class FillAnswer:
    result: FillResult
    # The sentence as the user typed it, without the inline options (what a reply quotes).
    typed_text: str
    # With several blanks, the best sentence read together (surest blank first, see
    # bot.service.joint_fill); None for one blank, or when an extra pass failed (logged).
    joint: JointSentence | None = None


@dataclass(frozen=True, slots=True)
class FillQuery:
    """A typed fill, read and checked, before any model is involved (see :meth:`FillMaskService.query`)."""

    # The sentence as typed, without the inline options (what a reply quotes).
    text: str
    top_k: int
    targets: tuple[str, ...] | None = None
    # `compare:` / `compare=`: a checkpoint to answer beside the server's, as typed.
    compare: str | None = None
    # `{man|woman}`: the sentence is filled once per alternative.
    variants: VariantGroup | None = None
    # ``compare`` checked and resolved (see :meth:`FillMaskService.resolve_compare`): once per command.
    compared: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerColumn:
    """One side of a side-by-side answer: what it is (a checkpoint, or a variant's words) and its fill."""

    label: str
    result: FillResult


@dataclass(frozen=True, slots=True)
class ComparisonAnswer:
    """The same sentence from the server's checkpoint (first) and the compared one."""

    typed_text: str
    columns: tuple[AnswerColumn, AnswerColumn]


@dataclass(frozen=True, slots=True)
class VariantsAnswer:
    """The sentence filled once per alternative of its ``{a|b}`` group, by the server's checkpoint."""

    typed_text: str
    checkpoint: str
    columns: tuple[AnswerColumn, ...]


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    uptime: float
    served: int
    refused: int
    latency: LatencySummary
    loaded: list[LoadedModel]


@dataclass(frozen=True, slots=True)
class OfferedModels:
    entries: list[CatalogEntry]
    loaded: list[str]
    default: str


# `language set french` and `language set 한국어` work too.
_LANGUAGES_BY_NAME: dict[str, Locale] = {
    **{name.casefold(): code for code, name in LANGUAGE_NAMES.items()},
    "english": "en",
    "french": "fr",
    "francais": "fr",
    "korean": "ko",
}


def _one_group(groups: Sequence[VariantGroup]) -> VariantGroup | None:
    """The sentence's ``{a|b}`` group, checked: one, not nested, 2 to 4 short alternatives."""
    if not groups:
        return None
    if len(groups) > 1:
        raise InvalidRequestError(
            lazy("I can swap one `{{…|…}}` group per sentence: your sentence has {count}. Keep one.", count=len(groups))
        )
    group = groups[0]
    if group.nested:
        raise InvalidRequestError(
            lazy("A `{{…|…}}` group can't hold another group: write the alternatives side by side, e.g. `{{man|woman}}`.")
        )
    if not MIN_VARIANTS <= len(group.alternatives) <= MAX_VARIANTS:
        raise InvalidRequestError(
            lazy(
                "A `{{…|…}}` group holds {low} to {high} alternatives: yours has {count}.",
                low=MIN_VARIANTS,
                high=MAX_VARIANTS,
                count=len(group.alternatives),
            )
        )
    if not all(group.alternatives):
        raise InvalidRequestError(lazy("Each alternative in `{{…|…}}` needs a word, e.g. `{{man|woman}}`."))
    if any(len(alternative) > MAX_VARIANT_CHARS for alternative in group.alternatives):
        raise InvalidRequestError(
            lazy(
                "Each alternative in `{{…|…}}` is a word or a short phrase: keep each under {limit} characters.",
                limit=MAX_VARIANT_CHARS,
            )
        )
    return group


class FillMaskService:
    def __init__(
        self,
        registry: InferenceBackend,
        store: GuildSettings,
        *,
        default_model: str,
        policy: CheckpointPolicy | None = None,
        max_masks: int = MAX_MASKS,
    ) -> None:
        self.registry = registry
        self.store = store
        self.default_model = canonical_reference(default_model)
        self.policy = policy if policy is not None else CheckpointPolicy()
        self.max_masks = max_masks
        self.stats = RequestStats()
        # Model cards change rarely: bounded, ten minutes, one Hub request per name at a time.
        self.model_cards = ModelCardCache()
        # Hub searches (`model search`, `model set`'s autocomplete): a few minutes, one request per query.
        self.hub_search = HubSearch()
        self._switches: dict[int, _PendingSwitch] = {}
        # Set once the bot is stopping: nothing waits for a load any more.
        self._restarting = asyncio.Event()
        # Whether the policy still allows a stored choice (the policy is fixed for the process).
        self._still_allowed: dict[str, bool] = {}
        # Servers whose stored choice the owner no longer allows, until their admins are told.
        self._revoked: dict[int, str] = {}

    # -- which checkpoint --------------------------------------------------------------------

    async def checkpoint_for(self, guild_id: int | None) -> str:
        """The server's chosen checkpoint, or the default (also in DMs and when storage fails)."""
        if guild_id is None:
            return self.default_model
        try:
            stored = await self.store.get_checkpoint(guild_id)
        except StorageError:
            log.exception("reading settings for guild %s failed; using the default model", guild_id)
            return self.default_model
        if not stored or stored == self.default_model:
            return self.default_model
        if not self._allowed_now(stored):
            await self._revoke(guild_id, stored)
            return self.default_model
        return stored

    def _allowed_now(self, stored: str) -> bool:
        """Whether the owner's current policy still lets a server use its stored choice."""
        allowed = self._still_allowed.get(stored)
        if allowed is None:
            try:
                allowed = check_allowed(stored, self.policy) == stored
            except CheckpointNotAllowedError:
                allowed = False
            self._still_allowed[stored] = allowed
        return allowed

    async def _revoke(self, guild_id: int, stored: str) -> None:
        """Forget a choice the owner no longer allows (once), so the server is told once."""
        log.warning("guild %s used %s, which the policy no longer allows; back to the default", guild_id, stored)
        self._revoked[guild_id] = stored
        try:
            await self.store.clear_checkpoint(guild_id)
        except StorageError:  # told again after a restart, which is better than never
            log.exception("clearing the revoked checkpoint of guild %s failed", guild_id)

    def take_revocation_notice(self, guild_id: int | None) -> str | None:
        """The checkpoint this server lost to the owner's policy, if its admins were not told yet."""
        return self._revoked.pop(guild_id, None) if guild_id is not None else None

    def begin_shutdown(self) -> None:
        """Stop every wait for a load: those commands answer "restarting" instead of hanging on."""
        self._restarting.set()

    async def _unless_restarting(self, waiting: Awaitable[T]) -> T:
        """``await waiting``, or raise :class:`RestartingError` if the bot starts restarting first."""
        work = asyncio.ensure_future(waiting)
        restarting = asyncio.ensure_future(self._restarting.wait())
        try:
            await asyncio.wait({work, restarting}, return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                return work.result()
            raise RestartingError()
        finally:
            for task in (work, restarting):
                if not task.done():
                    task.cancel()

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
            where=self.registry.where,
        )

    def default_model_progress(self) -> str | None:
        """``downloading camembert-base: 210.4 of 445.0 MB (47 %) · 12 s`` while the default loads."""
        progress = self.registry.progress(self.default_model)
        return f"{display_name(self.default_model)}: {progress.describe()}" if progress is not None else None

    def default_model_has_loaded(self) -> bool:
        """Loaded once since the start: later evictions (MAX_LOADED_MODELS) are normal operation."""
        return self.registry.has_loaded(self.default_model)

    # -- fill ------------------------------------------------------------------------------

    async def fill(
        self,
        guild_id: int | None,
        raw_text: str,
        *,
        top_k: int | None = None,
        targets: str | None = None,
    ) -> FillResult:
        """Complete ``raw_text`` with the server's checkpoint (see :meth:`answer`)."""
        return (await self.answer(guild_id, raw_text, top_k=top_k, targets=targets)).result

    def query(
        self,
        raw_text: str,
        *,
        top_k: int | None = None,
        targets: str | None = None,
        compare: str | None = None,
    ) -> FillQuery:
        """Read a typed fill and check what can be checked without a model.

        ``raw_text`` may carry inline options (``k=3 compare=... ... | word, word``, see
        :func:`~bot.inference.masks.parse_fill_text`); explicit ``top_k``/``targets``/``compare``
        win over them. Raises :class:`InvalidRequestError` (and subclasses) in words.
        """
        # Lone surrogates (a client's "\ud800") break the tokenizer and any reply: replace them first.
        raw_text = clean_input(raw_text)
        targets = clean_input(targets) if targets is not None else None
        compare = clean_input(compare).strip() or None if compare is not None else None
        if len(raw_text) > MAX_TEXT_CHARS:
            raise InvalidRequestError(lazy("That's too long: keep it under {limit} characters.", limit=MAX_TEXT_CHARS))
        parsed = parse_fill_text(raw_text)
        k = top_k if top_k is not None else parsed.top_k if parsed.top_k is not None else DEFAULT_TOP_K
        if not 1 <= k <= MAX_TOP_K:
            raise TopKOutOfRangeError()
        wanted = parse_targets(targets) if targets is not None else parsed.targets
        if not parsed.text:
            raise NoMaskError("<mask>")
        variants = _one_group(parsed.groups)
        compared = compare if compare is not None else parsed.compare
        if variants is not None and compared is not None:
            raise InvalidRequestError(
                lazy("Compare two checkpoints or compare words in `{{…|…}}`, not both at once: leave one of them out.")
            )
        return FillQuery(parsed.text, k, wanted, compared, variants)

    async def answer(
        self,
        guild_id: int | None,
        raw_text: str | FillQuery,
        *,
        top_k: int | None = None,
        targets: str | None = None,
    ) -> FillAnswer:
        """Complete a sentence (typed, or read by :meth:`query`) with the server's checkpoint."""
        query = raw_text if isinstance(raw_text, FillQuery) else self.query(raw_text, top_k=top_k, targets=targets)
        checkpoint = await self.checkpoint_for(guild_id)
        model = await self._model(checkpoint)
        request = self._request(model, query.text, query, guild_id)
        result = await self._fill(model, request, checkpoint)
        self.stats.record(result.elapsed)
        self._log_fill(guild_id, result)
        return FillAnswer(result, query.text, await self._joint_sentence(model, request, result))

    def _request(self, model: FillModel, text: str, query: FillQuery, guild_id: int | None) -> FillRequest:
        """``text`` with its blanks in ``model``'s own mask token, checked against the mask limits."""
        normalized = normalize_masks(text, model.mask_token)
        masks = count_masks(normalized, model.mask_token)
        if masks == 0:
            raise NoMaskError(model.mask_token)
        if masks > self.max_masks:
            raise TooManyMasksError(masks, self.max_masks)
        # The server is the tenant: the batcher shares batches fairly between servers.
        return FillRequest(text=normalized, top_k=query.top_k, targets=query.targets, tenant=guild_id)

    async def _fill(self, model: FillModel, request: FillRequest, checkpoint: str, *, compared: bool = False) -> FillResult:
        try:
            try:
                return await model.fill(request)
            except ModelClosedError:
                # Evicted between lookup and queueing (another server needed the room): once more.
                model = await self._model(checkpoint, compared=compared)
                return await model.fill(request)
        except FillMaskError:
            self.stats.record_failure()
            raise

    def _log_fill(self, guild_id: int | None, result: FillResult, kind: str = "fill") -> None:
        log.info(
            "%s guild=%s checkpoint=%s masks=%d batch=%d latency_ms=%.0f",
            kind,
            guild_id,
            result.checkpoint,
            len(result.masks),
            result.batch_size,
            result.elapsed * 1000,
        )

    # -- side by side ------------------------------------------------------------------------

    async def compare_checkpoint(self, guild_id: int | None, reference: str) -> str:
        """The checkpoint ``compare`` names, under the same policy as ``model set`` (and the Hub's
        current name for a renamed repo). Comparing a server's model with itself is refused."""
        checkpoint = canonical_reference(reference)
        if checkpoint != self.default_model:
            checkpoint = check_allowed(reference, self.policy)
        if not is_local_reference(checkpoint):
            checkpoint = await self._hub_name(checkpoint)
        if checkpoint == await self.checkpoint_for(guild_id):
            raise InvalidRequestError(
                lazy(
                    "`{checkpoint}` is already this server's model: compare it with another one, "
                    "e.g. `compare=bert-base-uncased`.",
                    checkpoint=display_name(checkpoint),
                )
            )
        return checkpoint

    async def resolve_compare(self, guild_id: int | None, query: FillQuery) -> FillQuery:
        """``query`` with its ``compare`` checked and resolved into ``compared``. Resolving may ask
        the Hub (a renamed repo), so an adapter that resolves first (for a cooldown) passes the
        resolved query on, and the flow does not ask again."""
        if query.compare is None or query.compared is not None:
            return query
        return replace(query, compared=await self.compare_checkpoint(guild_id, query.compare))

    def needs_load(self, checkpoint: str) -> bool:
        """Whether answering with ``checkpoint`` would load it first."""
        return self.registry.state(checkpoint) is not ModelState.LOADED

    async def compare(self, guild_id: int | None, query: FillQuery, other: str) -> ComparisonAnswer:
        """``query`` answered by the server's checkpoint and by ``other`` (from
        :meth:`compare_checkpoint`), each with its own mask token; the server's setting stays."""
        mine = await self.checkpoint_for(guild_id)
        models = await asyncio.gather(self._model(mine), self._model(other, compared=True))
        requests = [self._request(model, query.text, query, guild_id) for model in models]
        masks = {count_masks(request.text, model.mask_token) for model, request in zip(models, requests, strict=True)}
        if len(masks) > 1:
            raise InvalidRequestError(
                lazy("The two checkpoints don't see the same blanks in that sentence: write each blank as `<mask>`.")
            )
        results = await asyncio.gather(
            self._fill(models[0], requests[0], mine), self._fill(models[1], requests[1], other, compared=True)
        )
        for result in results:
            self._log_fill(guild_id, result, "compare")
        self.stats.record(max(result.elapsed for result in results))
        first, second = (AnswerColumn(display_name(r.checkpoint), r) for r in results)
        return ComparisonAnswer(query.text, (first, second))

    async def variants(self, guild_id: int | None, query: FillQuery) -> VariantsAnswer:
        """A bias lens: ``query``'s sentence once per alternative of its ``{a|b}`` group, all in
        one batched pass of the server's checkpoint. Each column equals the pipeline on its sentence."""
        group = query.variants
        if group is None:
            raise InvalidRequestError(lazy("That sentence has no `{{a|b}}` group to compare."))
        checkpoint = await self.checkpoint_for(guild_id)
        model = await self._model(checkpoint)
        if any(count_masks(alternative, model.mask_token) for alternative in group.alternatives):
            raise InvalidRequestError(
                lazy(
                    "The blank goes outside the `{{…|…}}` group: the group holds the words to swap, "
                    "e.g. `The {{man|woman}} worked as a {mask}.`",
                    mask=model.mask_token,
                )
            )
        requests = [
            self._request(model, group.sentence(query.text, index), query, guild_id) for index in range(len(group.alternatives))
        ]
        masks = count_masks(requests[0].text, model.mask_token)
        if masks != 1:
            raise InvalidRequestError(
                lazy(
                    "A `{{…|…}}` group works with one blank: your sentence has {count}. Keep one `{mask}` and try again.",
                    count=masks,
                    mask=model.mask_token,
                )
            )
        # Queued together, so the batcher answers them in one forward pass.
        results = await asyncio.gather(*(self._fill(model, request, checkpoint) for request in requests))
        for result in results:
            self._log_fill(guild_id, result, "variant")
        self.stats.record(max(result.elapsed for result in results))
        columns = tuple(AnswerColumn(label, result) for label, result in zip(group.alternatives, results, strict=True))
        return VariantsAnswer(query.text, checkpoint, columns)

    async def _joint_sentence(self, model: FillModel, request: FillRequest, result: FillResult) -> JointSentence | None:
        """The best joint sentence for several blanks; None for one, or (logged) if an extra pass fails.

        The extra passes go through the same model object, with the same tenant, so they are
        batched (fairly) with everyone else's requests. Their failure never fails the fill: the
        per-blank answer is complete without them.
        """
        if len(result.masks) < 2:
            return None
        started = time.perf_counter()
        try:
            joint = await joint_fill(model, request, result)
        except FillMaskError as exc:  # busy, evicted meanwhile, too long once filled...
            log.warning(
                "joint sentence omitted guild=%s checkpoint=%s: %s: %s",
                request.tenant,
                result.checkpoint,
                type(exc).__name__,
                exc,
            )
            return None
        except Exception:  # a bug must not cost the user the answer they already have
            log.exception("joint sentence failed guild=%s checkpoint=%s", request.tenant, result.checkpoint)
            return None
        if joint is not None:
            log.info(
                "joint guild=%s checkpoint=%s passes=%d score=%.3g latency_ms=%.0f",
                request.tenant,
                result.checkpoint,
                len(joint.steps) - 1,
                joint.score,
                (time.perf_counter() - started) * 1000,
            )
        return joint

    async def _model(self, checkpoint: str, *, compared: bool = False) -> FillModel:
        """The loaded model; a checkpoint that can't be used is told as the server's model, or
        (``compared``) as the one a ``compare`` named."""
        try:
            return await self._unless_restarting(self.registry.get(checkpoint))
        except CheckpointError as exc:
            if compared:
                raise ComparedModelUnavailableError(
                    lazy(
                        "`{checkpoint}` can't be compared right now. {reason}",
                        checkpoint=display_name(checkpoint),
                        reason=exc.message,
                    )
                ) from exc
            if checkpoint == self.default_model:
                message = lazy("This server's model can't be used right now. {reason}", reason=exc.message)
            else:
                message = lazy(
                    "This server's model can't be used right now. {reason} "
                    "A server admin can run `model reset` to go back to the default.",
                    reason=exc.message,
                )
            raise ServerModelUnavailableError(message) from exc

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
        checkpoint = canonical_reference(reference)
        if checkpoint != self.default_model:
            checkpoint = check_allowed(reference, self.policy)
        if not is_local_reference(checkpoint):
            checkpoint = await self._hub_name(checkpoint)
        # A refused name changes nothing; from here on, this is the server's newest command.
        mine = self._supersede(guild_id)
        try:
            model = await self._load_reporting(checkpoint, on_progress, mine)  # CheckpointError: the old choice stays
            if mine.superseded.is_set():
                raise SwitchSupersededError()
            try:
                await self.store.set_checkpoint(guild_id, checkpoint, updated_by=user_id)
            except StorageError:
                log.exception("saving checkpoint %s for guild %s failed", checkpoint, guild_id)
                raise SettingsUnavailableError() from None
            if mine.superseded.is_set():
                # A newer command arrived while this was saved; its write lands after this one.
                raise SwitchSupersededError()
        finally:
            self._finish_switch(guild_id, mine)
        self._revoked.pop(guild_id, None)
        log.info("guild %s now uses %s", guild_id, checkpoint)
        return ModelStatus(checkpoint, checkpoint == self.default_model, ModelState.LOADED, model.mask_token, self.registry.where)

    async def _hub_name(self, checkpoint: str) -> str:
        """A renamed repo's new id, so it is stored, loaded and shown under one name; the typed one
        when the Hub can't say, or when the owner's allow-list names only the old id."""
        renamed = await asyncio.to_thread(canonical_hub_id, checkpoint)
        if renamed == checkpoint:
            return checkpoint
        try:
            check_allowed(renamed, self.policy)
        except CheckpointNotAllowedError:
            return checkpoint
        log.info("%s is now %s on the Hub", checkpoint, renamed)
        return renamed

    def _supersede(self, guild_id: int) -> _PendingSwitch:
        """Make a new command the server's newest: a switch still loading is told it lost."""
        previous = self._switches.get(guild_id)
        if previous is not None:
            previous.superseded.set()
        mine = self._switches[guild_id] = _PendingSwitch()
        return mine

    def _finish_switch(self, guild_id: int, switch: _PendingSwitch) -> None:
        if self._switches.get(guild_id) is switch:
            del self._switches[guild_id]

    async def _load_reporting(
        self, checkpoint: str, on_progress: Callable[[LoadProgress], Awaitable[None]] | None, switch: _PendingSwitch
    ) -> FillModel:
        loading = asyncio.ensure_future(self.registry.get(checkpoint))
        restarting = asyncio.ensure_future(self._restarting.wait())
        superseded = asyncio.ensure_future(switch.superseded.wait())
        last: LoadProgress | None = None
        try:
            while True:
                await asyncio.wait(
                    {loading, restarting, superseded}, timeout=PROGRESS_INTERVAL, return_when=asyncio.FIRST_COMPLETED
                )
                if loading.done():
                    return loading.result()
                if restarting.done():
                    raise RestartingError()
                if superseded.done():
                    raise SwitchSupersededError()
                current = self.registry.progress(checkpoint)
                if on_progress is not None and current is not None and current != last:
                    last = current
                    try:
                        await on_progress(current)
                    except Exception:  # a failed progress edit must not fail the switch
                        log.warning("progress report failed", exc_info=True)
        finally:
            for task in (loading, restarting, superseded):
                if not task.done():
                    task.cancel()  # the registry's shared load is shielded and goes on

    async def reset_checkpoint(self, guild_id: int) -> ModelStatus:
        mine = self._supersede(guild_id)
        try:
            await self.store.clear_checkpoint(guild_id)
        except StorageError:
            log.exception("resetting the checkpoint for guild %s failed", guild_id)
            raise SettingsUnavailableError() from None
        finally:
            self._finish_switch(guild_id, mine)
        self._revoked.pop(guild_id, None)
        log.info("guild %s back to the default model", guild_id)
        return await self.status(guild_id)

    # -- language ----------------------------------------------------------------------------

    async def language_for(self, guild_id: int | None) -> Locale | None:
        """The language a server's admins chose for the bot's replies, if any (None in DMs and
        when storage fails: the caller falls back to Discord's locales)."""
        if guild_id is None:
            return None
        try:
            stored = await self.store.get_language(guild_id)
        except StorageError:
            log.exception("reading the language of guild %s failed; using Discord's locale", guild_id)
            return None
        return supported_locale(stored)

    async def set_language(self, guild_id: int, language: str, *, user_id: int | None = None) -> Locale:
        """Make ``language`` (``fr``, ``ko``, ``en``, or a tag such as ``fr-CA``) the server's."""
        typed = clean_input(language).strip()
        locale = supported_locale(typed) or _LANGUAGES_BY_NAME.get(typed.casefold())
        if locale is None:
            raise InvalidRequestError(
                lazy(
                    "I speak {choices}: pick one of those codes, e.g. `language set fr`.",
                    choices=", ".join(f"`{code}` ({LANGUAGE_NAMES[code]})" for code in LOCALES),
                )
            )
        try:
            await self.store.set_language(guild_id, locale, updated_by=user_id)
        except StorageError:
            log.exception("saving language %s for guild %s failed", locale, guild_id)
            raise SettingsUnavailableError() from None
        log.info("guild %s now speaks %s", guild_id, locale)
        return locale

    async def reset_language(self, guild_id: int) -> None:
        """Forget the server's choice: replies follow Discord's locales again."""
        try:
            await self.store.clear_language(guild_id)
        except StorageError:
            log.exception("resetting the language of guild %s failed", guild_id)
            raise SettingsUnavailableError() from None
        log.info("guild %s back to Discord's locale (default %s)", guild_id, DEFAULT_LOCALE)

    # -- information -----------------------------------------------------------------------

    def offered_models(self) -> OfferedModels:
        """What a server may pick from, which of it is loaded, and the default."""
        return OfferedModels(offered_models(self.policy.allowed_models), self.registry.loaded, self.default_model)

    async def model_card_target(self, guild_id: int | None, checkpoint: str | None) -> str:
        """Which checkpoint ``model info`` describes: the one named, or the server's own.

        Reading a card is harmless, so any well-formed Hub id is fine; local folders stay
        behind the owner's policy.
        """
        current = await self.checkpoint_for(guild_id)
        target = checkpoint.strip() if checkpoint and checkpoint.strip() else current
        if canonical_reference(target) in (current, self.default_model):
            return target
        return check_allowed(target, self.policy if is_local_reference(target) else CheckpointPolicy())

    async def model_card(self, checkpoint: str) -> ModelCardInfo:
        """What ``checkpoint``'s model card says (from :meth:`model_card_target`); never raises."""
        return await self.model_cards.get(checkpoint, local=is_local_reference(checkpoint))

    async def search_models(self, words: str, language: str | None = None) -> ModelSearch:
        """The Hub's fill-mask models for ``words`` (and ``language``), the owner's allow-list
        applied. Raises :class:`InvalidRequestError` for an empty search or an unknown language;
        a Hub failure is the answer's ``problem``."""
        terms = parse_terms(clean_input(words), clean_input(language) if language is not None else None)
        listing, problem = await self.hub_search.search(terms)
        always = (self.default_model,)  # the owner's default is always allowed
        return model_search(terms, listing, problem, self.policy.allowed_models, always=always)

    async def suggest_models(self, current: str) -> list[CatalogEntry]:
        """What ``model set``'s autocomplete may show for ``current``: Hub models first when the Hub
        answers quickly (see :meth:`HubSearch.suggest`), then the offered list. Never raises."""
        allowed = self.policy.allowed_models
        offered = offered_models(allowed)
        if allowed and not any(is_pattern(name) for name in allowed):
            return offered  # only the listed ids can be picked: the Hub has nothing to add
        try:
            found = await self.hub_search.suggest(clean_input(current))
        except Exception:  # closed, or a bug: the curated list still works
            log.warning("Hub suggestions failed", exc_info=True)
            found = None
        if not found:
            return offered
        kept, _ = allowed_only(found, allowed)
        return [hub_entry(model) for model in kept] + offered

    def stats_snapshot(self) -> StatsSnapshot:
        return StatsSnapshot(
            uptime=self.stats.uptime,
            served=self.stats.served,
            refused=self.stats.failed,
            latency=self.stats.latency(),
            loaded=self.registry.loaded_models(),
        )
