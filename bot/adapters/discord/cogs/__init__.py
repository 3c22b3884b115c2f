"""Discord extensions; each module has an ``async def setup(bot)``."""

EXTENSIONS = (
    "bot.adapters.discord.cogs.fill",
    "bot.adapters.discord.cogs.context_menu",
    "bot.adapters.discord.cogs.models",
    "bot.adapters.discord.cogs.language",
    "bot.adapters.discord.cogs.info",
    "bot.adapters.discord.cogs.owner",
)
