"""The translation catalogs are complete and consistent: no message in one language and not the others.

The messages are what ``make messages`` (``python -m bot.i18n.extract``) extracts: every marked
message of ``bot/`` and the slash commands' own texts from the real command tree. Each must be in
``messages.pot`` and in every language's ``.po`` file (nothing more), translated (every plural
form, nothing fuzzy), with the msgid's ``{placeholders}`` and backtick code spans kept; the slash
commands' translations must also pass Discord's rules for names and descriptions.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from bot.i18n import CHOICE_NAME, COMMAND_DESCRIPTION, COMMAND_NAME, PARAMETER_DESCRIPTION, PARAMETER_NAME, extract, translations
from tests.fakediscord.app_commands import valid_slash_name

COMMAND_CONTEXTS = (COMMAND_NAME, COMMAND_DESCRIPTION, PARAMETER_NAME, PARAMETER_DESCRIPTION, CHOICE_NAME)
Key = tuple[str, str | None]  # (msgid, msgctxt)


@pytest.fixture(scope="module")
def command_texts() -> list[tuple[str, str, tuple[str, int] | None, bool]]:
    return extract.command_texts()


@pytest.fixture(scope="module")
def template(command_texts: list[tuple[str, str, tuple[str, int] | None, bool]]) -> Catalog:
    return extract.build_template(command_texts)


@pytest.fixture(scope="module")
def problems(template: Catalog) -> list[extract.Problem]:
    return extract.problems(template)


@pytest.fixture(scope="module", params=extract.LANGUAGES)
def language(request: pytest.FixtureRequest) -> str:
    return request.param


def read_catalog(language: str) -> Catalog:
    path = extract.po_path(language)
    assert path.exists(), f"{path} is missing: run `make messages`"
    with path.open("rb") as source:
        return read_po(source, locale=language)


def key_of(message: Message) -> Key:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return msgid, message.context


def translated(catalog: Catalog) -> Iterator[tuple[Message, list[str]]]:
    """Each translated entry and its forms (one, or one per plural form)."""
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        forms = [str(form or "") for form in (message.string if isinstance(message.string, (list, tuple)) else [message.string])]
        if all(forms):
            yield message, forms


def fields(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conversion in string.Formatter().parse(text) if name is not None}


CODE_SPAN = re.compile(r"(`+)[\s\S]*?\1")


def code_spans(text: str) -> int:
    return len(CODE_SPAN.findall(text))


def listing(lines: list[str], limit: int = 40) -> str:
    shown = "\n".join(lines[:limit])
    return shown + (f"\n… and {len(lines) - limit} more" if len(lines) > limit else "")


# -- what `make messages` would write ------------------------------------------------------------


def test_the_catalog_has_the_messages_of_the_code_and_of_the_command_tree(template: Catalog) -> None:
    keys = {key_of(m) for m in template if m.id}
    assert len(keys) > 10
    assert ("fill", COMMAND_NAME) in keys  # a slash command, from the tree
    assert all(context in {c for _, c in keys} for context in (COMMAND_NAME, COMMAND_DESCRIPTION, PARAMETER_NAME))
    assert any(context is None for _, context in keys)  # the code's marked messages
    assert all(m.locations for m in template if m.id), "every message says where it comes from"


def test_the_template_and_every_language_file_are_up_to_date(problems: list[extract.Problem]) -> None:
    """The pot and each .po hold exactly the extracted messages (no missing, no extra msgid)."""
    stale = [str(p) for p in problems if p.kind == "stale"]
    assert not stale, "run `make messages`:\n" + listing(stale)


def test_plural_forms_are_those_of_each_language(language: str) -> None:
    catalog = read_catalog(language)
    assert catalog.plural_forms == extract.PLURAL_FORMS[language]
    assert {"fr": 2, "ko": 1}[language] == catalog.num_plurals


def test_the_slash_commands_texts_are_translated_in_every_language(problems: list[extract.Problem]) -> None:
    missing = [str(p) for p in problems if p.kind == "untranslated" and p.key is not None and p.key[1] in COMMAND_CONTEXTS]
    assert not missing, listing(missing)


def test_every_message_is_translated_in_every_language(problems: list[extract.Problem]) -> None:
    """What ``python -m bot.i18n.extract --check`` reports: a message in English only fails here."""
    missing = [str(p) for p in problems if p.kind == "untranslated"]
    assert not missing, f"{len(missing)} untranslated:\n" + listing(missing)


# -- what translations must keep -------------------------------------------------------------


def test_translations_keep_the_placeholders(language: str) -> None:
    wrong: list[str] = []
    for message, forms in translated(read_catalog(language)):
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        try:
            allowed = [fields(text) for text in ids]
            for form in forms:
                if fields(form) not in allowed:
                    wrong.append(f"{key_of(message)}: {sorted(fields(form))} in {form!r}, expected {sorted(allowed[-1])}")
        except ValueError as exc:  # an unmatched brace: str.format would raise when shown
            wrong.append(f"{key_of(message)}: {exc} in {forms!r}")
    assert not wrong, listing(wrong)


def test_translations_keep_the_code_spans(language: str) -> None:
    wrong: list[str] = []
    for message, forms in translated(read_catalog(language)):
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        expected = {code_spans(text) for text in ids}
        wrong += [f"{key_of(message)}: {code_spans(f)} code span(s) in {f!r}" for f in forms if code_spans(f) not in expected]
    assert not wrong, listing(wrong)


def test_translated_command_texts_follow_discords_rules(
    language: str, command_texts: list[tuple[str, str, tuple[str, int] | None, bool]]
) -> None:
    menus = {text for context, text, _location, menu in command_texts if context == COMMAND_NAME and menu}
    wrong: list[str] = []
    for message, forms in translated(read_catalog(language)):
        text, context = key_of(message)
        shown = forms[0]
        if context in (COMMAND_NAME, PARAMETER_NAME):
            # A context menu's name may have capitals and spaces.
            ok = 1 <= len(shown) <= 32 if context == COMMAND_NAME and text in menus else valid_slash_name(shown)
            if not ok:
                wrong.append(f"{context} {text!r}: {shown!r} is not a valid Discord name")
        elif context in (COMMAND_DESCRIPTION, PARAMETER_DESCRIPTION, CHOICE_NAME) and not 1 <= len(shown) <= 100:
            wrong.append(f"{context} {text!r}: {shown!r} has {len(shown)} characters (1-100)")
    assert not wrong, listing(wrong)


def test_the_runtime_loader_serves_the_translations(language: str) -> None:
    entries = list(translated(read_catalog(language)))
    assert entries, "no translation at all"
    runtime = translations(language)  # pyright: ignore[reportArgumentType]
    for message, forms in entries[:: max(1, len(entries) // 20)]:
        if isinstance(message.id, str):
            got = runtime.pgettext(message.context, message.id) if message.context else runtime.gettext(message.id)
            assert got == forms[0], message.id
        else:
            singular, plural = message.id
            assert runtime.ngettext(singular, plural, 1) == forms[0]
            assert runtime.ngettext(singular, plural, 5) == forms[-1]


def test_extraction_is_deterministic(
    template: Catalog, command_texts: list[tuple[str, str, tuple[str, int] | None, bool]]
) -> None:
    again = extract.build_template(command_texts)
    assert extract.render(again) == extract.render(template)
    assert b"POT-Creation-Date" not in extract.render(template)
    for language in extract.LANGUAGES:
        po = extract.updated_translation(template, language)
        assert extract.render(po) == extract.render(extract.updated_translation(template, language))
