"""Logs a person can read: the console format, and an optional rotating file (``LOG_FILE``).

Logs always go to standard error (``docker logs``, journald); ``LOG_FILE`` adds a copy in a
file that rotates at 5 MB and keeps 3 old files (``bot.log``, ``bot.log.1`` … ``bot.log.3``).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

# The console's format (``setup_logging`` in bot/__main__.py); the file uses the same one.
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_FILE_MAX_BYTES = 5 * 1024 * 1024
LOG_FILE_BACKUPS = 3

log = logging.getLogger(__name__)


def configure_log_file(path: str | os.PathLike[str], *, logger: logging.Logger | None = None) -> logging.Handler | None:
    """Also log to ``path`` (created with its directory), rotating at 5 MB × 3 backups.

    Attaches to the root logger (or ``logger``), so the file gets what the console gets; the
    logger's level applies. Calling it again for the same file adds nothing. If the file cannot
    be opened, says so on the console and returns ``None``: the bot runs on, logging to stderr.
    """
    target = logger if logger is not None else logging.getLogger()
    filename = os.path.abspath(os.fspath(path))
    for handler in target.handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler) and handler.baseFilename == filename:
            return handler
    try:
        Path(filename).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            filename, maxBytes=LOG_FILE_MAX_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        log.warning("cannot write the log file %s (%s): logging to the console only", filename, exc.strerror or exc)
        return None
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    target.addHandler(handler)
    return handler


def route_library_logs(*, with_transformers: bool = True) -> None:
    """huggingface_hub's and transformers' output through the bot's logging, once, without bars
    (transformers left unimported with ``with_transformers=False``: a bot using INFERENCE_URL).

    Both libraries attach a handler of their own to their root logger, so their records were
    printed by it and again by ours (huggingface_hub propagates as well); tqdm bars belong on
    a terminal, not in a service log. Their records now propagate to the root logger only, and
    download progress is reported by the bot itself.
    """
    import huggingface_hub.utils

    for name in ("huggingface_hub", "transformers"):
        library = logging.getLogger(name)
        for handler in list(library.handlers):
            library.removeHandler(handler)
        library.propagate = True
    huggingface_hub.utils.disable_progress_bars()
    if with_transformers:
        import transformers.utils.logging as transformers_logging

        transformers_logging.disable_default_handler()
        transformers_logging.enable_propagation()
        transformers_logging.disable_progress_bar()
