"""docker-compose.yml: valid under the Compose Specification, lint-free, and shaped as the bot needs.

No Docker engine and no network: ``check-jsonschema`` (a dev extra) validates the file against the
Compose Specification's JSON schema it ships (``--builtin-schema vendor.compose-spec``), yamllint
lints it, and the structure is read with PyYAML (anchors and ``<<`` merges resolved, as Compose
does) after interpolating ``${VAR}`` the way Compose does. Each bot's effective environment (image
ENV, then ``.env`` made from ``.env.example``, then ``environment:``) goes through the bot's own
``Settings.from_env``, and so does the inference service's (``python -m bot serve``), whose health
check runs for real against a stand-in for ``GET /health``.
"""

from __future__ import annotations

import ast
import http.server
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from dotenv import dotenv_values
from yamllint import linter
from yamllint.config import YamlLintConfig

from bot.__main__ import parse_args
from bot.settings import Settings
from bot.wiring import inference_api

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"
BOT_MODULE = ROOT / "bot" / "adapters" / "discord" / "bot.py"
INFERENCE_APP = ROOT / "bot" / "adapters" / "inference_server" / "app.py"
PYPROJECT = ROOT / "pyproject.toml"

# What a .env for Compose holds besides the bot's keys (the postgres image's variables).
SAMPLE_ENV = {"POSTGRES_PASSWORD": "pw-from-dotenv"}
INTERPOLATED = {"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB"}


# -- reading the file the way Compose does -------------------------------------------------------

_VAR = r"[A-Za-z_][A-Za-z0-9_]*"
_DOLLAR = re.compile(rf"\$(?:(?P<escaped>\$)|\{{(?P<braced>{_VAR})(?:(?P<op>:?[-?+])(?P<arg>[^}}]*))?\}}|(?P<bare>{_VAR}))")


class MissingVariable(Exception):
    pass


def interpolate_string(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one value: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+r}."""
    out, pos = [], 0
    for match in _DOLLAR.finditer(value):
        out.append(value[pos : match.start()])
        pos = match.end()
        if match["escaped"]:
            out.append("$")
            continue
        name = match["braced"] or match["bare"]
        op, arg = match["op"] or "", match["arg"] or ""
        current = env.get(name)
        unset_or_empty = not current if op.startswith(":") else current is None
        if op.endswith("-"):
            out.append(arg if unset_or_empty else current or "")
        elif op.endswith("?"):
            if unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            out.append(current or "")
        elif op.endswith("+"):
            out.append("" if unset_or_empty else arg)
        else:
            out.append(current or "")
    rest = value[pos:]
    assert "$" not in rest.replace("$$", ""), f"a $ Compose cannot interpolate in {value!r} (write $$ for a literal $)"
    out.append(rest)
    return "".join(out)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate_string(node, env)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


def raw_text() -> str:
    return COMPOSE.read_text(encoding="utf-8")


def raw(text: str | None = None) -> dict[str, Any]:
    """The file (or ``text``) as YAML: anchors and merge keys resolved, nothing interpolated."""
    document = yaml.safe_load(raw_text() if text is None else text)
    assert isinstance(document, dict)
    return document


def compose(env: Mapping[str, str] = SAMPLE_ENV, text: str | None = None) -> dict[str, Any]:
    return interpolate(raw(text), env)


def services(env: Mapping[str, str] = SAMPLE_ENV) -> dict[str, dict[str, Any]]:
    return compose(env)["services"]


def is_inference_service(service: Mapping[str, Any]) -> bool:
    """Built from the Dockerfile and running ``python -m bot serve`` (the image's ENTRYPOINT is
    ``python -m bot``), not the default ``run``."""
    command = service.get("command")
    if isinstance(command, str):
        command = command.split()
    return "build" in service and bool(command) and command[0] == "serve"


def bots(env: Mapping[str, str] = SAMPLE_ENV) -> dict[str, dict[str, Any]]:
    """The services built from the Dockerfile that run the bot: the bot processes."""
    found = {name: s for name, s in services(env).items() if "build" in s and not is_inference_service(s)}
    assert len(found) >= 2, f"expected several bot processes, found {sorted(found)}"
    return found


def inference_of(document: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one service of ``document`` running ``python -m bot serve``: (its name, it)."""
    found = [(name, s) for name, s in document["services"].items() if is_inference_service(s)]
    assert len(found) == 1, f"expected one inference service, found {[name for name, _ in found]}"
    return found[0]


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(key): str(value) for key, value in env.items()}


