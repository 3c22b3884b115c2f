"""``help`` and the owner's statistics."""

from __future__ import annotations

from collections.abc import Sequence

from bot.i18n import COMMAND_NAME, PARAMETER_NAME, _, ngettext, pgettext
from bot.inference.checkpoint_policy import display_name
from bot.inference.types import DEFAULT_TOP_K, MAX_MASKS, MAX_TOP_K, LoadedModel
from bot.replies.markup import Code, Rich, join, rich, rich_format
from bot.replies.reply import Reply, ReplyField, info_reply
from bot.service.cluster import ProcessHeartbeat
from bot.service.fill_mask_service import StatsSnapshot
from bot.service.request_stats import format_duration

# The slash command's own name: its translations are the command tree's (bot/i18n/extract.py).
FILL_COMMAND = "fill"


def help_reply(prefix: str, mask: str, checkpoint: str) -> Reply:
    """How to use the bot, with the server's mask token and the bot's prefix in every example."""
    p = prefix
    example = _("Paris is the {mask} of France.", mask=mask)
    # The slash command and its options as the reader's Discord client shows them.
    slash_fill = "/" + pgettext(COMMAND_NAME, FILL_COMMAND)

    def option(name: str) -> str:
        return pgettext(PARAMETER_NAME, name)

    fields = (
        ReplyField(
            _("Fill in a blank"),
            rich(
                Code(f"{p}fill {example}"),
                "\n",
                Code(f"{slash_fill} {option('text')}: {example}"),
                "\n",
                ngettext(
                    "I answer with the model's best guesses for each blank (up to {n} blank). "
                    "Or right-click any message with a blank → **Apps** → **Fill the blanks** (only you see the answer).",
                    "I answer with the model's best guesses for each blank (up to {n} blanks). "
                    "Or right-click any message with a blank → **Apps** → **Fill the blanks** (only you see the answer).",
                    MAX_MASKS,
                ),
            ),
        ),
        ReplyField(
            _("Writing the blank"),
            rich_format(
                _("This server's model uses {mask}; `<mask>`, `[MASK]` and `[mask]` work too, I convert them."),
                mask=Code(mask),
            ),
        ),
        ReplyField(
            _("Options"),
            rich(
                rich_format(
                    _("**top_k**: how many guesses, 1-{max_top_k} (default {default_top_k}): {example} or {slash_example}."),
                    max_top_k=str(MAX_TOP_K),
                    default_top_k=str(DEFAULT_TOP_K),
                    example=Code(f"{p}fill k=3 ..."),
                    slash_example=Code(f"{slash_fill} {option('top_k')}:3"),
                ),
                "\n",
                rich_format(
                    _("**targets**: score only some words: {example} or {slash_example}."),
                    example=Code(f"{p}fill ... | good, bad"),
                    slash_example=Code(f"{slash_fill} {option('targets')}: good, bad"),
                ),
            ),
        ),
        ReplyField(
            _("Side by side"),
            rich(
                rich_format(
                    _("**compare**: this server's model and another on the same sentence: {example} or {slash}."),
                    example=Code(f"{p}fill compare=bert-base-uncased {example}"),
                    slash=Code(f"{slash_fill} {option('compare')}: bert-base-uncased"),
                ),
                "\n",
                rich_format(
                    _(
                        "**A bias lens**: swap words in {{…|…}} and see what changes: {example} "
                        "(2 to 4 alternatives; {model_info} says what the model card tells of its biases)."
                    ),
                    example=Code(f"{p}fill " + _("The {{man|woman}} worked as a {mask}.", mask=mask)),
                    model_info=Code(f"{p}model info"),
                ),
            ),
        ),
        ReplyField(
            _("Models"),
            rich(
                rich_format(
                    _(
                        "{show_command} this server's model · {list_command} models on offer · {info_command} its card · "
                        "{search_command} the Hub's fill-mask models."
                    ),
                    show_command=Code(f"{p}model show"),
                    list_command=Code(f"{p}model list"),
                    info_command=Code(f"{p}model info [name]"),
                    search_command=Code(f"{p}model search camembert fr"),
                ),
                "\n",
                rich_format(
                    _("Admins (Manage Server): {set_command} and {reset_command}."),
                    set_command=Code(f"{p}model set <name>"),
                    reset_command=Code(f"{p}model reset"),
                ),
            ),
        ),
        ReplyField(
            _("Language"),
            rich_format(
                _("{show_command} which language I answer in · admins: {set_command} (English, français, 한국어)."),
                show_command=Code(f"{p}language"),
                set_command=Code(f"{p}language set fr"),
            ),
        ),
    )
    footer = _("Model: {checkpoint}", checkpoint=display_name(checkpoint))
    return info_reply(_("Fill-mask bot: help"), fields=fields, footer=footer)


