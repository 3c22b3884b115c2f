"""Replies about a server's model: which one it uses, and how a switch went."""

from __future__ import annotations

from dataclasses import replace

from bot.i18n import N_, Text, _, text_of
from bot.inference.checkpoint_policy import display_name
from bot.inference.types import ModelState
from bot.replies.markup import Code, rich, rich_format
from bot.replies.reply import Reply, ReplyField, error_reply, info_reply, ok_reply
from bot.service.fill_mask_service import ModelStatus

_STATE_TEXT = {
    ModelState.LOADED: N_("loaded, ready"),
    ModelState.LOADING: N_("loading…"),
    ModelState.NOT_LOADED: N_("not loaded (loads on the next `fill`)"),
}


def status_fields(status: ModelStatus) -> tuple[ReplyField, ...]:
    mask = Code(status.mask_token) if status.mask_token else _("known once loaded")
    checkpoint = Code(status.checkpoint)
    shown = rich_format(_("{checkpoint} (default)"), checkpoint=checkpoint) if status.is_default else rich(checkpoint, "")
    return (
        ReplyField(_("Checkpoint"), shown, True),
        ReplyField(_("Mask token"), mask, True),
        ReplyField(_("State"), _(_STATE_TEXT[status.state]), True),
        *((ReplyField(_("Runs in"), status.where, True),) if status.where else ()),
    )


def model_status_reply(status: ModelStatus, *, in_server: bool = True) -> Reply:
    title = _("This server's model") if in_server else _("The bot's default model (used in direct messages)")
    return info_reply(title, fields=status_fields(status))


def model_changed_reply(status: ModelStatus, *, reset: bool = False) -> Reply:
    title = _("Back to the default model") if reset else _("Model changed")
    now = rich_format(_("This server now uses {checkpoint}."), checkpoint=Code(status.checkpoint))
    return ok_reply(title, now, status_fields(status))


def model_not_changed_reply(reason: Text, kept: str) -> Reply:
    keeps = rich_format(_("This server keeps using {checkpoint}."), checkpoint=Code(kept))
    return error_reply(rich(text_of(reason), "\n\n", keeps), title=_("Model not changed"))


def model_superseded_reply(reason: Text) -> Reply:
    """A switch overtaken by a newer command: what the server uses is that command's answer."""
    return error_reply(text_of(reason), title=_("Model not changed"))


def with_revocation_note(reply: Reply, revoked: str | None, default: str) -> Reply:
    """``reply``, telling (once) that the owner's policy took this server's chosen model away."""
    if revoked is None:
        return reply
    note = ReplyField(
        _("Model changed by the bot's owner"),
        rich_format(
            _(
                "This server used {revoked}, which the bot's owner no longer allows, so it is back to the default "
                "{default}. An admin can pick another with `model set`."
            ),
            revoked=Code(display_name(revoked)),
            default=Code(display_name(default)),
        ),
    )
    return replace(reply, fields=(*reply.fields, note))
