"""Sending cards to Discord safely, and turning command errors into friendly cards."""

from __future__ import annotations

import logging
import math

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies.reply import Card, error_card, internal_error_card
from bot.adapters.discord.checks import ShuttingDown
from bot.inference.errors import FillMaskError
from bot.adapters.discord.embeds import card_to_embed

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()


async def send_card(ctx: commands.Context[commands.Bot], card: Card, *, ephemeral: bool = False) -> discord.Message:
    """Reply with ``card``; never pings anyone, and survives the invoking message being deleted."""
    embed = card_to_embed(card)
    if ctx.interaction is None:
        reference = ctx.message.to_reference(fail_if_not_exists=False)
        return await ctx.send(embed=embed, reference=reference, allowed_mentions=NO_MENTIONS)
    return await ctx.send(embed=embed, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)


async def edit_card(message: discord.Message, card: Card) -> None:
    await message.edit(embed=card_to_embed(card), allowed_mentions=NO_MENTIONS)


def card_for_error(ctx: commands.Context[commands.Bot], error: Exception) -> Card | None:
    """The card to show for a command error, or None to stay silent. Logs what is unexpected."""
    # Hybrid commands wrap errors from the slash path; look at what was actually raised.
    if isinstance(error, commands.HybridCommandError):
        error = error.original
    if isinstance(error, (commands.CommandInvokeError, app_commands.CommandInvokeError)):
        error = error.original
    if isinstance(error, FillMaskError):
        return error_card(str(error))
    if isinstance(error, commands.CommandNotFound):
        return None
    if isinstance(error, commands.NoPrivateMessage | app_commands.NoPrivateMessage):
        return error_card("This command only works in a server.")
    if isinstance(error, commands.MissingPermissions | app_commands.MissingPermissions):
        return error_card(
            "You need the **Manage Server** permission to change this server's model.", title="Not allowed"
        )
    if isinstance(error, ShuttingDown):
        return error_card("I'm restarting right now; please try again in a minute.", title="Restarting")
    if isinstance(error, commands.NotOwner):
        return error_card("Only the bot's owner can do that.", title="Not allowed")
    if isinstance(error, commands.CommandOnCooldown | app_commands.CommandOnCooldown):
        return error_card(f"Slow down a little: try again in {max(1, math.ceil(error.retry_after))} s.", title="Cooldown")
    if isinstance(error, commands.MaxConcurrencyReached):
        return error_card("I'm busy with this server's other requests; try again in a few seconds.", title="Busy")
    if isinstance(error, commands.MissingRequiredArgument):
        usage = f"{ctx.clean_prefix}{ctx.command.qualified_name} {ctx.command.signature}" if ctx.command else ""
        if ctx.command is not None and ctx.command.qualified_name == "fill" and ctx.interaction is None:
            usage = f"{ctx.clean_prefix}fill [k=N] <sentence with <mask>> [| word, word]"
        return error_card(f"Something is missing: `{error.param.name}`.\nUsage: `{usage}`", title="Missing argument")
    if isinstance(error, commands.BadArgument | commands.ArgumentParsingError | app_commands.TransformerError):
        return error_card("I couldn't read that command. Check the values and try again.", title="Bad argument")
    if isinstance(error, commands.CheckFailure | app_commands.CheckFailure):
        return error_card("You can't use this command here.", title="Not allowed")
    command = ctx.command.qualified_name if ctx.command else "?"
    log.error("command %s failed", command, exc_info=(type(error), error, error.__traceback__))
    return internal_error_card()
