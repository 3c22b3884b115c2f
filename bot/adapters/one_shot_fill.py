"""``python -m bot fill "..." [--model X]``: one sentence, through the service, printed as text."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

from bot.inference.errors import FillMaskError
from bot.service.guild_settings import DefaultOnlySettings
from bot.settings import Settings
from bot.wiring import running_service


def fill_once(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 and print the predictions, or exit 1 with the friendly error on stderr."""
    return asyncio.run(_fill_once(settings, args))


async def _fill_once(settings: Settings, args: argparse.Namespace) -> int:
    # The named model plays the default (the owner typed it: no allow-list), and nothing is saved.
    if args.model:
        settings = dataclasses.replace(settings, default_model=args.model)
    async with running_service(settings, store=DefaultOnlySettings(), preload=False) as service:
        try:
            result = await service.fill(None, args.text, top_k=args.top_k, targets=args.targets)
        except FillMaskError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    for number, predictions in enumerate(result.masks, start=1):
        if len(result.masks) > 1:
            print(f"mask {number}:")
        for p in predictions:
            print(f"  {p.score * 100:6.2f} %  {p.word}")
    print(f"best: {result.best_sequence}")
    return 0
