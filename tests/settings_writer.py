"""Child process for the durability test: writes settings and says "ack" after each commit."""

from __future__ import annotations

import asyncio
import sys

from bot.service.guild_settings import SqliteGuildSettings


async def main(path: str, count: int) -> None:
    async with SqliteGuildSettings(path) as store:
        for i in range(count):
            await store.set_checkpoint(1000 + i, f"owner/model-{i}", updated_by=i)
            if i % 3 == 0:
                await store.set_checkpoint(1000 + i, f"owner/model-{i}-v2")
                print(f"ack {1000 + i} owner/model-{i}-v2", flush=True)
            else:
                print(f"ack {1000 + i} owner/model-{i}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
