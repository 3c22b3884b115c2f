"""Command errors as friendly replies, on both paths of a hybrid command."""

from __future__ import annotations

import logging
import math
from typing import Any

from discord import app_commands
from discord.ext import commands

from bot.adapters.discord.checks import ShuttingDown
from bot.i18n import COMMAND_DESCRIPTION, N_, _, ngettext, pgettext
from bot.inference.errors import FillMaskError
from bot.replies.markup import Code, rich_format
from bot.replies.reply import Reply, error_reply, internal_error_reply

log = logging.getLogger(__name__)

# The permissions the bot's checks ask for, as Discord's client names them (it translates them too).
PERMISSION_NAMES = {"manage_guild": N_("Manage Server"), "administrator": N_("Administrator")}


def permission_name(flag: str) -> str:
    """``manage_guild`` as Discord's client names it: "Manage Server"."""
    if flag in PERMISSION_NAMES:
        return _(PERMISSION_NAMES[flag])
    # A permission no check of ours asks for: Discord's English name, derived from the flag.
    return flag.replace("_", " ").title().replace("Guild", "Server")


def _listed(items: list[str]) -> str:
    """``A and B and C``: items joined in the current locale."""
    shown = items[0] if items else ""
    for item in items[1:]:
        shown = _("{first} and {second}", first=shown, second=item)
    return shown


def _usage(ctx: commands.Context[Any]) -> str:
    """How to write the command, e.g. ``!model set <checkpoint>``; a usage text written for the
    command (``usage=``) in the current locale."""
    command = ctx.command
    if command is None:
        return ""
    # A written usage is shown as is by discord.py's ``signature``: show it translated instead.
    signature = pgettext(COMMAND_DESCRIPTION, command.usage) if command.usage is not None else command.signature
    return f"{ctx.clean_prefix}{command.qualified_name} {signature}".strip()


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
        return error_reply(_("This command only works in a server."))
    if isinstance(error, commands.MissingPermissions | app_commands.MissingPermissions):
        needed = _listed([f"**{permission_name(flag)}**" for flag in error.missing_permissions])
        return error_reply(
            ngettext(
                "You need the {permissions} permission to use this command.",
                "You need the {permissions} permissions to use this command.",
                len(error.missing_permissions),
                permissions=needed,
            ),
            title=_("Not allowed"),
        )
    if isinstance(error, ShuttingDown):
        return error_reply(_("I'm restarting right now; please try again in a minute."), title=_("Restarting"))
    if isinstance(error, commands.NotOwner):
        return error_reply(_("Only the bot's owner can do that."), title=_("Not allowed"))
    if isinstance(error, commands.CommandOnCooldown | app_commands.CommandOnCooldown):
        seconds = max(1, math.ceil(error.retry_after))
        return error_reply(_("Slow down a little: try again in {seconds} s.", seconds=seconds), title=_("Cooldown"))
    if isinstance(error, commands.MaxConcurrencyReached):
        return error_reply(_("I'm busy with other requests for this command; try again in a few seconds."), title=_("Busy"))
    if isinstance(error, commands.MissingRequiredArgument):
        # One message, the usage shown as inline code in it (the prefix is the user's text).
        missing = rich_format(
            _("Something is missing: `{parameter}`.\nUsage: {usage}"),
            parameter=error.param.name,
            usage=Code(_usage(ctx)),
        )
        return error_reply(missing, title=_("Missing argument"))
    if isinstance(error, commands.BadArgument | commands.ArgumentParsingError | app_commands.TransformerError):
        return error_reply(_("I couldn't read that command. Check the values and try again."), title=_("Bad argument"))
    if isinstance(error, commands.CheckFailure | app_commands.CheckFailure):
        return error_reply(_("You can't use this command here."), title=_("Not allowed"))
    command = ctx.command.qualified_name if ctx.command else "?"
    log.error("command %s failed", command, exc_info=(type(error), error, error.__traceback__))
    return internal_error_reply()
