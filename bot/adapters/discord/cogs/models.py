"""``model show|set|reset``: which checkpoint this server uses."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies.reply import (
    Card,
    internal_error_card,
    loading_card,
    model_changed_card,
    model_not_changed_card,
    model_status_card,
    progress_card,
)
from bot.replies.model_card import model_info_card
from bot.replies.model_list import autocomplete_choices, model_list_card
from bot.service.catalog import offered_models
from bot.adapters.discord.checks import server_permissions_check
from bot.inference.errors import FillMaskError
from bot.inference.checkpoint_policy import (
    CheckpointPolicy,
    canonical_reference,
    check_allowed,
    is_local_reference,
)
from bot.service.model_cards import load_model_card
from bot.adapters.discord.error_replies import edit_card, send_card
from bot.service.fill_mask_service import FillMaskService

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot

log = logging.getLogger(__name__)

# Model cards change rarely; don't ask the Hub again for every `model info`.
CARD_CACHE_SECONDS = 600.0


def model_set_cooldown(ctx: commands.Context[FillMaskBot]) -> commands.Cooldown | None:
    """One switch per server per MODEL_SET_COOLDOWN_SECONDS: each switch may download and load."""
    seconds = ctx.bot.settings.model_set_cooldown_seconds
    return commands.Cooldown(1, seconds) if seconds > 0 else None


class ModelCog(commands.Cog, name="Model"):
    def __init__(self, bot: FillMaskBot) -> None:
        self.bot = bot
        self._cards: dict[str, tuple[float, Card]] = {}

    @commands.hybrid_group(name="model", invoke_without_command=True, description="Show or change this server's model")
    async def model(self, ctx: commands.Context[FillMaskBot]) -> None:
        """Show this server's model; admins can `set` or `reset` it."""
        await self.show(ctx)

    @model.command(name="show", description="Show the checkpoint this server uses")
    async def show(self, ctx: commands.Context[FillMaskBot]) -> None:
        status = await self.bot.service.status(ctx.guild.id if ctx.guild else None)
        await send_card(ctx, model_status_card(status, in_server=ctx.guild is not None))

    @model.command(name="set", description="Switch this server to another fill-mask checkpoint (Manage Server)")
    @app_commands.describe(checkpoint="A Hugging Face model id, e.g. camembert-base or bert-base-uncased")
    @server_permissions_check(manage_guild=True)
    @commands.dynamic_cooldown(model_set_cooldown, commands.BucketType.guild)
    async def set_(self, ctx: commands.Context[FillMaskBot], *, checkpoint: str) -> None:
        assert ctx.guild is not None  # the check guarantees it
        service = self.bot.service
        previous = await service.checkpoint_for(ctx.guild.id)
        async with self.bot.reply_in_flight():
            await self._switch(ctx, service, checkpoint, previous)

    async def _switch(self, ctx: commands.Context[FillMaskBot], service: FillMaskService, checkpoint: str, previous: str) -> None:
        assert ctx.guild is not None
        # Answer at once (well within the interaction deadline), then edit when the load ends.
        notice = await send_card(ctx, loading_card(checkpoint, what="Switching to"))
        try:
            status = await service.set_checkpoint(
                ctx.guild.id,
                checkpoint,
                user_id=ctx.author.id,
                on_progress=lambda progress: edit_card(notice, progress_card(checkpoint, progress)),
            )
        except FillMaskError as exc:
            # A refused or failed switch loaded nothing to speak of: don't make the admin wait.
            self.set_.reset_cooldown(ctx)
            await edit_card(notice, model_not_changed_card(str(exc), previous))
            return
        except Exception:
            log.exception("model set %r failed", checkpoint)
            await edit_card(notice, internal_error_card("The model was not changed."))
            return
        await edit_card(notice, model_changed_card(status))

    @set_.autocomplete("checkpoint")
    async def set_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        offered = offered_models(self.bot.settings.allowed_models)
        return [app_commands.Choice(name=name, value=value) for name, value in autocomplete_choices(current, offered)]

    @model.command(name="list", description="The checkpoints this bot offers, and which are loaded")
    async def list_(self, ctx: commands.Context[FillMaskBot]) -> None:
        offered = offered_models(self.bot.settings.allowed_models)
        card = model_list_card(offered, self.bot.registry.loaded, self.bot.service.default_model)
        await send_card(ctx, card)

    @model.command(name="info", description="What a checkpoint's model card says: task, languages, license, limits")
    # Each new name may cost a Hub request: a few per user per half minute.
    @commands.cooldown(3, 30.0, commands.BucketType.user)
    @app_commands.describe(checkpoint="A Hugging Face model id; default: this server's model")
    async def info(self, ctx: commands.Context[FillMaskBot], *, checkpoint: str | None = None) -> None:
        service = self.bot.service
        current = await service.checkpoint_for(ctx.guild.id if ctx.guild else None)
        target = checkpoint.strip() if checkpoint and checkpoint.strip() else current
        if canonical_reference(target) != current and canonical_reference(target) != service.default_model:
            # Reading a card is harmless, but local folders stay behind the owner's policy.
            policy = service.policy if is_local_reference(target) else CheckpointPolicy()
            target = check_allowed(target, policy)
        async with ctx.typing():
            card = await self._model_card(target)
        await send_card(ctx, card)

    async def _model_card(self, checkpoint: str) -> Card:
        cached = self._cards.get(checkpoint)
        if cached is not None and time.monotonic() - cached[0] < CARD_CACHE_SECONDS:
            return cached[1]
        # Blocking (disk or Hub, with timeouts): off the event loop.
        info = await asyncio.to_thread(load_model_card, checkpoint, local=is_local_reference(checkpoint))
        card = model_info_card(info)
        self._cards[checkpoint] = (time.monotonic(), card)
        return card

    @model.command(name="reset", description="Go back to the bot's default checkpoint (Manage Server)")
    @server_permissions_check(manage_guild=True)
    async def reset(self, ctx: commands.Context[FillMaskBot]) -> None:
        assert ctx.guild is not None
        status = await self.bot.service.reset_checkpoint(ctx.guild.id)
        await send_card(ctx, model_changed_card(status, reset=True))


async def setup(bot: FillMaskBot) -> None:
    await bot.add_cog(ModelCog(bot))
