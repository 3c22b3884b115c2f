"""``help`` for everyone and the owner's ``stats``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord.ext import commands

from bot.replies.reply import CardField, code, info_card
from bot.adapters.discord.error_replies import send_card
from bot.service.request_stats import format_duration

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot


class InfoCog(commands.Cog, name="Info"):
    def __init__(self, bot: FillMaskBot) -> None:
        self.bot = bot

    @commands.hybrid_command(name="help", description="How to use the fill-mask bot")
    async def help(self, ctx: commands.Context[FillMaskBot]) -> None:
        status = await self.bot.service.status(ctx.guild.id if ctx.guild else None)
        mask = status.mask_token or "<mask>"
        p = ctx.clean_prefix if ctx.interaction is None else "!"
        fields = (
            CardField(
                "Fill in a blank",
                f"`{p}fill Paris is the {mask} of France.`\n`/fill text: Paris is the {mask} of France.`\n"
                "I answer with the model's best guesses for each blank (up to 5 blanks).",
            ),
            CardField(
                "Writing the blank",
                f"This server's model uses `{mask}`; `<mask>`, `[MASK]` and `[mask]` work too, I convert them.",
            ),
            CardField(
                "Options",
                f"**top_k**: how many guesses, 1-10 (default 5): `{p}fill k=3 ...` or `/fill top_k:3`.\n"
                f"**targets**: score only some words: `{p}fill ... | good, bad` or `/fill targets: good, bad`.",
            ),
            CardField(
                "Models",
                f"`{p}model show` this server's model · `{p}model list` models on offer · `{p}model info [name]` its card.\n"
                f"Admins (Manage Server): `{p}model set <name>` and `{p}model reset`.",
            ),
        )
        await send_card(ctx, info_card("Fill-mask bot: help", fields=fields, footer=f"Model: {status.checkpoint}"))

    @commands.hybrid_command(name="stats", description="Bot statistics (bot owner only)")
    @commands.is_owner()
    async def stats(self, ctx: commands.Context[FillMaskBot]) -> None:
        service, registry = self.bot.service, self.bot.registry
        latency = service.stats.latency()
        loaded = []
        for name in registry.loaded:
            model = registry.peek(name)
            if model is not None:
                loaded.append(
                    f"{code(name, 80)} {model.lm.memory_bytes / 2**20:.0f} MiB · queue {model.queue_depth} · "
                    f"{model.requests_served} served"
                )
        ms = lambda s: f"{s * 1000:.0f} ms" if s is not None else "-"  # noqa: E731
        fields = (
            CardField("Uptime", format_duration(service.stats.uptime), True),
            CardField("Servers", str(len(self.bot.guilds)), True),
            CardField("Requests", f"{service.stats.served} answered · {service.stats.failed} refused", True),
            CardField("Latency, last hour", f"p50 {ms(latency.p50)} · p95 {ms(latency.p95)} ({latency.count} requests)", True),
            CardField("Loaded checkpoints", "\n".join(loaded) or "none"),
        )
        await send_card(ctx, info_card("Bot statistics", fields=fields), ephemeral=True)


async def setup(bot: FillMaskBot) -> None:
    await bot.add_cog(InfoCog(bot))
