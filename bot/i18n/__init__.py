"""The bot's messages in English, French and Korean, from gettext catalogs.

English is the source language: every message is written in English in the code, marked with
:func:`_` (translate now), :func:`ngettext` (a count), :func:`lazy` (translate when shown,
for error messages made far from any reply) or :func:`N_` (only marked: a constant translated
later with :func:`_`). ``make messages`` extracts them into ``locales/messages.pot`` and
updates each language's ``.po`` file (Babel); ``tests/test_catalogs.py`` fails when a message
is missing from a language.

Which language a reply is in is the *current locale*, a context variable: an adapter sets it
once per command (:func:`using_locale` or :func:`set_locale`) and every reply built in that
task, and every error rendered there, speaks it. Placeholders are ``str.format`` fields
(``{checkpoint}``), so translators can move them; a literal brace is written ``{{`` (a ``_()``
without fields is returned unformatted: it may be a ``rich_format`` template).
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import get_decimal_symbol
from babel.support import NullTranslations, Translations

Locale = Literal["en", "fr", "ko"]
LOCALES: tuple[Locale, ...] = ("en", "fr", "ko")
DEFAULT_LOCALE: Locale = "en"
# Each language's own name, as `language set` offers it.
LANGUAGE_NAMES: Mapping[Locale, str] = {"en": "English", "fr": "Français", "ko": "한국어"}
DOMAIN = "messages"

# Catalog contexts (msgctxt) of the slash commands' own texts, which Discord shows in each
# user's client language: the same English word can be a command name and a reply's word.
COMMAND_NAME = "command name"
COMMAND_DESCRIPTION = "command description"
PARAMETER_NAME = "option name"
PARAMETER_DESCRIPTION = "option description"
CHOICE_NAME = "choice name"

_current: ContextVar[Locale] = ContextVar("fillmask_locale", default=DEFAULT_LOCALE)


def supported_locale(tag: str | None) -> Locale | None:
    """Ours for a language tag (``fr``, ``fr-CA``, ``ko``, ``en-US``, ``EN_gb``), else None."""
    if not tag:
        return None
    language = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    for locale in LOCALES:
        if locale == language:
            return locale
    return None


def current_locale() -> Locale:
    return _current.get()


def set_locale(locale: Locale) -> Token[Locale]:
    """Make ``locale`` current for the rest of this task (and the tasks it starts)."""
    return _current.set(locale)


@contextlib.contextmanager
def using_locale(locale: Locale) -> Iterator[None]:
    token = _current.set(locale)
    try:
        yield
    finally:
        _current.reset(token)


@functools.cache
def translations(locale: Locale) -> NullTranslations:
    """``locale``'s catalog (English is the source text: no catalog). Read from the ``.po`` file
    and compiled in memory once, so the repository holds no generated ``.mo`` files."""
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    source = resources.files(__name__).joinpath("locales", locale, "LC_MESSAGES", f"{DOMAIN}.po")
    with source.open("rb") as po:
        catalog = read_po(po, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    # Fuzzy entries are guesses Babel made while updating: never shown.
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def _format(text: str, params: Mapping[str, object], locale: Locale, *, always: bool = False) -> str:
    # `_()` without params returns its text unformatted: it may be a template for
    # bot.replies.markup.rich_format, which fills the fields (and undoubles `{{`) itself.
    if not params and not always:
        return text
    shown = {name: localized(value, locale) for name, value in params.items()}
    return text.format(**shown)


def localized(value: object, locale: Locale | None = None) -> object:
    """``value`` in ``locale`` (the current one by default) if it is a :class:`Message`; as is otherwise."""
    return value.localized(locale) if isinstance(value, Message) else value


def _(message: str, /, **params: object) -> str:
    """``message`` in the current locale, its ``{fields}`` filled from ``params``."""
    locale = _current.get()
    return _format(translations(locale).gettext(message), params, locale)


def ngettext(singular: str, plural: str, n: int, /, **params: object) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the current locale; ``{n}`` is filled too."""
    locale = _current.get()
    return _format(translations(locale).ngettext(singular, plural, n), {"n": n, **params}, locale)


def pgettext(context: str, message: str, /) -> str:
    """``message`` in the current locale, as used in ``context`` (a command name, say)."""
    return str(translations(_current.get()).pgettext(context, message))


def with_decimal_mark(formatted: str, /) -> str:
    """A number Python formatted (``f"{x:.1f}"``, no grouping) with the current locale's decimal
    mark: ``49.1`` is ``49,1`` in French."""
    mark = _decimal_mark(_current.get())
    return formatted.replace(".", mark) if mark != "." else formatted


@functools.cache
def _decimal_mark(locale: Locale) -> str:
    return get_decimal_symbol(locale)


def N_(message: str, /) -> str:
    """Marks ``message`` for the catalog without translating it (translate it with :func:`_`)."""
    return message


@dataclass(frozen=True, slots=True)
class Message:
    """A message translated when it is shown, not when it is made.

    Errors are raised in the inference layer, sometimes in a batching task that serves many
    servers at once; they carry this, and the reply shows it in the locale of whoever asked.
    ``str()`` is the English text (for logs and for code that compares messages).
    """

    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)
    plural: str | None = None
    n: int | None = None

    def localized(self, locale: Locale | None = None) -> str:
        chosen = locale if locale is not None else _current.get()
        catalog = translations(chosen)
        if self.plural is not None and self.n is not None:
            return _format(catalog.ngettext(self.msgid, self.plural, self.n), {"n": self.n, **self.params}, chosen)
        # Shown as is, never a template: formatted even without fields (so `{{` shows as `{`).
        return _format(catalog.gettext(self.msgid), self.params, chosen, always=True)

    def __str__(self) -> str:
        return self.localized(DEFAULT_LOCALE)


def lazy(message: str, /, **params: object) -> Message:
    """``message`` (with ``params``), translated when shown: see :class:`Message`."""
    return Message(message, params)


def lazy_plural(singular: str, plural: str, n: int, /, **params: object) -> Message:
    return Message(singular, params, plural=plural, n=n)


# A message, or text that is never translated (a model's words, a library's name).
Text = str | Message


def text_of(value: Text, locale: Locale | None = None) -> str:
    """``value`` as shown in ``locale`` (the current one by default)."""
    return value.localized(locale) if isinstance(value, Message) else value
