"""Mask spellings and the inline options of a typed ``fill``."""

from __future__ import annotations

import pytest

from bot.inference.masks import count_masks, normalize_masks, parse_fill_text, parse_targets


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
