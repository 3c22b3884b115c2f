"""A loaded fill-mask checkpoint and its forward pass.

``MaskedLM.predict_batch`` answers several requests with one encoder pass. It gives the same
tokens, order and scores as ``transformers.pipeline("fill-mask")`` (softmax over the whole
vocabulary, optional ``targets``, the same ``token_str`` and ``sequence`` decoding), except
that special tokens (the mask itself, padding, ...) are never proposed (transformers #12390).

Not thread-safe on purpose: a tokenizer must not be used from two threads at once
(tokenizers #537), so callers run one ``predict_batch`` at a time per model
(see :mod:`bot.inference.batching`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from bot.inference.errors import (
    FillMaskError,
    InputTooLongError,
    InvalidRequestError,
    NoMaskError,
    TooManyMasksError,
    TopKOutOfRangeError,
)
from bot.inference.types import MAX_MASKS, MAX_TARGETS, MAX_TOP_K, FillRequest, FillResult, Prediction

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

# Heads that map hidden states of any leading shape to vocabulary logits, by attribute name.
# Running them only at mask positions skips most of the head's cost (a hidden x vocab matmul
# per token); ``_check_lean_head`` verifies the shortcut on each checkpoint before using it.
_HEAD_ATTRIBUTES = ("lm_head", "cls", "predictions")


@dataclass(frozen=True, slots=True)
class _Encoded:
    index: int  # position in the caller's batch
    request: FillRequest
    input_ids: list[int]
    mask_positions: list[int]


class MaskedLM:
    """A tokenizer and a masked-LM model, ready to fill masks."""

    def __init__(
        self,
        name: str,
        tokenizer: PreTrainedTokenizerBase,
        model: torch.nn.Module,
        *,
        device: torch.device | str = "cpu",
        max_masks: int = MAX_MASKS,
    ) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.device = torch.device(device)
        self.max_masks = max_masks
        tok = self.tokenizer
        # transformers types special tokens loosely (str | int | list | Any): narrow them once, here.
        mask_token, mask_token_id, pad_token_id = tok.mask_token, tok.mask_token_id, tok.pad_token_id
        if not isinstance(mask_token, str) or not isinstance(mask_token_id, int):
            raise ValueError(f"{name}: tokenizer has no mask token")
        if pad_token_id is not None and not isinstance(pad_token_id, int):
            raise ValueError(f"{name}: tokenizer's pad token id is {pad_token_id!r}, not a token id")
        self.mask_token: str = mask_token
        self.mask_token_id: int = mask_token_id
        self.pad_token_id: int | None = pad_token_id
        self.max_length = _max_input_length(tok, model)
        self._special_ids = torch.tensor(sorted(set(tok.all_special_ids)), dtype=torch.long)
        self._vocab: dict[str, int] | None = None
        self._head = self._find_lean_head()
        self.precision = "fp32"

    # -- public API ------------------------------------------------------------------------

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the weights and buffers (tied weights counted once), int8 packed weights included."""
        from transformers import PreTrainedModel

        # int8 weights live in packed params, neither parameters nor buffers: get_memory_footprint misses them.
        packed = _packed_linear_bytes(self.model)
        if isinstance(self.model, PreTrainedModel):
            return self.model.get_memory_footprint(return_buffers=True) + packed
        seen: set[int] = set()
        total = packed
        for tensor in [*self.model.parameters(), *self.model.buffers()]:
            if tensor.data_ptr() not in seen:
                seen.add(tensor.data_ptr())
                total += tensor.numel() * tensor.element_size()
        return total

    def set_precision(self, precision: str) -> None:
        """Convert the weights in place: ``fp32``, ``bf16`` (CPU or CUDA), ``int8`` (dynamic, CPU) or ``fp16`` (CUDA).

        Called after construction, so the lean-head check above ran in fp32; modules keep
        their identity, so the (encoder, head) pair found there stays valid.
        """
        if precision == "fp32":
            return
        if precision == "bf16":
            self.model.to(torch.bfloat16)
        elif precision == "fp16":
            if self.device.type != "cuda":
                raise ValueError("fp16 needs a CUDA device; use bf16 or int8 on the CPU")
            self.model.half()
        elif precision == "int8":
            if self.device.type != "cpu":
                raise ValueError("int8 (dynamic quantization) runs on the CPU only")
            import warnings

            with warnings.catch_warnings():
                # torch.ao.quantization is deprecated in favour of torchao, but still ships and works.
                warnings.simplefilter("ignore")
                torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        else:
            raise ValueError(f"unknown precision {precision!r}")
        self.precision = precision

    def predict(self, request: FillRequest) -> FillResult:
        """Answer one request; raises the request's :class:`FillMaskError` if it is invalid."""
        (outcome,) = self.predict_batch([request])
        if isinstance(outcome, FillMaskError):
            raise outcome
        return outcome

    def predict_batch(self, requests: Sequence[FillRequest]) -> list[FillResult | FillMaskError]:
        """Answer every request; an invalid one gets its error without failing the others."""
        started = time.perf_counter()
        outcomes: list[FillResult | FillMaskError | None] = [None] * len(requests)
        encoded: list[_Encoded] = []
        target_ids: dict[int, torch.Tensor | None] = {}
        for index, request in enumerate(requests):
            try:
                item = self._encode(index, request)
                target_ids[index] = self._target_ids(request.targets)
            except FillMaskError as exc:
                outcomes[index] = exc
                continue
            encoded.append(item)

        if encoded:
            probs = self._mask_probabilities(encoded)
            row = 0
            for item in encoded:
                count = len(item.mask_positions)
                outcomes[item.index] = self._decode(item, probs[row : row + count], target_ids[item.index], len(encoded))
                row += count

        elapsed = time.perf_counter() - started
        return [
            dataclasses.replace(outcome, elapsed=elapsed) if isinstance(outcome, FillResult) else outcome
            for outcome in outcomes
            if outcome is not None  # every slot is filled above; this narrows the type
        ]

    # -- steps -----------------------------------------------------------------------------

    def _encode(self, index: int, request: FillRequest) -> _Encoded:
        if not request.text.strip():
            raise NoMaskError(self.mask_token)
        if not 1 <= request.top_k <= MAX_TOP_K:
            raise TopKOutOfRangeError()
        ids: list[int] = self.tokenizer(request.text)["input_ids"]
        positions = [i for i, token in enumerate(ids) if token == self.mask_token_id]
        if not positions:
            raise NoMaskError(self.mask_token)
        if len(positions) > self.max_masks:
            raise TooManyMasksError(len(positions), self.max_masks)
        if len(ids) > self.max_length:
            raise InputTooLongError(len(ids), self.max_length)
        return _Encoded(index, request, ids, positions)

    def _target_ids(self, targets: tuple[str, ...] | None) -> torch.Tensor | None:
        """Vocabulary ids for ``targets``, resolved the way the fill-mask pipeline resolves them.

        A word found verbatim in the vocabulary is used as is; otherwise its first sub-token is.
        Special tokens are dropped (they are never shown).
        """
        if targets is None:
            return None
        if not targets:
            raise InvalidRequestError("Give at least one word after `|` to score, e.g. `... | bon, mauvais`.")
        if len(targets) > MAX_TARGETS:
            raise InvalidRequestError(f"I can score at most {MAX_TARGETS} target words at once.")
        if self._vocab is None:
            self._vocab = self.tokenizer.get_vocab()
        ids: list[int] = []
        for target in targets:
            token_id = self._vocab.get(target)
            if token_id is None:
                pieces = self.tokenizer(
                    target,
                    add_special_tokens=False,
                    return_attention_mask=False,
                    return_token_type_ids=False,
                    max_length=1,
                    truncation=True,
                )["input_ids"]
                if not pieces:
                    continue
                token_id = pieces[0]
            if token_id not in ids and token_id not in self._special_ids:
                ids.append(token_id)
        if not ids:
            raise InvalidRequestError("None of those target words exist in this model's vocabulary.")
        return torch.tensor(ids, dtype=torch.long)

    def _mask_probabilities(self, encoded: Sequence[_Encoded]) -> torch.Tensor:
        """Vocabulary probabilities at every mask of the batch, one row per mask, in order."""
        longest = max(len(item.input_ids) for item in encoded)
        pad_id = self.pad_token_id if self.pad_token_id is not None else 0
        input_ids = torch.full((len(encoded), longest), pad_id, dtype=torch.long)
        attention = torch.zeros((len(encoded), longest), dtype=torch.long)
        rows: list[int] = []
        cols: list[int] = []
        # Pad on the right whatever the tokenizer's padding_side: left padding would shift
        # BERT's absolute positions and change the scores.
        for b, item in enumerate(encoded):
            input_ids[b, : len(item.input_ids)] = torch.tensor(item.input_ids)
            attention[b, : len(item.input_ids)] = 1
            rows.extend([b] * len(item.mask_positions))
            cols.extend(item.mask_positions)
        input_ids = input_ids.to(self.device)
        attention = attention.to(self.device)
        with torch.inference_mode():
            logits = self._logits_at(input_ids, attention, torch.tensor(rows), torch.tensor(cols))
            return logits.float().softmax(dim=-1).cpu()

    def _logits_at(
        self, input_ids: torch.Tensor, attention: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
    ) -> torch.Tensor:
        if self._head is not None:
            base, head = self._head
            hidden = base(input_ids=input_ids, attention_mask=attention)[0]
            return head(hidden[rows.to(hidden.device), cols.to(hidden.device)])
        logits = self.model(input_ids=input_ids, attention_mask=attention).logits
        return logits[rows.to(logits.device), cols.to(logits.device)]

    def _decode(self, item: _Encoded, probs: torch.Tensor, target_ids: torch.Tensor | None, batch_size: int) -> FillResult:
        candidates = probs if target_ids is None else probs[:, target_ids]
        candidate_ids = target_ids
        if target_ids is None:
            # Special tokens keep their share of the softmax (scores stay the pipeline's) but
            # can never be chosen.
            special = self._special_ids[self._special_ids < candidates.shape[-1]]
            candidates = candidates.clone()
            candidates[:, special] = -1.0
            available = candidates.shape[-1] - len(special)
        else:
            available = len(target_ids)
        top_k = min(item.request.top_k, available)
        values, indices = candidates.topk(top_k, dim=-1)

        single_mask = len(item.mask_positions) == 1
        per_mask: list[tuple[Prediction, ...]] = []
        best_ids = list(item.input_ids)
        for m, position in enumerate(item.mask_positions):
            ranked: list[Prediction] = []
            for score, index in zip(values[m].tolist(), indices[m].tolist(), strict=True):
                token = int(candidate_ids[index]) if candidate_ids is not None else int(index)
                filled = list(item.input_ids)
                filled[position] = token
                ranked.append(
                    Prediction(
                        score=float(score),
                        token=token,
                        token_str=str(self.tokenizer.decode([token])),
                        sequence=self._decode_sequence(filled, skip_special=single_mask),
                    )
                )
            per_mask.append(tuple(ranked))
            best_ids[position] = ranked[0].token
        return FillResult(
            checkpoint=self.name,
            text=item.request.text,
            masks=tuple(per_mask),
            best_sequence=self._decode_sequence(best_ids, skip_special=True),
            batch_size=batch_size,
        )

    def _decode_sequence(self, ids: list[int], *, skip_special: bool) -> str:
        # As the pipeline does: drop padding, and keep the other masks visible when several.
        if self.pad_token_id is not None:
            ids = [i for i in ids if i != self.pad_token_id]
        return str(self.tokenizer.decode(ids, skip_special_tokens=skip_special))

    # -- set-up ----------------------------------------------------------------------------

    def _find_lean_head(self) -> tuple[Callable[..., torch.Tensor], torch.nn.Module] | None:
        """The (encoder, head) pair if running the head at mask positions only is exact here."""
        base = getattr(self.model, "base_model", None)
        if base is None or base is self.model:
            return None
        for attribute in _HEAD_ATTRIBUTES:
            head = getattr(self.model, attribute, None)
            if isinstance(head, torch.nn.Module) and _check_lean_head(self, base, head):
                return base, head
        log.info("%s: no separable LM head found; using the full forward pass", self.name)
        return None


