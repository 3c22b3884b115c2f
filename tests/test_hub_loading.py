"""`model set <hub id>` against a Hub on 127.0.0.1 (tests/fakehub), through the real clients (issue 11).

The stand-in serves the trained test checkpoints as Hub repos; every download, refusal and
failure goes through huggingface_hub's real HTTP code and the bot's real command processing.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.adapters.discord.bot import FillMaskBot
from bot.inference.errors import CheckpointError
from bot.inference.loading import load_masked_lm
from bot.inference.progress import LoadProgress
from tests.checkpoints import build_untrained_checkpoint
from tests.discord_helpers import BotOnFakeDiscord, embed_text, make_settings, titled
from tests.fakediscord import FakeDiscord, start_bot, stop_bot
from tests.fakehub import FakeHub

REPO = "someone/tiny-bert"


@pytest_asyncio.fixture
async def hub_bot(tmp_path: Path, bert_checkpoint: Path, fake_hub: FakeHub) -> AsyncIterator[BotOnFakeDiscord]:
    fake_hub.add_repo(REPO, bert_checkpoint, card="---\nlanguage: en\nlicense: mit\n---\n# Tiny BERT\n")
    async with running_bot(tmp_path, bert_checkpoint) as harness:
        yield harness


class running_bot:
    def __init__(self, tmp_path: Path, default: Path, **overrides: Any) -> None:
        self.settings = make_settings(tmp_path, default, **overrides)

    async def __aenter__(self) -> BotOnFakeDiscord:
        self._fake = FakeDiscord()
        fake = await self._fake.__aenter__()
        self.bot = FillMaskBot(self.settings)
        await start_bot(self.bot)
        await self.bot.registry.get(self.bot.service.default_model)
        return BotOnFakeDiscord(fake, self.bot, self.settings)

    async def __aexit__(self, *exc: object) -> None:
        await stop_bot(self.bot)
        await self._fake.__aexit__(*exc)


async def switch(harness: BotOnFakeDiscord, checkpoint: str, timeout: float = 60) -> str:
    """``!model set checkpoint`` by an admin; the final reply's text."""
    fake = harness.fake
    mark = fake.mark()
    await fake.send_message(fake.admin_id, f"!model set {checkpoint}")
    body = await fake.wait_for_message(lambda b: titled("✅")(b) or titled("⚠️")(b), after=mark, timeout=timeout)
    return embed_text(body)


async def test_a_hub_model_downloads_with_byte_progress_and_serves(
    hub_bot: BotOnFakeDiscord, fake_hub: FakeHub, tmp_path: Path
) -> None:
    # Big enough (~50 MB) for huggingface_hub to report its bytes several times (every 10 MB).
    big = build_untrained_checkpoint(
        tmp_path / "big", hidden_size=512, intermediate_size=2048, num_hidden_layers=4, num_attention_heads=8
    )
    fake_hub.add_repo("someone/bigger-bert", big)
    fake_hub.throttle(12_000_000)
    fake = hub_bot.fake
    mark = fake.mark()
    text = await switch(hub_bot, "someone/bigger-bert")
    assert "Model changed" in text and "someone/bigger-bert" in text, text
    edits = [embed_text(r.message) for r in fake.find(after=mark) if r.method == "PATCH" and r.message]
    figures = [tuple(map(float, m.groups())) for e in edits if (m := re.search(r"downloading ([\d.]+) of ([\d.]+) MB", e))]
    assert len(figures) >= 2, edits
    done = [d for d, _ in figures]
    assert done == sorted(done) and done[-1] > done[0], figures
    total = sum(f.size for f in fake_hub.repo("someone/bigger-bert").files.values() if not f.path.endswith(".md"))
    assert all(abs(t - total / 1e6) < 0.05 for _, t in figures)  # of the files the load reads
    stamps = [r.timestamp for r in fake.find(after=mark) if r.method == "PATCH"][:-1]  # the last one is the outcome
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(stamps)), stamps  # progress at most once a second
    # It answers from what was downloaded; transformers itself fetched nothing, converted nothing.
    mark = fake.mark()
    await fake.send_message(fake.member_id, "!fill the cat sat on the [MASK] .")
    assert "bigger-bert" in embed_text(await fake.wait_for_message(titled("Fill-mask"), after=mark, timeout=30))
    assert len(fake_hub.find(method="GET", path=r"model\.safetensors$")) == 1
    assert not fake_hub.find(path=r"discussions|refs%2Fpr|refs/pr")


