"""``help`` and the owner's statistics."""

from __future__ import annotations

from collections.abc import Sequence

from bot.inference.checkpoint_policy import display_name
from bot.inference.types import DEFAULT_TOP_K, MAX_MASKS, MAX_TOP_K
from bot.replies.markup import Code, join, rich
from bot.replies.reply import Reply, ReplyField, info_reply
from bot.service.cluster import ProcessHeartbeat
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
                f"\nI answer with the model's best guesses for each blank (up to {MAX_MASKS} blanks). "
                "Or right-click any message with a blank → **Apps** → **Fill the blanks** (only you see the answer).",
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


def stats_reply(
    stats: StatsSnapshot, servers: int, *, processes: Sequence[ProcessHeartbeat] = (), answered_by: str | None = None
) -> Reply:
    """This process's statistics; with ``processes`` (every running process's heartbeat, this
    one included), the totals across them and a line per process, naming the one answering."""
    loaded = [
        rich(
            Code(model.checkpoint, 80),
            # A remote model's memory is the service's, not this process's: no MiB shown.
            f" {model.precision}{f' · {model.memory_bytes / 2**20:.0f} MiB' if model.memory_bytes else ''}"
            f" · queue {model.queue_depth} · {model.requests_served} served",
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
    footer = ""
    if len(processes) > 1 or (processes and processes[0].shard_count > 1):
        fields += _cluster_fields(processes, answered_by)
    if answered_by is not None:
        footer = f"Answered by process {answered_by}"
    return info_reply("Bot statistics", fields=fields, footer=footer)


# Processes listed one per line; the rest are counted (a field holds 1024 characters).
MAX_PROCESSES_LISTED = 10


def _cluster_fields(processes: Sequence[ProcessHeartbeat], answered_by: str | None) -> tuple[ReplyField, ...]:
    shards_total = max(beat.shard_count for beat in processes)
    shards_up = sorted({shard for beat in processes for shard in beat.shard_ids})
    lines = [
        rich(
            "▶ " if beat.process == answered_by else "",
            Code(beat.process, 60),
            f" shards {_ids(beat.shard_ids)} · {beat.guilds} servers · {len(beat.loaded)} loaded · {beat.served} answered",
        )
        for beat in processes[:MAX_PROCESSES_LISTED]
    ]
    if len(processes) > MAX_PROCESSES_LISTED:
        lines.append(rich(f"… and {len(processes) - MAX_PROCESSES_LISTED} more"))
    missing = sorted(set(range(shards_total)) - set(shards_up))
    summary = f"{len(processes)} processes · shards {len(shards_up)} of {shards_total} running"
    if missing:
        summary += f" (no process runs {_ids(missing)})"
    return (
        ReplyField(
            "All processes",
            f"{summary} · {sum(b.guilds for b in processes)} servers · {sum(b.served for b in processes)} answered · "
            f"{sum(b.refused for b in processes)} refused",
        ),
        ReplyField("Processes", join(lines, "\n")),
    )


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:20])
    return shown + (f" (+{len(ids) - 20})" if len(ids) > 20 else "")
