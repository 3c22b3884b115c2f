"""``PRECISION=auto``: bf16 where the hardware computes it natively and the checkpoint agrees with fp32.

Chosen per checkpoint, at load time, on the loader thread (``MaskedLM.set_precision("auto")``,
called by ``load_masked_lm``):

1. no native bf16 (see :func:`native_bf16`) → fp32, nothing run: emulated bf16 is slower than fp32;
2. otherwise the checkpoint answers a fixed set of probe sentences (:func:`probe_texts`) in fp32,
   is converted to bf16 and answers them again; bf16 stays only if every probe mask keeps its
   top-1 and the top-5 sets overlap by at least :data:`MIN_TOP5_OVERLAP` overall, else the fp32
   weights are put back (:func:`restore_tensors`).

Either way the choice and its figures are logged at INFO.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from bot.inference.errors import FillMaskError
from bot.inference.types import FillRequest, FillResult

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from bot.inference.masked_lm import MaskedLM

log = logging.getLogger(__name__)

# The bars bf16 must clear on the probes (issue 10): the same best word at every mask, and
# nearly the same top 5 (>= 99 % of the top-5 slots hold a word fp32 also has in its top 5).
MIN_TOP5_OVERLAP = 0.99
PROBE_TOP_K = 5

# Everyday sentences in a few languages; "{m}" becomes the checkpoint's mask token. Two have two
# masks, so that multi-mask requests are probed too (dropped when the model takes only one).
_GENERIC_PROBES = (
    "Paris is the {m} of France.",
    "The cat sat on the {m}.",
    "I drink a cup of {m} every morning.",
    "She opened the {m} and walked outside.",
    "The {m} was late, so we {m} home.",
    "Paris est la {m} de la France.",
    "Le chat dort sur le {m}.",
    "Le {m} est {m} aujourd'hui.",
    "Berlin ist die {m} von Deutschland.",
    "Ich trinke jeden Morgen eine Tasse {m}.",
    "Madrid es la {m} de España.",
    "Me gusta leer {m} por la noche.",
)

# Sentences of the checkpoint's own frequent words: in-distribution probes for any vocabulary,
# whatever its language. Vocabularies list tokens roughly by frequency (BPE merges in order,
# unigram pieces by score, WordPiece as built), so the first whole-word entries are frequent.
_VOCAB_PROBES = 8
_VOCAB_WORDS = 120
_VOCAB_SCAN = 5000  # ids scanned for those words: bert-base's first words start near id 2000
_PROBE_SEED = 20260110  # fixed: the same checkpoint always gets the same probes


@dataclass(frozen=True, slots=True)
class Agreement:
    """How bf16's answers to the probes compare with fp32's."""

    masks: int  # probe masks compared
    same_top1: int  # masks whose best word is the same
    top5_overlap: float  # shared top-5 slots / all top-5 slots, over every mask
    failed: int = 0  # probes fp32 answered and bf16 did not

    @property
    def holds(self) -> bool:
        return self.masks > 0 and self.failed == 0 and self.same_top1 == self.masks and self.top5_overlap >= MIN_TOP5_OVERLAP

    def __str__(self) -> str:
        failed = f", {self.failed} probe(s) failed in bf16" if self.failed else ""
        return f"same top-1 on {self.same_top1}/{self.masks} probe masks, top-5 overlap {100 * self.top5_overlap:.1f} %{failed}"


@dataclass(frozen=True, slots=True)
class AutoChoice:
    """What ``PRECISION=auto`` chose for one checkpoint, and why."""

    precision: str  # "bf16" or "fp32"
    reason: str
    agreement: Agreement | None  # None when no check ran (no native bf16)
    seconds: float  # spent on the check (probes, conversion, restore)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matmuls in hardware (else bf16 is emulated and slower than fp32).

    CUDA: compute capability 8.0+ (Ampere on), or ROCm. CPU: AVX512-BF16 or AMX-BF16, as torch's
    cpuinfo reports them (``torch.cpu.get_capabilities()``), else /proc/cpuinfo's flags.
    ``torch.backends.cpu.get_cpu_capability()`` says only "AVX512", which many CPUs without
    bf16 instructions also report, and oneDNN's ``_is_mkldnn_bf16_supported`` accepts plain
    AVX512 too (it emulates).
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type != "cpu":
        return False
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cpu_flags() -> frozenset[str]:
    try:
        capabilities = torch.cpu.get_capabilities()
        return frozenset(name for name, value in capabilities.items() if value is True)
    except (AttributeError, RuntimeError):  # an older torch, or cpuinfo failed: ask the kernel
        pass
    try:
        rows = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return frozenset()
    return frozenset(next((row.split(":", 1)[1].split() for row in rows if row.startswith("flags")), []))


def probe_texts(tokenizer: PreTrainedTokenizerBase, mask_token: str, *, max_masks: int) -> list[str]:
    """The probe sentences for one checkpoint: the generic ones, then its frequent words'. Deterministic."""
    texts = [text.replace("{m}", mask_token) for text in _GENERIC_PROBES]
    words = _frequent_words(tokenizer)
    if len(words) >= 10:
        rng = random.Random(_PROBE_SEED)
        for n in range(_VOCAB_PROBES):
            chosen = rng.sample(words, rng.randint(7, 11))
            chosen[rng.randrange(len(chosen))] = mask_token
            if n % 4 == 3:  # a quarter of them with a second mask
                chosen.insert(rng.randrange(len(chosen) + 1), mask_token)
            texts.append(" ".join(chosen) + " .")
    return [text for text in texts if text.count(mask_token) <= max_masks]


