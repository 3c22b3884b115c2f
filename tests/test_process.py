"""The bot as a real process: ``python -m bot`` with a token, against a fake Discord."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent


def bot_env(tmp_path: Path, default_model: Path, fake: FakeDiscord | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env.update(
        DEFAULT_MODEL=str(default_model),
        DATABASE_PATH=str(tmp_path / "process.sqlite3"),
        HEALTH_FILE=str(tmp_path / "health.json"),
        ALLOW_LOCAL_MODELS="1",
        LOCAL_MODEL_DIRS=str(default_model.parent),
        DEVICE="cpu",
        LOG_LEVEL="INFO",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(ROOT),
    )
    if fake is not None:
        env.update(DISCORD_TOKEN="fake-token-for-tests", FAKE_DISCORD_API=fake.api_base, FAKE_DISCORD_GATEWAY=fake.gateway_url)
    env.update(extra)
    return env


async def start_process(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "tests" / "bot_process.py"),
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop_process(process: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> tuple[int, str]:
    if process.returncode is None:
        process.send_signal(sig)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    except TimeoutError:
        process.kill()
        _, stderr = await process.communicate()
    return process.returncode or 0, stderr.decode(errors="replace")


def titled(prefix: str):  # type: ignore[no-untyped-def]
    return lambda body: any((e.get("title") or "").startswith(prefix) for e in body.get("embeds") or [])


async def test_bot_process_serves_persists_and_shuts_down_cleanly(
    tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path
) -> None:
    async with FakeDiscord() as fake:
        env = bot_env(tmp_path, bert_checkpoint, fake)
        process = await start_process(env, tmp_path)
        try:
            await fake.wait_connected(timeout=60)
            await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
            # The default model may still be loading: a notice, then the edited result.
            result = await fake.wait_for_message(titled("Fill-mask"), timeout=60)
            assert "**mat**" in result["embeds"][0]["fields"][0]["value"]
            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
            await fake.wait_for_message(titled("✅"), after=mark, timeout=60)
        finally:
            code, stderr = await stop_process(process)
        assert code == 0, stderr[-3000:]
        assert "SIGTERM received" in stderr and "closed" in stderr, stderr[-3000:]
        assert "fake-token-for-tests" not in stderr  # the token is never logged

        for _ in range(100):  # the old session's socket closes just after the process exits
            if not fake.connected:
                break
            await asyncio.sleep(0.05)
        process = await start_process(env, tmp_path)  # a new process, the same database
        try:
            await fake.wait_connected(timeout=60)
            mark = fake.mark()
            await fake.send_message(fake.member_id, "!model show")
            shown = await fake.wait_for_message(titled("This server's model"), after=mark, timeout=60)
            text = str(shown["embeds"][0])
            assert str(camembert_checkpoint) in text and "(default)" not in text
        finally:
            code, stderr = await stop_process(process, signal.SIGINT)
        assert code == 0, stderr[-3000:]


def test_without_a_token_the_bot_explains_how_to_get_one(tmp_path: Path, bert_checkpoint: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot"],
        env=bot_env(tmp_path, bert_checkpoint),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "DISCORD_TOKEN is not set" in done.stderr
    assert "Message Content Intent" in done.stderr and "python -m bot console" in done.stderr
    assert "Traceback" not in done.stderr


def test_fill_command_line_uses_the_core_alone(tmp_path: Path, camembert_checkpoint: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "fill", "le camembert est [MASK] .", "--model", str(camembert_checkpoint), "--top-k", "3"],
        env=bot_env(tmp_path, camembert_checkpoint),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[-1] == "délicieux" and lines[0].strip().endswith("%  délicieux")
    assert len([line for line in lines if "%" in line]) == 3
    assert lines[-1].startswith("best: le camembert est délicieux")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "fill", "no blank", "--model", str(camembert_checkpoint)],
        env=bot_env(tmp_path, camembert_checkpoint),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "I need a blank" in done.stderr and "Traceback" not in done.stderr


def test_console_mode_reads_commands_from_stdin(tmp_path: Path, bert_checkpoint: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "console"],
        input="!fill the cat sat on the <mask> .\n!model show\n!quit\n",
        env=bot_env(tmp_path, bert_checkpoint),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "**mat**" in done.stdout and "This server's model" in done.stdout