async def test_a_bin_only_repo_is_refused_without_fetching_a_byte_of_it(
    hub_bot: BotOnFakeDiscord, fake_hub: FakeHub, bert_checkpoint: Path
) -> None:
    fake_hub.add_repo("someone/pickled", bert_checkpoint, weights="bin")
    text = await switch(hub_bot, "someone/pickled")
    assert "Model not changed" in text and "no safetensors weights" in text and "ALLOW_PICKLE_WEIGHTS=1" in text, text
    assert not fake_hub.find(path=r"\.bin$")
    assert not fake_hub.find(path=r"discussions|refs%2Fpr|refs/pr|commits")
    assert await hub_bot.bot.service.checkpoint_for(hub_bot.fake.guild_id) == hub_bot.bot.service.default_model


async def test_a_bin_only_repo_loads_when_the_owner_allows_pickle(
    tmp_path: Path, bert_checkpoint: Path, fake_hub: FakeHub
) -> None:
    fake_hub.add_repo("someone/pickled", bert_checkpoint, weights="bin")
    async with running_bot(tmp_path, bert_checkpoint, allow_pickle_weights=True) as harness:
        text = await switch(harness, "someone/pickled")
        assert "Model changed" in text, text
    assert fake_hub.find(method="GET", path=r"pytorch_model\.bin$")
    assert not fake_hub.find(path=r"discussions|refs%2Fpr|refs/pr")


async def test_a_renamed_repo_is_stored_under_its_canonical_id(hub_bot: BotOnFakeDiscord, fake_hub: FakeHub) -> None:
    fake_hub.rename(REPO, "someone-else/tiny-bert")
    text = await switch(hub_bot, REPO)
    assert "Model changed" in text and "someone-else/tiny-bert" in text, text
    assert await hub_bot.bot.service.checkpoint_for(hub_bot.fake.guild_id) == "someone-else/tiny-bert"
    assert hub_bot.bot.registry.loaded.count("someone-else/tiny-bert") == 1 and REPO not in hub_bot.bot.registry.loaded


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda hub: None, "no model called `nobody/nothing` on the Hugging Face Hub (check the spelling"),
        (lambda hub: hub.fail(r"/api/models/", 503, times=None), "Hugging Face Hub is failing"),
        (lambda hub: hub.fail(r"/api/models/", 429, times=None), "rate-limiting"),
    ],
    ids=["unknown", "hub-5xx", "rate-limited"],
)
async def test_failures_are_told_as_what_they_are(
    hub_bot: BotOnFakeDiscord, fake_hub: FakeHub, setup: Any, expected: str
) -> None:
    setup(fake_hub)
    started = time.monotonic()
    text = await switch(hub_bot, "nobody/nothing" if "unknown" in expected or "no model" in expected else REPO)
    assert "Model not changed" in text and expected in text, text
    assert "Check the spelling" not in text or "no model called" in text
    assert time.monotonic() - started < 15  # seconds, not half a minute of retries


