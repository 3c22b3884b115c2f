"""The bot's command context: replies sent and edited safely (paced per channel), and flows of replies."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.adapters.discord.embeds import reply_to_embed
from bot.adapters.metrics import Outcome
from bot.replies.flows import Update
from bot.replies.reply import Reply, internal_error_reply

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()

# Discord's error code when the message to edit no longer exists (deleted by someone).
UNKNOWN_MESSAGE = 10008


class ExpiredInteractionError(discord.ClientException):
    """An ephemeral reply whose interaction is over 15 minutes old: Discord no longer accepts
    anything for it, and discord.py would post it in the channel instead, for everyone."""


class FillContext(commands.Context["FillMaskBot"]):
    # Set by the bot as the command starts, and by a command whose reply reports a refusal.
    started: float = 0.0
    outcome: Outcome = "ok"

    async def send_reply(self, reply: Reply, *, ephemeral: bool = False) -> discord.Message:
        """Reply with ``reply``; never pings anyone, and survives the invoking message being deleted."""
        embed = reply_to_embed(reply)
        if self.interaction is None:
            reference = self.message.to_reference(fail_if_not_exists=False)
            async with self.bot.pacing.turn("create", self.channel.id):
                return await self.send(embed=embed, reference=reference, allowed_mentions=NO_MENTIONS)
        if ephemeral and self.interaction.is_expired():
            # A private answer must not become a public channel message (Context.send's fallback).
            log.warning("dropping an ephemeral reply: interaction %s is over 15 minutes old", self.interaction.id)
            raise ExpiredInteractionError("the interaction expired")
        return await self.send(embed=embed, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)

    async def edit_reply(self, message: discord.Message, reply: Reply) -> None:
        if self.interaction is None:
            async with self.bot.pacing.turn("edit", message.channel.id):
                await message.edit(embed=reply_to_embed(reply), allowed_mentions=NO_MENTIONS)
        else:
            await message.edit(embed=reply_to_embed(reply), allowed_mentions=NO_MENTIONS)

    def working(self) -> contextlib.AbstractAsyncContextManager[None]:
        """What the user sees while the reply is computed: on the slash path a deferral (at once:
        the interaction's 3-second deadline), on the prefix path the channel's shared typing indicator."""
        if self.interaction is not None:
            return self.typing()
        return self.bot.typing_indicators.during(self.channel.id, self.channel)

    async def _edit_or_resend(self, notice: discord.Message, reply: Reply, *, deleted: bool) -> discord.Message:
        """Edit ``reply`` into the flow's notice, or send it as a new reply if the notice was deleted
        (an outcome must not be lost with the notice). Returns the message now showing the flow."""
        if not deleted:
            try:
                await self.edit_reply(notice, reply)
                return notice
            except discord.NotFound as exc:
                if exc.code != UNKNOWN_MESSAGE:
                    raise
        log.info("the notice of %s was deleted; sending its outcome as a new reply", self._command_name())
        return await self.send_reply(reply)

    def _command_name(self) -> str:
        return self.command.qualified_name if self.command else "command"

    async def follow(self, updates: AsyncGenerator[Update, None], *, consequence: str | None = None) -> Update | None:
        """Send the flow's first reply, then edit that message with each later one.

        Returns the last update. A failure before anything was sent propagates (the error
        handler answers); after the notice, the notice itself tells of it, so nobody is left
        looking at "loading..." forever. If someone deleted the notice, progress is dropped and
        the outcome comes as a new reply. Rate limits and server errors on an edit are waited
        out and retried by discord.py; meanwhile the flow skips to the newest progress.
        """
        notice: discord.Message | None = None
        deleted = False  # the notice is gone (edit answered Unknown Message)
        last: Update | None = None
        try:
            async for update in updates:
                last = update
                if notice is None:
                    notice = await self.send_reply(update.reply)
                elif update.progress is not None:
                    if deleted:
                        continue  # progress is not worth a new message
                    try:  # a failed progress edit must not fail the command
                        await self.edit_reply(notice, update.reply)
                    except discord.NotFound as exc:
                        deleted = exc.code == UNKNOWN_MESSAGE
                        if not deleted:
                            log.warning("progress edit failed", exc_info=True)
                    except discord.HTTPException:
                        log.warning("progress edit failed", exc_info=True)
                else:
                    notice = await self._edit_or_resend(notice, update.reply, deleted=deleted)
                    deleted = False
        except Exception:
            if notice is None:
                raise
            log.exception("%s failed after its first reply", self._command_name())
            failure = internal_error_reply(consequence) if consequence else internal_error_reply()
            await self._edit_or_resend(notice, failure, deleted=deleted)
            return None
        finally:
            await updates.aclose()
        return last


def server_id(ctx: commands.Context[FillMaskBot]) -> int:
    """The server a guild-only command runs in (its check already refused direct messages)."""
    if ctx.guild is None:
        raise commands.NoPrivateMessage()
    return ctx.guild.id
