"""Mask spellings and the inline options of a typed ``fill``."""

from __future__ import annotations

import pytest

from bot.inference.masks import clean_input, count_masks, normalize_masks, parse_fill_text, parse_targets


@pytest.mark.parametrize(
    ("text", "mask_token", "expected"),
    [
        ("Le camembert est <mask> :)", "<mask>", "Le camembert est <mask> :)"),
        ("Le camembert est [MASK] :)", "<mask>", "Le camembert est <mask> :)"),
        ("Le camembert est [mask] :)", "<mask>", "Le camembert est <mask> :)"),
        ("Le camembert est <MASK> :)", "<mask>", "Le camembert est <mask> :)"),
        ("the cat sat on the <mask>.", "[MASK]", "the cat sat on the [MASK]."),
        ("the [MASK] sat on the <mask>", "[MASK]", "the [MASK] sat on the [MASK]"),
        # a checkpoint with an unusual token: its own spelling is accepted too
        ("a <extra_mask> b <mask>", "<extra_mask>", "a <extra_mask> b <extra_mask>"),
        ("no blank here", "<mask>", "no blank here"),
        ("glued<mask>!", "[MASK]", "glued[MASK]!"),
    ],
)
def test_normalize_masks(text: str, mask_token: str, expected: str) -> None:
    assert normalize_masks(text, mask_token) == expected


def test_count_masks_counts_every_spelling() -> None:
    assert count_masks("a <mask> b [MASK] c [mask]", "<mask>") == 3
    assert count_masks("nothing", "[MASK]") == 0
    assert count_masks("<mask><mask>", "<mask>") == 2


def test_parse_plain_text_has_no_options() -> None:
    parsed = parse_fill_text("  Le camembert est <mask> :)  ")
    assert parsed.text == "Le camembert est <mask> :)"
    assert parsed.top_k is None and parsed.targets is None


def test_parse_targets_after_a_pipe() -> None:
    parsed = parse_fill_text("Le camembert est <mask> :) | bon, mauvais ,bon,")
    assert parsed.text == "Le camembert est <mask> :)"
    assert parsed.targets == ("bon", "mauvais")


def test_spoiler_bars_are_text_not_a_separator() -> None:
    parsed = parse_fill_text("||spoiler|| is <mask>")
    assert parsed.text == "||spoiler|| is <mask>"
    assert parsed.targets is None
    parsed = parse_fill_text("||spoiler|| is <mask> | a, b")
    assert parsed.text == "||spoiler|| is <mask>"
    assert parsed.targets == ("a", "b")


def test_parse_leading_top_k() -> None:
    assert parse_fill_text("k=3 the <mask>").top_k == 3
    assert parse_fill_text("top_k=10 the <mask>").top_k == 10
    assert parse_fill_text("top_k: 2 the <mask>").top_k == 2
    parsed = parse_fill_text("k=0 the <mask> | x")
    assert (parsed.top_k, parsed.text, parsed.targets) == (0, "the <mask>", ("x",))
    # a number that is part of the sentence is not an option
    assert parse_fill_text("3 chats sont <mask>").top_k is None


def test_empty_target_list_is_kept_empty_so_it_can_be_refused() -> None:
    assert parse_fill_text("the <mask> |").targets == ()
    assert parse_targets(" , ,") == ()


@pytest.mark.parametrize(
    ("text", "mask_token", "expected"),
    [
        # Fullwidth forms (CJK keyboards), folded by NFKC; only the spelling itself is replaced.
        ("the ＜ｍａｓｋ＞ sat", "[MASK]", "the [MASK] sat"),
        ("the ［ＭＡＳＫ］ sat", "<mask>", "the <mask> sat"),
        ("ｔｈｅ ［mask］ ｃａｔ", "<mask>", "ｔｈｅ <mask> ｃａｔ"),
        # Zero-width and other format characters inside a spelling (pasted from the web).
        ("the <ma\u200bsk> sat", "[MASK]", "the [MASK] sat"),
        ("the [\u2060MA\u200dSK\ufeff] sat", "<mask>", "the <mask> sat"),
        ("the <\u200cmask\u202e> sat", "[MASK]", "the [MASK] sat"),
        # Around a spelling they are the user's text and stay.
        ("the\u200b<mask>\u200b sat", "[MASK]", "the\u200b[MASK]\u200b sat"),
        # A combining mark is not invisible: "<\u0301mask>" is no blank (and no "≮" either).
        ("the <\u0301mask> and <\u0338mask>", "[MASK]", "the <\u0301mask> and <\u0338mask>"),
        # A model's own token is matched in its folded form too.
        ("a ＜extra_mask＞", "<extra_mask>", "a <extra_mask>"),
    ],
)
def test_normalize_masks_folds_compatibility_forms(text: str, mask_token: str, expected: str) -> None:
    assert normalize_masks(text, mask_token) == expected
    assert count_masks(text, mask_token) == expected.count(mask_token)


def test_counting_an_already_normalized_text_finds_the_same_masks() -> None:
    text = normalize_masks("＜ｍａｓｋ＞ x [ma\u200bsk] y <mask>", "[MASK]")
    assert text == "[MASK] x [MASK] y [MASK]"
    assert count_masks(text, "[MASK]") == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain <mask>", "plain <mask>"),
        ("a \ud800 b", "a \ufffd b"),
        ("\udfff", "\ufffd"),
        ("\udcff\udcfe", "\ufffd\ufffd"),  # surrogateescape'd bytes from a terminal
        ("x\ud83d\ude00", "x\U0001f600"),  # a pair that arrived split is one character again
        ("\U0001f600 ok", "\U0001f600 ok"),
    ],
)
def test_clean_input_replaces_lone_surrogates(text: str, expected: str) -> None:
    cleaned = clean_input(text)
    assert cleaned == expected
    cleaned.encode("utf-8")  # what every tokenizer and reply needs
