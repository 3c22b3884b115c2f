"""``help`` and the owner's statistics."""

from __future__ import annotations

from bot.inference.checkpoint_policy import display_name
from bot.inference.types import DEFAULT_TOP_K, MAX_MASKS, MAX_TOP_K
from bot.replies.markup import Code, join, rich
from bot.replies.reply import Reply, ReplyField, info_reply
from bot.service.fill_mask_service import StatsSnapshot
from bot.service.request_stats import format_duration


def help_reply(prefix: str, mask: str, checkpoint: str) -> Reply:
    """How to use the bot, with the server's mask token and the bot's prefix in every example."""
    p = prefix
    fields = (
        ReplyField(
            "Fill in a blank",
            rich(
                Code(f"{p}fill Paris is the {mask} of France."),
                "\n",
                Code(f"/fill text: Paris is the {mask} of France."),
                f"\nI answer with the model's best guesses for each blank (up to {MAX_MASKS} blanks).",
            ),
        ),
        ReplyField(
            "Writing the blank",
            rich("This server's model uses ", Code(mask), "; `<mask>`, `[MASK]` and `[mask]` work too, I convert them."),
        ),
        ReplyField(
            "Options",
            rich(
                f"**top_k**: how many guesses, 1-{MAX_TOP_K} (default {DEFAULT_TOP_K}): ",
                Code(f"{p}fill k=3 ..."),
                " or `/fill top_k:3`.\n**targets**: score only some words: ",
                Code(f"{p}fill ... | good, bad"),
                " or `/fill targets: good, bad`.",
            ),
        ),
        ReplyField(
            "Models",
            rich(
                Code(f"{p}model show"),
                " this server's model · ",
                Code(f"{p}model list"),
                " models on offer · ",
                Code(f"{p}model info [name]"),
                " its card · ",
                Code(f"{p}model search camembert fr"),
                " the Hub's fill-mask models.\nAdmins (Manage Server): ",
                Code(f"{p}model set <name>"),
                " and ",
                Code(f"{p}model reset"),
                ".",
            ),
        ),
    )
    return info_reply("Fill-mask bot: help", fields=fields, footer=f"Model: {display_name(checkpoint)}")


def _ms(seconds: float | None) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds is not None else "-"


def stats_reply(stats: StatsSnapshot, servers: int) -> Reply:
    loaded = [
        rich(
            Code(model.checkpoint, 80),
            f" {model.precision} · {model.memory_bytes / 2**20:.0f} MiB · queue {model.queue_depth} · {model.requests_served} served",
        )
        for model in stats.loaded
    ]
    latency = stats.latency
    fields = (
        ReplyField("Uptime", format_duration(stats.uptime), True),
        ReplyField("Servers", str(servers), True),
        ReplyField("Requests", f"{stats.served} answered · {stats.refused} refused", True),
        ReplyField("Latency, last hour", f"p50 {_ms(latency.p50)} · p95 {_ms(latency.p95)} ({latency.count} requests)", True),
        ReplyField("Loaded checkpoints", join(loaded) or "none"),
    )
    return info_reply("Bot statistics", fields=fields)
