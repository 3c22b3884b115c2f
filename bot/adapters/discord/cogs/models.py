"""``model show|set|reset|list|info|search``: which checkpoint this server uses, and which it could."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.adapters.discord.checks import is_manager
from bot.adapters.discord.context import FillContext, server_id
from bot.i18n import _
from bot.replies.flows import switch_flow
from bot.replies.model_card import model_card_reply
from bot.replies.model_list import autocomplete_choices, model_list_reply
from bot.replies.model_search import model_search_reply
from bot.replies.models import model_changed_reply, model_status_reply, with_revocation_note

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot


def model_set_cooldown(ctx: commands.Context[FillMaskBot]) -> commands.Cooldown | None:
    """One switch per server per MODEL_SET_COOLDOWN_SECONDS: each switch may download and load."""
    seconds = ctx.bot.settings.model_set_cooldown_seconds
    return commands.Cooldown(1, seconds) if seconds > 0 else None


async def checkpoint_choices(bot: FillMaskBot, current: str) -> list[app_commands.Choice[str]]:
    """The autocomplete of a checkpoint option (`model set`, `fill compare:`): from the Hub when
    it answers within about a second (else from the curated list, while the Hub's answer fills the
    cache for the next keystroke): Discord waits 3 s at most."""
    offered = await bot.service.suggest_models(current)
    return [app_commands.Choice(name=name, value=value) for name, value in autocomplete_choices(current, offered)]


class ModelCog(commands.Cog, name="Model"):
    def __init__(self, bot: FillMaskBot) -> None:
        self.bot = bot

    # invoke_without_command: `!model set x` must not show the status first. discord.py accepts
    # it at run time; its typed keywords for hybrid groups leave it out.
    @commands.hybrid_group(
        name="model",
        fallback="show",
        description="Show or change this server's model",
        invoke_without_command=True,  # pyright: ignore[reportCallIssue]
    )
    async def model(self, ctx: FillContext) -> None:
        """Show this server's model; admins can `set` or `reset` it."""
        service = self.bot.service
        guild_id = ctx.guild.id if ctx.guild else None
        reply = model_status_reply(await service.status(guild_id), in_server=ctx.guild is not None)
        await ctx.send_reply(with_revocation_note(reply, service.take_revocation_notice(guild_id), service.default_model))

    @model.command(name="set", description="Switch this server to another fill-mask checkpoint (Manage Server)")
    @app_commands.describe(checkpoint="A Hugging Face model id, e.g. camembert-base or bert-base-uncased")
    @is_manager()
    @commands.dynamic_cooldown(model_set_cooldown, commands.BucketType.guild)
    async def set_(self, ctx: FillContext, *, checkpoint: str) -> None:
        flow = switch_flow(self.bot.service, server_id(ctx), checkpoint, user_id=ctx.author.id)
        async with self.bot.reply_in_flight():
            # Answers at once (well within the interaction deadline), then edits as the load goes.
            last = await ctx.follow(flow, consequence=_("The model was not changed."))
        if last is None or not last.succeeded:
            # A refused, failed or superseded switch changed nothing: don't make the admin wait.
            self.set_.reset_cooldown(ctx)

    @set_.autocomplete("checkpoint")
    async def set_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await checkpoint_choices(self.bot, current)

    @model.command(name="list", description="The checkpoints this bot offers, and which are loaded")
    async def list_(self, ctx: FillContext) -> None:
        offered = self.bot.service.offered_models()
        await ctx.send_reply(model_list_reply(offered.entries, offered.loaded, offered.default))

    @model.command(name="search", description="Search the Hugging Face Hub for fill-mask models")
    # Each new search is a Hub request (answers are kept a few minutes).
    @commands.cooldown(3, 30.0, commands.BucketType.user)
    @app_commands.describe(
        words="Words in the model's id, e.g. camembert or bert base",
        language="Only models for this language: a code such as fr, en, de (optional)",
    )
    async def search(self, ctx: FillContext, *, words: str, language: str | None = None) -> None:
        """Search the Hub: `model search camembert fr` (a last word that is a language code is the language)."""
        async with ctx.typing():
            found = await self.bot.service.search_models(words, language)
        await ctx.send_reply(model_search_reply(found, set_command=f"{ctx.clean_prefix}model set"))

    @model.command(name="info", description="What a checkpoint's model card says: task, languages, license, limits")
    # Each new name may cost a Hub request: a few per user per half minute.
    @commands.cooldown(3, 30.0, commands.BucketType.user)
    @app_commands.describe(checkpoint="A Hugging Face model id; default: this server's model")
    async def info(self, ctx: FillContext, *, checkpoint: str | None = None) -> None:
        service = self.bot.service
        target = await service.model_card_target(ctx.guild.id if ctx.guild else None, checkpoint)
        async with ctx.typing():
            card = await service.model_card(target)
        await ctx.send_reply(model_card_reply(card))

    @model.command(name="reset", description="Go back to the bot's default checkpoint (Manage Server)")
    @is_manager()
    async def reset(self, ctx: FillContext) -> None:
        status = await self.bot.service.reset_checkpoint(server_id(ctx))
        await ctx.send_reply(model_changed_reply(status, reset=True))


async def setup(bot: FillMaskBot) -> None:
    await bot.add_cog(ModelCog(bot))
