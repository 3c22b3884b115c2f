"""What commands do, independent of chat: fill, per-server settings, catalog, model cards, stats. No discord import, renders nothing."""