def dockerfile_env() -> dict[str, str]:
    """The image's ENV (``KEY=value`` pairs, continuation lines joined)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            values.update(dict(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", line)))
    return values


def documented_keys() -> set[str]:
    """Keys .env.example documents, set or commented out (``KEY=`` or ``# KEY=``)."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(encoding="utf-8"), flags=re.MULTILINE))


def mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """Container path -> source (volume name or host path), short or long syntax."""
    result: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            result[rest.partition(":")[0]] = source
        else:
            result[volume["target"]] = volume.get("source", "")
    return result


def mount_holding(service: Mapping[str, Any], path: str) -> str:
    """The source of the innermost mount that holds ``path`` in the container."""
    holders = [target for target in mounts(service) if PurePosixPath(path).is_relative_to(target)]
    assert holders, f"{path} is on no volume: it would be lost with the container"
    return mounts(service)[max(holders, key=len)]


def seconds(duration: str) -> float:
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert parts and duration, f"not a Compose duration: {duration!r}"
    hours, minutes, secs = (float(p or 0) for p in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def module_constant(path: Path, name: str) -> float:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return float(ast.literal_eval(node.value))
    raise AssertionError(f"{name} not found in {path}")


# -- the validator and the linter ----------------------------------------------------------------


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_compose_specification_schema_accepts_the_file() -> None:
    result = check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout


def test_the_schema_accepts_the_file_once_interpolated(tmp_path: Path) -> None:
    # The values Compose actually sees (e.g. no ${...} left where a number is expected).
    interpolated = tmp_path / "compose.json"
    interpolated.write_text(json.dumps(compose()))
    result = check_jsonschema(interpolated)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        # In the shared x-bot definition: reaches every bot through the merge key.
        (
            "\n  restart: unless-stopped\n",
            "\n  restart: unless-stopped\n  restart_policy: always\n",
            "$.services['bot-1']: Unevaluated properties are not allowed ('restart_policy'",
        ),
        (
            "      interval: 5s\n",
            "      intervall: 5s\n",
            "$.services.postgres: Unevaluated properties are not allowed ('healthcheck'",
        ),
        ("condition: service_healthy", "condition: service_ready", "service_ready"),
        # In the inference service.
        (
            "\n    init: true\n",
            "\n    init: true\n    shm: 2gb\n",
            "$.services.inference: Unevaluated properties are not allowed ('shm'",
        ),
        (
            "        EXTRAS: serve ",
            "        EXTRAS: [serve] ",
            "$.services.inference.build.args.EXTRAS: ['serve'] is not of type",
        ),
        ("\nservices:\n", "\nservice:\n", "'service' does not match any of the regexes"),
    ],
)
def test_the_schema_rejects_a_broken_copy(tmp_path: Path, old: str, new: str, complaint: str) -> None:
    # Guards the validation above against passing vacuously (wrong schema, merges not resolved…).
    text = raw_text()
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    result = check_jsonschema(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert complaint in result.stdout + result.stderr


def yamllint_problems(text: str) -> list[str]:
    # yamllint's default rules, warnings included; no user or project configuration is read.
    config = YamlLintConfig("extends: default\n")
    return [f"{p.line}:{p.column} {p.level} {p.rule}: {p.desc}" for p in linter.run(text, config)]


def test_yamllint_finds_nothing() -> None:
    assert yamllint_problems(raw_text()) == []


def test_yamllint_flags_a_broken_copy() -> None:
    broken = raw_text().replace("    restart: unless-stopped\n", "    restart: unless-stopped\n    restart: 'no'\n", 1)
    broken = broken.replace("image: postgres:16", "image:  postgres:16", 1) + "\n\n"
    rules = {problem.split()[2] for problem in yamllint_problems(broken)}
    assert {"key-duplicates:", "colons:", "empty-lines:"} <= rules


# -- shards, database, volumes -------------------------------------------------------------------


def test_the_services() -> None:
    assert set(services()) == {"postgres", "inference", "bot-0", "bot-1"}
    assert set(bots()) == {"bot-0", "bot-1"}
    assert inference_of(compose())[0] == "inference"
    for name, service in bots().items():
        assert service["build"] == ".", name  # the repository's Dockerfile, without the serve extra
    for name, service in services().items():
        assert service["restart"] == "unless-stopped", name


def test_the_bots_share_one_definition() -> None:
    text = raw_text()
    assert re.search(r"^x-bot: &bot$", text, flags=re.MULTILINE)
    for name in bots():
        block = text.split(f"\n  {name}:\n", 1)[1].split("\n\n", 1)[0]
        assert "<<: *bot\n" in block and "<<: *bot-env\n" in block, name
    # Apart from the shards they run and their own data volume, the bots are the same.
    normalised = []
    for name, service in bots().items():
        service = dict(service)
        service["environment"] = {k: v for k, v in environment_of(service).items() if k != "SHARD_IDS"}
        service["volumes"] = sorted(v.replace(f"{name}-data", "OWN-data") for v in service["volumes"])
        normalised.append(service)
    assert all(n == normalised[0] for n in normalised)


def test_every_process_has_the_same_shard_count_and_each_shard_runs_once() -> None:
    counts = {environment_of(s)["SHARD_COUNT"] for s in bots().values()}
    assert counts == {"2"}
    count = int(counts.pop())
    assert count == len(bots())  # one shard per process here
    seen: list[int] = []
    for service in bots().values():
        seen += [int(i) for i in environment_of(service)["SHARD_IDS"].split(",")]
    assert sorted(seen) == list(range(count)), f"shard ids {seen}: each of 0..{count - 1} exactly once"


@pytest.mark.parametrize(
    "env",
    [SAMPLE_ENV, {"POSTGRES_PASSWORD": "another", "POSTGRES_USER": "someone", "POSTGRES_DB": "elsewhere"}],
)
def test_database_url_points_at_the_postgres_service_with_its_credentials(env: dict[str, str]) -> None:
    postgres = environment_of(services(env)["postgres"])
    for service in bots(env).values():
        url = urlsplit(environment_of(service)["DATABASE_URL"])
        assert url.scheme == "postgresql"
        assert url.hostname == "postgres" and url.port == 5432
        assert url.username == postgres["POSTGRES_USER"] == env.get("POSTGRES_USER", "fillmask")
        assert url.password == postgres["POSTGRES_PASSWORD"] == env["POSTGRES_PASSWORD"]
        assert url.path == "/" + postgres["POSTGRES_DB"] == "/" + env.get("POSTGRES_DB", "fillmask")
        assert service["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "inference": {"condition": "service_healthy"},
        }


@pytest.mark.parametrize("env", [{}, {"POSTGRES_PASSWORD": ""}])
def test_postgres_password_is_required(env: dict[str, str]) -> None:
    with pytest.raises(MissingVariable, match=r"POSTGRES_PASSWORD: set POSTGRES_PASSWORD in \.env"):
        compose(env)


def test_postgres_is_pinned_keeps_its_data_and_reports_its_health() -> None:
    postgres = services()["postgres"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)?(-[a-z0-9.]+)?", postgres["image"]), "pin a major version"
    source = mounts(postgres)["/var/lib/postgresql/data"]
    assert source in compose()["volumes"], "a named volume, declared at the top level"
    check = postgres["healthcheck"]
    assert check["test"][0] == "CMD-SHELL" and "pg_isready" in check["test"][1]
    # $$ left the variables to the container's shell, which has them (a single $ would be
    # Compose's, from the host, usually empty).
    assert set(re.findall(r"\$\{(\w+)\}", check["test"][1])) == {"POSTGRES_USER", "POSTGRES_DB"}
    assert {"POSTGRES_USER", "POSTGRES_DB"} <= set(environment_of(postgres))
    # Over TCP: the temporary server that initialises a new volume listens on the socket only.
    assert "-h 127.0.0.1" in check["test"][1]
    assert "ports" not in postgres, "the database is for the bots only"


def test_the_hugging_face_cache_is_one_shared_volume() -> None:
    hf_home = dockerfile_env()["HF_HOME"]
    built = {**bots(), "inference": inference_of(compose())[1]}
    sources = {mounts(service).get(hf_home) for service in built.values()}
    assert len(sources) == 1, f"every bot and the inference service mount the same volume at HF_HOME={hf_home}: {sources}"
    (cache,) = sources
    assert cache in compose()["volumes"]
    for service in built.values():
        assert "HF_HOME" not in environment_of(service)  # the image's, where the volume is mounted


def test_each_bot_has_its_own_health_file_and_the_image_health_check() -> None:
    image = dockerfile_env()
    assert re.search(r'^HEALTHCHECK .*CMD \["python", "-m", "bot", "health"\]', DOCKERFILE.read_text().replace("\\\n", " "), re.M)
    homes = []
    for name, service in bots().items():
        health_file = environment_of(service).get("HEALTH_FILE", image["HEALTH_FILE"])
        assert PurePosixPath(health_file).is_absolute(), name
        homes.append(mount_holding(service, health_file))
        # No override: the image's check (python -m bot health) stays on.
        assert "healthcheck" not in service, name
    assert len(set(homes)) == len(homes), f"the bots share a health file volume: {homes}"
    assert mount_holding(next(iter(bots().values())), image["HF_HOME"]) not in homes


def test_stop_grace_period_covers_the_bot_shutdown() -> None:
    shutdown = module_constant(BOT_MODULE, "SHUTDOWN_GRACE_SECONDS") + module_constant(BOT_MODULE, "FINAL_EDIT_SECONDS")
    for name, service in bots().items():
        assert shutdown + 1 <= seconds(service["stop_grace_period"]) <= 60, name


def test_each_bot_reads_dotenv_optionally() -> None:
    for name, service in bots().items():
        assert {"path": ".env", "required": False} in service["env_file"], name


# -- the inference service ----------------------------------------------------------------------

# Ray Serve's default graceful_shutdown_timeout_s (ray.serve._private.constants): how long a
# stopping replica lets its requests in flight finish; Ray's own processes stop after that.
SERVE_GRACEFUL_SHUTDOWN_S = 20.0
_BYTES = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", flags=re.IGNORECASE)


def byte_count(value: object) -> float:
    """Compose's byte values: a number of bytes, or ``2gb``, ``512m``, ``64k``..."""
    if isinstance(value, int | float):
        return float(value)
    match = _BYTES.fullmatch(str(value).strip())
    assert match, f"not a Compose byte value: {value!r}"
    return float(match[1]) * 1024 ** "_kmg".index(match[2].lower() or "_")


def healthcheck_code(service: Mapping[str, Any]) -> str:
    """The Python the health check runs (``CMD python -c CODE``)."""
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 4, f"expected CMD python -c '...': {test}"
    return test[3]


def urlopen_calls(code: str) -> list[tuple[str, float | None]]:
    """(URL, timeout) of each ``urlopen(...)`` call in ``code``."""
    calls: list[tuple[str, float | None]] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name == "urlopen":
                url = ast.literal_eval(node.args[0])
                timeouts = [ast.literal_eval(k.value) for k in node.keywords if k.arg == "timeout"]
                calls.append((str(url), float(timeouts[0]) if timeouts else None))
    return calls


def inference_problems(document: Mapping[str, Any]) -> list[str]:
    """What is wrong with the inference service and the bots' use of it in ``document`` (interpolated)."""
    name, service = inference_of(document)
    problems: list[str] = []
    build = service.get("build")
    if not (isinstance(build, dict) and build.get("context") == "." and (build.get("args") or {}).get("EXTRAS") == "serve"):
        problems.append(f"{name}: not built from the Dockerfile with args EXTRAS: serve (Ray Serve): {build!r}")
    command = service["command"]
    try:
        args = parse_args(command.split() if isinstance(command, str) else [str(c) for c in command])
    except SystemExit:
        return [*problems, f"{name}: python -m bot does not accept {command!r}"]
    if args.host != "0.0.0.0":
        problems.append(f"{name}: serve --host {args.host}: the other containers cannot reach it (0.0.0.0)")
    if "ports" in service:
        problems.append(f"{name}: a published port (the service is for the bots; leave it commented out)")
    # The health check: the image's reads the bots' heartbeat file, which the service never writes.
    try:
        calls = urlopen_calls(healthcheck_code(service))
    except (AssertionError, KeyError) as exc:
        calls = []
        problems.append(f"{name}: no health check of its own: {exc!r}")
    health = f"http://127.0.0.1:{args.port}/health"
    if [url for url, _ in calls] != [health]:
        problems.append(f"{name}: the health check should GET {health}: {calls}")
    ping = module_constant(INFERENCE_APP, "HEALTH_PING_TIMEOUT_S")
    check_timeout = seconds(str(service.get("healthcheck", {}).get("timeout", "30s")))
    for url, timeout in calls:
        if timeout is None or not ping < timeout < check_timeout:
            problems.append(
                f"{name}: {url} with timeout={timeout}: the route waits up to {ping} s, Docker gives up after {check_timeout} s"
            )
    env = environment_of(service)
    if env.get("RAY_USAGE_STATS_ENABLED") != "0":
        problems.append(f'{name}: RAY_USAGE_STATS_ENABLED is {env.get("RAY_USAGE_STATS_ENABLED")!r}, not "0"')
    if {"path": ".env", "required": False} not in (service.get("env_file") or []):
        problems.append(f"{name}: does not read .env (optionally) as the bots do: the model settings would not reach it")
    if byte_count(service.get("shm_size", "64m")) < 1024**3:
        problems.append(f"{name}: shm_size {service.get('shm_size')!r}: Ray's object store needs more than Docker's 64 MB")
    if service.get("init") is not True:
        problems.append(f"{name}: no init: nothing reaps the processes Ray leaves behind")
    grace = seconds(str(service.get("stop_grace_period", "10s")))
    if not SERVE_GRACEFUL_SHUTDOWN_S + 10 <= grace <= 120:
        problems.append(f"{name}: stop_grace_period {grace} s: Serve drains replicas for {SERVE_GRACEFUL_SHUTDOWN_S} s")
    hf_home = dockerfile_env()["HF_HOME"]
    for bot_name, bot in document["services"].items():
        if "build" not in bot or is_inference_service(bot):
            continue
        if mounts(bot).get(hf_home) != mounts(service).get(hf_home):
            problems.append(f"{name} and {bot_name} do not share the Hugging Face cache at {hf_home}")
        bot_env = environment_of(bot)
        url = urlsplit(bot_env.get("INFERENCE_URL", ""))
        if (url.scheme, url.hostname, url.port, url.path.strip("/")) != ("http", name, args.port, ""):
            problems.append(f"{bot_name}: INFERENCE_URL {bot_env.get('INFERENCE_URL')!r} is not http://{name}:{args.port}")
        settings = Settings.from_env({**dockerfile_env(), **bot_env}, dotenv_path=None)
        if inference_api(settings) != "fillmask":
            problems.append(f"{bot_name}: INFERENCE_API {settings.inference_api!r} is not this bot's service's protocol")
        if (bot.get("depends_on") or {}).get(name) != {"condition": "service_healthy"}:
            problems.append(f"{bot_name}: does not wait for {name} to be healthy: {bot.get('depends_on')}")
    return problems


def test_the_inference_service_is_as_the_bots_need() -> None:
    assert inference_problems(compose()) == []
    name, service = inference_of(compose())
    assert name == "inference"  # the host name in the bots' INFERENCE_URL
    assert service["build"] == {"context": ".", "args": {"EXTRAS": "serve"}}
    assert parse_args(service["command"]).command == "serve"


def test_the_serve_extra_exists_where_the_build_arg_reads_it() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r'^ARG EXTRAS=""$', dockerfile, flags=re.MULTILINE)
    assert "optional-dependencies'][e]" in dockerfile
    assert re.search(r"^serve = \[\n\s+\"ray\[serve\]", PYPROJECT.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["python", "-m", "bot"\]$', dockerfile, flags=re.MULTILINE)


def test_the_health_check_route_is_the_services() -> None:
    assert re.search(r'^    @app\.get\("/health"\)$', INFERENCE_APP.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert "curl" not in healthcheck_code(inference_of(compose())[1])  # not in the slim image


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("        EXTRAS: serve", "        EXTRAS: dev", "EXTRAS: serve"),
        ('"--host", "0.0.0.0"', '"--host", "127.0.0.1"', "cannot reach it"),
        ('"--port", "8000"', '"--port", "8080"', "should GET http://127.0.0.1:8080/health"),
        ('"--port", "8000"', '"--prot", "8000"', "does not accept"),
        ("8000/health'", "8000/healthz'", "should GET http://127.0.0.1:8000/health"),
        ("timeout=8)", "timeout=30)", "Docker gives up after 10.0 s"),
        ("timeout=8)", "timeout=3)", "the route waits up to 5.0 s"),
        ("      - -c\n", "      - -m\n", "no health check of its own"),
        ("INFERENCE_URL: http://inference:8000", "INFERENCE_URL: http://127.0.0.1:8000", "is not http://inference:8000"),
        ("INFERENCE_URL: http://inference:8000", "INFERENCE_URL: http://inference:8080", "is not http://inference:8000"),
        ("INFERENCE_API: fillmask", "INFERENCE_API: huggingface", "protocol"),
        ("    inference:\n      condition: service_healthy", "    inference:\n      condition: service_started", "healthy"),
        ('RAY_USAGE_STATS_ENABLED: "0"', 'RAY_USAGE_STATS_ENABLED: "1"', "RAY_USAGE_STATS_ENABLED"),
        ("shm_size: 2gb", "shm_size: 64mb", "shm_size"),
        ("    init: true\n", "", "no init"),
        ("stop_grace_period: 60s", "stop_grace_period: 10s", "stop_grace_period"),
        (
            "      - hf-cache:/data/hf-cache      #",
            "      - own-cache:/data/hf-cache      #",
            "do not share the Hugging Face cache",
        ),
        ('    # ports: ["127.0.0.1:8000:8000"]', '    ports: ["127.0.0.1:8000:8000"]', "a published port"),
        (
            "    env_file:\n      - path: .env\n        required: false\n    environment:\n      RAY",
            "    environment:\n      RAY",
            ".env",
        ),
    ],
)
def test_inference_checks_flag_a_broken_copy(old: str, new: str, complaint: str) -> None:
    # Guards the checks above against passing vacuously.
    text = raw_text()
    assert text.count(old) == 1, old
    problems = inference_problems(compose(text=text.replace(old, new)))
    assert any(complaint in problem for problem in problems), problems


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("status", "exit_status"),
    [(200, 0), (503, 1), (None, 1)],  # ready; starting ({"status": "starting"}); nothing listening
)
def test_the_health_check_passes_only_when_health_answers_200(status: int | None, exit_status: int) -> None:
    # The check's own code, run for real (the venv's python for the image's) against a stand-in
    # for GET /health on another port.
    code = healthcheck_code(inference_of(compose())[1])
    paths: list[str] = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            body = json.dumps({"status": "ok" if status == 200 else "starting"}).encode()
            self.send_response(status or 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health) if status else None
    if server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    finally:
        if server:
            server.shutdown()
            server.server_close()
    assert (result.returncode != 0) == bool(exit_status), result.stderr
    assert paths == (["/health"] if status else [])


