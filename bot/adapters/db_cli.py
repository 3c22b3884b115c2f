"""``python -m bot db``: the settings database's migrations, and moving it to PostgreSQL.

python -m bot db migrate                          bring the configured database to this bot's schema
python -m bot db copy --to postgresql://...       copy the SQLite database's choices (model and
                                                  language of each server) into PostgreSQL

Both are safe to run while bots run and to run twice: migrations take the same lock the bots
take at start-up, and a copy never replaces a server's choice that is newer in the target.
"""

from __future__ import annotations

import argparse
import asyncio
import urllib.parse
from pathlib import Path

from bot.service.guild_settings import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from bot.service.guild_settings import SqliteGuildSettings, StorageError
from bot.service.postgres_settings import SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION
from bot.service.postgres_settings import PostgresGuildSettings
from bot.settings import Settings


def add_db_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="the settings database: migrate, or copy SQLite's choices to PostgreSQL")
    actions = db.add_subparsers(dest="db_command", required=True)
    actions.add_parser("migrate", help="apply this bot's schema migrations to DATABASE_URL (else DATABASE_PATH)")
    copy = actions.add_parser(
        "copy", help="copy every server's choice of model and of language from a SQLite database into PostgreSQL"
    )
    copy.add_argument("--to", required=True, metavar="postgresql://...", help="the PostgreSQL database to copy into")
    copy.add_argument("--from", dest="source", type=Path, help="the SQLite file (default: DATABASE_PATH)")


def db_main(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.db_command == "migrate":
            print(asyncio.run(_migrate(settings)))
        else:
            print(asyncio.run(_copy(args.source or settings.database_path, args.to)))
    except StorageError as exc:
        print(f"Not done: {exc}")
        return 1
    except ValueError as exc:
        print(f"Not done: {exc}")
        return 2
    return 0


async def _migrate(settings: Settings) -> str:
    if settings.database_url:
        async with PostgresGuildSettings(settings.database_url):
            return f"PostgreSQL settings database {redacted(settings.database_url)} is at schema v{POSTGRES_SCHEMA_VERSION}"
    async with SqliteGuildSettings(settings.database_path):
        return f"SQLite settings database {settings.database_path} is at schema v{SQLITE_SCHEMA_VERSION}"


async def _copy(source: Path, target: str) -> str:
    if urllib.parse.urlsplit(target).scheme not in ("postgresql", "postgres"):
        raise ValueError("--to must be a postgresql://user:password@host:port/dbname URL")
    if not source.is_file():
        # Opening it would create an empty database and copy nothing: say so instead.
        raise ValueError(f"there is no SQLite database at {source} (set --from or DATABASE_PATH)")
    async with SqliteGuildSettings(source) as sqlite:
        models = await sqlite.export_settings()
        languages = await sqlite.export_languages()
    async with PostgresGuildSettings(target) as postgres:
        models_written = await postgres.import_settings(models)
        languages_written = await postgres.import_languages(languages)
    summary = (
        f"Copied {models_written} model choice(s) and {languages_written} language choice(s) from {source} to {redacted(target)}"
    )
    kept = [
        f"{count} {what} choice(s)"
        for count, what in ((len(models) - models_written, "model"), (len(languages) - languages_written, "language"))
        if count
    ]
    if kept:
        summary += f"; {' and '.join(kept)} kept as they were (the PostgreSQL database had a newer choice for those servers)"
    return summary + "."


def redacted(url: str) -> str:
    """``url`` without its password, to print."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = urllib.parse.quote(parts.username or "", safe="")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
