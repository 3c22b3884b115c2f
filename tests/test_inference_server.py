"""The inference service (bot.adapters.inference_server) on a real local Ray, over real HTTP.

One Ray instance for the module, with two applications: ``main`` (the defaults) at ``/`` and
``small`` (MAX_LOADED_MODELS=1, MAX_QUEUE=1) at ``/small``, for eviction and a full queue.
Answers are compared with ``transformers.pipeline("fill-mask")`` on the same folder: same
tokens in the same order, same ``token_str`` and ``sequence``, scores within 1e-5 (the core
never proposes special tokens, so the pipeline's list is taken with them removed).

Skipped, with the reason shown, when Ray Serve is not installed; REQUIRE_RAY=1 makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("REQUIRE_RAY") == "1":
    import ray.serve  # noqa: F401  # CI: a missing Ray Serve is a failure, not a skip
else:
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install -e '.[serve]')")

from bot.inference.errors import NoMaskError, TopKOutOfRangeError
from bot.inference.wire import SERVICE_NAME, fill_path, load_path
from tests.discord_helpers import make_settings

SCORE_TOLERANCE = 1e-5


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]  # names in lower case


@dataclass(frozen=True, slots=True)
class Service:
    url: str  # the main application
    small_url: str  # MAX_LOADED_MODELS=1, MAX_QUEUE=1


def http(method: str, url: str, body: object | None = None, timeout: float = 60.0) -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw, status, headers = exc.read(), exc.code, dict(exc.headers)
    text = raw.decode()
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    return Reply(status, parsed, {k.lower(): v for k, v in headers.items()})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, bert_checkpoint: Path, camembert_checkpoint: Path) -> Iterator[Service]:
    import ray
    from ray import serve

    from bot.adapters.inference_server.app import build_application

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    roots = (bert_checkpoint.parent, camembert_checkpoint.parent)
    common: dict[str, Any] = {
        "local_model_dirs": roots,
        "serve_cpus_per_replica": 0.5,
        "torch_threads": 1,
        "serve_replicas": 1,
    }
    main = make_settings(tmp_path_factory.mktemp("serve-main"), bert_checkpoint, **common)
    small = make_settings(tmp_path_factory.mktemp("serve-small"), bert_checkpoint, max_loaded_models=1, max_queue=1, **common)
    # Short: Ray's socket paths live under it and must fit in 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, configure_logging=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_application(main), name="main", route_prefix="/")
        serve.run(build_application(small), name="small", route_prefix="/small")
        yield Service(url=f"http://127.0.0.1:{port}", small_url=f"http://127.0.0.1:{port}/small")
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pipelines(bert_checkpoint: Path, camembert_checkpoint: Path) -> dict[Path, Any]:
    from transformers import pipeline

    return {folder: pipeline("fill-mask", model=str(folder), device="cpu") for folder in (bert_checkpoint, camembert_checkpoint)}


def expected(pipe: Any, text: str, top_k: int = 5, targets: list[str] | None = None) -> list[list[dict[str, Any]]]:
    """The pipeline's answer, special tokens removed, one list per mask."""
    special = set(pipe.tokenizer.all_special_ids)
    kwargs: dict[str, Any] = {"top_k": top_k + len(special)}
    if targets is not None:
        kwargs["targets"] = targets
    out = pipe(text, **kwargs)
    per_mask = out if isinstance(out[0], list) else [out]
    return [[p for p in column if p["token"] not in special][:top_k] for column in per_mask]


def assert_same(got: Any, want: list[list[dict[str, Any]]]) -> None:
    """``got`` is the service's JSON: a list of predictions for one mask, a list of lists for several."""
    assert isinstance(got, list) and got
    per_mask = got if isinstance(got[0], list) else [got]
    if len(want) == 1:
        assert isinstance(got[0], dict), "one mask: a flat list, as the pipeline returns it"
    assert len(per_mask) == len(want)
    for column, reference in zip(per_mask, want, strict=True):
        assert [p["token"] for p in column] == [p["token"] for p in reference]
        assert [p["token_str"] for p in column] == [p["token_str"] for p in reference]
        assert [p["sequence"] for p in column] == [p["sequence"] for p in reference]
        for p, w in zip(column, reference, strict=True):
            assert set(p) == {"score", "token", "token_str", "sequence"}
            assert p["score"] == pytest.approx(w["score"], abs=SCORE_TOLERANCE)


