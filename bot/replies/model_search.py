"""``model search``'s answer: the Hub's fill-mask models for some words, as one reply.

Ids, languages and licenses come from the Hub (written by strangers): shown with
:class:`~bot.replies.markup.Code` and :class:`~bot.replies.markup.Text`, measured as Discord
will see them, within an embed's limits.
"""

from __future__ import annotations

from bot.replies.markup import Code, Rich, Text, join, markdown, rich, strong, truncate
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
        return ("language not stated",)
    shown = [Text(truncate(name, 20)) for name in names[:_LANGUAGES_SHOWN]]
    parts: list[Rich] = [(item,) for item in shown]
    if len(names) > _LANGUAGES_SHOWN:
        parts.append((f"+{len(names) - _LANGUAGES_SHOWN} more",))
    return join(parts, ", ")


def model_line(position: int, model: HubModel) -> Rich:
    """``3. `owner/name` — 12k downloads · fr, en · mit``."""
    downloads = f"{_count(model.downloads)} downloads" if model.downloads is not None else "downloads unknown"
    license_part: Rich = (Text(truncate(" ".join(model.license.split()), 40)),) if model.license else ("license not stated",)
    # Hub ids are at most 96 + 1 + 96 characters: shown whole, to be copied into `model set`.
    line = rich(f"{position}. ", Code(model.id, 200), f" — {downloads} · ", _languages(model), " · ", license_part)
    return rich(line, " · 🔒 gated") if model.gated else line


def _searched(search: ModelSearch) -> Rich:
    words = rich("“", Text(truncate(search.terms.words, 100)), "”")
    if search.terms.language:
        return rich(words, " in ", Code(search.terms.language, 20))
    return words


def model_search_reply(search: ModelSearch, *, set_command: str = "/model set", shown: int = SHOWN) -> Reply:
    """The search's models, most downloaded first, or why there are none."""
    title = rich("Hub search: ", Code(truncate(search.terms.words, 100), 100))
    if search.problem is not None:
        return error_reply(search.problem, title="Can't search the Hugging Face Hub")
    if not search.models:
        if search.left_out:
            message = rich(
                "The Hugging Face Hub has fill-mask models for ",
                _searched(search),
                f", but this bot's owner allows none of them ({search.left_out} left out). ",
                f"`{set_command}` only takes the models on the owner's list: see `model list`.",
            )
        else:
            message = rich("No fill-mask model on the Hugging Face Hub matches ", _searched(search), ".")
            if search.terms.language:
                message = rich(message, " Try without the language, or with other words.")
            else:
                message = rich(message, " Try other words (they are matched against model ids).")
        return Reply(title=title, description=message)

    intro: list[Rich] = [
        rich("Fill-mask models on the Hugging Face Hub for ", _searched(search), ", most downloaded first."),
        (f"Pick one with `{set_command}`.",),
    ]
    if search.filtered:
        left = f" ({search.left_out} left out)" if search.left_out else ""
        intro.append(
            (strong("Filtered"), f": only the models this bot's owner allows are listed{left}."),
        )
    head = join(intro)
    link = f"\nMore on the Hub: <{search.url}>"
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
    more = "" if search.complete else "+"
    footer_parts: list[str] = []
    if hidden:
        footer_parts.append(f"… and {hidden}{more} more matches on the Hub.")
    elif not search.complete:
        footer_parts.append("The Hub has more matches.")
    footer_parts.append("Names, languages and licenses are what the models' authors wrote.")
    description = rich(head, "\n\n", join(lines), link)
    return Reply(title=title, description=description, footer=" ".join(footer_parts))
