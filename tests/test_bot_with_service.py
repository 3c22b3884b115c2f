"""A real bot process with INFERENCE_URL (torch and transformers blocked from import) against a
real ``python -m bot serve`` and the fake Discord: the same replies, models loaded elsewhere."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.discord_helpers import embed_text
from tests.fakediscord import FakeDiscord
from tests.inference_service import running_service
from tests.test_process import bot_env, start_process, stop_process, titled


async def test_the_bot_fills_through_the_service_and_outlives_its_outage(
    tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path
) -> None:
    async with running_service(bert_checkpoint) as service, FakeDiscord() as fake:
        env = bot_env(tmp_path, bert_checkpoint, fake, INFERENCE_URL=service.url, BLOCK_TORCH="1")
        bot = await start_process(env, tmp_path)
        try:
            await fake.wait_connected(timeout=60)
            mark = fake.mark()
            await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
            assert "**mat**" in embed_text(await fake.wait_for_message(titled("Fill-mask"), after=mark, timeout=60))
            token = await fake.send_slash(fake.member_id, "fill", {"text": "the cat sat on the [MASK] .", "top_k": 3})
            assert "**mat**" in embed_text(await fake.wait_for_message(titled("Fill-mask"), token=token, timeout=60))

            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
            changed = embed_text(await fake.wait_for_message(titled("✅"), after=mark, timeout=90))
            assert "the inference service at 127.0.0.1" in changed  # model show/set say where it runs
            mark = fake.mark()
            await fake.send_message(fake.member_id, "!fill le chat est sur le [MASK] .")
            await fake.wait_for_message(titled("Fill-mask"), after=mark, timeout=60)

            # The service goes away: a plain-words reply within 15 s, nothing stale.
            assert await service.stop() == 0
            mark = fake.mark()
            sent = time.monotonic()
            await fake.send_message(fake.member_id, "!fill le chat est sur le <mask> .")
            down = await fake.wait_for_message(after=mark, timeout=30)
            assert time.monotonic() - sent < 15
            text = embed_text(down)
            assert "unreachable" in text and "Traceback" not in text
            assert not titled("Fill-mask")(down)  # no stale predictions

            # Back again: fills work without restarting the bot.
            await service.start()
            for _ in range(30):
                mark = fake.mark()
                await fake.send_message(fake.member_id, "!fill le chat est sur le <mask> .")
                reply = await fake.wait_for_message(after=mark, timeout=60)
                if titled("Fill-mask")(reply):
                    break
                await asyncio.sleep(1)
            else:
                raise AssertionError("fills did not work again once the service was back")
        finally:
            code, stderr = await stop_process(bot)
        assert code == 0, stderr[-3000:]
        assert "ModuleNotFoundError" not in stderr and "import of torch halted" not in stderr