def _frequent_words(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The first whole words of the vocabulary by id (letters only, two or more), each once."""
    special = frozenset(tokenizer.all_special_ids)
    words: list[str] = []
    seen: set[str] = set()
    for token_id in range(min(len(tokenizer), _VOCAB_SCAN)):
        if token_id in special:
            continue
        word = str(tokenizer.decode([token_id])).strip()
        # Continuation pieces decode with their marker ("##ing") and are skipped here.
        if len(word) >= 2 and word.isalpha() and word not in seen:
            seen.add(word)
            words.append(word)
            if len(words) >= _VOCAB_WORDS:
                break
    return words


def compare(reference: Sequence[FillResult | FillMaskError], candidate: Sequence[FillResult | FillMaskError]) -> Agreement:
    """Agreement of ``candidate``'s answers with ``reference``'s, over the probes ``reference`` answered."""
    masks = same_top1 = shared = slots = failed = 0
    for want, got in zip(reference, candidate, strict=True):
        if not isinstance(want, FillResult):  # fp32 refused it (too long for this model...): not a probe
            continue
        if not isinstance(got, FillResult) or len(got.masks) != len(want.masks):
            failed += 1
            continue
        for want_mask, got_mask in zip(want.masks, got.masks, strict=True):
            want_ids = [p.token for p in want_mask]
            got_ids = {p.token for p in got_mask}
            masks += 1
            same_top1 += bool(got_mask) and got_mask[0].token == want_ids[0]
            shared += len(got_ids.intersection(want_ids))
            slots += len(want_ids)
    return Agreement(masks, same_top1, shared / slots if slots else 0.0, failed)


# (module, attribute, tensor): a parameter's data or a buffer, as it was before a conversion.
SavedTensors = list[tuple[torch.nn.Module, str, torch.Tensor]]


def save_tensors(model: torch.nn.Module) -> SavedTensors:
    """References to every parameter's data and every buffer, no copy.

    ``model.to(torch.bfloat16)`` swaps new tensors in (the Parameter objects stay, tied ones
    included); holding the old ones keeps the fp32 weights alive for :func:`restore_tensors`.
    This is cheaper than reloading the checkpoint (seconds of reading and initialising, and
    the lean-head check again) and than a copy (none is made): it costs the bf16 weights' half
    size on top of the fp32 ones while the check runs, what a reload would also peak at.
    """
    saved: SavedTensors = []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            saved.append((module, name, param.data))
        for name, buffer in module.named_buffers(recurse=False):
            saved.append((module, name, buffer))
    return saved


def restore_tensors(saved: SavedTensors) -> None:
    """Put back what :func:`save_tensors` held: the same Parameter objects, their old data."""
    for module, name, tensor in saved:
        current = getattr(module, name)
        if isinstance(current, torch.nn.Parameter):
            current.data = tensor
        else:
            setattr(module, name, tensor)  # a registered buffer: nn.Module stores it as one again


def choose_auto(lm: MaskedLM) -> AutoChoice:
    """Leave ``lm`` (still in fp32) in bf16 or fp32 as ``PRECISION=auto`` decides; log the choice."""
    started = time.perf_counter()
    if not native_bf16(lm.device):
        where = "this GPU" if lm.device.type == "cuda" else f"this CPU ({torch.backends.cpu.get_cpu_capability()})"
        choice = AutoChoice("fp32", f"{where} has no native bf16", None, 0.0)
        log.info("%s: PRECISION=auto chose fp32: %s", lm.name, choice.reason)
        return choice
    requests = [FillRequest(text, PROBE_TOP_K) for text in probe_texts(lm.tokenizer, lm.mask_token, max_masks=lm.max_masks)]
    reference = lm.predict_batch(requests)
    saved = save_tensors(lm.model)
    try:
        lm.set_precision("bf16")
        agreement = compare(reference, lm.predict_batch(requests))
    except Exception as exc:  # a model that cannot run in bf16 at all: fp32, as for a disagreement
        log.info("%s: PRECISION=auto: bf16 raised %s: %s", lm.name, type(exc).__name__, exc, exc_info=True)
        agreement = None
    if agreement is not None and agreement.holds:
        choice = AutoChoice("bf16", "bf16 agrees with fp32", agreement, time.perf_counter() - started)
        log.info("%s: PRECISION=auto chose bf16: %s (check %.2f s)", lm.name, agreement, choice.seconds)
        return choice
    restore_tensors(saved)
    lm.precision = "fp32"
    if agreement is None:
        why = "bf16 could not run"
    elif agreement.masks == 0:
        why = "no probe sentence fits this model, so bf16 could not be checked"
    else:
        why = f"bf16 disagrees with fp32: {agreement}"
    choice = AutoChoice("fp32", why, agreement, time.perf_counter() - started)
    log.info(
        "%s: PRECISION=auto chose fp32: %s (needs the same top-1 everywhere and >= %.0f %% top-5 overlap; check %.2f s)",
        lm.name,
        why,
        100 * MIN_TOP5_OVERLAP,
        choice.seconds,
    )
    return choice
