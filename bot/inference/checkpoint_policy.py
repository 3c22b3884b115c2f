"""Which checkpoints an admin may choose: names, local folders and the owner's allow-list.

Kept free of torch and transformers so that reading the settings (and the health check)
stays cheap; :mod:`bot.inference.loading` applies the checks that need the checkpoint itself.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

# huggingface_hub.utils imports neither torch nor transformers.
from huggingface_hub.utils import HFValidationError, validate_repo_id

from bot.inference.errors import CheckpointNotAllowedError


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """What an admin may ask for with ``model set`` (the owner's DEFAULT_MODEL is always allowed)."""

    # fnmatch patterns such as "camembert-base" or "almanach/*"; empty allows any Hub id.
    allowed_models: tuple[str, ...] = ()
    allow_local_models: bool = False
    # Directories local checkpoints must live under; with none listed, no local path is allowed.
    local_roots: tuple[Path, ...] = field(default_factory=tuple)


def matches_allowed(reference: str, pattern: str) -> bool:
    """Whether ``reference`` matches one ALLOWED_MODELS entry: an id or an fnmatch pattern, any case."""
    return fnmatch.fnmatchcase(reference.lower(), pattern.lower())


def is_hub_id(reference: str) -> bool:
    """Whether ``reference`` is shaped like a Hub model id (``name`` or ``owner/name``).

    The Hub's own rules, as huggingface_hub checks them: ASCII letters, digits, ``-``, ``_``
    and ``.``, at most 96 characters a part, no ``--`` or ``..``, no ``.git`` ending.
    """
    try:
        validate_repo_id(reference)
    except HFValidationError:
        return False
    return True


def shown(reference: str) -> str:
    """``reference`` as inline code for a message: shortened, and unable to close the code span."""
    text = reference.replace("`", "'").replace("\n", " ")
    return f"`{text[:97] + '...' if len(text) > 100 else text}`"


def is_local_reference(reference: str) -> bool:
    """A reference that looks like a path, or names an existing directory, is local.

    transformers itself prefers a directory over a Hub id of the same name, so we do too.
    """
    if reference.startswith((".", "/", "~", "\\")):
        return True
    try:
        return Path(reference).expanduser().is_dir()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL byte
        return False


def canonical_reference(reference: str) -> str:
    """The key a checkpoint is cached and stored under: Hub ids as typed, paths made absolute."""
    reference = reference.strip()
    if is_local_reference(reference):
        return str(Path(reference).expanduser().resolve())
    return reference


def check_allowed(reference: str, policy: CheckpointPolicy) -> str:
    """Return the canonical reference if ``policy`` lets an admin select it, else explain why not."""
    reference = reference.strip()
    if not reference:
        raise CheckpointNotAllowedError("Tell me which checkpoint to use, e.g. `camembert-base`.")
    if is_local_reference(reference):
        if not policy.allow_local_models:
            raise CheckpointNotAllowedError(
                "Local model folders are turned off on this bot; use a Hugging Face Hub id such as `camembert-base`."
            )
        if not policy.local_roots:
            raise CheckpointNotAllowedError(
                "Local model folders are allowed, but the bot owner hasn't listed where (LOCAL_MODEL_DIRS)."
            )
        # resolve() follows symlinks and "..", so a link cannot lead out of an allowed directory.
        try:
            path = Path(reference).expanduser().resolve()
        except (OSError, ValueError, RuntimeError):
            raise CheckpointNotAllowedError("That is not a folder path I can use.") from None
        if not any(path.is_relative_to(root.expanduser().resolve()) for root in policy.local_roots):
            raise CheckpointNotAllowedError("That folder is outside the directories the bot owner allows.")
        return str(path)
    if not is_hub_id(reference):
        raise CheckpointNotAllowedError(
            f"{shown(reference)} is not a valid Hugging Face model id (it looks like `owner/name` or `name`)."
        )
    if policy.allowed_models and not any(matches_allowed(reference, pattern) for pattern in policy.allowed_models):
        allowed = ", ".join(f"`{p}`" for p in policy.allowed_models[:10])
        raise CheckpointNotAllowedError(f"{shown(reference)} is not on this bot's list of allowed models: {allowed}.")
    return reference
