"""Discord extensions; each module has an ``async def setup(bot)``."""

EXTENSIONS = ("bot.cogs.fill", "bot.cogs.models", "bot.cogs.info", "bot.cogs.owner")
