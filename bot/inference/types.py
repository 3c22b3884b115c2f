"""What goes in and out of the inference layer: requests, results, their bounds, and the
interface every inference backend implements (in process today; a remote service later).

Nothing here imports torch, so the layers above can use these names without it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from bot.inference.progress import LoadProgress

# The bounds of one request, defined here once: every adapter's help text, option range and
# check reads them from here.
DEFAULT_TOP_K = 5
MAX_TOP_K = 10
MAX_MASKS = 5
MAX_TARGETS = 25


@dataclass(frozen=True, slots=True)
class FillRequest:
    """One sentence to complete. ``text`` already uses the checkpoint's own mask token."""

    text: str
    top_k: int = DEFAULT_TOP_K
    # None means "the whole vocabulary"; otherwise only these words are scored.
    targets: tuple[str, ...] | None = None
    # Whose request this is (a server id; None for direct messages): the batcher shares each
    # batch fairly between tenants and bounds how many each may have waiting.
    tenant: int | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    """One candidate for one mask, shaped like an item of ``pipeline("fill-mask")``'s output."""

    score: float
    token: int
    # Exactly ``tokenizer.decode([token])``, as the pipeline returns it (may carry a leading space).
    token_str: str
    # The input with this mask filled, decoded the way the pipeline decodes it.
    sequence: str

    @property
    def word(self) -> str:
        """What a person should see: the decoded token without surrounding white space."""
        return self.token_str.strip()


@dataclass(frozen=True, slots=True)
class FillResult:
    """The answer to one :class:`FillRequest`."""

    checkpoint: str
    text: str
    # One ranked tuple per mask, in the order the masks appear in the text.
    masks: tuple[tuple[Prediction, ...], ...]
    # The sentence with every mask replaced by its best prediction, special tokens removed.
    best_sequence: str
    # Wall time from the request entering the model's queue to its result (seconds).
    elapsed: float = 0.0
    # How many requests shared the forward pass that answered this one.
    batch_size: int = 1


class ModelState(enum.Enum):
    LOADED = "loaded"
    LOADING = "loading"
    NOT_LOADED = "not loaded"


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A loaded checkpoint as the owner's statistics show it."""

    checkpoint: str
    memory_bytes: int
    queue_depth: int
    requests_served: int
    precision: str = "fp32"  # what it runs in (PRECISION=auto decides per checkpoint)


class FillModel(Protocol):
    """One checkpoint, ready to answer requests."""

    @property
    def name(self) -> str: ...

    @property
    def mask_token(self) -> str: ...

    async def fill(self, request: FillRequest) -> FillResult:
        """The answer; raises the request's ``FillMaskError`` (``BusyError``, ``ModelClosedError``...)."""
        ...


class InferenceBackend(Protocol):
    """Where checkpoints are loaded and run: shared copies, loaded once, bounded in number."""

    @property
    def where(self) -> str:
        """Where the models run, for ``model show`` ("this bot's process", "the inference service at …")."""
        ...

    def state(self, reference: str) -> ModelState: ...

    def progress(self, reference: str) -> LoadProgress | None:
        """How far the load of ``reference`` has got, while it is loading."""
        ...

    def peek(self, reference: str) -> FillModel | None:
        """The loaded model, without loading it."""
        ...

    def has_loaded(self, reference: str) -> bool:
        """Whether ``reference`` has finished loading at least once since the start."""
        ...

    @property
    def loaded(self) -> list[str]:
        """The checkpoints loaded now, least recently used first (cheap: no sizes)."""
        ...

    def loaded_models(self) -> list[LoadedModel]:
        """What is loaded now with its size and load, least recently used first."""
        ...

    async def get(self, reference: str) -> FillModel:
        """The model, loaded first if needed; raises ``CheckpointError`` when it can't be."""
        ...

    def preload(self, reference: str) -> object:
        """Start loading in the background (failures are logged, not raised)."""
        ...

    async def aclose(self) -> None: ...
