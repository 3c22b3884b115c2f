"""Plain data passed in and out of the inference core."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FillRequest:
    """One sentence to complete. ``text`` already uses the checkpoint's own mask token."""

    text: str
    top_k: int = 5
    # None means "the whole vocabulary"; otherwise only these words are scored.
    targets: tuple[str, ...] | None = None


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
