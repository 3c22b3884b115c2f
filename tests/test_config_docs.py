"""Every key the bot reads is documented in .env.example and the README (operators rely on both)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from dotenv import dotenv_values

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"


def env_example_values() -> dict[str, str]:
    """.env.example's set lines, parsed as the bot parses a .env (python-dotenv)."""
    values = dotenv_values(ENV_EXAMPLE)
    assert values, ".env.example is missing or sets nothing"
    return {key: value for key, value in values.items() if value is not None}


def env_example_commented_out_keys() -> set[str]:
    """Keys shown as ``# KEY=value`` (left unset on purpose), which dotenv skips like any comment."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    examples = [line.removeprefix("# ") for line in lines if re.match(r"# [A-Z][A-Z0-9_]*=", line)]
    return set(dotenv_values(stream=io.StringIO("\n".join(examples))))


def keys_read_by_settings() -> set[str]:
    """The environment keys Settings.from_env asks for, found by giving it a recording mapping."""
    asked: set[str] = set()

    class Recorder(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            asked.add(key)
            return default

    Settings.from_env(Recorder())
    return asked


def test_every_setting_is_documented() -> None:
    keys = keys_read_by_settings()
    assert {"DISCORD_TOKEN", "DEFAULT_MODEL", "DATABASE_PATH", "ALLOWED_MODELS", "ALLOW_LOCAL_MODELS", "DEVICE"} <= keys
    documented = set(env_example_values()) | env_example_commented_out_keys()
    assert keys - documented == set(), "missing from .env.example"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert {k for k in keys if f"`{k}`" not in readme} == set(), "missing from the README's configuration table"


def test_env_example_is_a_valid_configuration() -> None:
    settings = Settings.from_env(env_example_values())
    assert settings.default_model == "camembert-base" and settings.discord_token is None
