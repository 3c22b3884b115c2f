"""The inference service (Ray Serve, ``bot.adapters.inference_server``) beside the in-process core.

On one checkpoint, this machine, the same 64 sentences:
- a burst of 64 concurrent fills through the service (the bot's remote backend over HTTP) vs the
  in-process core vs 64 sequential ``pipeline("fill-mask")`` calls;
- one lone request at idle: the service's overhead over the core (target: within 15 ms);
- the burst with 1 replica (all CPUs) and 2 replicas (half each).

Ray runs locally in this process (``ray.init``), its files in a short temporary directory; skipped,
saying why, without the serve extra.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.measure import amedian_time, core_burst, table
from bot.inference.registry import ModelRegistry
from bot.inference.remote import RemoteBackend
from bot.inference.types import FillRequest
from bot.settings import Settings

LONE_REPEAT = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_healthy(url: str, timeout: float = 180.0) -> None:
    import urllib.error
    import urllib.request

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(healthy):
        if time.monotonic() > deadline:
            raise RuntimeError("the inference service did not become healthy")
        await asyncio.sleep(0.5)


async def _through_service(url: str, checkpoint: str, requests: list[FillRequest], repeat: int) -> tuple[float, float]:
    """(burst time, lone-request latency) through the bot's remote backend."""
    backend = RemoteBackend(url, api="fillmask", load_timeout=300, max_in_flight=256)
    try:
        model = await backend.get(checkpoint)
        await asyncio.gather(*(model.fill(r) for r in requests))  # warm-up: kernels, connections
        burst = await amedian_time(lambda: asyncio.gather(*(model.fill(r) for r in requests)), repeat)
        lone = await amedian_time(lambda: model.fill(requests[0]), LONE_REPEAT)
    finally:
        await backend.aclose()
    return burst, lone


async def service_section(path: Path, texts: list[str], *, repeat: int, pipeline_burst: float) -> None:
    if importlib.util.find_spec("ray") is None:
        print('\n## The inference service\n(skipped: Ray Serve is not installed; pip install ".[serve]")')
        return
    import ray
    from ray import serve

    from bot.adapters.inference_server.app import APP_NAME, build_application
    from bot.inference.loading import load_masked_lm

    checkpoint = str(path)
    requests = [FillRequest(t, 5) for t in texts]
    base = replace(Settings(), default_model=checkpoint, device="cpu", allow_local_models=True, local_model_dirs=(path.parent,))

    # The in-process core on the same checkpoint and sentences, for the ratios.
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    try:
        served = await registry.get(checkpoint)
        await core_burst(served, requests)
        core = await amedian_time(lambda: core_burst(served, requests), repeat)
        core_lone = await amedian_time(lambda: served.fill(requests[0]), LONE_REPEAT)
    finally:
        await registry.aclose()  # its threads and memory: the replicas need the CPUs now

    cpus = os.cpu_count() or 2
    ray_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    results: dict[int, tuple[float, float]] = {}
    try:
        ray.init(num_cpus=cpus, _temp_dir=ray_dir, include_dashboard=False, log_to_driver=False)
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        for replicas in (1, 2):
            # Ray must fit the ingress (0.1 CPU) beside the replicas; the torch threads are set
            # explicitly, so a fractional reservation does not cost a thread.
            settings = replace(
                base,
                serve_replicas=replicas,
                serve_cpus_per_replica=(cpus - 0.2) / replicas,
                torch_threads=max(1, cpus // replicas),
            )
            serve.run(build_application(settings), name=APP_NAME, route_prefix="/")
            await _wait_healthy(url)
            results[replicas] = await _through_service(url, checkpoint, requests, repeat)
            serve.delete(APP_NAME)
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(ray_dir, ignore_errors=True)

    one, two = results[1], results[2]
    table(
        f"The inference service: burst of {len(requests)} concurrent fills, median of {repeat}",
        ["how", "time", "vs in-process core", "speed-up vs pipeline"],
        [
            [
                f"{len(requests)} sequential pipeline calls",
                f"{pipeline_burst * 1000:.0f} ms",
                f"{pipeline_burst / core:.2f}x",
                "1.00x",
            ],
            ["in-process core", f"{core * 1000:.0f} ms", "1.00x", f"{pipeline_burst / core:.2f}x"],
            ["service, 1 replica", f"{one[0] * 1000:.0f} ms", f"{one[0] / core:.2f}x", f"{pipeline_burst / one[0]:.2f}x"],
            ["service, 2 replicas", f"{two[0] * 1000:.0f} ms", f"{two[0] / core:.2f}x", f"{pipeline_burst / two[0]:.2f}x"],
        ],
    )
    overhead = one[1] - core_lone
    table(
        f"The inference service: one lone request at idle, median of {LONE_REPEAT}",
        ["how", "latency", "overhead"],
        [
            ["in-process core", f"{core_lone * 1000:.1f} ms", "-"],
            ["service, 1 replica", f"{one[1] * 1000:.1f} ms", f"{overhead * 1000:+.1f} ms (target <= +15 ms)"],
            ["service, 2 replicas", f"{two[1] * 1000:.1f} ms", f"{(two[1] - core_lone) * 1000:+.1f} ms"],
        ],
    )
    print(
        f"(2 replicas vs 1: {one[0] / two[0]:.2f}x throughput on {cpus} CPUs. On one machine the replicas split "
        "the same cores, each with fewer torch threads and half the batch, so no gain is expected; on a cluster "
        "each replica brings its own CPUs or GPU, and throughput grows with the replicas until the ingress "
        "or the network is the limit.)"
    )


async def _standalone() -> None:
    """``python -m bench.service_burst``: this section alone, bert-base dimensions."""
    from transformers import pipeline

    from bench import checkpoints
    from bench.measure import median_time

    path = checkpoints.bert_base()
    texts = checkpoints.sentences(64, "[MASK]", vocabulary=checkpoints.bert_words())
    pipe = pipeline("fill-mask", model=str(path))
    pipe(texts[0])
    pipeline_burst = median_time(lambda: [pipe(t) for t in texts], 1)
    await service_section(path, texts, repeat=3, pipeline_burst=pipeline_burst)


if __name__ == "__main__":
    asyncio.run(_standalone())
