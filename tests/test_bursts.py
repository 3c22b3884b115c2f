"""Bursts through the real bot (issue 10): a class of 64 sending `/fill` at once all get their
answer with the default limits, none is told "busy", and the burst is answered in batches."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.adapters.discord.bot import FillMaskBot
from bot.inference.batching import BatchingModel
from bot.inference.errors import FillMaskError
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.registry import ModelRegistry
from bot.inference.types import FillRequest, FillResult
from bot.settings import Settings
from tests.discord_helpers import embed_text, make_settings, titled
from tests.fakediscord import FakeDiscord, start_bot, stop_bot

CLASS_SIZE = 64
SENTENCES = ["the cat sat on the [MASK] .", "paris is the capital of [MASK] .", "the sky is [MASK] ."]


def production_limits(tmp_path: Path, default_model: Path) -> Settings:
    """The tests' settings with the shipped per-user cooldown and per-server share."""
    defaults = Settings()
    return make_settings(
        tmp_path,
        default_model,
        fill_cooldown_rate=defaults.fill_cooldown_rate,
        fill_cooldown_seconds=defaults.fill_cooldown_seconds,
        guild_max_queued_fills=defaults.guild_max_queued_fills,
    )


@pytest.mark.parametrize("path", ["slash", "prefix"])
async def test_a_class_of_64_all_get_their_answer(
    tmp_path: Path, bert_checkpoint: Path, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.service.fill_mask_service")
    settings = production_limits(tmp_path, bert_checkpoint)
    async with FakeDiscord() as fake:
        members = [fake.add_member(f"student{i:02d}") for i in range(CLASS_SIZE)]
        bot = FillMaskBot(settings)
        await start_bot(bot)
        try:
            await bot.registry.get(bot.service.default_model)  # loaded, as in a running bot
            started = time.perf_counter()
            if path == "slash":
                tokens = await asyncio.gather(
                    *(fake.send_slash(m, "fill", {"text": SENTENCES[i % 3]}) for i, m in enumerate(members))
                )
                bodies = await asyncio.gather(
                    *(fake.wait_for_message(lambda b: bool(b.get("embeds")), token=t, timeout=60) for t in tokens)
                )
            else:
                ids = [await fake.send_message(m, f"!fill {SENTENCES[i % 3]}") for i, m in enumerate(members)]
                await fake.wait_for(
                    lambda r: len([m for m in fake.messages.values() if titled("Fill-mask")(m) or titled("⚠️")(m)]) >= CLASS_SIZE,
                    timeout=60,
                )
                replies = {int(m["message_reference"]["message_id"]): m for m in fake.messages.values() if m.get("embeds")}
                assert sorted(replies) == sorted(ids)  # each command got its reply, as a reply to it
                bodies = list(replies.values())
            elapsed = time.perf_counter() - started
            titles = [b["embeds"][0]["title"] for b in bodies]
            assert titles == ["Fill-mask"] * CLASS_SIZE, [embed_text(b) for b in bodies if b["embeds"][0]["title"] != "Fill-mask"]
            expected = {"the cat sat on the": "mat", "paris is the capital of": "france", "the sky is": "blue"}
            for body in bodies:
                text = embed_text(body)
                word = next(w for start, w in expected.items() if start in text)
                assert f"**{word}**" in body["embeds"][0]["fields"][0]["value"].splitlines()[0]
            # Batched: the per-request log lines say how large each request's pass was.
            batch_sizes = [int(m.group(1)) for r in caplog.records if (m := re.search(r" batch=(\d+) ", r.getMessage()))]
            assert len(batch_sizes) == CLASS_SIZE and max(batch_sizes) >= 16, batch_sizes
            assert bot.service.stats.served == CLASS_SIZE
            assert elapsed < 30
        finally:
            await stop_bot(bot)


PASS_SECONDS = 0.15  # a bert-base pass of 8 sentences on two cores takes about this long


def slow_model_loader(reference: str, *, progress: object = None) -> MaskedLM:
    """The real model, each forward pass made as slow as a full-size checkpoint's."""
    lm = load_masked_lm(reference)
    answer = lm.predict_batch

    def slowed(requests: Sequence[FillRequest]) -> list[FillResult | FillMaskError]:
        time.sleep(PASS_SECONDS)
        return answer(requests)

    lm.predict_batch = slowed  # pyright: ignore[reportAttributeAccessIssue]
    return lm


async def test_a_member_of_another_server_is_answered_during_a_flood(tmp_path: Path, bert_checkpoint: Path) -> None:
    settings = production_limits(tmp_path, bert_checkpoint)
    async with FakeDiscord() as fake:
        members = [fake.add_member(f"student{i:02d}") for i in range(CLASS_SIZE)]
        other_guild = fake.add_guild("another class")
        bot = FillMaskBot(settings, registry=ModelRegistry(slow_model_loader, max_batch_size=8))
        await start_bot(bot)
        try:
            served = await bot.registry.get(bot.service.default_model)
            assert isinstance(served, BatchingModel)
            tokens = await asyncio.gather(*(fake.send_slash(m, "fill", {"text": SENTENCES[0]}) for m in members))
            while served.outstanding < CLASS_SIZE - 8:  # the flood is queued (8 passes of work)
                await asyncio.sleep(0.005)
            started = time.perf_counter()
            token = await fake.send_slash(fake.member_id, "fill", {"text": SENTENCES[1]}, guild_id=other_guild)
            body = await fake.wait_for_message(lambda b: bool(b.get("embeds")), token=token, timeout=60)
            waited = time.perf_counter() - started
            left = served.outstanding
            assert "**france**" in body["embeds"][0]["fields"][0]["value"].splitlines()[0]
            # Within about two passes (plus Discord round trips), while most of the flood still waits.
            assert waited < 3 * PASS_SECONDS + 0.3, waited
            assert left >= CLASS_SIZE - 4 * served.max_batch_size, left
            flood = await asyncio.gather(
                *(fake.wait_for_message(lambda b: bool(b.get("embeds")), token=t, timeout=60) for t in tokens)
            )
            assert [b["embeds"][0]["title"] for b in flood] == ["Fill-mask"] * CLASS_SIZE
        finally:
            await stop_bot(bot)
