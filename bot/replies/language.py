"""Replies about the language the bot speaks in a server (``language show|set|reset``)."""

from __future__ import annotations

from bot.i18n import LANGUAGE_NAMES, LOCALES, Locale, _, using_locale
from bot.replies.markup import Code, Rich, join, rich, rich_format
from bot.replies.reply import Reply, ReplyField, info_reply, ok_reply


def _choices() -> Rich:
    return join(((Code(code), f" {LANGUAGE_NAMES[code]}") for code in LOCALES), " · ")


def language_status_reply(current: Locale, chosen: Locale | None, *, set_command: str = "language set") -> Reply:
    """Which language this answer is in, whether the server's admins chose one, and how to change it."""
    if chosen is not None:
        why = rich_format(
            _("This server's admins chose {language} with {command}."),
            language=LANGUAGE_NAMES[chosen],
            command=Code(set_command),
        )
    else:
        why = rich_format(
            _(
                "No language was chosen for this server: I follow the server's Discord language, else English. An admin can choose one with {command}."
            ),
            command=Code(set_command),
        )
    rule = _(
        "Slash commands answer in each member's own Discord language when I speak it; "
        "prefix commands answer in the server's language."
    )
    return info_reply(
        _("Language: {language}", language=LANGUAGE_NAMES[current]),
        rich(why, "\n\n", rule),
        fields=(ReplyField(_("Languages I speak"), _choices()),),
    )


def language_changed_reply(locale: Locale | None) -> Reply:
    """Told in the new language (the admin sees at once what members will read)."""
    if locale is None:
        return ok_reply(
            _("Language reset"),
            _("I follow this server's Discord language again (English when I don't speak it)."),
        )
    with using_locale(locale):
        return ok_reply(
            _("Language set"),
            _(
                "I now answer in {language} in this server. Slash commands still answer each member "
                "in their own Discord language when I speak it.",
                language=LANGUAGE_NAMES[locale],
            ),
        )
