"""Replies about a server's model: which one it uses, and how a switch went."""

from __future__ import annotations

from dataclasses import replace

from bot.inference.checkpoint_policy import display_name
from bot.inference.types import ModelState
from bot.replies.markup import Code, rich
from bot.replies.reply import Reply, ReplyField, error_reply, info_reply, ok_reply
from bot.service.fill_mask_service import ModelStatus

_STATE_TEXT = {
    ModelState.LOADED: "loaded, ready",
    ModelState.LOADING: "loading…",
    ModelState.NOT_LOADED: "not loaded (loads on the next `fill`)",
}


def status_fields(status: ModelStatus) -> tuple[ReplyField, ...]:
    mask = Code(status.mask_token) if status.mask_token else "known once loaded"
    return (
        ReplyField("Checkpoint", rich(Code(status.checkpoint), " (default)" if status.is_default else ""), True),
        ReplyField("Mask token", mask, True),
        ReplyField("State", _STATE_TEXT[status.state], True),
        *((ReplyField("Runs in", status.where, True),) if status.where else ()),
    )


def model_status_reply(status: ModelStatus, *, in_server: bool = True) -> Reply:
    title = "This server's model" if in_server else "The bot's default model (used in direct messages)"
    return info_reply(title, fields=status_fields(status))


def model_changed_reply(status: ModelStatus, *, reset: bool = False) -> Reply:
    title = "Back to the default model" if reset else "Model changed"
    return ok_reply(title, rich("This server now uses ", Code(status.checkpoint), "."), status_fields(status))


def model_not_changed_reply(reason: str, kept: str) -> Reply:
    return error_reply(rich(reason, "\n\nThis server keeps using ", Code(kept), "."), title="Model not changed")


def model_superseded_reply(reason: str) -> Reply:
    """A switch overtaken by a newer command: what the server uses is that command's answer."""
    return error_reply(reason, title="Model not changed")


def with_revocation_note(reply: Reply, revoked: str | None, default: str) -> Reply:
    """``reply``, telling (once) that the owner's policy took this server's chosen model away."""
    if revoked is None:
        return reply
    note = ReplyField(
        "Model changed by the bot's owner",
        rich(
            "This server used ",
            Code(display_name(revoked)),
            ", which the bot's owner no longer allows, so it is back to the default ",
            Code(display_name(default)),
            ". An admin can pick another with `model set`.",
        ),
    )
    return replace(reply, fields=(*reply.fields, note))
