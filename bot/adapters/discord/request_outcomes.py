"""What became of a command, in the metrics' words (``fillmask_requests_total{outcome}``)."""

from __future__ import annotations

from discord import app_commands
from discord.ext import commands

from bot.adapters.discord.checks import ShuttingDown
from bot.adapters.metrics import Outcome
from bot.inference.errors import BusyError, CheckpointError, InvalidRequestError

# The user asked for something that cannot be done as asked.
_INVALID = (
    InvalidRequestError,
    CheckpointError,
    commands.UserInputError,
    commands.CheckFailure,
    app_commands.CheckFailure,
    app_commands.TransformerError,
)
# Refused for now; the same request later works.
_LIMITED = (commands.CommandOnCooldown, app_commands.CommandOnCooldown, commands.MaxConcurrencyReached)


def outcome_of(error: BaseException) -> Outcome:
    while isinstance(error, commands.HybridCommandError | commands.CommandInvokeError | app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, BusyError | ShuttingDown):
        return "busy"
    if isinstance(error, _LIMITED):  # before CheckFailure: a cooldown is one
        return "limited"
    if isinstance(error, _INVALID):
        return "invalid"
    return "failed"  # on our side: the model, the settings database, a bug
