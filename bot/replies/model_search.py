"""``model search``'s answer: the Hub's fill-mask models for some words, as one reply.

Ids, languages and licenses come from the Hub (written by strangers): shown with
:class:`~bot.replies.markup.Code` and :class:`~bot.replies.markup.Text`, measured as Discord
will see them, within an embed's limits.
"""

from __future__ import annotations

from bot.i18n import _, ngettext, text_of
from bot.replies.markup import Code, Rich, Text, join, markdown, rich, rich_format, strong, truncate
from bot.replies.reply import DESCRIPTION_LIMIT, Reply, error_reply
from bot.service.hub_search import HubModel, ModelSearch

SHOWN = 10  # models listed per reply, most downloaded first
_LANGUAGES_SHOWN = 3


def _count(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if value >= 10_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:,}"


def _languages(model: HubModel) -> Rich:
    names = [" ".join(name.split()) for name in model.languages if name.strip()]
    if not names:
        return (_("language not stated"),)
    shown = [Text(truncate(name, 20)) for name in names[:_LANGUAGES_SHOWN]]
    parts: list[Rich] = [(item,) for item in shown]
    if len(names) > _LANGUAGES_SHOWN:
        hidden = len(names) - _LANGUAGES_SHOWN
        parts.append((ngettext("+{n} more", "+{n} more", hidden),))
    return join(parts, ", ")


def model_line(position: int, model: HubModel) -> Rich:
    """``3. `owner/name` — 12k downloads · fr, en · mit``."""
    if model.downloads is not None:
        downloads = ngettext("{count} download", "{count} downloads", model.downloads, count=_count(model.downloads))
    else:
        downloads = _("downloads unknown")
    license_part: Rich = (Text(truncate(" ".join(model.license.split()), 40)),) if model.license else (_("license not stated"),)
    # Hub ids are at most 96 + 1 + 96 characters: shown whole, to be copied into `model set`.
    line = rich(f"{position}. ", Code(model.id, 200), f" — {downloads} · ", _languages(model), " · ", license_part)
    return rich(line, " · ", _("🔒 gated")) if model.gated else line


def _searched(search: ModelSearch) -> Rich:
    words = Text(truncate(search.terms.words, 100))
    if search.terms.language:
        return rich_format(_("“{words}” in {language}"), words=words, language=Code(search.terms.language, 20))
    return rich_format(_("“{words}”"), words=words)


def model_search_reply(search: ModelSearch, *, set_command: str = "/model set", shown: int = SHOWN) -> Reply:
    """The search's models, most downloaded first, or why there are none."""
    title = rich_format(_("Hub search: {words}"), words=Code(truncate(search.terms.words, 100), 100))
    if search.problem is not None:
        return error_reply(text_of(search.problem), title=_("Can't search the Hugging Face Hub"))
    if not search.models:
        if search.left_out:
            # {searched} is filled with rich text (the member's words, shown literally) by rich_format.
            none_allowed = ngettext(
                "The Hugging Face Hub has fill-mask models for {searched}, but this bot's owner allows "
                "none of them ({n} left out).",
                "The Hugging Face Hub has fill-mask models for {searched}, but this bot's owner allows "
                "none of them ({n} left out).",
                search.left_out,
                searched="{searched}",
            )
            message = rich(
                rich_format(none_allowed, searched=_searched(search)),
                " ",
                _("`{set_command}` only takes the models on the owner's list: see `model list`.", set_command=set_command),
            )
        elif search.terms.language:
            message = rich_format(
                _(
                    "No fill-mask model on the Hugging Face Hub matches {searched}. "
                    "Try without the language, or with other words."
                ),
                searched=_searched(search),
            )
        else:
            message = rich_format(
                _(
                    "No fill-mask model on the Hugging Face Hub matches {searched}. "
                    "Try other words (they are matched against model ids)."
                ),
                searched=_searched(search),
            )
        return Reply(title=title, description=message)

    intro: list[Rich] = [
        rich_format(
            _("Fill-mask models on the Hugging Face Hub for {searched}, most downloaded first."),
            searched=_searched(search),
        ),
        (_("Pick one with `{set_command}`.", set_command=set_command),),
    ]
    if search.filtered:
        if search.left_out:
            # {filtered} is filled with rich text (bold) by rich_format.
            filtered = ngettext(
                "{filtered}: only the models this bot's owner allows are listed ({n} left out).",
                "{filtered}: only the models this bot's owner allows are listed ({n} left out).",
                search.left_out,
                filtered="{filtered}",
            )
        else:
            filtered = _("{filtered}: only the models this bot's owner allows are listed.")
        intro.append(rich_format(filtered, filtered=strong(_("Filtered"))))
    head = join(intro)
    link = "\n" + _("More on the Hub: <{url}>", url=search.url)
    budget = DESCRIPTION_LIMIT - len(markdown(head)) - len(link) - 2
    lines: list[Rich] = []
    used = 0
    for position, model in enumerate(search.models[: max(0, shown)], start=1):
        line = model_line(position, model)
        length = len(markdown(line)) + 1
        if used + length > budget:
            break
        lines.append(line)
        used += length
    hidden = len(search.models) - len(lines)
    footer_parts: list[str] = []
    if hidden and search.complete:
        footer_parts.append(ngettext("… and {n} more match on the Hub.", "… and {n} more matches on the Hub.", hidden))
    elif hidden:
        # "1+ more": more than one, so plural in English whatever the count.
        footer_parts.append(ngettext("… and {n}+ more matches on the Hub.", "… and {n}+ more matches on the Hub.", hidden))
    elif not search.complete:
        footer_parts.append(_("The Hub has more matches."))
    footer_parts.append(_("Names, languages and licenses are what the models' authors wrote."))
    description = rich(head, "\n\n", join(lines), link)
    return Reply(title=title, description=description, footer=" ".join(footer_parts))