async def test_a_gated_repo_says_it_needs_access(hub_bot: BotOnFakeDiscord, fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    fake_hub.add_repo("someone/gated", bert_checkpoint, gated=True)
    text = await switch(hub_bot, "someone/gated")
    assert "Model not changed" in text and "needs access" in text and "HF_TOKEN" in text, text


async def test_a_download_cut_once_is_resumed(hub_bot: BotOnFakeDiscord, fake_hub: FakeHub) -> None:
    fake_hub.cut_short(r"model\.safetensors$", after_bytes=50_000, times=1)
    text = await switch(hub_bot, REPO)
    assert "Model changed" in text, text  # huggingface_hub resumed it (Range) within the same download
    assert fake_hub.find(method="GET", path=r"model\.safetensors$", fault="cut_short")
    assert hub_bot.bot.registry.state(REPO).value == "loaded"


async def test_a_download_cut_every_time_is_reported_and_a_later_retry_works(
    hub_bot: BotOnFakeDiscord, fake_hub: FakeHub
) -> None:
    cut = fake_hub.cut_short(r"model\.safetensors$", after_bytes=50_000, times=None)
    started = time.monotonic()
    text = await switch(hub_bot, REPO)
    assert time.monotonic() - started < 30
    assert "Model not changed" in text and ("cut short" in text or "stopped answering" in text), text
    assert "Oops" not in text
    del cut
    fake_hub.clear_faults()
    text = await switch(hub_bot, REPO)  # the Hub is healthy again: nothing half-written gets in the way
    assert "Model changed" in text, text
    mark = hub_bot.fake.mark()
    await hub_bot.fake.send_message(hub_bot.fake.member_id, "!fill the cat sat on the [MASK] .")
    assert "**mat**" in embed_text(await hub_bot.fake.wait_for_message(titled("Fill-mask"), after=mark, timeout=30))


async def test_a_stalled_download_times_out_with_a_clear_reply(hub_bot: BotOnFakeDiscord, fake_hub: FakeHub) -> None:
    fake_hub.stall(r"model\.safetensors$", times=None, seconds=60)
    started = time.monotonic()
    text = await switch(hub_bot, REPO, timeout=90)
    assert "Model not changed" in text and "Hugging Face Hub" in text, text
    assert time.monotonic() - started < 60


def test_the_parameter_limit_is_judged_before_any_weight_byte(bert_checkpoint: Path, fake_hub: FakeHub) -> None:
    fake_hub.add_repo(REPO, bert_checkpoint)
    with pytest.raises(CheckpointError, match="parameters \\(Hub metadata\\)"):
        load_masked_lm(REPO, max_parameters=1000)
    assert not fake_hub.find(path=r"\.safetensors$")


def test_offline_restart_loads_from_the_cache(bert_checkpoint: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    fake_hub.add_repo(REPO, bert_checkpoint)
    seen: list[LoadProgress] = []
    first = load_masked_lm(REPO, progress=seen.append)
    assert any(p.stage == "downloading" and p.total_bytes for p in seen)
    fake_hub.clear_requests()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    again = load_masked_lm(REPO)
    assert not fake_hub.requests
    prompt = "the cat sat on the [MASK] ."
    from bot.inference.types import FillRequest

    assert again.predict(FillRequest(prompt, 3)).masks == first.predict(FillRequest(prompt, 3)).masks
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    fake_hub.fail(r"/api/models/", 503, times=None)  # online, but the Hub is down: the cache serves too
    assert load_masked_lm(REPO).name == REPO


async def test_health_reports_the_default_models_download(tmp_path: Path, bert_checkpoint: Path, fake_hub: FakeHub) -> None:
    from bot.adapters.health import check_health

    fake_hub.add_repo(REPO, bert_checkpoint)
    fake_hub.throttle(60_000)
    settings = replace(make_settings(tmp_path, bert_checkpoint, health_interval=0.2), default_model=REPO)
    async with FakeDiscord():
        bot = FillMaskBot(settings)
        await start_bot(bot)
        try:
            deadline = time.monotonic() + 30
            reasons: list[str] = []
            while time.monotonic() < deadline and not bot.default_model_loaded():
                if settings.health_file.exists():
                    reasons.append(check_health(settings.health_file, 5)[1])
                await asyncio.sleep(0.2)
            assert any(re.search(r"someone/tiny-bert: downloading [\d.]+ of [\d.]+ MB", r) for r in reasons), reasons[-3:]
        finally:
            await stop_bot(bot)
