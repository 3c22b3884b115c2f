"""Shared pieces of the Discord-level tests: settings, a running bot, and reading replies."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bot.adapters.discord.bot import FillMaskBot
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.settings import Settings
from tests.fakediscord import FakeDiscord, start_bot, stop_bot


@dataclass
class BotOnFakeDiscord:
    fake: FakeDiscord
    bot: FillMaskBot
    settings: Settings


@contextlib.asynccontextmanager
async def bot_on_fake_discord(settings: Settings) -> AsyncIterator[BotOnFakeDiscord]:
    """A real FillMaskBot connected to its own fake Discord, its default model loaded before the
    test speaks; stopped at the end."""
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings)
        await start_bot(bot)
        try:
            await bot.registry.get(bot.service.default_model)
            yield BotOnFakeDiscord(fake, bot, settings)
        finally:
            await stop_bot(bot)


def make_settings(tmp_path: Path, default_model: Path, **overrides: Any) -> Settings:
    """Local test checkpoints allowed; no cooldowns (tests send many commands as one user);
    the database and health file in the test's own directory."""
    values: dict[str, Any] = {f.name: getattr(Settings(), f.name) for f in fields(Settings)}
    values.update(
        default_model=str(default_model),
        database_path=tmp_path / "bot.sqlite3",
        health_file=tmp_path / "health.json",
        allow_local_models=True,
        local_model_dirs=(default_model.parent,),
        fill_cooldown_seconds=0,
        model_set_cooldown_seconds=0,
        device="cpu",
    )
    values.update(overrides)
    return Settings(**values)


def titled(prefix: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate on a sent message body: one of its embeds' titles starts with ``prefix``."""
    return lambda body: any((e.get("title") or "").startswith(prefix) for e in body.get("embeds") or [])


def embed_text(body: dict[str, Any]) -> str:
    """Title, description, fields and footer of a message's first embed, as one text."""
    embed = body["embeds"][0]
    parts = [embed.get("title") or "", embed.get("description") or ""]
    parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields", [])]
    parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(parts)


class SlowLoader:
    """The real loader, after a blocking delay (a download, as the bot would see it)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __call__(self, reference: str, *, progress: Any = None) -> MaskedLM:
        time.sleep(self.delay)
        return load_masked_lm(reference, progress=progress)


class HangingLoader:
    """The real loader, except that the given folders never finish loading: a read that never
    returns (a hung network mount), as the loader thread would see it. ``release()`` ends the
    read (at a test's end, so that the test process can exit)."""

    def __init__(self, hanging: Iterable[Path | str]) -> None:
        self.hanging = {str(Path(p).resolve()) for p in hanging}
        self.started: set[str] = set()
        self._released = threading.Event()

    def __call__(self, reference: str, *, progress: Any = None) -> MaskedLM:
        if reference in self.hanging:
            self.started.add(reference)
            self._released.wait()
        return load_masked_lm(reference, progress=progress)

    def release(self) -> None:
        self._released.set()


async def model_set_until_saved(fake: FakeDiscord, checkpoint: str, *, within: float) -> None:
    """``!model set`` as the admin, again every second while the bot answers that it cannot save,
    until it confirms; fails after ``within`` seconds (a settings database coming back)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        mark = fake.mark()
        await fake.send_message(fake.admin_id, f"!model set {checkpoint}")
        reply = await fake.wait_for_message(lambda m: titled("✅")(m) or titled("⚠️")(m), after=mark, timeout=30)
        if titled("✅")(reply):
            return
        assert loop.time() < deadline, "the settings database was not used again"
        await asyncio.sleep(1)
