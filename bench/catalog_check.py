"""``python -m bench.catalog_check``: which curated checkpoints load with the default settings.

Run by hand, with internet (the tests never reach the real Hub). One ``model_info`` request per
id, no weights downloaded: whether ``main`` has safetensors weights (the bot refuses pickle-only
repos unless ``ALLOW_PICKLE_WEIGHTS=1``), the canonical id after a rename, and the parameter count
against ``MAX_MODEL_PARAMETERS``. Ids that fail should leave ``bot/service/catalog.py``.
"""

from __future__ import annotations

import sys

from bot.service.catalog import CURATED
from bot.settings import Settings


def main() -> int:
    from huggingface_hub import HfApi

    limit = Settings().max_model_parameters
    api = HfApi()
    failing = 0
    print(f"{'id':45} {'canonical id':45} {'safetensors':12} {'parameters':>12}  verdict")
    for entry in CURATED:
        try:
            info = api.model_info(entry.checkpoint, expand=["safetensors", "siblings"])
        except Exception as exc:  # each failure is a row, not the end of the check
            print(f"{entry.checkpoint:45} {'-':45} {'-':12} {'-':>12}  FAIL: {type(exc).__name__}")
            failing += 1
            continue
        names = {s.rfilename for s in info.siblings or []}
        has_safetensors = any(n.endswith(".safetensors") and "/" not in n for n in names)
        parameters = info.safetensors.total if info.safetensors is not None else None
        verdict = "ok"
        if not has_safetensors:
            verdict = "FAIL: pickle-only (needs ALLOW_PICKLE_WEIGHTS=1)"
        elif parameters is not None and parameters > limit:
            verdict = f"FAIL: over MAX_MODEL_PARAMETERS={limit}"
        failing += verdict != "ok"
        shown = f"{parameters:,}" if parameters is not None else "?"
        print(f"{entry.checkpoint:45} {info.id or '?':45} {'yes' if has_safetensors else 'no':12} {shown:>12}  {verdict}")
    print(f"\n{len(CURATED) - failing} of {len(CURATED)} load with the default settings.")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
