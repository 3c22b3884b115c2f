"""docker-compose.yml: valid under the Compose Specification, lint-free, and shaped as the bot needs.

No Docker engine and no network: ``check-jsonschema`` (a dev extra) validates the file against the
Compose Specification's JSON schema it ships (``--builtin-schema vendor.compose-spec``), yamllint
lints it, and the structure is read with PyYAML (anchors and ``<<`` merges resolved, as Compose
does) after interpolating ``${VAR}`` the way Compose does. Each bot's effective environment (image
ENV, then ``.env`` made from ``.env.example``, then ``environment:``) goes through the bot's own
``Settings.from_env``.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from dotenv import dotenv_values
from yamllint import linter
from yamllint.config import YamlLintConfig

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"
BOT_MODULE = ROOT / "bot" / "adapters" / "discord" / "bot.py"

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


def raw() -> dict[str, Any]:
    """The file as YAML: anchors and merge keys resolved, nothing interpolated."""
    document = yaml.safe_load(raw_text())
    assert isinstance(document, dict)
    return document


def compose(env: Mapping[str, str] = SAMPLE_ENV) -> dict[str, Any]:
    return interpolate(raw(), env)


def services(env: Mapping[str, str] = SAMPLE_ENV) -> dict[str, dict[str, Any]]:
    return compose(env)["services"]


def bots(env: Mapping[str, str] = SAMPLE_ENV) -> dict[str, dict[str, Any]]:
    """The services built from the Dockerfile: the bot processes."""
    found = {name: service for name, service in services(env).items() if "build" in service}
    assert len(found) >= 2, f"expected several bot processes, found {sorted(found)}"
    return found


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
    assert set(services()) == {"postgres", "bot-0", "bot-1"}
    assert set(bots()) == {"bot-0", "bot-1"}
    for name, service in bots().items():
        assert service["build"] == ".", name  # the repository's Dockerfile
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
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"}}


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
    sources = {mounts(service).get(hf_home) for service in bots().values()}
    assert len(sources) == 1, f"every bot mounts the same volume at HF_HOME={hf_home}: {sources}"
    (cache,) = sources
    assert cache in compose()["volumes"]
    for service in bots().values():
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
