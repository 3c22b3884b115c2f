"""Command logic shared by Discord and the console: fill, model set/reset/show."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.console import Console
from bot.inference.checkpoint_policy import CheckpointPolicy
from bot.inference.errors import CheckpointNotAllowedError, FillMaskError, InvalidRequestError, NoMaskError, TooManyMasksError
from bot.inference.loading import load_masked_lm
from bot.inference.registry import ModelRegistry, ModelState
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import DefaultOnlySettings, SqliteGuildSettings
from bot.settings import Settings

GUILD = 111


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteGuildSettings]:
    async with SqliteGuildSettings(tmp_path / "settings.sqlite3") as opened:
        yield opened


@pytest.fixture
async def service(bert_checkpoint: Path, store: SqliteGuildSettings) -> AsyncIterator[FillMaskService]:
    registry = ModelRegistry(load_masked_lm, max_loaded=2)
    yield FillMaskService(
        registry,
        store,
        default_model=str(bert_checkpoint),
        policy=CheckpointPolicy(allow_local_models=True, local_roots=(bert_checkpoint.parent,)),
    )
    await registry.aclose()


async def test_fill_accepts_any_mask_spelling(service: FillMaskService) -> None:
    for text in ("the cat sat on the [MASK] .", "the cat sat on the <mask> .", "the cat sat on the [mask] ."):
        result = await service.fill(GUILD, text)
        assert result.masks[0][0].word == "mat"
        assert len(result.masks[0]) == 5


async def test_fill_inline_and_explicit_options(service: FillMaskService) -> None:
    result = await service.fill(GUILD, "k=2 the cat sat on the <mask> . | dog, mat")
    assert [p.word for p in result.masks[0]] == ["mat", "dog"]
    result = await service.fill(GUILD, "the cat sat on the <mask> .", top_k=1, targets="dog")
    assert [p.word for p in result.masks[0]] == ["dog"]


@pytest.mark.parametrize(
    ("text", "kwargs", "error", "words"),
    [
        ("the cat sat on the mat", {}, NoMaskError, "[MASK]"),
        ("   ", {}, NoMaskError, "<mask>"),
        ("<mask> " * 6, {}, TooManyMasksError, "at most 5"),
        ("the <mask>", {"top_k": 0}, InvalidRequestError, "1 to 10"),
        ("k=11 the <mask>", {}, InvalidRequestError, "1 to 10"),
        ("the <mask> |", {}, InvalidRequestError, "at least one word"),
        ("the <mask> " + "word " * 1000, {}, InvalidRequestError, "too long"),
        ("x" * 5000 + " <mask>", {}, InvalidRequestError, "too long"),
    ],
)
async def test_fill_errors_are_friendly(service: FillMaskService, text: str, kwargs: dict, error: type, words: str) -> None:
    with pytest.raises(error) as caught:
        await service.fill(GUILD, text, **kwargs)
    assert words in str(caught.value)


async def test_set_switches_only_after_a_successful_load(
    service: FillMaskService, camembert_checkpoint: Path, not_mlm_checkpoint: Path, no_mask_checkpoint: Path, tmp_path: Path
) -> None:
    default = service.default_model
    for bad in (str(not_mlm_checkpoint), str(no_mask_checkpoint), str(tmp_path / "nope")):
        with pytest.raises(FillMaskError):
            await service.set_checkpoint(GUILD, bad)
        assert await service.checkpoint_for(GUILD) == default
    status = await service.set_checkpoint(GUILD, str(camembert_checkpoint), user_id=5)
    assert status.checkpoint == str(camembert_checkpoint)
    assert status.mask_token == "<mask>" and status.state is ModelState.LOADED and not status.is_default
    # the same [MASK] spelling now goes to CamemBERT's <mask>
    result = await service.fill(GUILD, "le camembert est [MASK] .")
    assert result.checkpoint == str(camembert_checkpoint)
    # other servers are untouched
    assert await service.checkpoint_for(GUILD + 1) == default
    reset = await service.reset_checkpoint(GUILD)
    assert reset.checkpoint == default and reset.is_default


async def test_policy_refusals(bert_checkpoint: Path, store: SqliteGuildSettings, camembert_checkpoint: Path) -> None:
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    locked = FillMaskService(
        registry,
        store,
        default_model=str(bert_checkpoint),
        policy=CheckpointPolicy(allowed_models=("almanach/*", "camembert-base")),
    )
    try:
        with pytest.raises(CheckpointNotAllowedError, match="Local model folders are turned off"):
            await locked.set_checkpoint(GUILD, str(camembert_checkpoint))
        with pytest.raises(CheckpointNotAllowedError, match="not on this bot's list"):
            await locked.set_checkpoint(GUILD, "bert-base-uncased")
        with pytest.raises(CheckpointNotAllowedError, match="not a valid"):
            await locked.set_checkpoint(GUILD, "@everyone `rm -rf` <@123>")
        # The owner's default is always allowed, even when it is a local folder.
        status = await locked.set_checkpoint(GUILD, str(bert_checkpoint))
        assert status.is_default
        assert registry.state(str(camembert_checkpoint)) is ModelState.NOT_LOADED  # refused before any load
    finally:
        await registry.aclose()


async def test_choice_survives_a_restart(bert_checkpoint: Path, camembert_checkpoint: Path, tmp_path: Path) -> None:
    path = tmp_path / "restart.sqlite3"
    policy = CheckpointPolicy(allow_local_models=True, local_roots=(bert_checkpoint.parent,))
    for attempt in range(2):
        registry = ModelRegistry(load_masked_lm, max_loaded=1)
        async with SqliteGuildSettings(path) as store:
            service = FillMaskService(registry, store, default_model=str(bert_checkpoint), policy=policy)
            if attempt == 0:
                await service.set_checkpoint(GUILD, str(camembert_checkpoint))
            else:
                status = await service.status(GUILD)
                assert status.checkpoint == str(camembert_checkpoint)
                assert status.state is ModelState.NOT_LOADED  # a new process has nothing loaded yet
        await registry.aclose()


async def test_without_a_database_every_server_uses_the_default(bert_checkpoint: Path) -> None:
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    service = FillMaskService(registry, DefaultOnlySettings(), default_model=str(bert_checkpoint))
    try:
        assert (await service.fill(GUILD, "the cat sat on the <mask> .")).masks[0][0].word == "mat"
        with pytest.raises(FillMaskError, match="settings database is unavailable"):
            await service.set_checkpoint(GUILD, str(bert_checkpoint))
    finally:
        await registry.aclose()


async def test_console_answers_like_the_bot(service: FillMaskService, camembert_checkpoint: Path) -> None:
    out = io.StringIO()
    console = Console(service, "!", out)
    assert await console.handle("!fill the cat sat on the <mask> .")
    assert await console.handle("!fill no blank")
    assert await console.handle(f"!model set {camembert_checkpoint}")
    assert await console.handle("!model show")
    assert await console.handle("!fill le camembert est [MASK] .")
    assert await console.handle("!model set /definitely/missing")
    assert not await console.handle("!quit")
    text = out.getvalue()
    assert "**mat**" in text
    assert "I need a blank to fill" in text
    assert "Model changed" in text and "`<mask>`" in text
    assert "**délicieux**" in text
    assert "Model not changed" in text
    assert "Traceback" not in text


def test_settings_from_env_defaults_and_errors() -> None:
    from bot.settings import ConfigError

    settings = Settings.from_env({})
    assert settings.default_model == "camembert-base" and settings.command_prefix == "!"
    assert settings.max_loaded_models == 2 and settings.device == "auto" and not settings.allow_local_models
    custom = Settings.from_env(
        {"DISCORD_TOKEN": "secret-token", "ALLOWED_MODELS": "a, b/*", "ALLOW_LOCAL_MODELS": "1", "MAX_LOADED_MODELS": "3"}
    )
    assert custom.allowed_models == ("a", "b/*") and custom.allow_local_models and custom.max_loaded_models == 3
    assert "secret-token" not in repr(custom)
    for bad in ({"MAX_LOADED_MODELS": "zero"}, {"MAX_LOADED_MODELS": "0"}, {"DEVICE": "tpu"}, {"ALLOW_LOCAL_MODELS": "maybe"}):
        with pytest.raises(ConfigError):
            Settings.from_env(bad)
