"""``help`` for everyone and the owner's ``stats``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord.ext import commands

from bot.adapters.discord.context import FillContext
from bot.replies.info import help_reply, stats_reply

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot


class InfoCog(commands.Cog, name="Info"):
    def __init__(self, bot: FillMaskBot) -> None:
        self.bot = bot

    @commands.hybrid_command(name="help", description="How to use the fill-mask bot")
    async def help(self, ctx: FillContext) -> None:
        status = await self.bot.service.status(ctx.guild.id if ctx.guild else None)
        # On the slash path there is no prefix to echo: show the one the bot answers to.
        prefix = ctx.clean_prefix if ctx.interaction is None else self.bot.settings.command_prefix
        await ctx.send_reply(help_reply(prefix, status.mask_token or "<mask>", status.checkpoint))

    @commands.hybrid_command(name="stats", description="Bot statistics (bot owner only)")
    @commands.is_owner()
    async def stats(self, ctx: FillContext) -> None:
        processes = await self.bot.other_processes()
        reply = stats_reply(
            self.bot.service.stats_snapshot(), len(self.bot.guilds), processes=processes, answered_by=self.bot.process
        )
        await ctx.send_reply(reply, ephemeral=True)


async def setup(bot: FillMaskBot) -> None:
    await bot.add_cog(InfoCog(bot))
