"""Errors whose text is safe to show to a chat user.

Every subclass of :class:`FillMaskError` carries a plain-language message written for the
person who typed the command: no exception text from libraries, no tracebacks, no paths
the user did not type. Anything that is *not* a ``FillMaskError`` is a bug or an outage and
is logged, never shown.
"""

from __future__ import annotations

from bot.i18n import N_, Text, _, lazy, lazy_plural, text_of
from bot.inference.types import MAX_TOP_K


class FillMaskError(Exception):
    """Base class: a friendly message for the user, and ``title``, its heading.

    The message may be a :class:`~bot.i18n.Message`, translated when shown
    (:meth:`localized`); ``str(exc)`` is always the English text, for logs.
    """

    title = N_("Can't do that")

    def __init__(self, message: Text = "") -> None:
        super().__init__(message)
        self.message: Text = message

    def __str__(self) -> str:
        return str(self.message)

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt without calling the subclass's ``__init__`` (whose arguments are not ``args``),
        # so that any error survives pickling (another process) with its message and attributes.
        return (_rebuilt, (type(self), self.message), self.__dict__)

    def localized(self) -> str:
        """The message in the current locale (see :mod:`bot.i18n`)."""
        return text_of(self.message)

    def localized_title(self) -> str:
        return _(self.title)


# -- problems with the request ---------------------------------------------------------


class InvalidRequestError(FillMaskError):
    """The request cannot be answered as written (empty text, bad top_k, bad targets)."""


class NoMaskError(InvalidRequestError):
    def __init__(self, mask_token: str) -> None:
        others = " / ".join(f"`{s}`" for s in ("<mask>", "[MASK]") if s.lower() != mask_token.lower())
        super().__init__(
            lazy(
                "I need a blank to fill: put `{mask_token}` (or {other_spellings}) where the missing word goes, e.g. `{example}`",
                mask_token=mask_token,
                other_spellings=others,
                # The help's example sentence, in the reader's language.
                example=lazy("Paris is the {mask} of France.", mask=mask_token),
            )
        )


class TopKOutOfRangeError(InvalidRequestError):
    def __init__(self) -> None:
        super().__init__(lazy("`top_k` must be a whole number from 1 to {max_top_k}.", max_top_k=MAX_TOP_K))


class TooManyMasksError(InvalidRequestError):
    def __init__(self, found: int, limit: int) -> None:
        super().__init__(
            lazy_plural(
                "Your sentence has {n} mask; I can fill at most {limit} at once.",
                "Your sentence has {n} masks; I can fill at most {limit} at once.",
                found,
                limit=limit,
            )
        )


class InputTooLongError(InvalidRequestError):
    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(
            lazy_plural(
                "Your sentence is too long for this model: it makes {n} token and the model reads at most {limit}. "
                "Shorten it and try again.",
                "Your sentence is too long for this model: it makes {n} tokens and the model reads at most {limit}. "
                "Shorten it and try again.",
                tokens,
                limit=limit,
            )
        )


class SpecialTargetsError(InvalidRequestError):
    def __init__(self, tokens: list[str]) -> None:
        # Model strings, not user text, but still kept from closing the code spans.
        listed = ", ".join(f"`{token.replace('`', chr(39))}`" for token in tokens[:5])
        super().__init__(
            lazy_plural(
                "{tokens} is this model's special token, not a word: it never predicts it. "
                "Give an ordinary word to score instead.",
                "{tokens} are this model's special tokens, not words: it never predicts them. "
                "Give ordinary words to score instead.",
                len(tokens),
                tokens=listed,
            )
        )


class RequestFailedError(FillMaskError):
    """An unexpected failure on one request (a bug, or a quirk of the checkpoint); the cause is logged.

    Only that request gets it: the others batched with it are answered as usual.
    """

    title = N_("Oops")

    def __init__(self) -> None:
        super().__init__(lazy("Something went wrong on my side with that request; it has been logged. Rewording it may help."))


class BusyError(FillMaskError):
    """The model's queue is full; ``retry_after`` estimates when it will have room (seconds)."""

    title = N_("Busy")

    def __init__(self, retry_after: float, *, own_share: bool = False) -> None:
        self.retry_after = retry_after
        self.own_share = own_share
        wait = max(1, round(retry_after))
        if own_share:
            message = lazy("This server already has a lot of requests waiting: please try again in {seconds} s.", seconds=wait)
        else:
            message = lazy("I'm busy with a lot of requests right now: please try again in {seconds} s.", seconds=wait)
        super().__init__(message)


class InferenceUnavailableError(FillMaskError):
    """The inference service (INFERENCE_URL) cannot be reached or failed: an outage, not a refusal."""

    title = N_("Model server unreachable")

    def __init__(self, message: Text | None = None) -> None:
        if message is None:
            message = lazy("The model server is unreachable right now; please try again in a minute.")
        super().__init__(message)


class ModelClosedError(FillMaskError):
    def __init__(self) -> None:
        super().__init__(lazy("That model was just unloaded; please try again."))


# -- problems with a checkpoint --------------------------------------------------------


class CheckpointError(FillMaskError):
    """A checkpoint could not be used (refused by policy, missing, or not a fill-mask model)."""


class CheckpointNotAllowedError(CheckpointError):
    pass


class CheckpointNotFoundError(CheckpointError):
    pass


class NotMaskedLMError(CheckpointError):
    pass


class NoMaskTokenError(CheckpointError):
    pass


class CheckpointLoadError(CheckpointError):
    """Loading failed for a reason the user cannot fix by rewording (corrupt files, out of memory)."""


def _rebuilt(cls: type[FillMaskError], message: Text) -> FillMaskError:
    """An unpickled error: made without its class's ``__init__``, its attributes then restored."""
    error = cls.__new__(cls)
    FillMaskError.__init__(error, message)
    return error
