"""A loaded fill-mask checkpoint and its forward pass.

``MaskedLM.predict_batch`` answers several requests with one encoder pass. It gives the same
tokens, order and scores as ``transformers.pipeline("fill-mask")`` (softmax over the whole
vocabulary, optional ``targets``, the same ``token_str`` and ``sequence`` decoding), except
that special tokens (the mask itself, padding, ...) are never proposed (transformers #12390),
and that a target is the token starting that word, where the pipeline may take a mid-word
piece of a byte-level BPE or SentencePiece vocabulary (see ``_target_ids``).

One request's failure stays its own: an unexpected exception while one request is encoded,
resolved or decoded fails that request only, and a batched forward pass that raises is
retried one request at a time, so only the request that breaks it fails.

Not thread-safe on purpose: a tokenizer must not be used from two threads at once
(tokenizers #537), so callers run one ``predict_batch`` at a time per model
(see :mod:`bot.inference.batching`).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from bot.i18n import lazy, lazy_plural
from bot.inference.checkpoint_policy import printable, shown
from bot.inference.errors import (
    CheckpointLoadError,
    FillMaskError,
    InputTooLongError,
    InvalidRequestError,
    NoMaskError,
    RequestFailedError,
    SpecialTargetsError,
    TooManyMasksError,
    TopKOutOfRangeError,
)
from bot.inference.masks import clean_input
from bot.inference.types import MAX_MASKS, MAX_TARGETS, MAX_TOP_K, FillRequest, FillResult, Prediction

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

# Heads that map hidden states of any leading shape to vocabulary logits, by attribute name.
# Running them only at mask positions skips most of the head's cost (a hidden x vocab matmul
# per token); ``_check_lean_head`` verifies the shortcut on each checkpoint before using it.
_HEAD_ATTRIBUTES = ("lm_head", "cls", "predictions")

# Markers a vocabulary may put on the piece that starts a word (byte-level BPE, SentencePiece)
# or ends one (the "</w>" of XLM/FlauBERT's BPE). A vocabulary uses one when at least this
# share of its entries carries it; WordPiece marks continuations ("##") instead, so there a
# bare word already is its word-start form.
_WORD_START_MARKERS = ("\u0120", "\u2581")  # Ġ, ▁
_WORD_END_MARKERS = ("</w>",)
_MARKER_SHARE = 0.1


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
            # Messages (the loader shows them in its CheckpointLoadError); str() is the English text.
            raise ValueError(lazy("{checkpoint}: tokenizer has no mask token", checkpoint=printable(name)))
        if pad_token_id is not None and not isinstance(pad_token_id, int):
            raise ValueError(
                lazy(
                    "{checkpoint}: tokenizer's pad token id is {pad_token_id}, not a token id",
                    checkpoint=printable(name),
                    pad_token_id=printable(repr(pad_token_id)),
                )
            )
        self.mask_token: str = mask_token
        self.mask_token_id: int = mask_token_id
        self.pad_token_id: int | None = pad_token_id
        _check_embedding_rows(name, tok, model)
        self.max_length = _max_input_length(tok, model)
        self._special_ids = torch.tensor(sorted(set(tok.all_special_ids)), dtype=torch.long)
        self._special_id_set: frozenset[int] = frozenset(int(i) for i in tok.all_special_ids)
        self._vocab: dict[str, int] | None = None
        self._added: frozenset[str] | None = None  # added tokens: stored without word markers
        self._markers: tuple[str, str] | None = None  # (word-start prefix, word-end suffix)
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
        """Convert the weights in place: ``fp32``, ``bf16`` (CPU or CUDA), ``int8`` (dynamic, CPU),
        ``fp16`` (CUDA) or ``auto`` (bf16 if native here and it agrees with fp32 on probe
        sentences, else fp32: :mod:`bot.inference.precision`; ``self.precision`` says which).

        Called after construction, so the lean-head check above ran in fp32; modules keep
        their identity, so the (encoder, head) pair found there stays valid.
        """
        if precision == "fp32":
            return
        if precision == "auto":
            # Imported here: precision.py needs MaskedLM's API, not the other way round.
            from bot.inference.precision import choose_auto

            choose_auto(self)
            return
        if precision == "bf16":
            self.model.to(torch.bfloat16)
        elif precision == "fp16":
            if self.device.type != "cuda":
                raise ValueError(lazy("fp16 needs a CUDA device; use bf16 or int8 on the CPU"))
            self.model.half()
        elif precision == "int8":
            if self.device.type != "cpu":
                raise ValueError(lazy("int8 (dynamic quantization) runs on the CPU only"))
            import warnings

            with warnings.catch_warnings():
                # torch.ao.quantization is deprecated in favour of torchao, but still ships and works.
                warnings.simplefilter("ignore")
                torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        else:
            raise ValueError(lazy("unknown precision {precision}", precision=repr(precision)))
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
                target_ids[index] = self._target_ids(item.request.targets)
            except FillMaskError as exc:
                outcomes[index] = exc
                continue
            except Exception:  # a bug or a checkpoint quirk: this request fails, the others go on
                outcomes[index] = self._failed(request, "encoding")
                continue
            encoded.append(item)

        for item, probs, pass_size in self._probabilities_per_request(encoded):
            if isinstance(probs, FillMaskError):
                outcomes[item.index] = probs
                continue
            try:
                outcomes[item.index] = self._decode(item, probs, target_ids[item.index], pass_size)
            except Exception:
                outcomes[item.index] = self._failed(item.request, "decoding")

        elapsed = time.perf_counter() - started
        return [
            dataclasses.replace(outcome, elapsed=elapsed) if isinstance(outcome, FillResult) else outcome
            for outcome in outcomes
            if outcome is not None  # every slot is filled above; this narrows the type
        ]

    # -- steps -----------------------------------------------------------------------------

    def _failed(self, request: FillRequest, stage: str) -> RequestFailedError:
        """Log the exception being handled (once, with its traceback) and the error its request gets."""
        log.exception(
            "%s: one request failed while %s (%d characters, top_k %d)", self.name, stage, len(request.text), request.top_k
        )
        error = RequestFailedError()
        error.__cause__ = sys.exc_info()[1]  # for whoever inspects it; the user sees only the message
        return error

    def _probabilities_per_request(self, encoded: Sequence[_Encoded]) -> list[tuple[_Encoded, torch.Tensor | FillMaskError, int]]:
        """Each request's mask probabilities (or its error), and the size of the pass that gave them.

        One batched pass; if it raises, one pass per request, so that a request that breaks
        the model fails alone.
        """
        if not encoded:
            return []
        try:
            probs = self._mask_probabilities(encoded)
        except Exception:
            if len(encoded) == 1:
                return [(encoded[0], self._failed(encoded[0].request, "running the model"), 1)]
            log.warning("%s: a batched pass of %d failed; answering them one at a time", self.name, len(encoded), exc_info=True)
            alone: list[tuple[_Encoded, torch.Tensor | FillMaskError, int]] = []
            for item in encoded:
                try:
                    alone.append((item, self._mask_probabilities([item]), 1))
                except Exception:
                    alone.append((item, self._failed(item.request, "running the model"), 1))
            return alone
        split: list[tuple[_Encoded, torch.Tensor | FillMaskError, int]] = []
        row = 0
        for item in encoded:
            count = len(item.mask_positions)
            split.append((item, probs[row : row + count], len(encoded)))
            row += count
        return split

    def _encode(self, index: int, request: FillRequest) -> _Encoded:
        # The service cleans its input already; a direct caller may not have (tokenizers refuse lone surrogates).
        text = clean_input(request.text)
        targets = None if request.targets is None else tuple(clean_input(t) for t in request.targets)
        if text != request.text or targets != request.targets:
            request = dataclasses.replace(request, text=text, targets=targets)
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
        """Vocabulary ids for ``targets``: each word as the token that starts it in a sentence.

        Users type bare words and cannot type a leading space, so where the vocabulary marks
        word starts (``Ġmat`` in byte-level BPE, ``▁bon`` in SentencePiece) or whole words' ends
        (``mat</w>``) the marked entry is taken, not a mid-word piece ``mat``; failing that, the
        first sub-token of the word as it is encoded after a space (the pipeline too takes the
        first sub-token). Without such markers (WordPiece) this is the pipeline's own rule: the
        word verbatim, else its first sub-token. Special tokens are dropped (they are never shown).
        """
        if targets is None:
            return None
        if not targets:
            raise InvalidRequestError(lazy("Give at least one word after `|` to score, e.g. `... | bon, mauvais`."))
        if len(targets) > MAX_TARGETS:
            raise InvalidRequestError(
                lazy_plural(
                    "I can score at most {n} target word at once.", "I can score at most {n} target words at once.", MAX_TARGETS
                )
            )
        special_tokens = frozenset(str(token) for token in self.tokenizer.all_special_tokens)
        ids: list[int] = []
        special_typed: list[str] = []
        for target in targets:
            if target in special_tokens:
                special_typed.append(target)
                continue
            token_id = self._word_start_id(target)
            if token_id is not None and token_id not in ids and token_id not in self._special_id_set:
                ids.append(token_id)
        if not ids:
            if special_typed and len(special_typed) == len(targets):
                raise SpecialTargetsError(special_typed)
            raise InvalidRequestError(lazy("None of those target words exist in this model's vocabulary."))
        return torch.tensor(ids, dtype=torch.long)

    def _word_start_id(self, target: str) -> int | None:
        """The id of the token that starts ``target`` as a word, or None if it encodes to nothing."""
        if self._vocab is None:
            self._vocab = self.tokenizer.get_vocab()
        if self._added is None:
            self._added = _added_tokens(self.tokenizer)
        if self._markers is None:
            self._markers = _vocabulary_markers(self._vocab, self._added)
        prefix, suffix = self._markers
        vocab = self._vocab
        if prefix or suffix:
            marked = vocab.get(prefix + target + suffix)
            if marked is not None:
                return marked
            # Typed with its marker already (``▁bon``), or an added token (stored unmarked).
            verbatim = vocab.get(target)
            if verbatim is not None and (
                (prefix and target.startswith(prefix)) or (suffix and target.endswith(suffix)) or target in self._added
            ):
                return verbatim
        else:
            verbatim = vocab.get(target)
            if verbatim is not None:
                return verbatim
        # After a space: byte-level BPE then encodes the word-start form (``Ġ``); SentencePiece
        # turns the space into its ``▁`` (even where it would not prepend one); others ignore it.
        pieces: list[int] = self.tokenizer(
            " " + target if prefix else target,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            max_length=1,
            truncation=True,
        )["input_ids"]
        return int(pieces[0]) if pieces else None

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
    """How many tokens (special ones included) the model accepts.

    The tokenizer's ``model_max_length`` when it is a real limit (many say 1e30), the rows of
    the model's own position embedding (read from the module, so that every RoBERTa-style
    family is covered, listed or not), and ``config.max_position_embeddings``: the smallest.
    """
    limits: list[int] = []
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < 1_000_000:
        limits.append(declared)
    from_module = _position_embedding_limit(model)
    if from_module is not None:
        limits.append(from_module)
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    # Also an upper bound where positions are offset without a padding_idx (Nyströmformer, MRA, YOSO: +2).
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    return min(limits) if limits else 512


def _position_embedding_limit(model: torch.nn.Module) -> int | None:
    """How many positions the model's absolute position embedding can number, if it has one.

    RoBERTa-style models (RoBERTa, CamemBERT, XLM-R, MPNet, RoBERTa-PreLayerNorm, Longformer...)
    number positions from ``padding_idx + 1`` and give the embedding that ``padding_idx``; the
    others number them from 0. Rotary and relative models have no such module: None.
    """
    base = getattr(model, "base_model", model)
    if not isinstance(base, torch.nn.Module):
        return None
    embeddings = getattr(base, "embeddings", None)
    found = getattr(embeddings, "position_embeddings", None)
    if not isinstance(found, torch.nn.Module):  # elsewhere than base.embeddings: the first one
        found = next((m for n, m in base.named_modules() if n.rsplit(".", 1)[-1] == "position_embeddings"), None)
    if found is None:
        return None
    rows = _embedding_rows(found)
    if rows is None:
        return None
    padding_idx = getattr(found, "padding_idx", None)
    first = padding_idx + 1 if isinstance(padding_idx, int) and padding_idx >= 0 else 0
    return rows - first if rows > first else None


def _embedding_rows(module: torch.nn.Module) -> int | None:
    """Rows of an embedding module: nn.Embedding or a look-alike (I-BERT's QuantEmbedding)."""
    if isinstance(module, torch.nn.Embedding):
        return module.num_embeddings
    weight = getattr(module, "weight", None)
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.dim() == 2 else None


def _check_embedding_rows(name: str, tokenizer: PreTrainedTokenizerBase, model: torch.nn.Module) -> None:
    """Refuse a tokenizer that makes ids the model has no embedding for (tokens added, model not resized):
    any sentence using one would crash the forward pass."""
    get_input_embeddings = getattr(model, "get_input_embeddings", None)
    if not callable(get_input_embeddings):
        return
    try:
        embedding = get_input_embeddings()
    except (NotImplementedError, AttributeError):
        return
    rows = _embedding_rows(embedding) if isinstance(embedding, torch.nn.Module) else None
    tokens = len(tokenizer)
    if rows is not None and tokens > rows:
        raise CheckpointLoadError(
            lazy(
                "{checkpoint} can't be used: its tokenizer has {tokens} tokens but the model only {rows} embeddings "
                "(tokens were added to the tokenizer without resizing the model).",
                checkpoint=shown(name),
                tokens=tokens,
                rows=rows,
            )
        )


def _added_tokens(tokenizer: PreTrainedTokenizerBase) -> frozenset[str]:
    get_added_vocab = getattr(tokenizer, "get_added_vocab", None)
    added = get_added_vocab() if callable(get_added_vocab) else None
    return frozenset(str(token) for token in added) if isinstance(added, dict) else frozenset()


def _vocabulary_markers(vocab: dict[str, int], added: frozenset[str]) -> tuple[str, str]:
    """(word-start prefix, word-end suffix) the vocabulary marks words with; ("", "") for none."""
    entries = [token for token in vocab if token not in added]
    if not entries:
        return "", ""
    threshold = _MARKER_SHARE * len(entries)
    starts = {marker: sum(token.startswith(marker) for token in entries) for marker in _WORD_START_MARKERS}
    best = max(starts, key=lambda marker: starts[marker])
    if starts[best] >= threshold:
        return best, ""
    for marker in _WORD_END_MARKERS:
        if sum(token.endswith(marker) for token in entries) >= threshold:
            return "", marker
    return "", ""