def _check_lean_head(lm: MaskedLM, base: torch.nn.Module, head: torch.nn.Module) -> bool:
    """Compare encoder+head-at-masks with the model's own forward on a small input."""
    mask = lm.mask_token_id
    sample: list[int] = list(lm.tokenizer("a b c")["input_ids"])
    ids = torch.tensor([[*sample[:1], mask, *sample[1:], mask]], device=lm.device)
    attention = torch.ones_like(ids)
    positions = torch.tensor([1, ids.shape[1] - 1])
    try:
        with torch.inference_mode():
            full = lm.model(input_ids=ids, attention_mask=attention).logits[0, positions]
            hidden = base(input_ids=ids, attention_mask=attention)[0]
            lean = head(hidden[0, positions.to(hidden.device)])
    except Exception:  # an unexpected head signature: fall back to the full pass
        log.debug("lean head check raised", exc_info=True)
        return False
    return lean.shape == full.shape and torch.allclose(lean.float(), full.float(), atol=1e-4, rtol=1e-4)


def _packed_linear_bytes(model: torch.nn.Module) -> int:
    """Bytes of the quantized Linear modules' packed weights (and float32 biases), from their shapes.

    Not from ``weight()``/``bias()``: on the x86 and fbgemm engines those unpack a copy of the
    weight (milliseconds per layer, a noticeable pause for the owner's ``stats``). A tied
    head bias is counted again here (vocabulary x 4 bytes), a bias-less Linear's bias too.
    """
    # The dynamic (int8) Linear subclasses this one.
    from torch.ao.nn.quantized import Linear as QuantizedLinear

    total = 0
    for module in model.modules():
        if isinstance(module, QuantizedLinear):
            weight_dtype: torch.dtype = module._packed_params.dtype  # qint8, or float16 for fp16 dynamic
            total += module.in_features * module.out_features * weight_dtype.itemsize + module.out_features * 4
    return total


def _max_input_length(tokenizer: PreTrainedTokenizerBase, model: torch.nn.Module) -> int:
    """How many tokens (special ones included) the model accepts."""
    limits: list[int] = []
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < 1_000_000:
        limits.append(declared)
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        # RoBERTa-family models number positions from padding_idx + 1.
        if getattr(config, "model_type", "") in {"roberta", "camembert", "xlm-roberta", "xlm-roberta-xl", "data2vec-text"}:
            positions -= (getattr(config, "pad_token_id", 1) or 1) + 1
        limits.append(positions)
    return min(limits) if limits else 512
