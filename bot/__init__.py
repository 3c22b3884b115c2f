"""fillmask-bot: Hugging Face fill-mask models in a Discord server's chat.

Layers, from the bottom up; each imports only the ones below it (import-linter checks it):

- ``bot.inference``: torch + transformers. Loading, batching, prediction, mask syntax, and the
  ``InferenceBackend`` interface a remote backend would implement. Nothing about chat.
- ``bot.service``: what commands do (fill, per-server settings, catalog, model cards, stats).
  No discord, no torch; renders nothing.
- ``bot.replies``: the chat-agnostic ``Reply`` and its builders; untrusted text is escaped when
  a reply is rendered, not when it is built. Also the reply flows every adapter shares.
- ``bot.adapters``: the ways in. ``discord`` (the Bot, context, checks, cogs), ``console``,
  ``one_shot_fill`` (``python -m bot fill``) and ``health`` (``python -m bot health``).

``bot.settings`` reads the environment; ``bot.wiring`` builds the backend, the settings store
and the service once, for every adapter.
"""

__version__ = "0.1.0"
