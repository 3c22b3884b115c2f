"""Shared fixtures. Tests never touch the Hugging Face Hub: checkpoints come from tests/checkpoints.py."""

from __future__ import annotations

import os

# Must run before anything imports huggingface_hub/transformers: both read these at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.discord_helpers import BotOnFakeDiscord
    from tests.fakehub import FakeHub
    from tests.postgres_server import PostgresServer

from tests.checkpoints import (
    build_bert_checkpoint,
    build_camembert_checkpoint,
    build_no_mask_checkpoint,
    build_not_masked_lm_checkpoint,
)

# Session scope: each checkpoint is built at most once per test session (a few seconds each)
# and must be treated as read-only by tests.


@pytest.fixture(scope="session")
def bert_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny trained BERT fill-mask checkpoint ("[MASK]"); see checkpoints.BERT_EXPECTED."""
    return build_bert_checkpoint(tmp_path_factory.mktemp("bert-checkpoint"))


@pytest.fixture(scope="session")
def camembert_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny trained CamemBERT fill-mask checkpoint ("<mask>"); see checkpoints.CAMEMBERT_EXPECTED."""
    return build_camembert_checkpoint(tmp_path_factory.mktemp("camembert-checkpoint"))


@pytest.fixture(scope="session")
def no_mask_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BERT masked LM whose tokenizer has no mask token."""
    return build_no_mask_checkpoint(tmp_path_factory.mktemp("no-mask-checkpoint"))


@pytest.fixture(scope="session")
def not_mlm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GPT-2 (causal LM) weights with a tokenizer that does have "[MASK]"."""
    return build_not_masked_lm_checkpoint(tmp_path_factory.mktemp("not-mlm-checkpoint"))


@pytest.fixture
async def harness(tmp_path: Path, bert_checkpoint: Path) -> AsyncIterator[BotOnFakeDiscord]:
    """A real FillMaskBot connected to a fake Discord, its default (test BERT) model loaded."""
    from tests.discord_helpers import bot_on_fake_discord, make_settings

    async with bot_on_fake_discord(make_settings(tmp_path, bert_checkpoint)) as running:
        yield running


@pytest.fixture
def fake_hub(tmp_path: Path) -> Iterator[FakeHub]:
    """A started Hugging Face Hub stand-in (tests/fakehub), the real clients online against it.

    For this test only: HF_ENDPOINT is the stand-in, a fresh HF_HOME/HF_HUB_CACHE under tmp_path,
    DISABLE_SAFETENSORS_CONVERSION=1, short download timeouts; offline mode and all else come back after.
    """
    from tests.fakehub import FakeHub, point_clients_at

    with FakeHub() as hub, point_clients_at(hub.url, tmp_path / "hf-home"):
        yield hub


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for this session (tests/postgres_server.py); skipped if not installed."""
    from tests.postgres_server import find_bin_dir, running_server

    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
        if os.environ.get("REQUIRE_POSTGRES") == "1":  # CI: these tests must run, not be skipped
            pytest.fail(f"{reason}, and REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    with running_server(bin_dir) as server:
        yield server


@pytest.fixture
def own_postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for one test, which may stop and start it."""
    from tests.postgres_server import find_bin_dir, running_server

    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL server binaries not found, and REQUIRE_POSTGRES=1")
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
    with running_server(bin_dir) as server:
        yield server
