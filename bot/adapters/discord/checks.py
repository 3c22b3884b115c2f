"""Permission checks that hold on both paths of a hybrid command."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import discord
from discord.ext import commands

T = TypeVar("T")


class ShuttingDown(commands.CheckFailure):
    """Raised for commands that arrive once a shutdown has begun."""


def server_permissions_check(**required: bool) -> Callable[[T], T]:
    """Require server-level permissions, in a server, on the prefix and the slash path.

    On the slash path the permissions come from the interaction (Discord computed them,
    owner and Administrator included); on the prefix path from the member's roles.
    ``app_commands.default_permissions`` is not used: Discord ignores it on subcommands,
    so this runtime check is what protects them.
    """

    async def predicate(ctx: commands.Context[commands.Bot]) -> bool:
        if ctx.guild is None:
            raise commands.NoPrivateMessage()
        permissions: discord.Permissions
        if ctx.interaction is not None:
            permissions = ctx.interaction.permissions
        elif isinstance(ctx.author, discord.Member):
            permissions = ctx.author.guild_permissions
        else:
            permissions = discord.Permissions.none()
        missing = [name for name, value in required.items() if getattr(permissions, name) != value]
        if missing:
            raise commands.MissingPermissions(missing)
        return True

    return commands.check(predicate)
