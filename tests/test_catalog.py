"""The model catalog: curated checkpoints, the owner's allow-list, autocomplete, the list card."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.i18n import lazy
from bot.inference.checkpoint_policy import is_hub_id
from bot.replies.model_list import (
    DEFAULT_MARK,
    LOADED_MARK,
    OTHER_GROUP,
    PATTERN_GROUP,
    autocomplete_choices,
    choice_name,
    model_list_reply,
)
from bot.replies.reply import (
    FIELD_COUNT_LIMIT,
    MarkdownReply,
    to_markdown,
)
from bot.service.catalog import (
    CURATED,
    MAX_CHOICES,
    CatalogEntry,
    autocomplete,
    is_pattern,
    offered_models,
)
from tests.card_limits import assert_card_within_limits


def ids(entries: list[CatalogEntry]) -> list[str]:
    return [entry.checkpoint for entry in entries]


def listed_lines(card: MarkdownReply) -> list[str]:
    return [line for field in card.fields for line in field.value.split("\n")]


# -- the curated list --------------------------------------------------------------------


def test_curated_list_is_well_formed() -> None:
    names = ids(list(CURATED))
    assert len(names) == len({name.lower() for name in names})
    for entry in CURATED:
        assert is_hub_id(entry.checkpoint) and len(entry.checkpoint) <= 100
        assert entry.language and not entry.is_pattern
    for required in (
        "camembert-base",
        "almanach/camembert-base",
        "flaubert/flaubert_base_cased",
        "bert-base-uncased",
        "bert-base-cased",
        "roberta-base",
        "distilroberta-base",
        "distilbert-base-uncased",
        "xlm-roberta-base",
        "bert-base-multilingual-cased",
        "dbmdz/bert-base-german-cased",
        "dccuchile/bert-base-spanish-wwm-cased",
        "GroNLP/bert-base-dutch-cased",
    ):
        assert required in names
    languages = {str(entry.language) for entry in CURATED}
    assert {"French", "English", "Multilingual", "German", "Spanish", "Italian", "Dutch"} <= languages


# -- offered_models ---------------------------------------------------------------------------


def test_without_allowed_models_the_curated_list_is_offered() -> None:
    assert offered_models(()) == list(CURATED)
    assert offered_models(("", "  ")) == list(CURATED)


def test_exact_ids_are_offered_in_the_owners_order() -> None:
    offered = offered_models(("my-org/my-model", "camembert-base", " CamemBERT-base ", "bert-base-uncased"))
    assert ids(offered) == ["my-org/my-model", "camembert-base", "bert-base-uncased"]
    assert offered[0] == CatalogEntry("my-org/my-model", "", "")
    assert str(offered[1].language) == "French"  # the curated entry, with its language and note
    assert str(offered[2].language) == "English"


def test_patterns_expand_to_the_curated_entries_they_match_plus_themselves() -> None:
    offered = offered_models(("almanach/*",))
    assert ids(offered) == ["almanach/camembert-base", "almanach/*"]
    assert not offered[0].is_pattern and str(offered[0].language) == "French"
    assert offered[1].is_pattern and offered[1].language == ""

    # Case-insensitive, as check_allowed is; no duplicates across items.
    offered = offered_models(("DBMDZ/*", "dbmdz/bert-base-german-cased", "*-base-*-cased"))
    names = ids(offered)
    assert names[:4] == [
        "dbmdz/bert-base-german-cased",
        "dbmdz/bert-base-italian-cased",
        "dbmdz/bert-base-italian-xxl-cased",
        "dbmdz/bert-base-turkish-cased",
    ]
    assert names[4] == "DBMDZ/*"
    assert len(names) == len({name.lower() for name in names})
    assert "bert-base-multilingual-cased" in names and names[-1] == "*-base-*-cased"

    # A pattern matching nothing curated still shows as a pattern.
    assert offered_models(("my-lab/*",)) == [
        CatalogEntry("my-lab/*", "", lazy("pattern: any Hub model whose id matches"), is_pattern=True)
    ]
    assert is_pattern("a/*") and is_pattern("bert-base-?ased") and is_pattern("[ab]/x") and not is_pattern("a/b")


# -- autocomplete ------------------------------------------------------------------------------


def test_empty_input_lists_the_offered_order_up_to_25() -> None:
    choices = autocomplete("", offered_models(()))
    assert ids(choices) == ids(list(CURATED))[:MAX_CHOICES]


def test_prefix_matches_come_before_substring_matches() -> None:
    offered = offered_models(())
    assert ids(autocomplete("roberta", offered))[:2] == ["roberta-base", "roberta-large"]
    rest = ids(autocomplete("roberta", offered))[2:]
    assert "distilroberta-base" in rest and "xlm-roberta-base" in rest
    # The name after "owner/" counts as a prefix too; case does not matter.
    camem = ids(autocomplete("CAMEM", offered))
    assert camem[:2] == ["camembert-base", "almanach/camembert-base"]
    assert "cmarkea/distilcamembert-base" in camem[2:]
    # An exact id comes first of all.
    assert ids(autocomplete("bert-base-cased", offered))[0] == "bert-base-cased"
    # Languages match by prefix as well.
    french = autocomplete("fren", offered)
    assert french and all(str(entry.language) == "French" for entry in french)
    assert ids(autocomplete("dutch", offered))[:2] == ["GroNLP/bert-base-dutch-cased", "pdelobelle/robbert-v2-dutch-base"]
    assert autocomplete("no-such-model-anywhere", offered) == []


def test_prefix_on_language_ranks_with_prefix_on_id() -> None:
    offered = [
        CatalogEntry("zz/my-spanish-model", "English", ""),  # "span" only inside the id
        CatalogEntry("bert-es", "Spanish", ""),  # "span" starts the language
        CatalogEntry("spanbert", "English", ""),  # "span" starts the id
    ]
    assert ids(autocomplete("span", offered)) == ["bert-es", "spanbert", "zz/my-spanish-model"]


def test_autocomplete_is_capped_at_25_and_skips_patterns_and_long_ids() -> None:
    offered = [CatalogEntry(f"org/model-{i:03d}", "English", "") for i in range(200)]
    offered.insert(0, CatalogEntry("org/*", "", "", is_pattern=True))
    offered.insert(1, CatalogEntry("org/" + "m" * 120, "English", ""))
    assert len(autocomplete("org", offered)) == MAX_CHOICES
    assert len(autocomplete("org", offered, limit=100)) == MAX_CHOICES
    assert len(autocomplete("org", offered, limit=5)) == 5
    assert all(not entry.is_pattern and len(entry.checkpoint) <= 100 for entry in autocomplete("", offered))
    assert ids(autocomplete("model-19", offered)) == [f"org/model-{i}" for i in range(190, 200)]


def test_choice_names_fit_discord() -> None:
    entry = CatalogEntry("org/" + "m" * 90, "Language " * 20, "a very long note " * 20)
    name = choice_name(entry)
    assert 0 < len(name) <= 100
    assert choice_name(CatalogEntry("camembert-base", "French", "CamemBERT base")) == "camembert-base · French · CamemBERT base"
    assert choice_name(CatalogEntry("x/y")) == "x/y"
    pairs = autocomplete_choices("camembert", offered_models(()))
    assert pairs[0] == (choice_name(CURATED[0]), "camembert-base")
    assert all(len(n) <= 100 and len(v) <= 100 for n, v in pairs)


# -- the list card -------------------------------------------------------------------------------


def test_model_list_card_groups_by_language_and_marks_loaded_and_default() -> None:
    card = to_markdown(model_list_reply(offered_models(()), ["camembert-base", "XLM-RoBERTa-base"], "camembert-base"))
    assert_card_within_limits(card)
    names = [field.name for field in card.fields]
    assert names[:3] == ["French", "English", "Multilingual"]
    assert len(names) == len(set(names))
    french = card.fields[0].value.split("\n")
    assert french[0].startswith("`camembert-base`")
    assert LOADED_MARK in french[0] and DEFAULT_MARK in french[0]
    assert LOADED_MARK not in french[1] and DEFAULT_MARK not in french[1]
    multilingual = next(f.value for f in card.fields if f.name == "Multilingual").split("\n")
    assert LOADED_MARK in multilingual[0]  # loaded names compare case-insensitively
    assert sum(line.count(LOADED_MARK) for line in listed_lines(card)) == 2
    assert sum(line.count(DEFAULT_MARK) for line in listed_lines(card)) == 1
    assert "`camembert-base`" in card.description
    assert len(listed_lines(card)) == len(CURATED) and not card.footer


def test_default_outside_the_offered_list_is_still_named() -> None:
    card = to_markdown(model_list_reply(offered_models(("bert-base-uncased", "almanach/*")), [], "camembert-base"))
    assert_card_within_limits(card)
    assert "`camembert-base`" in card.description
    assert DEFAULT_MARK not in "".join(listed_lines(card))
    names = [field.name for field in card.fields]
    assert names == ["English", "French", PATTERN_GROUP]
    assert "pattern" in card.description


def test_ids_without_a_language_are_grouped_apart() -> None:
    card = to_markdown(model_list_reply(offered_models(("me/a", "me/b")), ["me/b"], "me/a"))
    assert [field.name for field in card.fields] == [OTHER_GROUP]
    assert card.fields[0].value == f"`me/a` {DEFAULT_MARK}\n`me/b` {LOADED_MARK}"


def test_200_entries_fit_and_the_rest_is_counted() -> None:
    offered = [
        CatalogEntry(f"organisation-{i:03d}/a-rather-long-model-name-{i:03d}", f"Language {i % 7}", "a note " * 12)
        for i in range(200)
    ]
    card = to_markdown(model_list_reply(offered, [offered[0].checkpoint], offered[0].checkpoint))
    assert_card_within_limits(card)
    shown = len(listed_lines(card))
    match = re.fullmatch(r"… and (\d+) more .*", card.footer)
    assert match and shown + int(match.group(1)) == 200
    assert shown > 20
    assert LOADED_MARK in listed_lines(card)[0]
    # Groups too long for one field continue in the next.
    assert any(field.name.endswith("(cont.)") for field in card.fields)


def test_many_languages_stop_at_25_fields() -> None:
    offered = [CatalogEntry(f"o/m{i}", f"Language {i}", "") for i in range(200)]
    card = to_markdown(model_list_reply(offered, [], "o/m0"))
    assert_card_within_limits(card)
    assert len(card.fields) == FIELD_COUNT_LIMIT
    assert card.footer.startswith(f"… and {200 - FIELD_COUNT_LIMIT} more")


def test_empty_list() -> None:
    card = to_markdown(model_list_reply([], [], "camembert-base"))
    assert_card_within_limits(card)
    assert card.fields == () and "No models" in card.description


entry_strategy = st.builds(
    CatalogEntry,
    checkpoint=st.text(min_size=1, max_size=250),
    language=st.one_of(st.just(""), st.sampled_from(["French", "English"]), st.text(max_size=300)),
    note=st.text(max_size=400),
    is_pattern=st.booleans(),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    offered=st.lists(entry_strategy, max_size=250),
    loaded=st.lists(st.text(max_size=50), max_size=5),
    default=st.text(max_size=300),
    query=st.text(max_size=120),
)
def test_any_catalog_fits_discord(offered: list[CatalogEntry], loaded: list[str], default: str, query: str) -> None:
    card = to_markdown(model_list_reply(offered, loaded, default))
    assert_card_within_limits(card)
    if card.footer:
        hidden = int(re.match(r"… and (\d+) more", card.footer).group(1))
        assert hidden > 0
    for name, value in autocomplete_choices(query, offered):
        assert 0 < len(name) <= 100 and 0 < len(value) <= 100
    assert len(autocomplete(query, offered)) <= MAX_CHOICES
