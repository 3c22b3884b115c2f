"""``fill``: complete a sentence with the server's checkpoint (``!fill`` and ``/fill``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.adapters.discord.cogs.models import checkpoint_choices
from bot.adapters.discord.context import FillContext
from bot.adapters.discord.request_outcomes import outcome_of
from bot.inference.types import DEFAULT_TOP_K, MAX_TOP_K
from bot.replies.flows import fill_flow
from bot.service.fill_mask_service import FillQuery

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot


def fill_cooldown(ctx: commands.Context[FillMaskBot]) -> commands.Cooldown | None:
    """Per-user rate limit from the settings; applies on the prefix and the slash path."""
    settings = ctx.bot.settings
    if settings.fill_cooldown_seconds <= 0:
        return None
    return commands.Cooldown(settings.fill_cooldown_rate, settings.fill_cooldown_seconds)


def _guild_id(ctx: commands.Context[FillMaskBot]) -> int | None:
    return ctx.guild.id if ctx.guild else None


def compare_load_cooldown(ctx: commands.Context[FillMaskBot]) -> commands.Cooldown | None:
    """A ``compare`` that must load its checkpoint costs what a ``model set`` does: one per
    server per MODEL_SET_COOLDOWN_SECONDS (a compare with a loaded checkpoint costs a fill)."""
    seconds = ctx.bot.settings.model_set_cooldown_seconds
    return commands.Cooldown(1, seconds) if seconds > 0 else None


class FillCog(commands.Cog, name="Fill"):
    def __init__(self, bot: FillMaskBot) -> None:
        self.bot = bot
        self._compare_loads = commands.DynamicCooldownMapping(compare_load_cooldown, commands.BucketType.guild)

    def compare_load_turn(self, ctx: FillContext, query: FillQuery) -> commands.Cooldown | None:
        """For a ``compare`` (resolved: FillMaskService.resolve_compare) that must load its
        checkpoint, spend the server's turn (raising CommandOnCooldown when it is spent); the
        bucket to refund if the compare fails, else None. The context menu uses it too: a
        right-clicked ``compare=`` message costs the same."""
        if query.compared is None or not self.bot.service.needs_load(query.compared):
            return None
        bucket = self._compare_loads.get_bucket(ctx)
        if bucket is None:
            return None
        retry_after = bucket.update_rate_limit()
        if retry_after:
            raise commands.CommandOnCooldown(bucket, retry_after, commands.BucketType.guild)
        return bucket

    @commands.dynamic_cooldown(fill_cooldown, commands.BucketType.user)
    @commands.hybrid_command(
        name="fill",
        description="Fill in the blank(s) of a sentence with the server's model",
        usage="[k=N] [compare=<checkpoint>] <sentence with <mask>> [| word, word]",
    )
    @app_commands.describe(
        text="Your sentence, with <mask> (or [MASK]) where a word is missing",
        top_k=f"How many predictions to show per blank (1-{MAX_TOP_K}, default {DEFAULT_TOP_K})",
        targets="Only score these words, comma-separated (e.g. bon, mauvais)",
        compare="Another checkpoint to answer the same sentence beside this server's, e.g. bert-base-uncased",
    )
    async def fill(
        self,
        ctx: FillContext,
        *,
        text: str,
        top_k: commands.Range[int, 1, MAX_TOP_K] | None = None,
        targets: str | None = None,
        compare: str | None = None,
    ) -> None:
        """Fill in the blanks: !fill [k=N] [compare=<checkpoint>] <sentence with <mask>> [| word, word]"""
        service = self.bot.service
        guild_id = _guild_id(ctx)
        # Read first (a refusal goes to the error handler), so a compare's load can cost its cooldown.
        query = await service.resolve_compare(guild_id, service.query(text, top_k=top_k, targets=targets, compare=compare))
        load_turn = self.compare_load_turn(ctx, query)
        # Defers the interaction at once (the 3-second deadline) or shows "typing" on the prefix path.
        async with self.bot.reply_in_flight(), ctx.working():
            last = await ctx.follow(fill_flow(service, guild_id, query))
        if last is not None and last.error is not None:
            ctx.outcome = outcome_of(last.error)
        if load_turn is not None and (last is None or not last.succeeded):
            load_turn.reset()  # the load was refused or failed: it cost nothing

    @fill.autocomplete("compare")
    async def compare_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await checkpoint_choices(self.bot, current)


async def setup(bot: FillMaskBot) -> None:
    await bot.add_cog(FillCog(bot))
