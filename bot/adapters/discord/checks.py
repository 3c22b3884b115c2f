"""Checks that hold on both paths of a hybrid command."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from discord import app_commands
from discord.ext import commands

T = TypeVar("T")


class ShuttingDown(commands.CheckFailure):
    """Raised for commands that arrive once a shutdown has begun."""


def is_manager() -> Callable[[T], T]:
    """Only members who may manage the server (its owner and Administrators included).

    ``commands.has_guild_permissions`` runs on the prefix and the slash path alike, and is
    what protects subcommands: Discord ignores ``default_permissions`` on them. It is set
    anyway, so that a top-level command using this check is hidden from other members.
    """

    def decorator(func: T) -> T:
        commands.has_guild_permissions(manage_guild=True)(func)
        app_commands.default_permissions(manage_guild=True)(func)
        return func

    return decorator
