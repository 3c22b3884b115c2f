"""Which checkpoints an admin may choose: names, local folders and the owner's allow-list.

Kept free of torch and transformers so that reading the settings (and the health check)
stays cheap; :mod:`bot.inference.loading` applies the checks that need the checkpoint itself.
"""

from __future__ import annotations

import fnmatch
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

# huggingface_hub.utils imports neither torch nor transformers.
from huggingface_hub.utils import HFValidationError, validate_repo_id

from bot.i18n import lazy
from bot.inference.errors import CheckpointNotAllowedError
from bot.inference.masks import clean_input


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


# Direction overrides and isolates can disguise an echoed name; controls garble it.
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200b-\u200f\u061c\u2060\ufeff]")
_HUB_HOSTS = {"huggingface.co", "www.huggingface.co", "hf.co"}
# Second path segments that end a model's id in a Hub URL of a legacy (owner-less) id.
_HUB_PAGES = {"tree", "blob", "resolve", "raw", "commit", "commits", "discussions", "edit"}


def printable(text: str) -> str:
    """``text`` without what could disguise or garble it: bidi and zero-width marks, controls,
    lone surrogates (which no JSON encoder accepts)."""
    text = clean_input(_INVISIBLE.sub("", text))
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)


def shown(reference: str) -> str:
    """``reference`` as inline code for a message: printable, shortened, unable to close the code span."""
    text = printable(reference).replace("`", "'")
    return f"`{text[:97] + '...' if len(text) > 100 else text}`"


def display_name(reference: str) -> str:
    """How a reply names a checkpoint to everyone: a local folder by its name, not its whole path."""
    name = Path(reference).name if is_local_reference(reference) else reference
    return printable(name or reference)


def _user_home_form(reference: str) -> bool:
    """``~name/...``: another account's home. Never expanded, so no reply tells which accounts exist."""
    return reference.startswith("~") and not reference.startswith(("~/", "~\\")) and reference != "~"


def _expand(reference: str) -> Path:
    # Only the bot's own home: Path.expanduser would look ``~name`` up in the host's accounts.
    if reference == "~" or reference.startswith(("~/", "~\\")):
        return Path(os.path.expanduser(reference))
    return Path(reference)


def hub_id_from_url(reference: str) -> str:
    """``https://huggingface.co/owner/name/tree/main`` → ``owner/name``; anything else unchanged."""
    if not reference.lower().startswith(("https://", "http://")):
        return reference
    parts = urlsplit(reference)
    if (parts.hostname or "").lower() not in _HUB_HOSTS:
        return reference
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if segments[:1] == ["models"]:
        segments = segments[1:]
    if not segments or segments[0] in ("datasets", "spaces"):
        return reference
    if len(segments) == 1 or segments[1] in _HUB_PAGES:
        return segments[0]
    return f"{segments[0]}/{segments[1]}"


def is_local_reference(reference: str) -> bool:
    """A reference that looks like a path, or names an existing directory, is local.

    transformers itself prefers a directory over a Hub id of the same name, so we do too.
    """
    if reference.startswith((".", "/", "~", "\\")):
        return True
    try:
        return Path(reference).is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte, a lone surrogate
        return False


def canonical_reference(reference: str) -> str:
    """The key a checkpoint is cached and stored under: Hub ids as typed, paths made absolute.

    Never raises: a path that cannot be resolved (a NUL byte, a symlink loop) stays as typed,
    and :func:`check_allowed` or the loader explains what is wrong with it.
    """
    reference = hub_id_from_url(reference.strip())
    if is_local_reference(reference) and not _user_home_form(reference):
        try:
            return str(_expand(reference).resolve())
        except (OSError, ValueError, RuntimeError):
            return reference
    return reference


def check_allowed(reference: str, policy: CheckpointPolicy) -> str:
    """Return the canonical reference if ``policy`` lets an admin select it, else explain why not."""
    reference = hub_id_from_url(reference.strip())
    if not reference:
        raise CheckpointNotAllowedError(lazy("Tell me which checkpoint to use, e.g. `camembert-base`."))
    if reference.lower().startswith(("https://", "http://")):
        raise CheckpointNotAllowedError(
            lazy("That link isn't a Hugging Face model page; give the model's id, e.g. `camembert-base` or `owner/name`.")
        )
    if is_local_reference(reference):
        if not policy.allow_local_models:
            raise CheckpointNotAllowedError(
                lazy("Local model folders are turned off on this bot; use a Hugging Face Hub id such as `camembert-base`.")
            )
        if not policy.local_roots:
            raise CheckpointNotAllowedError(
                lazy("Local model folders are allowed, but the bot owner hasn't listed where (LOCAL_MODEL_DIRS).")
            )
        if _user_home_form(reference):
            raise CheckpointNotAllowedError(lazy("Write the folder as a full path, e.g. `/srv/models/camembert-base`."))
        # resolve() follows symlinks and "..", so a link cannot lead out of an allowed directory.
        try:
            path = _expand(reference).resolve(strict=False)
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop, a lone surrogate
            raise CheckpointNotAllowedError(lazy("That is not a folder path I can use.")) from None
        if not any(path.is_relative_to(root.expanduser().resolve()) for root in policy.local_roots):
            raise CheckpointNotAllowedError(lazy("That folder is outside the directories the bot owner allows."))
        return str(path)
    if not is_hub_id(reference):
        raise CheckpointNotAllowedError(
            lazy(
                "{checkpoint} is not a valid Hugging Face model id (it looks like `owner/name` or `name`).",
                checkpoint=shown(reference),
            )
        )
    if policy.allowed_models and not any(matches_allowed(reference, pattern) for pattern in policy.allowed_models):
        allowed = ", ".join(f"`{p}`" for p in policy.allowed_models[:10])
        raise CheckpointNotAllowedError(
            lazy(
                "{checkpoint} is not on this bot's list of allowed models: {allowed_models}.",
                checkpoint=shown(reference),
                allowed_models=allowed,
            )
        )
    return reference
