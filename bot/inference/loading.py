"""Finding, checking and loading a fill-mask checkpoint with the transformers Auto classes.

A checkpoint is named by a Hub id (``camembert-base``, ``almanach/camembert-base``) or by a
local directory (which names are allowed is :mod:`bot.inference.checkpoint_policy`'s job). A Hub
id is first fetched into the cache (:mod:`bot.inference.hub_download`); the load then reads one
folder only. Loading checks, in order and before the weights are read: that the folder's files
are regular files, that the config is a masked-LM architecture, that the checkpoint is not too
large, and that there is a tokenizer with a mask token; each failure becomes a
:class:`CheckpointError` the admin can read.
"""

from __future__ import annotations

import errno
import gc
import logging
import math
import os
import stat
from pathlib import Path

import torch

from bot.i18n import Message, Text, lazy
from bot.inference import hub_download
from bot.inference.checkpoint_policy import is_local_reference, printable, shown
from bot.inference.errors import (
    CheckpointLoadError,
    CheckpointNotAllowedError,
    CheckpointNotFoundError,
    NoMaskTokenError,
    NotMaskedLMError,
)
from bot.inference.masked_lm import MaskedLM
from bot.inference.progress import ProgressCallback, ProgressTracker
from bot.inference.types import MAX_MASKS, FillRequest

log = logging.getLogger(__name__)


