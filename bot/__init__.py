"""fillmask-bot: Hugging Face fill-mask models in a Discord server's chat.

Layers, from the bottom up:
- ``bot.core``: the inference core (loading, batching, prediction, mask syntax). No Discord.
- ``bot.service``, ``bot.storage``, ``bot.cards``: per-server command logic and replies. No Discord.
- ``bot.client``, ``bot.cogs``, ``bot.embeds``, ``bot.checks``: the thin discord.py layer.
- ``bot.console``: the same command logic on standard input, for trying the bot without Discord.
"""

__version__ = "0.1.0"
