"""Console mode: the bot's commands on standard input, answered as text.

Lines such as ``!fill Le camembert est <mask> :)`` or ``!model set bert-base-uncased`` go
through the same :class:`~bot.service.fill_mask_service.FillMaskService` and the same reply
flows as Discord commands, and print the same replies as text. The console plays an admin of
one server, so ``model set`` works here.
"""

from __future__ import annotations

import asyncio
import io
import logging
import shlex
import sys
from collections.abc import AsyncGenerator
from typing import TextIO

from bot.i18n import DEFAULT_LOCALE, N_, Locale, _, current_locale, set_locale
from bot.inference.errors import FillMaskError
from bot.inference.masks import clean_input
from bot.replies.fill import progress_bar
from bot.replies.flows import Update, fill_flow, switch_flow
from bot.replies.info import help_reply, stats_reply
from bot.replies.language import language_changed_reply, language_status_reply
from bot.replies.markup import plain
from bot.replies.model_card import model_card_reply
from bot.replies.model_list import model_list_reply
from bot.replies.model_search import model_search_reply
from bot.replies.models import model_changed_reply, model_status_reply, with_revocation_note
from bot.replies.reply import Reply, error_reply, internal_error_reply
from bot.service.fill_mask_service import FillMaskService
from bot.settings import Settings
from bot.wiring import running_service

log = logging.getLogger(__name__)

CONSOLE_GUILD_ID = 0

USAGE = N_(
    "Commands: !fill [compare=<checkpoint>] <sentence with <mask>>, "
    "!model show | set <checkpoint> | reset | list | info [checkpoint] | search <words> [language], "
    "!language show | set <en|fr|ko> | reset, !help, !stats, !quit"
)

UNBALANCED_QUOTE = N_(
    "I couldn't read that: a quote is opened and never closed. Close it, or leave the quotes out, "
    "e.g. `!model set camembert-base`."
)


def reply_to_text(reply: Reply) -> str:
    """A reply as terminal text: the same content, nothing escaped for Discord."""
    lines = [plain(reply.title)]
    if reply.description:
        lines.append(plain(reply.description))
    for field in reply.fields:
        lines.append(f"-- {plain(field.name)} --")
        lines.append(plain(field.value))
    if reply.footer:
        lines.append(f"[{reply.footer}]")
    return "\n".join(lines)


