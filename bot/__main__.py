"""Command-line dispatch only: ``python -m bot`` (run the bot), ``console``, ``fill``, ``health``.

python -m bot                      run the Discord bot (needs DISCORD_TOKEN)
python -m bot console              try the commands on standard input, without Discord
python -m bot fill "Le camembert est <mask> :)" --model camembert-base
python -m bot db migrate           apply the settings database's migrations
python -m bot db copy --to URL     copy the SQLite settings into PostgreSQL
python -m bot serve                the inference service (Ray Serve) for INFERENCE_URL
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.handlers
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.i18n import LOCALES
from bot.inference.types import DEFAULT_TOP_K, MAX_TOP_K
from bot.logs import LOG_FORMAT, configure_log_file, route_library_logs
from bot.settings import ConfigError, Settings

if TYPE_CHECKING:
    from bot.adapters.discord.bot import FillMaskBot

log = logging.getLogger("bot")

NO_TOKEN = """DISCORD_TOKEN is not set, so I can't connect to Discord.

Get a token: https://discord.com/developers/applications -> New Application -> Bot ->
Reset Token, and turn on "Message Content Intent" on the same page. Put it in a file
named .env next to this project (see .env.example):

    DISCORD_TOKEN=your-token-here

To try the bot without Discord, run the console mode:

    python -m bot console      (or: make console)
"""


NO_RAY = """The inference service runs on Ray Serve, which is an optional extra. Install it:

    pip install ".[serve]"      (or: make serve, which installs it and starts the service)
"""


def setup_logging(level: str, log_file: Path | None = None) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    if log_file is not None:
        configure_log_file(log_file)  # also to a file rotating at 5 MB x 3 (LOG_FILE)
    # discord.py and transformers are chatty at DEBUG/INFO; keep their warnings.
    for noisy in ("discord.gateway", "discord.http", "transformers", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot", description="A Discord bot for Hugging Face fill-mask models.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the Discord bot (the default)")
    console = sub.add_parser("console", help="type bot commands on standard input, without Discord")
    console.add_argument(
        "--locale",
        choices=LOCALES,
        default=None,
        help="the language of the replies: en, fr or ko (default: the console server's `language set`, else en)",
    )
    sub.add_parser("health", help="exit 0 if the running bot is healthy, 1 if not (Docker's HEALTHCHECK); --file, --max-age")
    fill = sub.add_parser("fill", help="fill the blanks of one sentence and print the predictions")
    fill.add_argument("text", help='a sentence with <mask> or [MASK], e.g. "Le camembert est <mask> :)"')
    fill.add_argument("--model", help="Hub id or local directory (default: DEFAULT_MODEL)")
    fill.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help=f"predictions per mask (1-{MAX_TOP_K})")
    fill.add_argument("--targets", help="comma-separated words to score instead of the whole vocabulary")
    serve = sub.add_parser("serve", help="run the inference service (Ray Serve; needs the serve extra) for INFERENCE_URL")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    from bot.adapters.db_cli import add_db_parser

    add_db_parser(sub)
    return parser.parse_args(argv)


async def run_bot(settings: Settings) -> None:
    from bot.adapters.discord.bot import FillMaskBot

    async with FillMaskBot(settings) as bot:
        loop = asyncio.get_running_loop()
        closing: list[asyncio.Future[None]] = []  # a reference, so the close task is not collected
        # SIGTERM (docker stop, systemd) and Ctrl-C close the bot cleanly instead of killing it.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _request_close, bot, signal.Signals(signum).name, closing)
        try:
            await bot.start(settings.discord_token or "")
        finally:
            # A signal's close() may still be releasing models and the database; wait for it
            # (``async with`` skips close() once the connection is already closed).
            await bot.close()


def _request_close(bot: FillMaskBot, signal_name: str, closing: list[asyncio.Future[None]]) -> None:
    log.info("%s received: shutting down", signal_name)
    closing.append(asyncio.ensure_future(bot.close()))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["health"]:
        # Before settings, logging and torch: the check runs every 30 s next to the bot.
        from bot.adapters.health import health_main

        return health_main(argv[1:])
    args = parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_file)
    if args.command == "db":
        from bot.adapters.db_cli import db_main

        return db_main(settings, args)
    if args.command in (None, "run") and not settings.discord_token:
        print(NO_TOKEN, file=sys.stderr)  # before importing torch: say it at once
        return 2
    if args.command == "serve":
        route_library_logs()
        try:
            from bot.adapters.inference_server.runner import serve_main
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in ("ray", "fastapi", "starlette", "uvicorn"):
                raise
            print(NO_RAY, file=sys.stderr)
            return 2
        return serve_main(settings, args.host, args.port)
    # With INFERENCE_URL the bot loads no weights: neither torch nor transformers is imported.
    in_process = not settings.inference_url
    route_library_logs(with_transformers=in_process)  # after the token check: it imports the libraries
    if in_process:
        from bot.inference.loading import configure_threads

        log.info("torch uses %d thread(s)", configure_threads(settings.torch_threads))
    try:
        if args.command == "fill":
            from bot.adapters.one_shot_fill import fill_once

            return fill_once(settings, args)
        if args.command == "console":
            from bot.adapters.console import run_console

            asyncio.run(run_console(settings, locale=args.locale))
        else:
            asyncio.run(run_bot(settings))
    except KeyboardInterrupt:
        log.info("stopped")
    _exit_past_stuck_loads()
    return 0


def _exit_past_stuck_loads() -> None:
    """Leave now if a checkpoint load is stuck in a read that never returns (a hung mount):
    the interpreter would wait for its thread forever. Everything else is closed by now."""
    if "bot.inference.registry" not in sys.modules:
        return  # nothing loaded in this process (INFERENCE_URL): nothing can be stuck
    from bot.inference.registry import loads_still_running

    stuck = loads_still_running()
    if stuck:
        log.warning("%d checkpoint load(s) still stuck in a read; exiting without waiting for them", stuck)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
