"""The ways in: Discord, the console, the one-shot CLI and the health check."""
