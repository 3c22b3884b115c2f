"""Child process for the store tests: writes settings and says "ack" after each commit.

    settings_writer.py TARGET COUNT          many guilds, some written twice (durability)
    settings_writer.py TARGET COUNT TAG      guilds 0-2 rewritten COUNT times as TAG-rN (contention)

TARGET is a SQLite path or a postgresql:// URL.
"""

from __future__ import annotations

import asyncio
import sys

from bot.service.guild_settings import SqliteGuildSettings
from bot.service.postgres_settings import PostgresGuildSettings

CONTENDED_GUILDS = 3


async def main(target: str, count: int, tag: str | None) -> None:
    store = PostgresGuildSettings(target) if target.startswith("postgresql://") else SqliteGuildSettings(target, timeout=30)
    async with store:
        if tag is not None:
            for r in range(count):
                for guild in range(CONTENDED_GUILDS):
                    await store.set_checkpoint(guild, f"{tag}-r{r}")
                    print(f"ack {guild} {tag}-r{r}", flush=True)
            return
        for i in range(count):
            await store.set_checkpoint(1000 + i, f"owner/model-{i}", updated_by=i)
            if i % 3 == 0:
                await store.set_checkpoint(1000 + i, f"owner/model-{i}-v2")
                print(f"ack {1000 + i} owner/model-{i}-v2", flush=True)
            else:
                print(f"ack {1000 + i} owner/model-{i}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
