"""Discord's embed limits, checked independently of ``MarkdownReply.fitted()``, for replies and embeds."""

from __future__ import annotations

import discord

from bot.replies.reply import (
    DESCRIPTION_LIMIT,
    FIELD_COUNT_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    TITLE_LIMIT,
    TOTAL_LIMIT,
    MarkdownReply,
    Reply,
    to_markdown,
)


def assert_card_within_limits(reply: Reply | MarkdownReply) -> None:
    card = to_markdown(reply) if isinstance(reply, Reply) else reply
    assert len(card.title) <= TITLE_LIMIT
    assert len(card.description) <= DESCRIPTION_LIMIT
    assert len(card.fields) <= FIELD_COUNT_LIMIT
    for field in card.fields:
        assert 0 < len(field.name) <= FIELD_NAME_LIMIT
        assert 0 < len(field.value) <= FIELD_VALUE_LIMIT
    assert len(card.footer) <= FOOTER_LIMIT
    total = len(card.title) + len(card.description) + len(card.footer)
    total += sum(len(f.name) + len(f.value) for f in card.fields)
    assert total <= TOTAL_LIMIT
    assert card == card.fitted()  # nothing left for the Discord layer to cut silently


def assert_embed_within_limits(embed: discord.Embed) -> None:
    assert len(embed.title or "") <= TITLE_LIMIT
    assert len(embed.description or "") <= DESCRIPTION_LIMIT
    assert len(embed.fields) <= FIELD_COUNT_LIMIT
    for field in embed.fields:
        assert 0 < len(field.name or "") <= FIELD_NAME_LIMIT
        assert 0 < len(field.value or "") <= FIELD_VALUE_LIMIT
    assert len(embed.footer.text or "") <= FOOTER_LIMIT
    assert len(embed) <= TOTAL_LIMIT  # discord.py counts it as Discord does