def test_the_inference_service_accepts_its_effective_configuration() -> None:
    # Image ENV, then a .env copied from .env.example, then environment: (Compose's order).
    dotenv = {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()}
    _, service = inference_of(compose())
    settings = Settings.from_env({**dockerfile_env(), **dotenv, **environment_of(service)}, dotenv_path=None)
    assert settings.default_model == dotenv["DEFAULT_MODEL"]  # the model settings reach it
    assert settings.serve_replicas == int(dotenv["SERVE_REPLICAS"])
    assert not settings.inference_url  # it runs the models itself


def readme_inference_section() -> str:
    text = README.read_text(encoding="utf-8")
    heading = "\n## Inference as a service\n"
    assert heading in text
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_every_inference_service_setting_in_the_file_is_documented() -> None:
    # The bot's settings in .env.example; Ray's own variables in the README's section on the service.
    _, service = inference_of(raw())
    undocumented = set(environment_of(service)) - documented_keys()
    assert undocumented == {"RAY_USAGE_STATS_ENABLED"}
    section = readme_inference_section()
    for key in undocumented:
        assert f"`{key}=0`" in section or f"`{key}`" in section, f"{key} is not explained in the README"


# -- configuration and secrets -------------------------------------------------------------------


def test_the_only_variables_interpolated_are_the_postgres_ones() -> None:
    names = {m["braced"] or m["bare"] for m in _DOLLAR.finditer(raw_text()) if not m["escaped"]}
    assert names == INTERPOLATED


