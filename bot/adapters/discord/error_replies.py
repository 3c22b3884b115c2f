"""Command errors as friendly replies, on both paths of a hybrid command."""

from __future__ import annotations

import logging
import math
from typing import Any

from discord import app_commands
from discord.ext import commands

from bot.adapters.discord.checks import ShuttingDown
from bot.inference.errors import FillMaskError
from bot.replies.markup import Code, rich
from bot.replies.reply import Reply, error_reply, internal_error_reply

log = logging.getLogger(__name__)


def permission_name(flag: str) -> str:
    """``manage_guild`` as Discord's client names it: "Manage Server"."""
    special = {"manage_guild": "Manage Server", "administrator": "Administrator"}
    return special.get(flag, flag.replace("_", " ").title().replace("Guild", "Server"))


def reply_for_error(ctx: commands.Context[Any], error: Exception) -> Reply | None:
    """The reply to show for a command error, or None to stay silent. Logs what is unexpected."""
    # Hybrid commands wrap errors from the slash path; look at what was actually raised.
    if isinstance(error, commands.HybridCommandError):
        error = error.original
    if isinstance(error, (commands.CommandInvokeError, app_commands.CommandInvokeError)):
        error = error.original
    if isinstance(error, FillMaskError):
        return error_reply(error.localized(), title=error.localized_title())
    if isinstance(error, commands.CommandNotFound):
        return None
    if isinstance(error, commands.NoPrivateMessage | app_commands.NoPrivateMessage):
        return error_reply("This command only works in a server.")
    if isinstance(error, commands.MissingPermissions | app_commands.MissingPermissions):
        needed = " and ".join(f"**{permission_name(flag)}**" for flag in error.missing_permissions)
        noun = "permission" if len(error.missing_permissions) == 1 else "permissions"
        return error_reply(f"You need the {needed} {noun} to use this command.", title="Not allowed")
    if isinstance(error, ShuttingDown):
        return error_reply("I'm restarting right now; please try again in a minute.", title="Restarting")
    if isinstance(error, commands.NotOwner):
        return error_reply("Only the bot's owner can do that.", title="Not allowed")
    if isinstance(error, commands.CommandOnCooldown | app_commands.CommandOnCooldown):
        return error_reply(f"Slow down a little: try again in {max(1, math.ceil(error.retry_after))} s.", title="Cooldown")
    if isinstance(error, commands.MaxConcurrencyReached):
        return error_reply("I'm busy with other requests for this command; try again in a few seconds.", title="Busy")
    if isinstance(error, commands.MissingRequiredArgument):
        usage = f"{ctx.clean_prefix}{ctx.command.qualified_name} {ctx.command.signature}" if ctx.command else ""
        return error_reply(
            rich(f"Something is missing: `{error.param.name}`.\nUsage: ", Code(usage.strip())), title="Missing argument"
        )
    if isinstance(error, commands.BadArgument | commands.ArgumentParsingError | app_commands.TransformerError):
        return error_reply("I couldn't read that command. Check the values and try again.", title="Bad argument")
    if isinstance(error, commands.CheckFailure | app_commands.CheckFailure):
        return error_reply("You can't use this command here.", title="Not allowed")
    command = ctx.command.qualified_name if ctx.command else "?"
    log.error("command %s failed", command, exc_info=(type(error), error, error.__traceback__))
    return internal_error_reply()
