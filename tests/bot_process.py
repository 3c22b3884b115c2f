"""Run the real ``python -m bot`` entry point against a fake Discord, in a child process.

The test process owns the fake (see ``tests/fakediscord/``) and passes its addresses here;
this launcher points discord.py at them, then hands over to ``bot.__main__.main`` exactly
as ``python -m bot`` would. Production code has no hook for this: only this file patches.
"""

from __future__ import annotations

import os
import sys

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

if __name__ == "__main__":
    Route.BASE = os.environ["FAKE_DISCORD_API"]
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["FAKE_DISCORD_GATEWAY"])
    from bot.__main__ import main

    sys.exit(main(sys.argv[1:]))
