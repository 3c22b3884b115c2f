"""Acknowledged settings survive SIGKILL; a broken database never stops fill."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.adapters.discord.bot import FillMaskBot
from bot.inference.checkpoint_policy import CheckpointPolicy
from bot.inference.loading import load_masked_lm
from bot.inference.registry import ModelRegistry
from bot.service.fill_mask_service import FillMaskService, SettingsUnavailableError
from bot.service.guild_settings import SqliteGuildSettings
from bot.service.reopening_store import RETRY_SECONDS
from tests.discord_helpers import embed_text, make_settings, model_set_until_saved
from tests.fakediscord import FakeDiscord, start_bot, stop_bot
from tests.test_process import bot_env, start_process, stop_process, titled

ROOT = Path(__file__).resolve().parent.parent


def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "settings.sqlite3"
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "settings_writer.py"), str(path), "100000"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    acked: dict[int, str] = {}
    assert child.stdout is not None
    for line in child.stdout:
        _, guild, checkpoint = line.split()
        acked[int(guild)] = checkpoint
        if len(acked) >= 300:
            child.send_signal(signal.SIGKILL)  # mid-write: the child is still writing
            break
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    connection = sqlite3.connect(path)
    rows = dict(connection.execute("SELECT guild_id, checkpoint FROM guild_settings").fetchall())
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()
    missing = {g: c for g, c in acked.items() if rows.get(g) != c}
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {list(missing.items())[:3]}"


async def test_bot_process_killed_mid_switches_keeps_the_last_acknowledged_choice(
    tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path
) -> None:
    choices = [str(camembert_checkpoint), str(bert_checkpoint)]
    async with FakeDiscord() as fake:
        env = bot_env(tmp_path, bert_checkpoint, fake, MODEL_SET_COOLDOWN_SECONDS="0", MAX_LOADED_MODELS="2")
        process = await start_process(env, tmp_path)
        sent: list[tuple[int, str]] = []
        try:
            await fake.wait_connected(timeout=60)
            # Both checkpoints loaded first: a set that is still loading when the next one
            # arrives is superseded (the last command wins) and never acknowledged.
            for target in choices:
                mark = fake.mark()
                await fake.send_message(fake.admin_id, f"!model set {target}")
                await fake.wait_for_message(titled("✅"), after=mark, timeout=60)
            for i in range(40):
                target = choices[i % 2]
                sent.append((await fake.send_message(fake.admin_id, f"!model set {target}"), target))
                await asyncio.sleep(0.02)
            # Wait for some acknowledgements, then kill while the rest are being processed.
            await fake.wait_for(lambda r: len([m for m in fake.messages_sent() if titled("✅")(m)]) >= 2 + 5, timeout=60)
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        acked_ids = {int((m.get("message_reference") or {}).get("message_id", 0)) for m in fake.history() if titled("✅")(m)}
    order = [mid for mid, _ in sent]
    last_acked = max((order.index(mid) for mid in acked_ids if mid in order), default=None)
    assert last_acked is not None
    allowed = {target for _, target in sent[last_acked:]}  # the last acked one, or one sent later
    async with SqliteGuildSettings(tmp_path / "process.sqlite3") as store:
        stored = await store.get_checkpoint(FakeDiscord.guild_id)
    assert stored in allowed


async def test_locked_database_refuses_the_change_and_fill_keeps_working(bert_checkpoint: Path, tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    async with SqliteGuildSettings(path, timeout=0.2) as store:
        service = FillMaskService(
            registry,
            store,
            default_model=str(bert_checkpoint),
            policy=CheckpointPolicy(allow_local_models=True, local_roots=(bert_checkpoint.parent,)),
        )
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
        try:
            with pytest.raises(SettingsUnavailableError):
                await service.set_checkpoint(1, str(bert_checkpoint))
            assert (await service.fill(1, "the cat sat on the <mask> .")).masks[0][0].word == "mat"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await service.set_checkpoint(1, str(bert_checkpoint))  # works again once released
    await registry.aclose()


@pytest.mark.parametrize("breakage", ["corrupt", "directory", "unwritable-parent"])
async def test_bot_with_a_broken_database_still_answers_fill(tmp_path: Path, bert_checkpoint: Path, breakage: str) -> None:
    if breakage == "corrupt":
        db = tmp_path / "broken.sqlite3"
        db.write_bytes(b"garbage" * 1000)
    elif breakage == "directory":
        db = tmp_path / "is-a-dir"
        db.mkdir()
    else:
        (tmp_path / "file").write_text("x")
        db = tmp_path / "file" / "below-a-file.sqlite3"
    async with FakeDiscord() as fake:
        env = bot_env(tmp_path, bert_checkpoint, fake, DATABASE_PATH=str(db))
        process = await start_process(env, tmp_path)
        try:
            await fake.wait_connected(timeout=60)
            await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
            result = await fake.wait_for_message(titled("Fill-mask"), timeout=60)
            assert "**mat**" in result["embeds"][0]["fields"][0]["value"]
            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model set {bert_checkpoint}")
            refused = await fake.wait_for_message(titled("⚠️"), after=mark, timeout=60)
            assert "settings database is unavailable" in str(refused["embeds"][0])
        finally:
            code, stderr = await stop_process(process)
        assert code == 0
        assert "settings database unavailable" in stderr  # logged clearly for the owner


async def test_a_sqlite_database_that_cannot_open_at_start_is_used_once_it_can(
    tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the database's folder should be")
    settings = make_settings(tmp_path, bert_checkpoint, database_path=blocker / "bot.sqlite3")
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings)
        await start_bot(bot)
        try:
            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model set {camembert_checkpoint}")
            assert "couldn't save that setting" in embed_text(await fake.wait_for_message(titled("⚠️"), after=mark, timeout=30))
            blocker.unlink()  # the owner fixes it; the bot is not restarted
            await model_set_until_saved(fake, str(camembert_checkpoint), within=RETRY_SECONDS + 10)
        finally:
            await stop_bot(bot)
    async with SqliteGuildSettings(blocker / "bot.sqlite3") as store:
        assert await store.get_checkpoint(FakeDiscord.guild_id) == str(camembert_checkpoint)