def _ms(seconds: float | None) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds is not None else "-"


def _loaded_line(model: LoadedModel) -> Rich:
    checkpoint = Code(model.checkpoint, 80)
    # A remote model's memory is the service's, not this process's: no MiB shown.
    if model.memory_bytes:
        template = _("{checkpoint} {precision} · {memory} MiB · queue {queue_depth} · {served} served")
        memory = f"{model.memory_bytes / 2**20:.0f}"
    else:
        template = _("{checkpoint} {precision} · queue {queue_depth} · {served} served")
        memory = ""
    return rich_format(
        template,
        checkpoint=checkpoint,
        precision=model.precision,
        memory=memory,
        queue_depth=str(model.queue_depth),
        served=str(model.requests_served),
    )


def stats_reply(
    stats: StatsSnapshot, servers: int, *, processes: Sequence[ProcessHeartbeat] = (), answered_by: str | None = None
) -> Reply:
    """This process's statistics; with ``processes`` (every running process's heartbeat, this
    one included), the totals across them and a line per process, naming the one answering."""
    loaded = [_loaded_line(model) for model in stats.loaded]
    latency = stats.latency
    requests = " · ".join((_answered(stats.served), _refused(stats.refused)))
    latency_text = ngettext(
        "p50 {p50} · p95 {p95} ({n} request)",
        "p50 {p50} · p95 {p95} ({n} requests)",
        latency.count,
        p50=_ms(latency.p50),
        p95=_ms(latency.p95),
    )
    fields = (
        ReplyField(_("Uptime"), format_duration(stats.uptime), True),
        ReplyField(_("Servers"), str(servers), True),
        ReplyField(_("Requests"), requests, True),
        ReplyField(_("Latency, last hour"), latency_text, True),
        ReplyField(_("Loaded checkpoints"), join(loaded) or _("none")),
    )
    footer = ""
    if len(processes) > 1 or (processes and processes[0].shard_count > 1):
        fields += _cluster_fields(processes, answered_by)
    if answered_by is not None:
        footer = _("Answered by process {process}", process=answered_by)
    return info_reply(_("Bot statistics"), fields=fields, footer=footer)


def _answered(count: int) -> str:
    return ngettext("{n} answered", "{n} answered", count)


def _refused(count: int) -> str:
    return ngettext("{n} refused", "{n} refused", count)


def _servers(count: int) -> str:
    return ngettext("{n} server", "{n} servers", count)


# Processes listed one per line; the rest are counted (a field holds 1024 characters).
MAX_PROCESSES_LISTED = 10


def _cluster_fields(processes: Sequence[ProcessHeartbeat], answered_by: str | None) -> tuple[ReplyField, ...]:
    shards_total = max(beat.shard_count for beat in processes)
    shards_up = sorted({shard for beat in processes for shard in beat.shard_ids})
    lines = [
        rich(
            "▶ " if beat.process == answered_by else "",
            rich_format(_("{process} shards {shards}"), process=Code(beat.process, 60), shards=_ids(beat.shard_ids)),
            " · ",
            " · ".join(
                (
                    _servers(beat.guilds),
                    ngettext("{n} loaded", "{n} loaded", len(beat.loaded)),
                    _answered(beat.served),
                )
            ),
        )
        for beat in processes[:MAX_PROCESSES_LISTED]
    ]
    if len(processes) > MAX_PROCESSES_LISTED:
        hidden = len(processes) - MAX_PROCESSES_LISTED
        lines.append(rich(ngettext("… and {n} more", "… and {n} more", hidden)))
    missing = sorted(set(range(shards_total)) - set(shards_up))
    running = {"running": len(shards_up), "total": shards_total}
    if missing:
        shards = _("shards {running} of {total} running (no process runs {missing})", **running, missing=_ids(missing))
    else:
        shards = _("shards {running} of {total} running", **running)
    summary = (
        ngettext("{n} process", "{n} processes", len(processes)),
        shards,
        _servers(sum(b.guilds for b in processes)),
        _answered(sum(b.served for b in processes)),
        _refused(sum(b.refused for b in processes)),
    )
    return (
        ReplyField(_("All processes"), " · ".join(summary)),
        ReplyField(_("Processes"), join(lines, "\n")),
    )


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:20])
    return shown + (f" (+{len(ids) - 20})" if len(ids) > 20 else "")
