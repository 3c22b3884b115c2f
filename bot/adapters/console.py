"""Console mode: the bot's commands on standard input, answered as text.

Lines such as ``!fill Le camembert est <mask> :)`` or ``!model set bert-base-uncased`` go
through the same :class:`~bot.service.fill_mask_service.FillMaskService` as Discord commands and print the same
cards as text. The console plays an admin of one server, so ``model set`` works here.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from typing import TextIO

from bot.replies.reply import (
    Card,
    error_card,
    fill_result_card,
    loading_card,
    model_changed_card,
    model_not_changed_card,
    model_status_card,
)
from bot.settings import Settings
from bot.inference.errors import FillMaskError
from bot.inference.masks import parse_fill_text
from bot.inference.progress import LoadProgress, progress_bar
from bot.service.fill_mask_service import FillMaskService
from bot.service.guild_settings import GuildSettingsStore, StorageError

CONSOLE_GUILD_ID = 0
_MARKDOWN_ESCAPE = re.compile(r"\\([^\w\s])")

HELP = """Commands:
  !fill <sentence with <mask>>        fill the blank(s); options: k=3 at the start, | word, word at the end
  !model show | set <checkpoint> | reset
  !help, !quit"""


def card_to_text(card: Card) -> str:
    """A card as terminal text: the same content, without Discord's markdown escapes."""
    lines = [card.title]
    if card.description:
        lines.append(card.description)
    for field in card.fields:
        lines.append(f"-- {field.name} --")
        lines.append(field.value)
    if card.footer:
        lines.append(f"[{card.footer}]")
    # A terminal shows backslashes literally; they only matter to Discord's renderer.
    return _MARKDOWN_ESCAPE.sub(r"\1", "\n".join(lines))


class Console:
    def __init__(self, service: FillMaskService, prefix: str = "!", out: TextIO = sys.stdout) -> None:
        self.service = service
        self.prefix = prefix
        self.out = out

    def show(self, card: Card) -> None:
        print(card_to_text(card), file=self.out, flush=True)
        print(file=self.out, flush=True)

    async def show_progress(self, progress: LoadProgress) -> None:
        """One terminal line per update: a bar while downloading, the stage otherwise."""
        bar = progress_bar(progress).replace("**", "")
        print(f"  [{bar}] {progress.describe()}", file=self.out, flush=True)

    async def handle(self, line: str) -> bool:
        """Answer one line; False when the user asked to quit."""
        line = line.strip()
        if not line:
            return True
        if line.startswith(self.prefix):
            line = line[len(self.prefix) :]
        command, _, rest = line.partition(" ")
        command = command.lower()
        if command in ("quit", "exit"):
            return False
        if command == "help":
            print(HELP, file=self.out, flush=True)
        elif command == "fill":
            await self.fill(rest)
        elif command == "model":
            await self.model(rest)
        else:
            self.show(error_card(f"Unknown command. {HELP}"))
        return True

    async def fill(self, text: str) -> None:
        if not await self.service.is_ready(CONSOLE_GUILD_ID):
            self.show(loading_card(await self.service.checkpoint_for(CONSOLE_GUILD_ID)))
        try:
            result = await self.service.fill(CONSOLE_GUILD_ID, text)
        except FillMaskError as exc:
            self.show(error_card(str(exc)))
            return
        self.show(fill_result_card(result, parse_fill_text(text).text))

    async def model(self, rest: str) -> None:
        words = shlex.split(rest) if rest.strip() else ["show"]
        action, args = words[0].lower(), words[1:]
        try:
            if action == "show":
                status = await self.service.status(CONSOLE_GUILD_ID)
                self.show(model_status_card(status))
            elif action == "set" and args:
                previous = await self.service.checkpoint_for(CONSOLE_GUILD_ID)
                self.show(loading_card(args[0], what="Switching to"))
                try:
                    status = await self.service.set_checkpoint(CONSOLE_GUILD_ID, args[0], on_progress=self.show_progress)
                except FillMaskError as exc:
                    self.show(model_not_changed_card(str(exc), previous))
                    return
                self.show(model_changed_card(status))
            elif action == "reset":
                self.show(model_changed_card(await self.service.reset_checkpoint(CONSOLE_GUILD_ID), reset=True))
            else:
                self.show(error_card("Usage: `!model show`, `!model set <checkpoint>` or `!model reset`."))
        except FillMaskError as exc:
            self.show(error_card(str(exc)))


async def run_console(settings: Settings, stdin: TextIO = sys.stdin) -> None:
    from bot.adapters.discord.bot import build_registry
    from bot.inference.loading import warm_imports

    warm_imports()
    registry = build_registry(settings)
    opened = GuildSettingsStore(settings.database_path)
    store: GuildSettingsStore | None = opened
    try:
        await opened.open()
    except StorageError as exc:
        print(f"(settings database unavailable: {exc}; using the default model)", file=sys.stderr)
        await opened.close()
        store = None
    service = FillMaskService(
        registry, store, default_model=settings.default_model, policy=settings.checkpoint_policy, max_masks=settings.max_masks
    )
    console = Console(service, settings.command_prefix)
    registry.preload(service.default_model)
    interactive = stdin.isatty()
    if interactive:
        print(f"fillmask-bot console. Default model: {settings.default_model}. Type !help.", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            if interactive:
                print("> ", end="", flush=True)
            line = await loop.run_in_executor(None, stdin.readline)
            if not line or not await console.handle(line):
                break
    finally:
        await registry.aclose()
        if store is not None:
            await store.close()
