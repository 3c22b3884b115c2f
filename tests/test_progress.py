"""Progress while a checkpoint loads: stages in order, throttled chat edits, download bytes."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from bot.adapters.discord.bot import FillMaskBot
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.progress import LoadProgress, ProgressTracker
from bot.inference.registry import ModelRegistry
from bot.replies.fill import progress_bar
from bot.replies.markup import markdown
from tests.discord_helpers import embed_text, make_settings, titled
from tests.fakediscord import FakeDiscord, start_bot, stop_bot


def test_a_local_load_reports_its_stages_in_order(bert_checkpoint: Path) -> None:
    seen: list[LoadProgress] = []
    load_masked_lm(str(bert_checkpoint), progress=seen.append)
    assert [p.stage for p in seen] == ["checking", "loading weights", "warming up", "ready"]
    assert [p.elapsed for p in seen] == sorted(p.elapsed for p in seen)


def test_descriptions_and_bars() -> None:
    downloading = LoadProgress("downloading", 12.4, 120_400_000, 445_000_000)
    assert downloading.describe() == "downloading 120.4 of 445.0 MB (27 %) · 12 s"
    assert markdown(progress_bar(downloading, width=10)) == "██░░░░░░░░"
    assert "**warming up**" in markdown(progress_bar(LoadProgress("warming up", 3.0)))
    assert LoadProgress("ready", 0.4).describe() == "ready · 0 s"


class StagedLoader:
    """Reports a 3-second "download" in 100 ms steps, then really loads."""

    def __call__(self, reference: str, *, progress: Any = None) -> MaskedLM:
        tracker = ProgressTracker(progress)
        total = 445_000_000
        for step in range(31):
            tracker.stage("downloading", total * step // 30, total)
            time.sleep(0.1)
        return load_masked_lm(reference, progress=progress)


async def test_model_set_edits_progress_into_its_message_at_most_once_a_second(
    tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path
) -> None:
    settings = make_settings(tmp_path, bert_checkpoint)
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings, registry=ModelRegistry(StagedLoader(), max_loaded=2))
        await start_bot(bot)
        try:
            await bot.registry.get(bot.service.default_model)
            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
            await fake.wait_for_message(titled("✅"), after=mark, timeout=30)
            edits = [r for r in fake.find(kind="message.edit", after=mark)]
            progress_edits = [r for r in edits if "Switching to the model" in str(r.json)]
            texts = [embed_text(r.json) for r in progress_edits]
            assert len(progress_edits) >= 2
            assert any("downloading" in t and "MB" in t for t in texts)
            gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(progress_edits)]
            assert all(gap >= 0.8 for gap in gaps), gaps  # throttled: about once a second
            assert len(progress_edits) <= 6  # a ~3.5 s load
            percents = [int(t.split("(")[1].split(" %")[0]) for t in texts if "downloading" in t and "(" in t]
            assert percents == sorted(percents)
            assert "Model changed" in embed_text(edits[-1].json)
        finally:
            await stop_bot(bot)


async def test_compare_edits_the_compared_checkpoints_progress_into_its_notice(
    tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path
) -> None:
    settings = make_settings(tmp_path, bert_checkpoint, local_model_dirs=(bert_checkpoint.parent, camembert_checkpoint.parent))
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings, registry=ModelRegistry(StagedLoader(), max_loaded=2))
        await start_bot(bot)
        try:
            await bot.registry.get(bot.service.default_model)
            mark = fake.mark()
            await fake.send_message(fake.member_id, f"!fill compare={camembert_checkpoint} the cat sat on the [MASK] .")
            await fake.wait_for_message(titled("Fill-mask: two checkpoints"), after=mark, timeout=30)
            edits = fake.find(kind="message.edit", after=mark)
            progress_edits = [r for r in edits if "Loading the model to compare with" in str(r.json)]
            assert 2 <= len(progress_edits) <= 6
            assert any("downloading" in embed_text(r.json) and "MB" in embed_text(r.json) for r in progress_edits)
            gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(progress_edits)]
            assert all(gap >= 0.8 for gap in gaps), gaps
            assert "Fill-mask: two checkpoints" in embed_text(edits[-1].json)
            assert await bot.service.checkpoint_for(fake.guild_id) == bot.service.default_model
        finally:
            await stop_bot(bot)
