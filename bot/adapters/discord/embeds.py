"""Replies to discord.py embeds."""

from __future__ import annotations

import discord

from bot.replies.reply import Reply, to_markdown


def reply_to_embed(reply: Reply) -> discord.Embed:
    rendered = to_markdown(reply)
    embed = discord.Embed(title=rendered.title, description=rendered.description or None, colour=rendered.colour)
    for field in rendered.fields:
        embed.add_field(name=field.name, value=field.value, inline=field.inline)
    if rendered.footer:
        embed.set_footer(text=rendered.footer)
    return embed
