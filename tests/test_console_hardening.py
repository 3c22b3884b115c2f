"""The console and ``python -m bot fill`` survive bad input: no traceback, no exit, plain words."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.console import Console, run_console
from bot.inference.loading import load_masked_lm
from bot.inference.masks import clean_input
from bot.inference.registry import ModelRegistry
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import DefaultOnlySettings
from tests.discord_helpers import make_settings
from tests.test_process import bot_env

FILL = "!fill the cat sat on the <mask> ."


@pytest.fixture
def broken_folders(tmp_path: Path, bert_checkpoint: Path) -> dict[str, Path]:
    """Checkpoint folders that cannot load, each under ``tmp_path / "models"``."""
    root = tmp_path / "models"
    root.mkdir()
    (root / "a").symlink_to(root / "b")  # a -> b -> a: resolving either never ends
    (root / "b").symlink_to(root / "a")
    self_link = root / "self-link"
    self_link.mkdir()
    (self_link / "config.json").symlink_to(self_link / "config.json")
    null_config = root / "null-config"
    shutil.copytree(bert_checkpoint, null_config)
    (null_config / "config.json").write_text("null")
    return {"loop": root / "a", "self-link": self_link, "null-config": null_config}


@pytest.fixture
async def service(bert_checkpoint: Path, broken_folders: dict[str, Path]) -> AsyncIterator[FillMaskService]:
    from bot.inference.checkpoint_policy import CheckpointPolicy

    registry = ModelRegistry(load_masked_lm, max_loaded=2)
    roots = (bert_checkpoint.parent, broken_folders["self-link"].parent)
    yield FillMaskService(
        registry,
        DefaultOnlySettings(),
        default_model=str(bert_checkpoint),
        policy=CheckpointPolicy(allow_local_models=True, local_roots=roots),
    )
    await registry.aclose()


def test_clean_input_replaces_lone_surrogates() -> None:
    assert clean_input("caf\udcc3\udca9 ok") == "caf\ufffd\ufffd ok"
    assert clean_input("déjà vu 🐱") == "déjà vu 🐱"


async def test_unbalanced_quote_gets_a_reply(service: FillMaskService) -> None:
    out = io.StringIO()
    console = Console(service, "!", out)
    assert await console.handle('!model set "foo')
    assert await console.handle(FILL)
    text = out.getvalue()
    assert "quote" in text and "Traceback" not in text
    assert "**mat**" in text


@pytest.mark.parametrize("name", ["loop", "self-link", "null-config"])
async def test_a_broken_checkpoint_folder_does_not_end_the_session(
    service: FillMaskService, broken_folders: dict[str, Path], name: str
) -> None:
    out = io.StringIO()
    console = Console(service, "!", out)
    assert await console.handle(f"!model set {broken_folders[name]}")
    assert await console.handle(f"!model info {broken_folders[name]}")
    assert await console.handle(FILL)
    text = out.getvalue()
    assert "⚠️" in text  # refused in words
    assert "Traceback" not in text
    assert "**mat**" in text


async def test_an_unexpected_error_is_logged_and_answered(
    service: FillMaskService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken_status(guild_id: int) -> object:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(service, "status", broken_status)
    out = io.StringIO()
    console = Console(service, "!", out)
    with caplog.at_level(logging.ERROR):
        assert await console.handle("!model show")
    assert await console.handle(FILL)
    text = out.getvalue()
    assert "Something went wrong on my side" in text and "kaboom" not in text
    assert "**mat**" in text
    assert any(r.exc_info and "kaboom" in str(r.exc_info[1]) for r in caplog.records)


async def test_non_utf8_stdin_does_not_end_the_session(tmp_path: Path, bert_checkpoint: Path) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"!fill the cat sat on the <mask> \xff\xfe.\n" + FILL.encode() + b"\n"), encoding="utf-8")
    out = io.StringIO()
    await run_console(make_settings(tmp_path, bert_checkpoint), stdin=stdin, out=out)
    text = out.getvalue()
    assert "Traceback" not in text
    assert text.count("**mat**") >= 1
    assert text.count("Fill-mask") == 2  # both lines answered


async def test_lone_surrogates_in_a_line_are_answered(service: FillMaskService) -> None:
    # What sys.stdin gives for undecodable bytes under surrogateescape (e.g. a C locale).
    out = io.StringIO()
    console = Console(service, "!", out)
    assert await console.handle("!fill the cat sat on the <mask> \udcff.")
    assert await console.handle("!model set /nowhere/\udcff")
    assert await console.handle(FILL)
    text = out.getvalue()
    assert "Traceback" not in text and "**mat**" in text


# -- python -m bot fill, as a real process ------------------------------------------------


def run_fill(tmp_path: Path, default_model: Path, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "fill", *args],
        env=bot_env(tmp_path, default_model, LOCAL_MODEL_DIRS=f"{default_model.parent},{tmp_path}"),
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


def assert_plain_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_fill_with_a_broken_checkpoint_is_one_error_line(
    tmp_path: Path, bert_checkpoint: Path, broken_folders: dict[str, Path]
) -> None:
    for name in ("null-config", "loop"):
        done = run_fill(tmp_path, bert_checkpoint, "the cat sat on the [MASK] .", "--model", str(broken_folders[name]))
        assert_plain_error(done)


def test_fill_with_non_utf8_arguments(tmp_path: Path, bert_checkpoint: Path) -> None:
    done = run_fill(tmp_path, bert_checkpoint, b"the cat sat on the [MASK] \xff\xfe.")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.splitlines()[0].split()[-1] == "mat"
    done = run_fill(tmp_path, bert_checkpoint, "the cat sat on the [MASK] .", "--targets", b"mat,\xff")
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    if done.returncode == 1:
        assert_plain_error(done)


def test_fill_once_turns_an_unexpected_error_into_one_line(
    tmp_path: Path,
    bert_checkpoint: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.adapters import one_shot_fill

    @contextlib.asynccontextmanager
    async def exploding_service(*args: object, **kwargs: object) -> AsyncIterator[FillMaskService]:
        raise RuntimeError("kaboom")
        yield  # pragma: no cover - makes this an async generator

    monkeypatch.setattr(one_shot_fill, "running_service", exploding_service)
    args = argparse.Namespace(command="fill", text="the cat sat on the [MASK] .", model=None, top_k=5, targets=None)
    with caplog.at_level(logging.DEBUG, logger="bot"):
        assert one_shot_fill.fill_once(make_settings(tmp_path, bert_checkpoint), args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: something went wrong") and err.count("\n") == 1
    assert "Traceback" not in err and "kaboom" not in err
    details = [r for r in caplog.records if r.exc_info and "kaboom" in str(r.exc_info[1])]
    assert details and all(r.levelno == logging.DEBUG for r in details)  # the traceback, at DEBUG only


@pytest.mark.parametrize("targets", ["", " , ,"])
def test_fill_with_empty_targets_speaks_of_the_option(tmp_path: Path, bert_checkpoint: Path, targets: str) -> None:
    done = run_fill(tmp_path, bert_checkpoint, "the cat sat on the [MASK] .", "--targets", targets)
    assert_plain_error(done, "--targets")
    assert "|" not in done.stderr
