"""``fill``: complete a sentence with the server's checkpoint (``!fill`` and ``/fill``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord import app_commands
from discord.ext import commands

from bot.replies.reply import Card, error_card, fill_result_card, internal_error_card, loading_card
from bot.inference.errors import FillMaskError
from bot.inference.masks import parse_fill_text
from bot.adapters.discord.error_replies import edit_card, send_card

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot

log = logging.getLogger(__name__)


def fill_cooldown(ctx: commands.Context[FillMaskBot]) -> commands.Cooldown | None:
    """Per-user rate limit from the settings; applies on the prefix and the slash path."""
    settings = ctx.bot.settings
    if settings.fill_cooldown_seconds <= 0:
        return None
    return commands.Cooldown(settings.fill_cooldown_rate, settings.fill_cooldown_seconds)


class FillCog(commands.Cog, name="Fill"):
    def __init__(self, bot: FillMaskBot) -> None:
        self.bot = bot
        # At most N fills in flight per server (the N+1th is told the bot is busy). The bound
        # comes from the settings, so it is set on this cog's copy of the command.
        self.fill._max_concurrency = commands.MaxConcurrency(
            bot.settings.guild_max_concurrent_fills, per=commands.BucketType.guild, wait=False
        )

    @commands.dynamic_cooldown(fill_cooldown, commands.BucketType.user)
    @commands.hybrid_command(name="fill", description="Fill in the blank(s) of a sentence with the server's model")
    @app_commands.describe(
        text="Your sentence, with <mask> (or [MASK]) where a word is missing",
        top_k="How many predictions to show per blank (1-10, default 5)",
        targets="Only score these words, comma-separated (e.g. bon, mauvais)",
    )
    async def fill(
        self,
        ctx: commands.Context[FillMaskBot],
        *,
        text: str,
        top_k: commands.Range[int, 1, 10] | None = None,
        targets: str | None = None,
    ) -> None:
        """Fill in the blanks: !fill [k=N] <sentence with <mask>> [| word, word]"""
        service = self.bot.service
        guild_id = ctx.guild.id if ctx.guild else None
        # Defers the interaction at once (the 3-second deadline) or shows "typing" on the prefix path.
        async with self.bot.reply_in_flight(), ctx.typing():
            if await service.is_ready(guild_id):
                await send_card(ctx, await self._answer(guild_id, text, top_k, targets))
                return
            checkpoint = await service.checkpoint_for(guild_id)
            notice = await send_card(ctx, loading_card(checkpoint))
            try:
                card = await self._answer(guild_id, text, top_k, targets)
            except Exception:
                log.exception("fill failed after a loading notice")
                card = internal_error_card()
            await edit_card(notice, card)

    async def _answer(self, guild_id: int | None, text: str, top_k: int | None, targets: str | None) -> Card:
        try:
            result = await self.bot.service.fill(guild_id, text, top_k=top_k, targets=targets)
        except FillMaskError as exc:
            return error_card(str(exc))
        log.info(
            "fill guild=%s checkpoint=%s masks=%d batch=%d latency_ms=%.0f",
            guild_id,
            result.checkpoint,
            len(result.masks),
            result.batch_size,
            result.elapsed * 1000,
        )
        return fill_result_card(result, parse_fill_text(text).text)


async def setup(bot: FillMaskBot) -> None:
    await bot.add_cog(FillCog(bot))