class Console:
    def __init__(
        self, service: FillMaskService, prefix: str = "!", out: TextIO | None = None, *, locale: Locale | None = None
    ) -> None:
        self.service = service
        self.prefix = prefix
        # Looked up now, not at import: tests and callers may have replaced sys.stdout since.
        self.out = out if out is not None else sys.stdout
        # --locale, which wins over the console server's `language set`.
        self.locale: Locale | None = locale

    async def speak(self) -> None:
        """Answer the next line in --locale, else the console server's language, else English."""
        chosen: Locale | None = self.locale or await self.service.language_for(CONSOLE_GUILD_ID)
        set_locale(chosen if chosen is not None else DEFAULT_LOCALE)

    def show(self, reply: Reply) -> None:
        print(reply_to_text(reply), file=self.out, flush=True)
        print(file=self.out, flush=True)

    async def follow(self, updates: AsyncGenerator[Update, None]) -> None:
        """Print a flow: its replies in full, its progress as one line each."""
        async for update in updates:
            if update.progress is not None:
                bar = plain(progress_bar(update.progress))
                print(f"  [{bar}] {update.progress.describe()}", file=self.out, flush=True)
            else:
                self.show(update.reply)

    async def handle(self, line: str) -> bool:
        """Answer one line; False when the user asked to quit. Never raises for a bad line."""
        line = clean_input(line).strip()  # undecodable bytes arrive as lone surrogates
        if not line:
            return True
        if line.startswith(self.prefix):
            line = line[len(self.prefix) :]
        command, _space, rest = line.partition(" ")
        command = command.lower()
        if command in ("quit", "exit"):
            return False
        try:
            await self.speak()
            if command == "help":
                status = await self.service.status(CONSOLE_GUILD_ID)
                self.show(help_reply(self.prefix, status.mask_token or "<mask>", status.checkpoint))
            elif command == "fill":
                await self.follow(fill_flow(self.service, CONSOLE_GUILD_ID, rest))
            elif command == "model":
                await self.model(rest)
            elif command == "language":
                await self.language(rest)
            elif command == "stats":
                self.show(stats_reply(self.service.stats_snapshot(), servers=1))
            else:
                self.show(error_reply(_("Unknown command. {usage}", usage=_(USAGE))))
        except FillMaskError as exc:
            self.show(error_reply(exc.localized(), title=exc.localized_title()))
        except Exception:
            # A bug or an outage, not the user's doing: the cause goes to the log, the session goes on.
            log.exception("console command %r failed", command)
            self.show(internal_error_reply())
        return True

    async def model(self, rest: str) -> None:
        try:
            words = shlex.split(rest) if rest.strip() else ["show"]
        except ValueError:  # shlex: "No closing quotation" (or a lone trailing backslash)
            self.show(error_reply(_(UNBALANCED_QUOTE)))
            return
        if not words:  # shlex found no word at all: same as a bare `!model`
            words = ["show"]
        action, args = words[0].lower(), words[1:]
        if action == "show":
            reply = model_status_reply(await self.service.status(CONSOLE_GUILD_ID))
            self.show(
                with_revocation_note(reply, self.service.take_revocation_notice(CONSOLE_GUILD_ID), self.service.default_model)
            )
        elif action == "set" and args:
            await self.follow(switch_flow(self.service, CONSOLE_GUILD_ID, args[0]))
        elif action == "reset":
            self.show(model_changed_reply(await self.service.reset_checkpoint(CONSOLE_GUILD_ID), reset=True))
        elif action == "list":
            offered = self.service.offered_models()
            self.show(model_list_reply(offered.entries, offered.loaded, offered.default, set_command=f"{self.prefix}model set"))
        elif action == "search" and args:
            found = await self.service.search_models(" ".join(args))
            self.show(model_search_reply(found, set_command=f"{self.prefix}model set"))
        elif action == "info":
            target = await self.service.model_card_target(CONSOLE_GUILD_ID, args[0] if args else None)
            self.show(model_card_reply(await self.service.model_card(target)))
        else:
            self.show(
                error_reply(
                    _(
                        "Usage: `!model show`, `!model set <checkpoint>`, `!model reset`, `!model list`, `!model info` "
                        "or `!model search <words> [language]`."
                    )
                )
            )

    async def language(self, rest: str) -> None:
        words = rest.split()
        action = words[0].lower() if words else "show"
        if action == "show":
            chosen = await self.service.language_for(CONSOLE_GUILD_ID)
            self.show(language_status_reply(current_locale(), chosen, set_command=f"{self.prefix}language set"))
        elif action == "set" and len(words) > 1:
            locale = await self.service.set_language(CONSOLE_GUILD_ID, words[1])
            self.show(language_changed_reply(locale))
        elif action == "reset":
            await self.service.reset_language(CONSOLE_GUILD_ID)
            await self.speak()
            self.show(language_changed_reply(None))
        else:
            self.show(error_reply(_("Usage: `!language show`, `!language set <en|fr|ko>` or `!language reset`.")))


async def run_console(
    settings: Settings, stdin: TextIO | None = None, out: TextIO | None = None, *, locale: Locale | None = None
) -> None:
    source: TextIO = stdin if stdin is not None else sys.stdin
    if isinstance(source, io.TextIOWrapper):
        # Bytes that are not UTF-8 become U+FFFD instead of a UnicodeDecodeError that ends the session.
        source.reconfigure(errors="replace")
    async with running_service(settings) as service:
        console = Console(service, settings.command_prefix, out, locale=locale)
        interactive = source.isatty()
        if interactive:
            await console.speak()
            print(
                _("fillmask-bot console. Default model: {checkpoint}. Type !help.", checkpoint=settings.default_model),
                file=console.out,
                flush=True,
            )
        loop = asyncio.get_running_loop()
        while True:
            if interactive:
                print("> ", end="", file=console.out, flush=True)
            line = await loop.run_in_executor(None, source.readline)
            if not line or not await console.handle(line):
                break
