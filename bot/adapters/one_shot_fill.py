"""``python -m bot fill "..." [--model X]``: one sentence, through the service, printed as text."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys

from bot.inference.errors import CheckpointError, FillMaskError
from bot.inference.masks import clean_input, parse_targets
from bot.service.guild_settings import DefaultOnlySettings
from bot.settings import Settings
from bot.wiring import running_service

log = logging.getLogger(__name__)

TARGETS_NEED_A_WORD = "--targets needs at least one word, e.g. --targets 'bon,mauvais'"


def fill_once(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 and print the predictions, or exit 1 with one ``error: ...`` line on stderr."""
    # Undecodable argv bytes arrive as lone surrogates (surrogateescape); make them U+FFFD.
    args = argparse.Namespace(**{k: clean_input(v) if isinstance(v, str) else v for k, v in vars(args).items()})
    # Checked here, in the CLI's own words: the service's message speaks of the chat's `| words` syntax.
    if args.targets is not None and not parse_targets(args.targets):
        print(f"error: {TARGETS_NEED_A_WORD}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_fill_once(settings, args))
    except Exception as exc:
        # Not a refusal in words but a bug or a broken checkpoint nobody explained: one line for
        # the person at the terminal, the traceback for whoever turns LOG_LEVEL=DEBUG on.
        log.debug("python -m bot fill failed", exc_info=True)
        print(
            f"error: something went wrong ({type(exc).__name__}); run with LOG_LEVEL=DEBUG for the details",
            file=sys.stderr,
        )
        return 1


async def _fill_once(settings: Settings, args: argparse.Namespace) -> int:
    # The named model plays the default (the owner typed it: no allow-list), and nothing is saved.
    if args.model:
        settings = dataclasses.replace(settings, default_model=args.model)
    async with running_service(settings, store=DefaultOnlySettings(), preload=False) as service:
        try:
            answer = await service.answer(None, args.text, top_k=args.top_k, targets=args.targets)
        except FillMaskError as exc:
            # A checkpoint that failed to load is told as itself: there is no "server" here.
            reason = exc.__cause__ if isinstance(exc.__cause__, CheckpointError) else exc
            print(f"error: {reason}", file=sys.stderr)
            return 1
    result = answer.result
    for number, predictions in enumerate(result.masks, start=1):
        if len(result.masks) > 1:
            print(f"mask {number}:")
        for p in predictions:
            print(f"  {p.score * 100:6.2f} %  {p.word}")
    print(f"best: {result.best_sequence}")
    if answer.joint is not None:
        # The blanks read together: the surest filled first, the model run again each time.
        print(f"read together: {answer.joint.sentence}  (joint score {answer.joint.score * 100:.2f} %)")
    return 0
