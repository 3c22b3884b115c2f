"""``fill``: complete a sentence with the server's checkpoint (``!fill`` and ``/fill``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord import app_commands
from discord.ext import commands

from bot.adapters.discord.context import FillContext
from bot.adapters.discord.request_outcomes import outcome_of
from bot.inference.types import DEFAULT_TOP_K, MAX_TOP_K
from bot.replies.flows import fill_flow

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot


def fill_cooldown(ctx: commands.Context[FillMaskBot]) -> commands.Cooldown | None:
    """Per-user rate limit from the settings; applies on the prefix and the slash path."""
    settings = ctx.bot.settings
    if settings.fill_cooldown_seconds <= 0:
        return None
    return commands.Cooldown(settings.fill_cooldown_rate, settings.fill_cooldown_seconds)


class FillCog(commands.Cog, name="Fill"):
    def __init__(self, bot: FillMaskBot) -> None:
        self.bot = bot

    @commands.dynamic_cooldown(fill_cooldown, commands.BucketType.user)
    @commands.hybrid_command(
        name="fill",
        description="Fill in the blank(s) of a sentence with the server's model",
        usage="[k=N] <sentence with <mask>> [| word, word]",
    )
    @app_commands.describe(
        text="Your sentence, with <mask> (or [MASK]) where a word is missing",
        top_k=f"How many predictions to show per blank (1-{MAX_TOP_K}, default {DEFAULT_TOP_K})",
        targets="Only score these words, comma-separated (e.g. bon, mauvais)",
    )
    async def fill(
        self,
        ctx: FillContext,
        *,
        text: str,
        top_k: commands.Range[int, 1, MAX_TOP_K] | None = None,
        targets: str | None = None,
    ) -> None:
        """Fill in the blanks: !fill [k=N] <sentence with <mask>> [| word, word]"""
        guild_id = ctx.guild.id if ctx.guild else None
        # Defers the interaction at once (the 3-second deadline) or shows "typing" on the prefix path.
        async with self.bot.reply_in_flight(), ctx.working():
            last = await ctx.follow(fill_flow(self.bot.service, guild_id, text, top_k=top_k, targets=targets))
        if last is not None and last.error is not None:
            ctx.outcome = outcome_of(last.error)


async def setup(bot: FillMaskBot) -> None:
    await bot.add_cog(FillCog(bot))
