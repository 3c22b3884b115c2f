"""Reply cards: escaping and Discord's embed limits for any input."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters.discord.embeds import reply_to_embed
from bot.i18n import LOCALES, Locale, using_locale
from bot.inference.types import FillResult, Prediction
from bot.replies.fill import fill_result_reply
from bot.replies.markup import escape, truncate
from bot.replies.reply import TOTAL_LIMIT, Reply, ReplyField, to_markdown
from tests.card_limits import assert_embed_within_limits


def make_result(text: str, words: list[list[str]], checkpoint: str = "camembert-base") -> FillResult:
    masks = tuple(
        tuple(
            Prediction(score=1.0 / (rank + 1), token=rank, token_str=word, sequence=text.replace("<mask>", word, 1))
            for rank, word in enumerate(column)
        )
        for column in words
    )
    return FillResult(checkpoint=checkpoint, text=text, masks=masks, best_sequence=text, elapsed=0.0123)


# Arbitrary unicode, with the characters that matter for Discord over-represented.
hostile_text = st.lists(
    st.one_of(
        st.text(max_size=200),
        st.sampled_from(list("*_~`|>#-[]()<@:\\\n\t\u200b\u202e\x00")),
        st.sampled_from(["@everyone", "@here", "<@123456789012345678>", "<@&123456789012345678>", "```", "||"]),
        st.just("x" * 1500),
    ),
    max_size=60,
).map("".join)


# In every language the bot speaks: a translation may be longer than the English.
@pytest.mark.parametrize("locale", LOCALES)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    text=hostile_text,
    top_k=st.integers(min_value=1, max_value=10),
    mask_count=st.integers(min_value=1, max_value=30),
    word=st.text(max_size=300),
    checkpoint=st.text(min_size=1, max_size=3000),
)
def test_fill_card_fits_discord_limits(
    locale: Locale, text: str, top_k: int, mask_count: int, word: str, checkpoint: str
) -> None:
    result = make_result(text, [[word + str(i) for i in range(top_k)] for _ in range(mask_count)], checkpoint)
    with using_locale(locale):
        reply = fill_result_reply(result, text)
    assert len(to_markdown(reply)) <= TOTAL_LIMIT
    assert_embed_within_limits(reply_to_embed(reply))


@settings(max_examples=100, deadline=None)
@given(
    title=st.text(max_size=600),
    description=st.text(max_size=9000),
    fields=st.lists(st.tuples(st.text(max_size=400), st.text(max_size=2000)), max_size=40),
    footer=st.text(max_size=3000),
)
def test_any_card_is_fitted(title: str, description: str, fields: list[tuple[str, str]], footer: str) -> None:
    reply = Reply(title=title, description=description, fields=tuple(ReplyField(n, v) for n, v in fields), footer=footer)
    assert_embed_within_limits(reply_to_embed(reply))


def test_escape_neutralises_mentions_and_markdown() -> None:
    escaped = escape("@everyone <@&123> **bold** `code` ||spoiler|| [link](http://x)")
    assert re.search(r"(?<!\\)[@<]", escaped) is None  # every @ and < is escaped
    assert "\\@everyone" in escaped
    assert "\\<\\@&123\\>" in escaped
    assert "\\*\\*bold\\*\\*" in escaped
    assert "\\`code\\`" in escaped
    assert "\\|\\|spoiler\\|\\|" in escaped
    assert "\\[link\\]\\(http\\:" in escaped


def test_escape_drops_control_and_bidi_characters() -> None:
    assert escape("a\x00b\u202ec\u2066d\te\nf") == "abcd\te\nf"


@given(st.text(alphabet="ab\\*", max_size=50), st.integers(min_value=1, max_value=50))
def test_truncate_never_leaves_a_dangling_escape(text: str, limit: int) -> None:
    cut = truncate(text, limit)
    assert len(cut) <= limit
    if cut != text:
        body = cut[:-1]
        assert (len(body) - len(body.rstrip("\\"))) % 2 == 0


def test_fill_card_content() -> None:
    result = make_result("Le camembert est <mask> :)", [["délicieux", "excellent"]])
    card = to_markdown(fill_result_reply(result, "Le camembert est <mask> :)"))
    assert "> Le camembert est \\<mask\\> \\:\\)" in card.description
    assert card.fields[0].name == "Predictions"
    lines = card.fields[0].value.splitlines()
    assert "**délicieux**" in lines[0] and "100.0 %" in lines[0] and "██████████" in lines[0]
    assert "**excellent**" in lines[1] and "50.0 %" in lines[1] and "█████░░░░░" in lines[1]
    assert card.footer.startswith("camembert-base · 12 ms")
    assert "per mask" not in card.footer


def test_multi_mask_card_says_scores_are_per_mask() -> None:
    result = make_result("<mask> et <mask>", [["a"], ["b"]])
    card = to_markdown(fill_result_reply(result, "<mask> et <mask>"))
    assert [f.name for f in card.fields] == ["Mask 1 of 2", "Mask 2 of 2"]
    assert "per mask" in card.footer
