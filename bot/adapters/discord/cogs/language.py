"""``language show|set|reset``: which language the bot answers in, in this server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord import app_commands
from discord.ext import commands

from bot.adapters.discord.checks import is_manager
from bot.adapters.discord.context import FillContext, server_id
from bot.adapters.discord.locales import command_locale
from bot.i18n import LANGUAGE_NAMES, LOCALES, current_locale, using_locale
from bot.replies.language import language_changed_reply, language_status_reply

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot

LANGUAGE_CHOICES = [app_commands.Choice(name=LANGUAGE_NAMES[code], value=code) for code in LOCALES]


class LanguageCog(commands.Cog, name="Language"):
    def __init__(self, bot: FillMaskBot) -> None:
        self.bot = bot

    @commands.hybrid_group(
        name="language",
        fallback="show",
        description="Which language I answer in, in this server",
        invoke_without_command=True,  # pyright: ignore[reportCallIssue]
    )
    async def language(self, ctx: FillContext) -> None:
        """Show which language I answer in; admins can `set` or `reset` it."""
        chosen = await self.bot.service.language_for(ctx.guild.id if ctx.guild else None)
        await ctx.send_reply(language_status_reply(current_locale(), chosen, set_command=f"{ctx.clean_prefix}language set"))

    @language.command(name="set", description="Choose the language I answer in, in this server (Manage Server)")
    @app_commands.describe(language="A language code: en, fr or ko")
    @app_commands.choices(language=LANGUAGE_CHOICES)
    @is_manager()
    async def set_(self, ctx: FillContext, language: str) -> None:
        locale = await self.bot.service.set_language(server_id(ctx), language, user_id=ctx.author.id)
        await ctx.send_reply(language_changed_reply(locale))

    @language.command(name="reset", description="Follow the server's Discord language again (Manage Server)")
    @is_manager()
    async def reset(self, ctx: FillContext) -> None:
        await self.bot.service.reset_language(server_id(ctx))
        # Answered in the language the server speaks from now on.
        origin = ctx.interaction if ctx.interaction is not None else ctx.message
        locale = await command_locale(self.bot.service, origin)
        with using_locale(locale):
            await ctx.send_reply(language_changed_reply(None))


async def setup(bot: FillMaskBot) -> None:
    await bot.add_cog(LanguageCog(bot))
