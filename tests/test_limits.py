"""Rate limits on both command paths, and the PRECISION options on a real checkpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.discord.bot import FillMaskBot
from bot.inference.errors import CheckpointLoadError
from bot.inference.loading import load_masked_lm
from bot.inference.types import FillRequest
from bot.settings import ConfigError, Settings
from tests.discord_helpers import BotOnFakeDiscord, bot_on_fake_discord, embed_text, make_settings, titled
from tests.fakediscord import FakeDiscord, start_bot, stop_bot


@pytest.fixture
async def limited(tmp_path: Path, bert_checkpoint: Path) -> AsyncIterator[BotOnFakeDiscord]:
    settings = make_settings(
        tmp_path, bert_checkpoint, fill_cooldown_rate=2, fill_cooldown_seconds=60.0, model_set_cooldown_seconds=60.0
    )
    async with bot_on_fake_discord(settings) as running:
        yield running


async def test_fill_cooldown_applies_per_user_on_both_paths(limited: BotOnFakeDiscord) -> None:
    fake = limited.fake
    for _ in range(2):
        mark = fake.mark()
        await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
        await fake.wait_for_message(titled("Fill-mask"), after=mark)
    mark = fake.mark()
    token = await fake.send_slash(fake.member_id, "fill", {"text": "the cat sat on the <mask> ."})
    refused = await fake.wait_for_message(token=token)
    assert "Slow down" in embed_text(refused) and "try again in" in embed_text(refused)
    assert refused.get("flags", 0) & (1 << 6)  # only the spammer sees it
    # another user is not affected
    await fake.send_message(fake.admin_id, "!fill the cat sat on the <mask> .")
    await fake.wait_for_message(titled("Fill-mask"), after=mark)


async def test_model_set_cooldown_and_a_failed_set_does_not_count(
    limited: BotOnFakeDiscord, camembert_checkpoint: Path, tmp_path: Path
) -> None:
    fake = limited.fake
    await fake.send_message(fake.admin_id, f"!model set {tmp_path / 'missing'}")
    await fake.wait_for_message(titled("⚠️"))
    mark = fake.mark()
    await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")  # the failure did not use the cooldown
    await fake.wait_for_message(titled("✅"), after=mark, timeout=30)
    mark = fake.mark()
    await fake.send_message(fake.admin_id, "!model set bert-base-uncased")
    refused = await fake.wait_for_message(titled("⚠️"), after=mark)
    assert "Slow down" in embed_text(refused)


async def test_a_full_server_share_answers_busy_and_the_rest_are_answered(tmp_path: Path, bert_checkpoint: Path) -> None:
    from bot.inference.registry import ModelRegistry
    from tests.discord_helpers import SlowLoader

    settings = make_settings(tmp_path, bert_checkpoint, guild_max_queued_fills=2)
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings, registry=ModelRegistry(SlowLoader(2.0), max_loaded=1, max_queued_per_tenant=2))
        await start_bot(bot)
        try:
            # All three wait for the load, then reach the queue together: the share holds two.
            for user in (fake.member_id, fake.admin_id, fake.owner_id):
                await fake.send_message(user, "!fill the cat sat on the <mask> .")
            busy = await fake.wait_for_message(titled("⚠️"), timeout=30)
            assert "This server already has a lot of requests waiting" in embed_text(busy)
            await fake.wait_for(lambda r: len([m for m in fake.messages.values() if titled("Fill-mask")(m)]) >= 2, timeout=30)
            final = [m for m in fake.messages.values() if m.get("embeds")]
            assert len(final) == 3  # each notice became its answer; nothing left loading
            assert sorted(m["embeds"][0]["title"].split()[0] for m in final) == ["Fill-mask", "Fill-mask", "⚠️"]
        finally:
            await stop_bot(bot)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_still_predicts_the_corpus_word(bert_checkpoint: Path, precision: str) -> None:
    lm = load_masked_lm(str(bert_checkpoint), precision=precision)
    assert lm.precision == precision
    assert lm.predict(FillRequest("the cat sat on the [MASK] .", 1)).masks[0][0].word == "mat"


def test_fp16_on_the_cpu_is_refused_clearly(bert_checkpoint: Path) -> None:
    with pytest.raises(CheckpointLoadError, match="fp16"):
        load_masked_lm(str(bert_checkpoint), precision="fp16", device="cpu")
    with pytest.raises(ConfigError, match="CUDA"):
        Settings.from_env({"PRECISION": "fp16", "DEVICE": "cpu"})
    with pytest.raises(ConfigError, match="CPU only"):
        Settings.from_env({"PRECISION": "int8", "DEVICE": "cuda"})
