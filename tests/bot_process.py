"""Run the real ``python -m bot`` entry point against a fake Discord, in a child process.

The test process owns the fake (see ``tests/fakediscord/``) and passes its addresses here;
this launcher points discord.py at them, then hands over to ``bot.__main__.main`` exactly
as ``python -m bot`` would. Production code has no hook for this: only this file patches.

``FAKE_HUNG_LOAD`` names a checkpoint folder whose load never returns (a read on a hung
network mount), to test that such a load cannot keep the process from stopping.

``BLOCK_TORCH=1`` makes ``import torch`` and ``import transformers`` fail in this process, as
on a machine without them: a bot with INFERENCE_URL must not need either.
"""

from __future__ import annotations

import os
import sys

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

if __name__ == "__main__":
    if os.environ.get("BLOCK_TORCH") == "1":
        for blocked in ("torch", "transformers"):
            sys.modules[blocked] = None  # pyright: ignore[reportArgumentType]  # import now raises ImportError
    Route.BASE = os.environ["FAKE_DISCORD_API"]
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["FAKE_DISCORD_GATEWAY"])
    hung = os.environ.get("FAKE_HUNG_LOAD")
    if hung:
        import threading

        import bot.inference.loading

        real_load = bot.inference.loading.load_masked_lm

        def load_or_hang(reference: str, **kwargs: object) -> object:
            if reference == hung:
                threading.Event().wait()  # never returns
            return real_load(reference, **kwargs)  # pyright: ignore[reportArgumentType]

        # wiring.build_registry imports the loader when it runs: it finds this one.
        bot.inference.loading.load_masked_lm = load_or_hang  # pyright: ignore[reportAttributeAccessIssue]
    from bot.__main__ import main

    sys.exit(main(sys.argv[1:]))
