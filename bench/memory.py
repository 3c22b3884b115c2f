"""Resident memory of the core serving many servers and switching checkpoints (run by bench)."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from bench import checkpoints
from bot.inference.checkpoint_policy import CheckpointPolicy
from bot.inference.loading import configure_threads, load_masked_lm
from bot.inference.registry import ModelRegistry
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import SqliteGuildSettings


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def measure(bert: str, camembert: str) -> dict[str, int]:
    configure_threads(0)
    figures = {"baseline": rss()}
    with tempfile.TemporaryDirectory() as tmp:
        async with SqliteGuildSettings(Path(tmp) / "s.db") as store:
            registry = ModelRegistry(load_masked_lm, max_loaded=1)
            service = FillMaskService(
                registry,
                store,
                default_model=bert,
                policy=CheckpointPolicy(allow_local_models=True, local_roots=(Path(bert).parent,)),
            )
            text = checkpoints.sentences(1, "<mask>", vocabulary=checkpoints.bert_words())[0]
            await service.fill(1, text)
            figures["one_server"] = rss()
            await asyncio.gather(*(service.fill(guild, text) for guild in range(2, 102)))
            figures["hundred_servers"] = rss()
            # One server switching back and forth; only one checkpoint may stay loaded.
            for switch in range(10):
                target = camembert if switch % 2 == 0 else bert
                await service.set_checkpoint(1, target)
                await service.fill(1, text)
                await asyncio.sleep(0.2)  # let the eviction release the other checkpoint
                if switch == 0:
                    figures["after_first_switch"] = rss()
            figures["after_ten_switches"] = rss()
            await registry.aclose()
    return figures


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(sys.argv[1], sys.argv[2]))))
