"""The layers stand on their own: replies and the service import without torch or discord.py.

import-linter (``make lint``) checks the direction of every import statically; this checks the
same promise at run time, in a fresh interpreter where those packages cannot be imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BLOCK = """
import importlib, pkgutil, sys
for blocked in ("torch", "transformers", "discord"):
    sys.modules[blocked] = None  # "import torch" now raises ImportError
"""

EVERY_MODULE = (
    BLOCK
    + """
import bot.replies, bot.service, bot.settings, bot.adapters.health
names = []
for package in (bot.replies, bot.service):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        names.append(info.name)
print(" ".join(sorted(names)))
"""
)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_every_reply_and_service_module_imports_without_torch_or_discord() -> None:
    done = run(EVERY_MODULE)
    assert done.returncode == 0, done.stderr
    imported = set(done.stdout.split())
    assert {"bot.replies.reply", "bot.replies.flows", "bot.service.fill_mask_service", "bot.service.guild_settings"} <= imported


def test_the_block_is_real() -> None:
    # The in-process inference backend does need torch: under the same block it must fail.
    done = run(BLOCK + "import bot.inference.registry\n")
    assert done.returncode != 0 and "torch" in done.stderr
