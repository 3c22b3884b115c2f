"""SHARD_COUNT / SHARD_IDS as an owner writes them, and what the bot does with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters.discord.bot import FillMaskBot
from bot.settings import ConfigError, Settings
from tests.discord_helpers import make_settings
from tests.fakediscord import FakeDiscord, start_bot, stop_bot


def settings(**env: str) -> Settings:
    return Settings.from_env(env, dotenv_path=None)


def test_unset_is_one_shard_and_all_ids() -> None:
    assert (settings().shard_count, settings().shard_ids) == (None, ())


def test_count_ids_and_auto() -> None:
    assert settings(SHARD_COUNT="4", SHARD_IDS="0, 2").shard_ids == (0, 2)
    assert settings(SHARD_COUNT="4").shard_count == 4
    assert settings(SHARD_COUNT="AUTO").shard_count == 0  # Discord's recommended count


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT must be at least 1"),
        ({"SHARD_COUNT": "two"}, "SHARD_COUNT must be a whole number"),
        ({"SHARD_IDS": "0"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"SHARD_COUNT": "auto", "SHARD_IDS": "0"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "0,2"}, "SHARD_IDS must be below SHARD_COUNT=2"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "1,1"}, "lists shard 1 twice"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "-1"}, "must not be negative"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "0;1"}, "comma-separated shard numbers"),
    ],
)
def test_mistakes_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(**env)


async def test_auto_runs_the_count_discord_recommends(tmp_path: Path, bert_checkpoint: Path) -> None:
    async with FakeDiscord(shards=2, max_concurrency=2) as fake:
        bot = FillMaskBot(make_settings(tmp_path, bert_checkpoint, shard_count=0))
        await start_bot(bot)
        try:
            assert bot.shard_count == 2 and set(bot.shards) == {0, 1}
            assert sorted(i.shard_id for i in fake.identifies) == [0, 1]
            assert fake.identify_violations == []  # two buckets: both at once, no wait
        finally:
            await stop_bot(bot)


async def test_unset_identifies_as_one_shard(tmp_path: Path, bert_checkpoint: Path) -> None:
    async with FakeDiscord() as fake:
        bot = FillMaskBot(make_settings(tmp_path, bert_checkpoint))
        await start_bot(bot)
        try:
            assert [(i.shard_id, i.shard_count) for i in fake.identifies] == [(0, 1)]
            assert bot.running_shards == (0,)
        finally:
            await stop_bot(bot)
