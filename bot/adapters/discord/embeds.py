"""Cards to discord.py embeds."""

from __future__ import annotations

import discord

from bot.replies.reply import Card


def card_to_embed(card: Card) -> discord.Embed:
    card = card.fitted()
    embed = discord.Embed(title=card.title, description=card.description or None, colour=card.colour)
    for field in card.fields:
        embed.add_field(name=field.name, value=field.value, inline=field.inline)
    if card.footer:
        embed.set_footer(text=card.footer)
    return embed