def assert_plain_error(reply: Reply, status: int) -> str:
    assert reply.status == status, reply
    assert isinstance(reply.body, dict) and set(reply.body) == {"error"}, reply.body
    message = reply.body["error"]
    assert isinstance(message, str) and message
    assert "Traceback" not in message and 'File "' not in message
    return message


def test_health(service: Service) -> None:
    reply = http("GET", f"{service.url}/health")
    assert reply.status == 200
    assert reply.body == {"status": "ok", "service": SERVICE_NAME}


def test_load_reports_the_mask_token(service: Service, bert_checkpoint: Path, camembert_checkpoint: Path) -> None:
    for folder, mask in ((bert_checkpoint, "[MASK]"), (camembert_checkpoint, "<mask>")):
        reply = http("POST", service.url + load_path(str(folder)))
        assert reply.status == 200, reply
        assert reply.body == {"model": str(folder), "mask_token": mask}


# (text sent, text for the pipeline, top_k, targets)
BERT_CASES = [
    ("the cat sat on the [MASK] .", "the cat sat on the [MASK] .", 5, None),
    ("the cat sat on the <mask> .", "the cat sat on the [MASK] .", 1, None),  # the bot's other spelling
    ("paris is the [MASK] of france .", "paris is the [MASK] of france .", 10, None),
    ("the [MASK] sat on the <mask> .", "the [MASK] sat on the [MASK] .", 4, None),
    ("the cat sat on the [MASK] .", "the cat sat on the [MASK] .", 5, ["mat", "dog"]),
    ("the [mask] sat on the [MASK] .", "the [MASK] sat on the [MASK] .", 3, ["cat", "mat"]),
]
CAMEMBERT_CASES = [
    ("le camembert est <mask> .", "le camembert est <mask> .", 5, None),
    ("le <mask> dort sur le [MASK] .", "le <mask> dort sur le <mask> .", 3, None),
    ("le camembert est <mask> .", "le camembert est <mask> .", 5, ["▁délicieux", "bon"]),
]


@pytest.mark.parametrize(
    ("checkpoint_fixture", "sent", "reference_text", "top_k", "targets"),
    [("bert_checkpoint", *case) for case in BERT_CASES] + [("camembert_checkpoint", *case) for case in CAMEMBERT_CASES],
)
def test_fill_matches_pipeline(
    service: Service,
    pipelines: dict[Path, Any],
    request: pytest.FixtureRequest,
    checkpoint_fixture: str,
    sent: str,
    reference_text: str,
    top_k: int,
    targets: list[str] | None,
) -> None:
    checkpoint: Path = request.getfixturevalue(checkpoint_fixture)
    parameters: dict[str, Any] = {"top_k": top_k}
    if targets is not None:
        parameters["targets"] = targets
    reply = http("POST", service.url + fill_path(str(checkpoint)), {"inputs": sent, "parameters": parameters})
    assert reply.status == 200, reply
    assert_same(reply.body, expected(pipelines[checkpoint], reference_text, top_k, targets))


def test_parameters_are_optional(service: Service, pipelines: dict[Path, Any], bert_checkpoint: Path) -> None:
    reply = http("POST", service.url + fill_path(str(bert_checkpoint)), {"inputs": "the sky is [MASK] ."})
    assert reply.status == 200, reply
    assert_same(reply.body, expected(pipelines[bert_checkpoint], "the sky is [MASK] .", 5))


def test_local_path_forms(service: Service, pipelines: dict[Path, Any], bert_checkpoint: Path) -> None:
    """Percent-encoded whole (what the bot's client sends, dots too), or only its leading slash."""
    want = expected(pipelines[bert_checkpoint], "the cat sat on the [MASK] .", 2)
    body = {"inputs": "the cat sat on the [MASK] .", "parameters": {"top_k": 2}}
    encoded = fill_path(str(bert_checkpoint))
    assert "%2F" in encoded
    for path in (encoded, "/models/%2F" + str(bert_checkpoint).lstrip("/")):
        reply = http("POST", service.url + path, body)
        assert reply.status == 200, (path, reply)
        assert_same(reply.body, want)


