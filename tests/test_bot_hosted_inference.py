"""The bot on Hugging Face's hosted inference (INFERENCE_URL, INFERENCE_API=huggingface), against
stand-ins for the hosted API and the Hub: its 503 "model is loading" is the bot's loading notice,
its 429 the bot's busy reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters.discord.bot import FillMaskBot
from bot.service.guild_settings import SqliteGuildSettings
from tests.discord_helpers import embed_text, make_settings, titled
from tests.fakediscord import FakeDiscord, start_bot, stop_bot
from tests.fakehfinference import FakeHFInference
from tests.fakehub import FakeHub

TOKEN = "hf_fakehub_member"  # the Hub stand-in's valid token; Hugging Face takes one token for both
BERT = "someone/tiny-bert"
CAMEMBERT = "almanach/tiny-camembert"


async def test_hosted_loading_and_rate_limits_read_as_the_bot_s_own_replies(
    tmp_path: Path, fake_hub: FakeHub, bert_checkpoint: Path, camembert_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    fake_hub.add_repo(BERT, bert_checkpoint)
    fake_hub.add_repo(CAMEMBERT, camembert_checkpoint)
    async with FakeHFInference({BERT: bert_checkpoint, CAMEMBERT: camembert_checkpoint}, token=TOKEN) as hf:
        settings = make_settings(
            tmp_path,
            Path(BERT),  # a Hub id, through the stand-ins
            allow_local_models=False,
            inference_url=hf.url,
            inference_api="huggingface",
        )
        async with SqliteGuildSettings(settings.database_path) as store:
            await store.set_checkpoint(FakeDiscord.guild_id, CAMEMBERT)  # chosen before this start
        hf.cold(CAMEMBERT, calls=2, estimated_time=1.0)
        async with FakeDiscord() as fake:
            bot = FillMaskBot(settings)
            await start_bot(bot)
            try:
                mark = fake.mark()
                await fake.send_message(fake.member_id, "!fill le chat est sur le <mask> .")
                notice = await fake.wait_for_message(after=mark, timeout=30)
                assert titled("⏳")(notice)  # Hugging Face is loading it: the loading notice first
                result = await fake.wait_for_message(titled("Fill-mask"), after=mark, timeout=60)
                assert "**" in embed_text(result)
                assert len(hf.fills(CAMEMBERT)) >= 3  # answered 503 twice, then the fill

                mark = fake.mark()
                await fake.send_message(fake.member_id, "!model show")
                shown = embed_text(await fake.wait_for_message(titled("This server's model"), after=mark, timeout=30))
                assert CAMEMBERT in shown and "hosted-inference API" in shown

                hf.throttle(calls=1, retry_after=7)
                mark = fake.mark()
                await fake.send_message(fake.member_id, "!fill le chat est sur le <mask> .")
                busy = embed_text(await fake.wait_for_message(titled("⚠️"), after=mark, timeout=30))
                assert "try again in 7 s" in busy
            finally:
                await stop_bot(bot)