def resolve_device(setting: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    setting = setting.strip().lower() or "auto"
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def _millions(count: int) -> Message:
    if count >= 1e9:
        return lazy("{count} billion", count=format(count / 1e9, ".1f"))
    return lazy("{count} million", count=format(count / 1e6, ".0f"))


def configure_threads(threads: int) -> int:
    """Set torch's intra-op threads: ``threads``, or 0 for the CPUs this process may use.

    torch defaults to the machine's physical cores, which oversubscribes a container pinned
    to fewer CPUs; inference is one forward pass at a time per model, so intra-op threads are
    what matters and one inter-op thread is enough.
    """
    if threads <= 0:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first parallel op; harmless if too late
        pass
    return threads


_WARM_MODULES = (
    "transformers.convert_slow_tokenizer",
    "sentencepiece",
    "google.protobuf",
    "transformers.models.bert.modeling_bert",
    "transformers.models.bert.tokenization_bert",
    "transformers.models.camembert.modeling_camembert",
    "transformers.models.camembert.tokenization_camembert",
    "transformers.models.roberta.modeling_roberta",
    "transformers.models.roberta.tokenization_roberta",
    "transformers.models.xlm_roberta.modeling_xlm_roberta",
    "transformers.models.xlm_roberta.tokenization_xlm_roberta",
    "transformers.models.distilbert.modeling_distilbert",
)


def warm_imports() -> None:
    """Import transformers' loading machinery now, on the calling thread.

    The first ``from_pretrained`` imports many large modules, and unmarshalling them holds
    the GIL for long stretches: done on the loader thread while the bot is connected, that
    stalled the event loop for ~200 ms (bench/). Call this before connecting.
    """
    import importlib

    import transformers.modeling_utils  # noqa: F401
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer  # noqa: F401
    from transformers.models.auto import modeling_auto, tokenization_auto  # noqa: F401

    # The families the README names; others import on first load (a one-off stall).
    for module in _WARM_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:  # a family renamed or removed in another transformers release
            log.debug("could not pre-import %s", module)


# What a load may read from a local folder: each must be a regular file (or a link to one).
_READ_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt", ".py")
# Files that hold a tokenizer's vocabulary, in one family or another.
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model")


def check_local_files(folder: Path) -> None:
    """Refuse a folder a load could hang on or trip over, before anything reads it.

    Opening a FIFO (or a device) for reading blocks until someone writes to it, which would
    wedge the loader; a symlink loop, a dangling link or a folder named like a weights file
    would fail deep inside transformers with an error no admin can read.
    """
    display = shown(folder.name or str(folder))
    try:
        if not stat.S_ISDIR(folder.stat().st_mode):
            raise CheckpointNotFoundError(lazy("{checkpoint} is not a folder.", checkpoint=display))
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise CheckpointNotFoundError(
            lazy("I can't read the folder {checkpoint}: {problem}.", checkpoint=display, problem=_os_problem(exc))
        ) from None
    for entry in entries:
        if not entry.name.endswith(_READ_SUFFIXES):
            continue
        try:
            mode = entry.stat().st_mode  # follows links: what a reader would open
        except OSError as exc:
            raise CheckpointLoadError(
                lazy("{file} in that folder can't be read: {problem}.", file=shown(entry.name), problem=_os_problem(exc))
            ) from None
        if stat.S_ISDIR(mode):
            raise CheckpointLoadError(lazy("{file} in that folder is a folder, so I won't read it.", file=shown(entry.name)))
        if not stat.S_ISREG(mode):
            raise CheckpointLoadError(
                lazy(
                    "{file} in that folder is not a regular file (a pipe or a device), so I won't read it.",
                    file=shown(entry.name),
                )
            )
    if not (folder / "config.json").exists():
        raise CheckpointNotFoundError(
            lazy("The folder {checkpoint} has no `config.json`, so it isn't a saved model.", checkpoint=display)
        )


def _os_problem(exc: OSError) -> Text:
    """An OS error in words, without the path (which may be the host's): the reason after a colon."""
    if exc.errno == errno.ELOOP:
        return lazy("it is a symbolic link loop")
    if exc.errno == errno.ENOENT:
        return lazy("it is a broken link or doesn't exist")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return lazy("the bot isn't allowed to read it")
    # Any other error: the system's own words (English), not translated.
    return printable(exc.strerror or type(exc).__name__).lower()


def safetensors_parameter_count(directory: Path) -> int | None:
    """Parameters stored in a directory's ``*.safetensors`` files, from their headers only.

    ``safe_open`` parses and validates the header (shapes, offsets, size limits) and maps the
    file without reading it; slice shapes come from the header, so no weights are read.
    """
    from safetensors import SafetensorError, safe_open

    files = sorted(directory.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        try:
            with safe_open(file, framework="pt") as handle:
                # safe_open is not iterable: keys() is its only list of names.
                total += sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())  # noqa: SIM118
        except (SafetensorError, OSError, ValueError, OverflowError):  # a header that lies, a truncated file
            raise CheckpointLoadError(lazy("{file} is not a valid safetensors file.", file=shown(file.name))) from None
    return total


def estimated_parameter_count(config: object) -> int:
    """A transformer encoder's size from its config: embeddings plus ~12·hidden² per layer."""
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layers", 0) or 0)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    positions = int(getattr(config, "max_position_embeddings", 0) or 0)
    intermediate = int(getattr(config, "intermediate_size", 0) or 4 * hidden)
    per_layer = 4 * hidden * hidden + 2 * hidden * intermediate
    return layers * per_layer + (vocab + positions) * hidden


def parameter_count(folder: str, config: object) -> tuple[int, Text]:
    """How many parameters the checkpoint in ``folder`` has, and how we know: file headers or the config."""
    counted = safetensors_parameter_count(Path(folder))
    if counted is not None:
        return counted, lazy("safetensors headers")
    return estimated_parameter_count(config), lazy("config estimate")


def _hub_folder(reference: str, *, allow_pickle_weights: bool, max_parameters: int | None, tracker: ProgressTracker) -> Path:
    """The cache folder holding what a load of Hub id ``reference`` reads, fetched if need be.

    Judged before any weight byte is fetched: the weights' format, and the parameter count
    (the Hub's safetensors metadata, else an estimate from ``config.json``). Offline, or with
    the Hub unavailable, a cached copy is used as it is.
    """
    from huggingface_hub import constants
    from transformers import AutoConfig

    if constants.HF_HUB_OFFLINE:
        cached = hub_download.cached_folder(reference)
        if cached is None:
            raise hub_download.HubUnavailableError(
                lazy(
                    "The bot runs offline (`HF_HUB_OFFLINE=1`) and {checkpoint} isn't in its cache.", checkpoint=shown(reference)
                )
            )
        return cached
    try:
        checkpoint = hub_download.describe(reference, allow_pickle_weights=allow_pickle_weights)
    except hub_download.HubUnavailableError:
        cached = hub_download.cached_folder(reference)
        if cached is None:
            raise
        log.warning("the Hub is unavailable; loading %s from the cache", reference)
        return cached
    if max_parameters is not None:
        count, source = checkpoint.parameters, lazy("Hub metadata")
        if count is None:
            config_folder = hub_download.fetch(checkpoint, tracker, files=("config.json",))
            count, source = estimated_parameter_count(AutoConfig.from_pretrained(str(config_folder))), lazy("config estimate")
        _check_size(reference, count, source, max_parameters)
    return hub_download.fetch(checkpoint, tracker)


def _check_size(reference: str, count: int, source: Text, max_parameters: int) -> None:
    if count > max_parameters:
        raise CheckpointNotAllowedError(
            lazy(
                "{checkpoint} has about {count} parameters ({source}); this bot loads at most {limit}. "
                "The bot owner sets that limit with MAX_MODEL_PARAMETERS.",
                checkpoint=shown(reference),
                count=_millions(count),
                source=source,
                limit=_millions(max_parameters),
            )
        )


def _config_unreadable(display: str, exc: Exception) -> Message:
    if "json" in str(exc).lower():
        return lazy("The `config.json` of {checkpoint} can't be read: it is not valid JSON.", checkpoint=display)
    return lazy("The `config.json` of {checkpoint} can't be read: it is missing or damaged.", checkpoint=display)


def _weights_failure(display: str, folder: Path, allow_pickle_weights: bool) -> Message:
    """Why the weights may have failed: only pickled ones, refused, or the files themselves."""
    has_safetensors = any(folder.glob("*.safetensors"))
    if not has_safetensors and any(folder.glob("*.bin")) and not allow_pickle_weights:
        return lazy(
            "I couldn't load the weights of {checkpoint}: it has only `.bin` (pickle) weights, "
            "and this bot loads only `.safetensors` ones.",
            checkpoint=display,
        )
    if not has_safetensors and not any(folder.glob("*.bin")):
        return lazy("I couldn't load the weights of {checkpoint}: the folder has no weights file.", checkpoint=display)
    return lazy(
        "I couldn't load the weights of {checkpoint}: the weights file is damaged or doesn't match the model's `config.json`.",
        checkpoint=display,
    )


def _value_error_reason(exc: ValueError, *, sanitize: bool = True) -> Text:
    """What a :class:`MaskedLM` ``ValueError`` says: its message (translatable) when it carries one."""
    reason = exc.args[0] if len(exc.args) == 1 else None
    if isinstance(reason, Message):
        return reason
    return printable(str(exc)) if sanitize else str(exc)


def load_masked_lm(
    reference: str,
    *,
    device: torch.device | str = "cpu",
    max_masks: int = MAX_MASKS,
    allow_pickle_weights: bool = False,
    precision: str = "fp32",
    max_parameters: int | None = None,
    progress: ProgressCallback | None = None,
) -> MaskedLM:
    """Load ``reference`` (Hub id or local directory) through the Auto classes. Blocking: call it off the loop."""
    # Imported here so that importing the package (e.g. for ``--help``) stays fast.
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING

    display = shown(reference)
    tracker = ProgressTracker(progress)
    tracker.stage("checking")
    if is_local_reference(reference):
        folder = Path(reference)
    else:
        # Everything is fetched (or found in the cache) first; the load below reads that folder only.
        folder = _hub_folder(reference, allow_pickle_weights=allow_pickle_weights, max_parameters=max_parameters, tracker=tracker)
    check_local_files(folder)
    source = str(folder)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        log.info("config for %s can't be read: %s", reference, exc)
        raise CheckpointLoadError(_config_unreadable(display, exc)) from None
    except Exception as exc:  # `null`, nesting deeper than the parser goes, fields of the wrong type...
        log.warning("config for %s is broken: %s: %s", reference, type(exc).__name__, exc)
        raise CheckpointLoadError(
            lazy("The `config.json` of {checkpoint} isn't a valid model configuration.", checkpoint=display)
        ) from None
    if type(config) not in MODEL_FOR_MASKED_LM_MAPPING:
        raise NotMaskedLMError(
            lazy(
                "{checkpoint} is a `{model_type}` model without a masked-language-model head, "
                "so it cannot fill in blanks. Pick a fill-mask model such as `camembert-base` or `bert-base-uncased`.",
                checkpoint=display,
                model_type=config.model_type,
            )
        )
    if max_parameters is not None:
        _check_size(reference, *parameter_count(source, config), max_parameters)
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise CheckpointLoadError(
            lazy(
                "{checkpoint} has no tokenizer files (such as `tokenizer.json` or `vocab.txt`), so I can't read text with it. "
                "Save the tokenizer into the same folder (`tokenizer.save_pretrained(...)`).",
                checkpoint=display,
            )
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except Exception as exc:  # missing, malformed JSON, a tokenizer.json of the wrong shape...
        log.warning("tokenizer for %s failed to load: %s: %s", reference, type(exc).__name__, exc)
        raise CheckpointLoadError(
            lazy("{checkpoint} has no tokenizer I can load (its files are missing or damaged).", checkpoint=display)
        ) from None
    if getattr(tokenizer, "mask_token", None) is None or getattr(tokenizer, "mask_token_id", None) is None:
        raise NoMaskTokenError(
            lazy("{checkpoint}'s tokenizer has no mask token, so there is no blank it can fill.", checkpoint=display)
        )
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        # transformers builds a tokenizer of special tokens alone when the vocabulary is missing.
        raise CheckpointLoadError(
            lazy(
                "{checkpoint}'s tokenizer has no vocabulary, only special tokens, so every answer would be blank.",
                checkpoint=display,
            )
        )
    tracker.stage("loading weights")
    try:
        model = AutoModelForMaskedLM.from_pretrained(
            source, trust_remote_code=False, use_safetensors=None if allow_pickle_weights else True
        )
    except Exception as exc:  # no weights, a damaged file, shapes that don't match the config...
        log.warning("weights for %s failed to load: %s: %s", reference, type(exc).__name__, exc)
        gc.collect()
        raise CheckpointLoadError(_weights_failure(display, folder, allow_pickle_weights)) from None
    model.to(device)
    tracker.stage("warming up")
    try:
        lm = MaskedLM(reference, tokenizer, model, device=device, max_masks=max_masks)
    except ValueError as exc:  # the tokenizer's special tokens are unusable
        raise CheckpointLoadError(
            lazy("{checkpoint} can't be used: {reason}.", checkpoint=display, reason=_value_error_reason(exc))
        ) from None
    try:
        lm.set_precision(precision)
    except ValueError as exc:  # e.g. fp16 on a CPU: the owner's configuration, explained
        raise CheckpointLoadError(
            lazy(
                "I can't run {checkpoint} in {precision} here: {reason}.",
                checkpoint=display,
                precision=precision,
                reason=_value_error_reason(exc, sanitize=False),
            )
        ) from None
    try:
        lm.predict(FillRequest(f"a {lm.mask_token} b", 1))  # first-call allocations happen now, not for a user
    except Exception as exc:  # the model and its tokenizer disagree in a way no check above caught
        log.warning("test fill of %s failed: %s: %s", reference, type(exc).__name__, exc, exc_info=True)
        raise CheckpointLoadError(
            lazy("{checkpoint} loaded, but failed its first test sentence, so I won't use it.", checkpoint=display)
        ) from None
    log.info(
        "loaded %s (%s, %.1fM parameters, mask %s, max %d tokens) on %s in %s",
        reference,
        config.model_type,
        model.num_parameters() / 1e6,
        lm.mask_token,
        lm.max_length,
        device,
        # What ran: under PRECISION=auto, the one chosen (its reasons are logged just before).
        f"{lm.precision} (PRECISION=auto)" if precision == "auto" else lm.precision,
    )
    tracker.stage("ready")
    return lm