def test_refused_checkpoints(service: Service, bert_checkpoint: Path, not_mlm_checkpoint: Path) -> None:
    outside = Path(tempfile.mkdtemp(prefix="outside-"))  # not under LOCAL_MODEL_DIRS
    try:
        shutil.copytree(bert_checkpoint, outside / "bert", dirs_exist_ok=True)
        allowed_root = bert_checkpoint.parent
        assert not_mlm_checkpoint.parent == allowed_root  # the session's temporary folder: allowed
        not_mlm = not_mlm_checkpoint
        body = {"inputs": "the cat sat on the [MASK] ."}
        cases = [
            (str(outside / "bert"), 403, "outside the directories"),
            (str(allowed_root / "no-such-model"), 404, ""),
            (str(not_mlm), 422, "masked-language-model"),
            ("https://example.com/a/b/c", 403, ""),
        ]
        for checkpoint, status, words in cases:
            for reply in (
                http("POST", service.url + fill_path(checkpoint), body),
                http("POST", service.url + load_path(checkpoint), None),
            ):
                message = assert_plain_error(reply, status)
                assert words in message
        assert http("GET", f"{service.url}/health").status == 200
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_invalid_input(service: Service, bert_checkpoint: Path, camembert_checkpoint: Path) -> None:
    url = service.url + fill_path(str(bert_checkpoint))
    assert assert_plain_error(http("POST", url, {"inputs": "no blank here"}), 400) == str(NoMaskError("[MASK]"))
    assert assert_plain_error(http("POST", url, {"inputs": ""}), 400) == str(NoMaskError("[MASK]"))
    camembert_url = service.url + fill_path(str(camembert_checkpoint))
    assert assert_plain_error(http("POST", camembert_url, {"inputs": "rien"}), 400) == str(NoMaskError("<mask>"))
    bad_k = {"inputs": "the sky is [MASK] .", "parameters": {"top_k": 0}}
    assert assert_plain_error(http("POST", url, bad_k), 400) == str(TopKOutOfRangeError())
    assert_plain_error(http("POST", url, {"text": "the sky is [MASK] ."}), 400)
    assert_plain_error(http("POST", url, {"inputs": "the sky is [MASK] .", "parameters": {"targets": [1]}}), 400)
    assert_plain_error(http("POST", url, {"inputs": "[MASK] " * 6}), 400)
    request = urllib.request.Request(url, data=b"{not json", method="POST")
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("malformed JSON was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
        assert "error" in json.loads(exc.read())
    assert http("GET", f"{service.url}/health").status == 200


def test_burst_is_batched(service: Service, pipelines: dict[Path, Any], bert_checkpoint: Path) -> None:
    url = service.url + fill_path(str(bert_checkpoint))
    texts = ["the cat sat on the [MASK] .", "paris is the capital of [MASK] .", "the sky is [MASK] ."]
    bodies = [{"inputs": texts[i % len(texts)], "parameters": {"top_k": 1 + i % 5}} for i in range(32)]
    before = http("GET", f"{service.url}/stats").body["batch_sizes"]
    with ThreadPoolExecutor(max_workers=32) as pool:
        replies = list(pool.map(lambda body: http("POST", url, body), bodies))
    assert [r.status for r in replies] == [200] * 32, [r for r in replies if r.status != 200][:3]
    for body, reply in zip(bodies, replies, strict=True):
        assert_same(reply.body, expected(pipelines[bert_checkpoint], body["inputs"], body["parameters"]["top_k"]))
    stats = http("GET", f"{service.url}/stats").body
    recent: list[int] = stats["batch_sizes"][len(before) :]
    assert sum(recent) == 32, recent
    assert max(recent) > 1, recent


def test_full_queue_is_429_with_retry_after(service: Service, bert_checkpoint: Path) -> None:
    url = service.small_url + fill_path(str(bert_checkpoint))
    body = {"inputs": "the cat sat on the [MASK] .", "parameters": {"top_k": 10}}
    assert http("POST", url, body).status == 200  # loaded first: the burst below waits for no load
    busy: list[Reply] = []
    for _ in range(5):
        with ThreadPoolExecutor(max_workers=16) as pool:
            replies = list(pool.map(lambda _: http("POST", url, body), range(16)))
        assert all(r.status in (200, 429) for r in replies), [r for r in replies if r.status not in (200, 429)][:3]
        assert any(r.status == 200 for r in replies)
        busy = [r for r in replies if r.status == 429]
        if busy:
            break
    assert busy, "MAX_QUEUE=1 never refused"
    for reply in busy:
        assert_plain_error(reply, 429)
        assert float(reply.headers["retry-after"]) >= 1
    assert http("GET", f"{service.small_url}/health").status == 200


def test_eviction_alternating_checkpoints(
    service: Service, pipelines: dict[Path, Any], bert_checkpoint: Path, camembert_checkpoint: Path
) -> None:
    """MAX_LOADED_MODELS=1: each switch evicts the other checkpoint, and every answer is still right."""
    cases = [
        (bert_checkpoint, "the cat sat on the [MASK] ."),
        (camembert_checkpoint, "le camembert est <mask> ."),
    ]
    loads_before = http("GET", f"{service.small_url}/stats").body["loads"]
    for _ in range(2):
        for folder, text in cases:
            reply = http("POST", service.small_url + fill_path(str(folder)), {"inputs": text, "parameters": {"top_k": 3}})
            assert reply.status == 200, reply
            assert_same(reply.body, expected(pipelines[folder], text, 3))
    assert http("GET", f"{service.small_url}/stats").body["loads"] - loads_before >= 3


def test_stats_reports_batches(service: Service) -> None:
    started = time.monotonic()
    stats = http("GET", f"{service.url}/stats").body
    assert time.monotonic() - started < 30
    assert isinstance(stats["batch_sizes"], list)
    assert stats["max_queue"] == 256


# -- without the running service: the options the builder and the config file give Ray ----------


def test_deployment_options_from_settings(tmp_path: Path) -> None:
    from bot.adapters.inference_server.app import deployment_options

    fixed = make_settings(tmp_path, tmp_path / "m", serve_replicas=3, serve_cpus_per_replica=2.0, serve_gpus_per_replica=0.5)
    model, ingress = deployment_options(fixed)
    assert model["num_replicas"] == 3 and "autoscaling_config" not in model
    assert model["ray_actor_options"] == {"num_cpus": 2.0, "num_gpus": 0.5}
    # Ray caps a batch at max_ongoing_requests; Ray never refuses (its refusal is a 503).
    assert model["max_ongoing_requests"] > fixed.max_batch_size
    assert model["max_queued_requests"] == ingress["max_queued_requests"] == -1
    assert ingress["max_ongoing_requests"] > fixed.max_queue

    auto = make_settings(tmp_path, tmp_path / "m", serve_replicas=0, serve_min_replicas=2, serve_max_replicas=5)
    model, _ = deployment_options(auto)
    assert "num_replicas" not in model
    assert model["autoscaling_config"]["min_replicas"] == 2
    assert model["autoscaling_config"]["max_replicas"] == 5


def test_build_app_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.serve.deployment import Application

    from bot.adapters.inference_server.app import build_app

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("MAX_BATCH_SIZE", "8")
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)  # the service needs none
    assert isinstance(build_app({}), Application)
    assert isinstance(build_app({"max_queue": "4"}), Application)


def test_serve_config_file_is_valid() -> None:
    import importlib

    import yaml
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(
        yaml.safe_load((Path(__file__).parent.parent / "deploy" / "serve.yaml").read_text())
    )
    (application,) = config.applications
    module, _, name = application.import_path.partition(":")
    assert callable(getattr(importlib.import_module(module), name))
    deployments = {d.name: d for d in application.deployments}
    assert set(deployments) == {"ModelServer", "InferenceIngress"}
    for deployment in deployments.values():
        assert deployment.max_queued_requests == -1
    assert deployments["ModelServer"].max_ongoing_requests >= int(application.runtime_env["env_vars"]["MAX_BATCH_SIZE"])
    assert deployments["InferenceIngress"].max_ongoing_requests > int(application.runtime_env["env_vars"]["MAX_QUEUE"])
