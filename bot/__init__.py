"""fillmask-bot: Hugging Face fill-mask models in a Discord server's chat.

Layers, from the bottom up:
- ``bot.inference``: the inference core (loading, batching, prediction, mask syntax). No Discord.
- ``bot.service.fill_mask_service``, ``bot.service.guild_settings``, ``bot.replies.reply``: per-server command logic and replies. No Discord.
- ``bot.adapters.discord.bot``, ``bot.adapters.discord.cogs``, ``bot.adapters.discord.embeds``, ``bot.adapters.discord.checks``: the thin discord.py layer.
- ``bot.adapters.console``: the same command logic on standard input, for trying the bot without Discord.
"""

__version__ = "0.1.0"
