"""``make messages`` (``python -m bot.i18n.extract``): the catalog template and each language's file.

1. Extracts every marked message from ``bot/`` with Babel's Python extractor (``_``, ``N_``,
   ``lazy``, ``ngettext``, ``lazy_plural``, ``pgettext``), with its locations;
2. adds the slash commands' own texts (names, descriptions, options, choices, the context menu),
   read from the real command tree under their contexts (``COMMAND_NAME``, ...), since they are
   plain strings in decorators that discord.py hands to ``CatalogTranslator``;
3. writes ``locales/messages.pot`` and creates or updates ``locales/<lang>/LC_MESSAGES/messages.po``
   for French and Korean: existing translations are kept, new messages are added untranslated,
   messages gone from the code are dropped (no ``#~`` entries, no fuzzy guesses).

Rerunning it without changes to the code rewrites identical files (no creation date is written).
``--check`` writes nothing: it exits 1 and lists what is out of date (the template differs from
the code's messages, a language's file lacks or has extra messages, or a message is untranslated).
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords
from babel.messages.pofile import read_po, write_po

from bot.i18n import CHOICE_NAME, COMMAND_DESCRIPTION, COMMAND_NAME, DOMAIN, PARAMETER_DESCRIPTION, PARAMETER_NAME

PACKAGE = Path(__file__).resolve().parents[1]  # bot/
REPOSITORY = PACKAGE.parent
LOCALES_DIR = Path(__file__).resolve().parent / "locales"
TEMPLATE = LOCALES_DIR / f"{DOMAIN}.pot"
KEYWORDS = parse_keywords(["_", "N_", "lazy", "ngettext:1,2", "lazy_plural:1,2", "pgettext:1c,2"])
# A comment just above a marked message that starts with this is shown to translators.
COMMENT_TAGS = ("Translators:",)
# The languages translated (English is the source). Plural-Forms as gettext has them: Babel's
# CLDR data gives French a third form (for millions) that our messages do not need.
PLURAL_FORMS = {"fr": "nplurals=2; plural=(n > 1);", "ko": "nplurals=1; plural=0;"}
LANGUAGES = tuple(PLURAL_FORMS)
PROJECT = "fillmask-bot"
HEADER = (
    "# Messages of fillmask-bot (English is the source language).\n"
    "# Written by `make messages` (python -m bot.i18n.extract): edit the translations (msgstr) only."
)
# Header lines that would change at every run, or with Babel's version, for nothing.
_UNSTABLE_HEADERS = (b'"POT-Creation-Date: ', b'"Generated-By: ')

# What translators are told about the command tree's texts (Discord's limits).
_COMMAND_NOTES = {
    COMMAND_NAME: "Slash command name: lowercase, no spaces (- and _ allowed), at most 32 characters.",
    PARAMETER_NAME: "Slash command option name: lowercase, no spaces (- and _ allowed), at most 32 characters.",
    COMMAND_DESCRIPTION: "Slash command description, as Discord shows it: at most 100 characters.",
    PARAMETER_DESCRIPTION: "Slash command option description: at most 100 characters.",
    CHOICE_NAME: "A choice offered for a slash command option: at most 100 characters.",
}
_MENU_NOTE = "Context menu name (Apps → …): at most 32 characters; capitals and spaces allowed."


def _key(message: Message) -> tuple[str, str | None]:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return msgid, message.context


def python_messages() -> Catalog:
    """The messages marked in ``bot/``'s code, each with every place it is used."""
    catalog = _new_template()
    found = extract_from_dir(
        PACKAGE, [("**.py", "python")], keywords=KEYWORDS, comment_tags=COMMENT_TAGS, strip_comment_tags=True
    )
    for filename, lineno, message, comments, context in found:
        path = (PACKAGE / filename).relative_to(REPOSITORY).as_posix()
        catalog.add(message, None, [(path, lineno)], auto_comments=comments, context=context)
    return catalog


def command_texts() -> list[tuple[str, str, tuple[str, int] | None, bool]]:
    """The command tree's texts: (context, English text, location, whether it is a context menu's name)."""
    # Loaded at run time: this tool, unlike the rest of bot.i18n, needs the Discord adapter
    # (the lowest layer must not import it where the bot runs).
    translator = importlib.import_module("bot.adapters.discord.translator")
    return [(t.context, t.text, t.location, t.menu) for t in translator.command_texts()]


def build_template(commands: Iterable[tuple[str, str, tuple[str, int] | None, bool]] | None = None) -> Catalog:
    """The catalog template: the code's messages, then the command tree's texts."""
    catalog = python_messages()
    for context, text, location, menu in command_texts() if commands is None else commands:
        note = _MENU_NOTE if menu else _COMMAND_NOTES[context]
        existing = catalog.get(text, context)
        locations = [location] if location is not None else []
        if existing is not None:
            existing.locations = list(dict.fromkeys([*existing.locations, *locations]))
            if note not in existing.auto_comments:
                existing.auto_comments.append(note)
        else:
            catalog.add(text, None, locations, auto_comments=[note], context=context)
    return catalog


def _new_template() -> Catalog:
    return Catalog(project=PROJECT, header_comment=HEADER, charset="utf-8", domain=DOMAIN, fuzzy=True)


def po_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read(path: Path, locale: str | None = None) -> Catalog | None:
    if not path.exists():
        return None
    with path.open("rb") as source:
        return read_po(source, locale=locale, domain=DOMAIN)


