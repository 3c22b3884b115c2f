"""``Fill the blanks``: a message context-menu command (right-click a message → Apps).

It answers what ``/fill text:<the message's content>`` would, through the same flow (loading
notice, refusals, "busy"), but only the person who asked sees it: every reply is ephemeral. A
message without a blank gets a hint on how to write one.

discord.py cannot declare a context menu as a method of a cog: the cog adds an
``app_commands.ContextMenu`` to the bot's tree when it loads and removes it when it unloads.
Interactions of a context menu do not pass through ``ext.commands``, so the bot's global checks,
cooldowns and error handler do not apply: this cog does the equivalents itself (the shutdown
refusal, the per-user FILL_COOLDOWN limit, the error replies).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.adapters.discord.checks import ShuttingDown
from bot.adapters.discord.cogs.fill import FillCog, fill_cooldown
from bot.adapters.discord.context import ExpiredInteractionError, FillContext
from bot.adapters.discord.error_replies import reply_for_error
from bot.adapters.discord.request_outcomes import outcome_of
from bot.adapters.metrics import Outcome
from bot.i18n import COMMAND_NAME, _, pgettext
from bot.inference.masks import count_masks
from bot.replies.flows import fill_flow
from bot.replies.markup import Code, rich_format
from bot.replies.reply import Reply, error_reply

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot

log = logging.getLogger(__name__)

MENU_NAME = "Fill the blanks"
GENERIC_SPELLINGS = ("<mask>", "[MASK]")


class EphemeralFillContext(FillContext):
    """A :class:`FillContext` built from a context-menu interaction: the deferral and every reply
    (notice, result, error, a result re-sent after its notice was deleted) are ephemeral."""

    async def send_reply(self, reply: Reply, *, ephemeral: bool = True) -> discord.Message:
        return await super().send_reply(reply, ephemeral=True)

    def working(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.typing(ephemeral=True)


def no_blank_reply(mask_token: str | None = None) -> Reply:
    """The hint for a message without a blank (or without text: an image, an embed)."""
    # The menu as the user's client shows it (Discord localizes its name like a command's).
    menu = pgettext(COMMAND_NAME, MENU_NAME)
    if mask_token and mask_token.lower() not in {s.lower() for s in GENERIC_SPELLINGS}:
        # One message, the model's token shown literally in it (as inline code: the model's text).
        hint = rich_format(
            _(
                "That message has no blank for me to fill. Write `<mask>`, `[MASK]` or this model's own {mask_token} "
                "where a word is missing, e.g. `Paris is the <mask> of France.`, then right-click the message and "
                "choose **Apps → {menu}**."
            ),
            mask_token=Code(mask_token),
            menu=menu,
        )
    else:
        hint = rich_format(
            _(
                "That message has no blank for me to fill. Write `<mask>` or `[MASK]` where a word is missing, "
                "e.g. `Paris is the <mask> of France.`, then right-click the message and choose **Apps → {menu}**."
            ),
            menu=menu,
        )
    return error_reply(hint, title=_("No blank to fill"))


class ContextMenuCog(commands.Cog, name="Context menu"):
    def __init__(self, bot: FillMaskBot) -> None:
        self.bot = bot
        # The same per-user limit as `fill` (FILL_COOLDOWN_RATE per FILL_COOLDOWN_SECONDS), kept
        # in a bucket of its own: the menu does not go through ext.commands' cooldowns.
        self.cooldowns: commands.DynamicCooldownMapping[commands.Context[FillMaskBot]] = commands.DynamicCooldownMapping(
            fill_cooldown, commands.BucketType.user
        )
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.fill_the_blanks)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def fill_the_blanks(self, interaction: discord.Interaction[FillMaskBot], message: discord.Message) -> None:
        ctx = await self.bot.get_context(interaction, cls=EphemeralFillContext)
        assert isinstance(ctx, EphemeralFillContext)
        try:
            await self._answer(ctx, interaction.guild_id, message.content)
        except Exception as exc:  # what the bot's error handler does for commands
            reply = reply_for_error(ctx, exc)
            if reply is None:
                return
            try:
                await ctx.send_reply(reply)
            except (discord.HTTPException, ExpiredInteractionError):
                log.warning("could not deliver an error reply in channel %s", interaction.channel_id)

    async def _answer(self, ctx: EphemeralFillContext, guild_id: int | None, text: str) -> None:
        if self.bot.shutting_down:
            raise ShuttingDown("shutting down")
        if not text.strip():  # an image, an embed, a sticker: nothing to fill
            await ctx.send_reply(no_blank_reply())
            self._record(ctx, "invalid")
            return
        async with self.bot.reply_in_flight(), ctx.working():
            mask_token = (await self.bot.service.status(guild_id)).mask_token
            # The checkpoint's own token is known once it is loaded; until then the service decides
            # (after loading it, its refusal says how to write a blank).
            if mask_token is not None and count_masks(text, mask_token) == 0:
                await ctx.send_reply(no_blank_reply(mask_token))
                self._record(ctx, "invalid")
                return
            self._use_cooldown(ctx)
            query = await self.bot.service.resolve_compare(guild_id, self.bot.service.query(text))
            # A right-clicked `compare=` message that loads a checkpoint costs what `/fill compare:` does.
            fill_cog = self.bot.get_cog("Fill")
            load_turn = fill_cog.compare_load_turn(ctx, query) if isinstance(fill_cog, FillCog) else None
            last = await ctx.follow(fill_flow(self.bot.service, guild_id, query))
        if load_turn is not None and (last is None or not last.succeeded):
            load_turn.reset()
        outcome: Outcome = outcome_of(last.error) if last is not None and last.error is not None else "ok"
        self._record(ctx, outcome)

    def _use_cooldown(self, ctx: EphemeralFillContext) -> None:
        bucket = self.cooldowns.get_bucket(ctx)
        if bucket is None:  # FILL_COOLDOWN_SECONDS=0
            return
        retry_after = bucket.update_rate_limit()
        if retry_after:
            raise commands.CommandOnCooldown(bucket, retry_after, commands.BucketType.user)

    def _record(self, ctx: EphemeralFillContext, outcome: Outcome) -> None:
        """Count the request for the metrics, as the bot does for a finished command."""
        ctx.outcome = outcome
        shard = ctx.guild.shard_id if ctx.guild is not None else None  # None: a DM
        self.bot.metrics.record_request(shard, MENU_NAME, outcome, time.monotonic() - ctx.started)


async def setup(bot: FillMaskBot) -> None:
    await bot.add_cog(ContextMenuCog(bot))
