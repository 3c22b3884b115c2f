"""Which language the bot answers a command in.

On the slash path, the language of the member's Discord client (``interaction.locale``) when
the bot speaks it: a reply made for one person speaks that person's language. Otherwise, and
on the prefix path, the server's: the language its admins chose with ``language set``, else
the server's Discord "preferred locale" (Server Settings → Community), else English.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.i18n import DEFAULT_LOCALE, Locale, supported_locale

if TYPE_CHECKING:
    from bot.service.fill_mask_service import FillMaskService


async def server_locale(service: FillMaskService, guild_id: int | None, preferred: str | None) -> Locale:
    """The server's language: its admins' choice, else its Discord preferred locale, else English."""
    chosen = await service.language_for(guild_id) if guild_id is not None else None
    if chosen is not None:
        return chosen
    return supported_locale(preferred) or DEFAULT_LOCALE


async def command_locale(service: FillMaskService, origin: discord.Message | discord.Interaction) -> Locale:
    """The language to answer ``origin`` in (see the module's docstring)."""
    if isinstance(origin, discord.Interaction):
        member_locale = supported_locale(origin.locale.value)
        if member_locale is not None:
            return member_locale
        preferred = origin.guild_locale.value if origin.guild_locale is not None else None
        return await server_locale(service, origin.guild_id, preferred)
    guild = origin.guild
    if guild is None:
        return DEFAULT_LOCALE
    return await server_locale(service, guild.id, guild.preferred_locale.value)
