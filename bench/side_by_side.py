"""What a bias lens (``{a|b}``) and ``compare`` cost, beside one plain fill.

Through the service, as a command runs them, on bert-base dimensions: one fill of a sentence,
the same sentence as a lens of 2 and of 4 alternatives (queued together: one batched pass),
and the sentence from bert-base and camembert-base side by side (two models, at once).
Medians of repeated runs at idle; every figure is measured in this run.
"""

from __future__ import annotations

from pathlib import Path

from bench.measure import amedian_time, table
from bot.inference.checkpoint_policy import CheckpointPolicy
from bot.inference.loading import load_masked_lm
from bot.inference.registry import ModelRegistry
from bot.inference.types import FillRequest
from bot.service.fill_mask_service import FillMaskService, FillQuery
from bot.service.guild_settings import DefaultOnlySettings

LONE_REPEAT = 30


async def _in_turn(service: FillMaskService, queries: list[FillQuery], also: str | None = None) -> None:
    for query in queries:
        await service.answer(None, query)
        if also is not None:
            model = await service.registry.get(also)
            await model.fill(FillRequest(query.text.replace("[MASK]", model.mask_token), query.top_k))


async def side_by_side_section(bert: Path, camembert: Path, sentence: str, repeat: int = LONE_REPEAT) -> None:
    """``sentence`` holds one ``[MASK]``; it is measured as is, and with a group in front of it."""
    registry = ModelRegistry(load_masked_lm, max_loaded=2)
    policy = CheckpointPolicy(allow_local_models=True, local_roots=(bert.parent, camembert.parent))
    service = FillMaskService(registry, DefaultOnlySettings(), default_model=str(bert), policy=policy)
    plain = service.query(f"the man said {sentence}")
    lens_2 = service.query(f"the {{man|woman}} said {sentence}")
    lens_4 = service.query(f"the {{man|woman|child|teacher}} said {sentence}")
    compared = service.query(f"the man said {sentence}", compare=str(camembert))
    other = await service.compare_checkpoint(None, str(camembert))
    try:
        # Warm-up: both models loaded, first passes done.
        await service.answer(None, plain)
        await service.variants(None, lens_4)
        await service.compare(None, compared, other)
        one = await amedian_time(lambda: service.answer(None, plain), repeat)
        two = await amedian_time(lambda: service.variants(None, lens_2), repeat)
        four = await amedian_time(lambda: service.variants(None, lens_4), repeat)
        pair = await amedian_time(lambda: service.compare(None, compared, other), repeat)
        batch = (await service.variants(None, lens_4)).columns[0].result.batch_size
        # The same work one request after another, as a bot without batching would do it.
        singles = [service.query(lens_4.variants.sentence(lens_4.text, i)) for i in range(4)] if lens_4.variants else []
        one_by_one = await amedian_time(lambda: _in_turn(service, singles), repeat)
        alone = service.query(f"the man said {sentence}")
        theirs = await amedian_time(lambda: _in_turn(service, [alone], also=str(camembert)), repeat)
    finally:
        await registry.aclose()
    table(
        f"Side by side: one request at idle, median of {repeat} (bert-base dimensions)",
        ["how", "latency", "vs one fill"],
        [
            ["one fill", f"{one * 1000:.1f} ms", "1.00x"],
            ["bias lens, 2 alternatives", f"{two * 1000:.1f} ms", f"{two / one:.2f}x"],
            [f"bias lens, 4 alternatives (batch of {batch})", f"{four * 1000:.1f} ms", f"{four / one:.2f}x"],
            ["4 fills one after another (what the lens batches)", f"{one_by_one * 1000:.1f} ms", f"{one_by_one / one:.2f}x"],
            ["compare bert-base with camembert-base", f"{pair * 1000:.1f} ms", f"{pair / one:.2f}x"],
            ["bert-base, then camembert-base, in turn", f"{theirs * 1000:.1f} ms", f"{theirs / one:.2f}x"],
        ],
    )
