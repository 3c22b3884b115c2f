"""The discord.py adapter: the Bot subclass, checks, embeds and cogs."""
