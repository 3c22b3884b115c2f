"""``MaskedLM.memory_bytes``: what ``model list`` and the status card report per loaded model."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.ao.nn.quantized import Linear as QuantizedLinear
from transformers import PreTrainedModel

from bot.inference.loading import load_masked_lm


def _distinct_bytes(tensors: list[torch.Tensor]) -> int:
    by_address = {t.data_ptr(): t.numel() * t.element_size() for t in tensors}
    return sum(by_address.values())


def test_tied_weights_are_counted_once(bert_checkpoint: Path) -> None:
    lm = load_masked_lm(str(bert_checkpoint))
    model = lm.model
    assert isinstance(model, PreTrainedModel)
    assert lm.memory_bytes == model.get_memory_footprint(return_buffers=True)
    assert lm.memory_bytes == _distinct_bytes([*model.parameters(), *model.buffers()])
    every_name = sum(p.numel() * p.element_size() for _, p in model.named_parameters(remove_duplicate=False))
    assert lm.memory_bytes < every_name + sum(b.numel() * b.element_size() for b in model.buffers())


def test_int8_weights_in_packed_params_are_counted(bert_checkpoint: Path) -> None:
    fp32 = load_masked_lm(str(bert_checkpoint)).memory_bytes
    lm = load_masked_lm(str(bert_checkpoint), precision="int8")
    model = lm.model
    assert isinstance(model, PreTrainedModel)
    quantized = [m for m in model.modules() if isinstance(m, QuantizedLinear)]
    assert quantized  # every Linear, the tied decoder included, now holds its weight in packed params
    # The exact figure, by unpacking every weight (too slow for the bot itself on x86).
    packed = [t for m in quantized for t in (m.weight(), m.bias()) if t is not None]
    exact = _distinct_bytes([*model.parameters(), *model.buffers(), *packed])
    # get_memory_footprint sees parameters and buffers only, so it misses the int8 weights.
    assert model.get_memory_footprint(return_buffers=True) < exact
    # memory_bytes counts the tied head bias a second time: at most 4 bytes per vocabulary entry over.
    assert exact <= lm.memory_bytes <= exact + 4 * model.config.vocab_size
    assert lm.memory_bytes < fp32