def test_no_secret_is_written_in_the_file() -> None:
    text = raw_text()
    assert not re.search(r"[\w-]{23,28}\.[\w-]{6,7}\.[\w-]{27,}", text), "a Discord token?"
    # The password only ever comes from the environment, never with a default.
    for match in _DOLLAR.finditer(text):
        if match["braced"] == "POSTGRES_PASSWORD" or match["bare"] == "POSTGRES_PASSWORD":
            assert match["op"] == ":?", match[0]
    for name, service in raw()["services"].items():
        env = environment_of(service)
        assert "DISCORD_TOKEN" not in env, f"{name}: the token comes from .env"
        for key, value in env.items():
            if re.search(r"TOKEN|PASSWORD|SECRET", key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", value), f"{name}: {key} is written in the file"
            if key == "DATABASE_URL":
                assert re.fullmatch(
                    r"postgresql://\$\{POSTGRES_USER[^}]*\}:\$\{POSTGRES_PASSWORD:\?[^}]*\}@postgres:.+", value
                ), f"{name}: {value}"


def test_every_bot_setting_in_the_file_is_documented_in_env_example() -> None:
    documented = documented_keys()
    for name, service in bots().items():
        undocumented = set(environment_of(service)) - documented
        assert not undocumented, f"{name} sets {sorted(undocumented)}, which .env.example does not document"
    # The commented-out examples (METRICS_PORT…) too.
    hinted = set(re.findall(r"^\s*#\s*([A-Z][A-Z0-9_]*):\s", raw_text(), flags=re.MULTILINE))
    assert hinted and hinted <= documented, hinted - documented


def test_each_bot_accepts_its_effective_configuration() -> None:
    # Image ENV, then a .env copied from .env.example, then environment: (Compose's order).
    dotenv = {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()}
    for name, service in bots().items():
        env = {**dockerfile_env(), **dotenv, **environment_of(service)}
        settings = Settings.from_env(env, dotenv_path=None)
        assert settings.shard_count == 2, name
        assert settings.shard_ids == (int(name.removeprefix("bot-")),), name
        assert settings.database_url == environment_of(service)["DATABASE_URL"]
        assert settings.health_file == PurePosixPath("/data/health.json")


def test_readme_explains_the_compose_setup() -> None:
    text = README.read_text(encoding="utf-8")
    heading = "### Several processes with Docker Compose"
    assert heading in text
    section = text.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    assert "docker compose up -d --build" in section
    assert "SHARD_COUNT" in section
    for name in INTERPOLATED:
        assert name in section, f"the README's compose section does not mention {name}"
    assert "inference" in section and "INFERENCE_URL" in section


def test_readme_explains_the_inference_service() -> None:
    text = README.read_text(encoding="utf-8")
    assert (
        text.index("\n## Several processes\n") < text.index("\n## Inference as a service\n") < text.index("\n## Configuration\n")
    )
    section = readme_inference_section()
    for needed in (
        "make serve",
        "python -m bot serve",
        "INFERENCE_URL=http://",
        "POST /models/{checkpoint}",
        "POST /load/{checkpoint}",
        "GET /health",
        "Retry-After",
        "ray start --head",
        "serve deploy deploy/serve.yaml",
        "docker-compose.yml",
        "RAY_USAGE_STATS_ENABLED=0",
    ):
        assert needed in section, f"the README's inference section does not mention {needed}"
