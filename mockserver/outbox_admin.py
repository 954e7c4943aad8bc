"""The outbox's admin routes (SPEC 1.7): `/__mock/outbox` (a page of messages), `<id>.eml`, and
`flush`. Guarded like every `/__mock/` route (access.py); refusals are `AdminError`s (admin.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, Response
from marshmallow import Schema, fields, validate

from .access import has_body
from .admin import AdminError, admin_json, load_body, load_query, render_admin_error
from .context import current_emulator
from .links import LinkMaker
from .messages import CHANNELS as MESSAGE_CHANNELS
from .messages import RenderError, as_email, outline, render
from .outbox import STATUSES, HeldMessage, OutboxFilter
from .postman import pending
from .schemas import JsonNumber

blueprint = Blueprint("outbox_admin", __name__, url_prefix="/__mock")
blueprint.register_error_handler(AdminError, render_admin_error)

CHANNELS = tuple(MESSAGE_CHANNELS)
MAX_PAGE = 10_000  # messages rendered for one page: ~10 ms each 100
FLUSH_DEFAULT_SECONDS = 10.0
FLUSH_MAX_SECONDS = 300.0  # the default delivery settings retry for ~15 s, timeouts aside


class OutboxQuerySchema(Schema):
    since = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=MAX_PAGE))
    campaign_id = fields.String(load_default=None)
    to = fields.String(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    channel = fields.String(load_default=None, validate=validate.OneOf(CHANNELS))


class FlushSchema(Schema):
    timeout = JsonNumber(
        load_default=FLUSH_DEFAULT_SECONDS, validate=validate.Range(min=0, max=FLUSH_MAX_SECONDS)
    )


@blueprint.get("/outbox")
def outbox() -> Response:
    query = load_query(OutboxQuerySchema())
    emulator = current_emulator()
    wanted = OutboxFilter(query["campaign_id"], query["to"], query["status"], query["channel"])
    page = emulator.outbox.page(query["since"], query["limit"], wanted)
    messages = [shown(held, emulator.links) for held in page.messages]
    return admin_json({"messages": messages, "dropped": page.dropped, "more": page.more})


def shown(held: HeldMessage, links: LinkMaker) -> dict[str, Any]:
    """A message as the page shows it: rendered, with its delivery state. One whose template
    fails shows `failed` with the cause (a captured message is rendered only here)."""
    state = held.state
    try:
        content = render(held.mail, held.index, links).shown()
    except RenderError as error:
        content = unrendered(held, links)
        state = replace(state, status="failed", last_error=str(error))
    return {
        **content,
        "status": state.status,
        "attempts": state.attempts,
        "last_error": state.last_error,
        "created_at": held.mail.sharings.accepted_at,
        "sent_at": state.sent_at,
    }


def unrendered(held: HeldMessage, links: LinkMaker) -> dict[str, Any]:
    """What a message shows when its templates fail: all but `text` and `html`."""
    return {**outline(held.mail, held.index, links).shown(), "text": None, "html": None}


@blueprint.get("/outbox/<int:message_id>.eml")
def eml(message_id: int) -> Response:
    emulator = current_emulator()
    held = emulator.outbox.get(message_id)
    if held is None:
        raise AdminError(404, f"outbox: no message {message_id} (never sent, dropped or reset)")
    channel = held.mail.sharings.channel
    if channel != "email":
        said = f"outbox: message {message_id} is on the {channel} channel, not an email: no .eml"
        raise AdminError(404, said)
    try:
        message = render(held.mail, held.index, emulator.links)
    except RenderError as error:
        raise AdminError(404, f"outbox: message {message_id} has no email: {error}") from None
    email = as_email(message)
    response = Response(email.as_bytes(), 200, content_type="message/rfc822")
    response.headers["Content-Disposition"] = f'attachment; filename="message-{message_id}.eml"'
    return response


@blueprint.post("/outbox/flush")
def flush() -> Response:
    """Wait until nothing is queued or sending (or the timeout); counts by status."""
    timeout = (load_body(FlushSchema()) if has_body() else FlushSchema().load({}))["timeout"]
    statuses = current_emulator().postman.flush(timeout)
    return admin_json({"status": "ok", "statuses": statuses, "pending": pending(statuses)})