def render(catalog: Catalog) -> bytes:
    """The file's bytes: the same catalog always gives the same bytes."""
    out = io.BytesIO()
    write_po(out, catalog, width=100, ignore_obsolete=True, include_previous=False)
    lines = out.getvalue().splitlines(keepends=True)
    return b"".join(line for line in lines if not line.startswith(_UNSTABLE_HEADERS))


def updated_translation(template: Catalog, language: str) -> Catalog:
    """``language``'s catalog for ``template``: its existing translations kept, new messages
    empty, messages no longer in the template dropped; nothing guessed (no fuzzy matching)."""
    catalog = _read(po_path(language), locale=language)
    if catalog is None:
        catalog = Catalog(
            locale=language,
            domain=DOMAIN,
            project=PROJECT,
            header_comment=HEADER,
            charset="utf-8",
            language_team=f"{language} <{PROJECT}>",
            fuzzy=False,
        )
    catalog.header_comment = HEADER
    catalog.mime_headers = [("Plural-Forms", PLURAL_FORMS[language])]
    catalog.update(template, no_fuzzy_matching=True, update_header_comment=False, update_creation_date=False)
    catalog.obsolete.clear()
    catalog.fuzzy = False
    return catalog


def write_all(template: Catalog | None = None) -> list[Path]:
    """Writes the template and every language's file; returns the files that changed."""
    template = build_template() if template is None else template
    changed: list[Path] = []
    outputs = [(TEMPLATE, render(template))]
    outputs += [(po_path(language), render(updated_translation(template, language))) for language in LANGUAGES]
    for path, content in outputs:
        if not path.exists() or path.read_bytes() != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Replaced in one step: a bot or test reading the catalog never sees half a file.
            partial = path.with_name(f".{path.name}.tmp")
            partial.write_bytes(content)
            partial.replace(path)
            changed.append(path)
    return changed


def _describe(key: tuple[str, str | None]) -> str:
    msgid, context = key
    return f"{msgid!r}" + (f" ({context})" if context else "")


def untranslated(catalog: Catalog) -> list[tuple[str, str | None]]:
    """The messages of a language's catalog with an empty form, or marked fuzzy."""
    missing: list[tuple[str, str | None]] = []
    for message in catalog:
        if not message.id:
            continue  # the header
        forms = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
        complete = len(forms) >= (catalog.num_plurals if message.pluralizable else 1) and all(forms)
        if message.fuzzy or not complete:
            missing.append(_key(message))
    return missing


def _entries(catalog: Catalog) -> dict[tuple[str, str | None], Message]:
    return {_key(message): message for message in catalog if message.id}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing out of date: ``stale`` (``make messages`` fixes it) or ``untranslated`` (a translator does)."""

    kind: Literal["stale", "untranslated"]
    file: str  # relative to the repository
    text: str
    key: tuple[str, str | None] | None = None  # (msgid, msgctxt) of the message concerned

    def __str__(self) -> str:
        return f"{self.file}: {self.text}"


def problems(template: Catalog | None = None) -> list[Problem]:
    """What is out of date (nothing: every catalog is current and complete)."""
    template = build_template() if template is None else template
    expected = _entries(template)
    found: list[Problem] = []

    def compare(name: str, entries: dict[tuple[str, str | None], Message]) -> None:
        for key in sorted(expected.keys() - entries.keys(), key=str):
            found.append(Problem("stale", name, f"lacks {_describe(key)}: run `make messages`", key))
        for key in sorted(entries.keys() - expected.keys(), key=str):
            found.append(Problem("stale", name, f"has {_describe(key)}, no longer in the code: run `make messages`", key))
        for key in expected.keys() & entries.keys():
            if expected[key].id != entries[key].id:
                found.append(Problem("stale", name, f"the plural of {_describe(key)} changed: run `make messages`", key))

    for path, language in [(TEMPLATE, None), *((po_path(language), language) for language in LANGUAGES)]:
        name = path.relative_to(REPOSITORY).as_posix()
        catalog = _read(path, locale=language)
        if catalog is None:
            found.append(Problem("stale", name, "is missing: run `make messages`"))
            continue
        compare(name, _entries(catalog))
        if language is None:
            continue
        if catalog.plural_forms != PLURAL_FORMS[language]:
            text = f"Plural-Forms is {catalog.plural_forms!r}, not {PLURAL_FORMS[language]!r}: run `make messages`"
            found.append(Problem("stale", name, text))
        for key in untranslated(catalog):
            if key in expected:
                found.append(Problem("untranslated", name, f"untranslated {_describe(key)}", key))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.i18n.extract", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 listing what is out of date")
    args = parser.parse_args(argv)
    template = build_template()
    if args.check:
        found = problems(template)
        for line in found:
            print(line)
        if found:
            print(f"{len(found)} problem(s); `make messages` updates the files, translators fill the msgstr", file=sys.stderr)
            return 1
        print(f"{len(_entries(template))} messages, translated in {', '.join(LANGUAGES)}")
        return 0
    changed = write_all(template)
    for path in changed:
        print(f"wrote {path.relative_to(REPOSITORY)}")
    missing = {language: len(untranslated(updated_translation(template, language))) for language in LANGUAGES}
    print(
        f"{len(_entries(template))} messages; untranslated: "
        + ", ".join(f"{language} {count}" for language, count in missing.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
