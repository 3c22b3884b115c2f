"""``python -m bench``: the inference core vs ``pipeline("fill-mask")``, side by side.

Prints one table per measurement; every figure is measured in this run. Sections:
burst, bare-pass limit, idle latency, event-loop lag, memory (in a child process, so earlier
sections do not pollute its resident-set figures), precision options, the inference service
(Ray Serve) beside the core, the bias lens and compare beside one fill, and the settings stores
(SQLite and PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

from bench import checkpoints
from bench.bot_burst import bot_burst_section
from bench.measure import LagMeter, amedian_time, core_burst, median_time, table
from bench.service_burst import service_section
from bench.settings_latency import settings_section
from bench.side_by_side import side_by_side_section
from bot.inference.batching import BatchingModel
from bot.inference.loading import configure_threads, load_masked_lm, warm_imports
from bot.inference.masked_lm import MaskedLM
from bot.inference.registry import ModelRegistry
from bot.inference.types import FillRequest, FillResult

BURST = 64


def bare_pass(lm: MaskedLM, texts: list[str]) -> None:
    """The physical floor: tokenize + encoder + head at the mask positions, nothing else."""
    tok = lm.tokenizer
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        assert lm._head is not None
        base, head = lm._head
        hidden = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
        rows, cols = torch.nonzero(batch["input_ids"] == lm.mask_token_id, as_tuple=True)
        head(hidden[rows, cols]).softmax(-1).topk(5)


async def speed_sections(name: str, path: Path, words: list[str], repeat: int, batch_sizes: list[int]) -> dict[str, float]:
    from transformers import pipeline

    lm = load_masked_lm(str(path))
    pipe = pipeline("fill-mask", model=str(path))
    texts = checkpoints.sentences(BURST, lm.mask_token, vocabulary=words)
    requests = [FillRequest(t, 5) for t in texts]
    lone = FillRequest(texts[0], 5)

    # warm-up: first calls allocate and pick kernels
    pipe(texts[0])
    lm.predict(lone)
    bare_pass(lm, texts)

    pipe_burst = median_time(lambda: [pipe(t) for t in texts], repeat)
    bare = median_time(lambda: bare_pass(lm, texts), repeat)
    figures: dict[str, float] = {"pipeline_burst": pipe_burst, "bare": bare}
    rows = []
    for size in batch_sizes:
        served = BatchingModel(lm, max_batch_size=size)
        await core_burst(served, requests)  # warm-up at this batch size
        async with LagMeter() as lag:
            core = await amedian_time(lambda served=served: core_burst(served, requests), repeat)
        await served.aclose()
        figures[f"core_burst_{size}"] = core
        figures[f"burst_lag_{size}"] = lag.worst
        rows.append(
            [
                f"core, MAX_BATCH_SIZE={size}",
                f"{core * 1000:.0f} ms",
                f"{pipe_burst / core:.2f}x",
                f"{core / bare:.2f}x",
                f"{lag.worst * 1000:.1f} ms",
            ]
        )
    rows.insert(0, ["pipeline, sequential", f"{pipe_burst * 1000:.0f} ms", "1.00x", f"{pipe_burst / bare:.2f}x", "-"])
    rows.append(["bare batched pass (floor)", f"{bare * 1000:.0f} ms", f"{pipe_burst / bare:.2f}x", "1.00x", "-"])
    table(
        f"{name}: burst of {BURST} concurrent single-mask requests (10-20 words), median of {repeat}",
        ["how", "time", "speed-up vs pipeline", "vs bare pass", "worst loop lag"],
        rows,
    )

    served = BatchingModel(lm, max_batch_size=max(batch_sizes))
    idle_repeat = max(15, repeat * 10)
    await served.fill(lone)
    core_idle = await amedian_time(lambda: served.fill(lone), idle_repeat)
    await served.aclose()
    pipe_idle = median_time(lambda: pipe(texts[0]), idle_repeat)
    figures.update(core_idle=core_idle, pipeline_idle=pipe_idle)
    table(
        f"{name}: one lone request at idle, median of {idle_repeat}",
        ["how", "latency", "ratio to pipeline"],
        [
            ["pipeline call", f"{pipe_idle * 1000:.1f} ms", "1.00x"],
            ["core (queue + model thread)", f"{core_idle * 1000:.1f} ms", f"{core_idle / pipe_idle:.2f}x"],
        ],
    )
    return figures


async def load_lag(path: Path) -> tuple[float, float]:
    """Lag while the registry loads ``path``, as the bot does it (imports warmed before connecting)."""
    warm_imports()
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    async with LagMeter() as lag:
        started = time.perf_counter()
        await registry.get(str(path))
        took = time.perf_counter() - started
    await registry.aclose()
    return lag.worst, took


async def precision_section(path: Path, words: list[str], repeat: int, batch_size: int) -> None:
    base_lm = load_masked_lm(str(path))
    texts = checkpoints.sentences(BURST, base_lm.mask_token, vocabulary=words)
    requests = [FillRequest(t, 5) for t in texts]
    reference = base_lm.predict_batch(requests)
    rows = []
    timings: dict[str, float] = {}
    for precision in ("fp32", "bf16", "int8", "auto"):
        lm = base_lm if precision == "fp32" else load_masked_lm(str(path), precision=precision)
        served = BatchingModel(lm, max_batch_size=batch_size)
        await core_burst(served, requests)
        timings[precision] = await amedian_time(lambda served=served: core_burst(served, requests), repeat)
        await served.aclose()
        outcomes = lm.predict_batch(requests)
        top1 = overlap = 0.0
        for ref, got in zip(reference, outcomes, strict=True):
            if not isinstance(ref, FillResult) or not isinstance(got, FillResult):
                raise RuntimeError(f"a benchmark sentence was refused: {ref if not isinstance(ref, FillResult) else got}")
            want = [p.token for p in ref.masks[0]]
            have = [p.token for p in got.masks[0]]
            top1 += want[0] == have[0]
            overlap += len(set(want) & set(have)) / len(want)
        rows.append(
            [
                f"auto (chose {lm.precision})" if precision == "auto" else precision,
                f"{timings[precision] * 1000:.0f} ms",
                f"{timings['fp32'] / timings[precision]:.2f}x",
                f"{100 * top1 / len(requests):.0f} %",
                f"{100 * overlap / len(requests):.0f} %",
            ]
        )
    table(
        f"PRECISION on {path.name}: burst of {BURST}, median of {repeat}; agreement with fp32",
        ["precision", "burst", "speed-up vs fp32", "same top-1", "top-5 overlap"],
        rows,
    )
    print(
        "(random weights give nearly flat predictions, so agreement here is a lower bound: any "
        "rounding reorders near-ties that a trained model separates by wide margins)"
    )


def memory_section(bert: Path, camembert: Path) -> None:
    # A child process: resident memory must not include what the speed sections allocated.
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory", str(bert), str(camembert)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    mib = lambda b: f"{b / 2**20:.0f} MiB"  # noqa: E731
    table(
        "Memory (resident set, child process)",
        ["state", "RSS", "note"],
        [
            ["imports only", mib(figures["baseline"]), ""],
            ["bert-base loaded, 1 server served", mib(figures["one_server"]), ""],
            [
                "same checkpoint, 100 servers served",
                mib(figures["hundred_servers"]),
                f"{100 * (figures['hundred_servers'] / figures['one_server'] - 1):+.1f} % (one shared copy)",
            ],
            ["after 1st switch bert<->camembert (MAX_LOADED_MODELS=1)", mib(figures["after_first_switch"]), ""],
            [
                "after 10 switches",
                mib(figures["after_ten_switches"]),
                f"{100 * (figures['after_ten_switches'] / figures['after_first_switch'] - 1):+.1f} % growth",
            ],
        ],
    )


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timed figure (median)")
    parser.add_argument("--batch-sizes", default="16,32,64", help="MAX_BATCH_SIZE values to compare")
    parser.add_argument("--quick", action="store_true", help="bert-base only, no precision or memory sections")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    threads = configure_threads(0)
    batch_sizes = [int(s) for s in args.batch_sizes.split(",")]

    cpu = next(
        (row.split(":", 1)[1].strip() for row in Path("/proc/cpuinfo").read_text().splitlines() if row.startswith("model name")),
        platform.processor(),
    )
    print(
        f"# fillmask-bot benchmark — {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({threads} threads, {torch.backends.cpu.get_cpu_capability()}), Python {platform.python_version()}"
    )

    bert = checkpoints.bert_base()
    camembert = checkpoints.camembert_base()
    worst_load_lag, load_seconds = await load_lag(bert)
    worst_cam_lag, cam_seconds = await load_lag(camembert)
    results = {"bert-base": await speed_sections("bert-base", bert, checkpoints.bert_words(), args.repeat, batch_sizes)}
    if not args.quick:
        results["camembert-base"] = await speed_sections(
            "camembert-base", camembert, checkpoints.camembert_words(), args.repeat, batch_sizes
        )

    best = max(batch_sizes, key=lambda s: -results["bert-base"][f"core_burst_{s}"])
    burst_lag = max(f[f"burst_lag_{s}"] for f in results.values() for s in batch_sizes)
    table(
        "Event-loop lag (10 ms ticker; target < 50 ms)",
        ["while", "worst lag"],
        [
            [f"loading bert-base ({load_seconds:.1f} s)", f"{worst_load_lag * 1000:.1f} ms"],
            [f"loading camembert-base ({cam_seconds:.1f} s)", f"{worst_cam_lag * 1000:.1f} ms"],
            ["serving the bursts above", f"{burst_lag * 1000:.1f} ms"],
        ],
    )
    summary = []
    for name, f in results.items():
        core = f[f"core_burst_{best}"]
        summary.append(
            [
                name,
                f"{f['pipeline_burst'] / core:.2f}x (target >= 4x)",
                f"{core / f['bare']:.2f}x (target <= 1.25x)",
                f"{f['core_idle'] / f['pipeline_idle']:.2f}x (target <= 1.1x)",
            ]
        )
    table(
        f"Summary at MAX_BATCH_SIZE={best}", ["checkpoint", "burst speed-up", "burst vs bare pass", "idle latency ratio"], summary
    )

    bert_texts = checkpoints.sentences(BURST, "[MASK]", vocabulary=checkpoints.bert_words())
    await bot_burst_section(bert, bert_texts, repeat=args.repeat, pipeline_burst=results["bert-base"]["pipeline_burst"])
    await service_section(bert, bert_texts, repeat=args.repeat, pipeline_burst=results["bert-base"]["pipeline_burst"])
    await side_by_side_section(bert, camembert, bert_texts[0])

    if not args.quick:
        await precision_section(bert, checkpoints.bert_words(), args.repeat, best)
        memory_section(bert, camembert)
    await settings_section()


if __name__ == "__main__":
    asyncio.run(main())
