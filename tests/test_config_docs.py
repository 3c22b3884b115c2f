"""Every key the bot reads is documented in .env.example and the README (operators rely on both)."""

from __future__ import annotations

import re
from pathlib import Path

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


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
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert keys - documented == set(), "missing from .env.example"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert {k for k in keys if f"`{k}`" not in readme} == set(), "missing from the README's configuration table"


def test_env_example_is_a_valid_configuration() -> None:
    values = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
    settings = Settings.from_env(values)
    assert settings.default_model == "camembert-base" and settings.discord_token is None
