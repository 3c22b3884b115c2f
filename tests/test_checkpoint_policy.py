"""Hub model ids: the bot refuses what the Hub would refuse, with the same friendly words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.inference.checkpoint_policy import CheckpointPolicy, check_allowed, is_hub_id
from bot.inference.errors import CheckpointNotAllowedError


@pytest.mark.parametrize("reference", ["camembert-base", "almanach/camembert-base", "google-bert/bert-base-uncased"])
def test_valid_hub_ids_are_accepted_as_typed(reference: str) -> None:
    assert is_hub_id(reference)
    assert check_allowed(reference, CheckpointPolicy()) == reference
    assert check_allowed(f"  {reference}\n", CheckpointPolicy()) == reference


# "foo--bar" to "owner/name." used to pass the bot's own pattern and then fail at the Hub.
@pytest.mark.parametrize("reference", ["foo--bar", "aé", "a/b.git", "owner/name.", "owner/..", "a..b"])
def test_ids_the_hub_rejects_are_refused_in_plain_words(reference: str) -> None:
    assert not is_hub_id(reference)
    with pytest.raises(CheckpointNotAllowedError, match="not a valid Hugging Face model id") as caught:
        check_allowed(reference, CheckpointPolicy())
    assert str(caught.value).count("`") % 2 == 0


def test_the_policy_module_stays_free_of_torch_and_transformers() -> None:
    probe = "import sys, bot.inference.checkpoint_policy; print('torch' in sys.modules, 'transformers' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60, cwd=Path(__file__).parent.parent
    )
    assert result.stdout.split() == ["False", "False"]
