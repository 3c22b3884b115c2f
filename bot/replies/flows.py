"""The sequences of replies a command produces, shared by every adapter.

A command that may wait (a checkpoint loading) answers at once with a notice, then updates it,
then gives its final reply. Each flow is an async iterator of :class:`Update`: an adapter sends
the first one and edits that message with the rest (Discord), or prints each (console).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from bot.inference.errors import FillMaskError
from bot.inference.progress import LoadProgress
from bot.replies.fill import fill_answer_reply, loading_reply, progress_reply
from bot.replies.models import model_changed_reply, model_not_changed_reply, model_superseded_reply, with_revocation_note
from bot.replies.reply import Reply, error_reply
from bot.replies.side_by_side import comparison_reply, variants_reply
from bot.service.fill_mask_service import PROGRESS_INTERVAL, FillMaskService, FillQuery, SwitchSupersededError


@dataclass(frozen=True, slots=True)
class Update:
    reply: Reply
    # False on a final reply that reports a refusal or failure (the adapter may undo a cooldown).
    succeeded: bool = True
    # A progress line, for adapters that show progress differently from the notice.
    progress: LoadProgress | None = None
    # What a failed final reply reports, for adapters that count outcomes (metrics).
    error: Exception | None = None


async def fill_flow(
    service: FillMaskService,
    guild_id: int | None,
    text: str | FillQuery,
    *,
    top_k: int | None = None,
    targets: str | None = None,
    compare: str | None = None,
) -> AsyncGenerator[Update, None]:
    """A loading notice if a checkpoint it needs is not loaded yet, then the predictions (or
    why not: a refusal, "busy" when the server's share of the queue is full, ...).

    ``text`` is typed text, or a :class:`FillQuery` the adapter already read (to apply a
    cooldown first). A query with ``compare`` answers beside the compared checkpoint; one with a
    ``{a|b}`` group answers once per alternative.
    """
    try:
        query = text if isinstance(text, FillQuery) else service.query(text, top_k=top_k, targets=targets, compare=compare)
        query = await service.resolve_compare(guild_id, query)
        if query.compared is not None:
            other = query.compared
            comparing = asyncio.ensure_future(service.compare(guild_id, query, other))
            try:
                if service.needs_load(other):
                    yield Update(loading_reply(other, compared=True))
                    # Like `model set`: the load's stages, at most once per PROGRESS_INTERVAL, while it lasts.
                    last: LoadProgress | None = None
                    while not comparing.done():
                        await asyncio.wait({comparing}, timeout=PROGRESS_INTERVAL)
                        progress = service.registry.progress(other)
                        if not comparing.done() and progress is not None and progress != last:
                            last = progress
                            yield Update(progress_reply(other, progress, compared=True), progress=progress)
                elif not await service.is_ready(guild_id):
                    yield Update(loading_reply(await service.checkpoint_for(guild_id)))
                reply = comparison_reply(await comparing)
            finally:
                if not comparing.done():
                    comparing.cancel()
        else:
            if not await service.is_ready(guild_id):
                yield Update(loading_reply(await service.checkpoint_for(guild_id)))
            if query.variants is not None:
                reply = variants_reply(await service.variants(guild_id, query))
            else:
                reply = fill_answer_reply(await service.answer(guild_id, query))
    except FillMaskError as exc:
        reply = with_revocation_note(
            error_reply(exc.localized(), title=exc.localized_title()),
            service.take_revocation_notice(guild_id),
            service.default_model,
        )
        yield Update(reply, succeeded=False, error=exc)
        return
    revoked = service.take_revocation_notice(guild_id)
    yield Update(with_revocation_note(reply, revoked, service.default_model))


async def switch_flow(
    service: FillMaskService, guild_id: int, checkpoint: str, *, user_id: int | None = None
) -> AsyncGenerator[Update, None]:
    """``model set``: a notice at once, the load's progress while it lasts, then the outcome."""
    yield Update(loading_reply(checkpoint, switching=True))
    latest: asyncio.Queue[LoadProgress] = asyncio.Queue()

    async def report(progress: LoadProgress) -> None:
        latest.put_nowait(progress)

    switching = asyncio.ensure_future(service.set_checkpoint(guild_id, checkpoint, user_id=user_id, on_progress=report))
    try:
        while not switching.done():
            waiting = asyncio.ensure_future(latest.get())
            await asyncio.wait({switching, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                waiting.cancel()
                continue
            progress = waiting.result()
            while not latest.empty():  # a slow edit: skip to the newest progress
                progress = latest.get_nowait()
            yield Update(progress_reply(checkpoint, progress), progress=progress)
        status = switching.result()
    except SwitchSupersededError as exc:
        yield Update(model_superseded_reply(exc.localized()), succeeded=False)
        return
    except FillMaskError as exc:  # refused, failed, or the bot is restarting: the old choice stays
        # Read now, not before: a `model reset` sent meanwhile is what the server keeps.
        yield Update(model_not_changed_reply(exc.localized(), await service.checkpoint_for(guild_id)), succeeded=False)
        return
    finally:
        if not switching.done():
            switching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await switching
    yield Update(model_changed_reply(status))
