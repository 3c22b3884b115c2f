"""The bot's command context: replies sent and edited safely, and flows of replies."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.adapters.discord.embeds import reply_to_embed
from bot.replies.flows import Update
from bot.replies.reply import Reply, internal_error_reply

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()


class FillContext(commands.Context["FillMaskBot"]):
    async def send_reply(self, reply: Reply, *, ephemeral: bool = False) -> discord.Message:
        """Reply with ``reply``; never pings anyone, and survives the invoking message being deleted."""
        embed = reply_to_embed(reply)
        if self.interaction is None:
            reference = self.message.to_reference(fail_if_not_exists=False)
            return await self.send(embed=embed, reference=reference, allowed_mentions=NO_MENTIONS)
        return await self.send(embed=embed, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)

    @staticmethod
    async def edit_reply(message: discord.Message, reply: Reply) -> None:
        await message.edit(embed=reply_to_embed(reply), allowed_mentions=NO_MENTIONS)

    async def follow(self, updates: AsyncGenerator[Update, None], *, consequence: str | None = None) -> Update | None:
        """Send the flow's first reply, then edit that message with each later one.

        Returns the last update. A failure before anything was sent propagates (the error
        handler answers); after the notice, the notice itself tells of it, so nobody is left
        looking at "loading..." forever.
        """
        notice: discord.Message | None = None
        last: Update | None = None
        try:
            async for update in updates:
                last = update
                if notice is None:
                    notice = await self.send_reply(update.reply)
                elif update.progress is not None:
                    try:  # a failed progress edit must not fail the command
                        await self.edit_reply(notice, update.reply)
                    except discord.HTTPException:
                        log.warning("progress edit failed", exc_info=True)
                else:
                    await self.edit_reply(notice, update.reply)
        except Exception:
            if notice is None:
                raise
            log.exception("%s failed after its first reply", self.command.qualified_name if self.command else "command")
            await self.edit_reply(notice, internal_error_reply(consequence) if consequence else internal_error_reply())
            return None
        finally:
            await updates.aclose()
        return last


def server_id(ctx: commands.Context[FillMaskBot]) -> int:
    """The server a guild-only command runs in (its check already refused direct messages)."""
    if ctx.guild is None:
        raise commands.NoPrivateMessage()
    return ctx.guild.id
