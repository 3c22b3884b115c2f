"""Owner-only maintenance: syncing the slash-command tree on demand.

discord.py advises against syncing on every start (examples/advanced_startup.py): commands
change rarely and sync is rate-limited. The owner runs ``!sync`` after an upgrade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord.ext import commands

from bot.adapters.discord.context import FillContext
from bot.i18n import _, ngettext
from bot.replies.reply import ok_reply

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot


class OwnerCog(commands.Cog, name="Owner"):
    def __init__(self, bot: FillMaskBot) -> None:
        self.bot = bot

    @commands.command(name="sync", hidden=True)
    @commands.is_owner()
    async def sync(self, ctx: FillContext, scope: Literal["global", "here", "clear"] = "global") -> None:
        """Publish slash commands: `global` (everywhere, up to an hour), `here` (this server, at once), `clear` (remove them here)."""
        if scope == "global":
            synced = await self.bot.tree.sync()
            done = ngettext("{n} command globally.", "{n} commands globally.", len(synced))
        elif ctx.guild is None:
            raise commands.NoPrivateMessage()
        else:
            guild = discord.Object(id=ctx.guild.id)
            if scope == "here":
                self.bot.tree.copy_global_to(guild=guild)
            else:
                self.bot.tree.clear_commands(guild=guild)
            synced = await self.bot.tree.sync(guild=guild)
            done = ngettext("{n} command in this server.", "{n} commands in this server.", len(synced))
        await ctx.send_reply(ok_reply(_("Slash commands synced"), done))


async def setup(bot: FillMaskBot) -> None:
    await bot.add_cog(OwnerCog(bot))
