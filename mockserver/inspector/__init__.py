"""`GET /__mock/ui`, the inspector page (SPEC 2.7): what an integrator looks at when a test fails.

One server-rendered page, its script and stylesheet served from this package: nothing from
elsewhere, so it works in an air-gapped CI. The page polls `POST /__mock/ui/poll`, which reads
the shared state (on Redis: every worker's) and answers what changed since its last poll. Access
is the admin API's (access.py); every string shown came from a caller and is shown as text.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request
from marshmallow import Schema, fields, validate
from werkzeug.exceptions import NotFound

from ..admin import (
    AdminError,
    admin_json,
    load_body,
    render_admin_error,
    shown_counter,
    shown_fault,
    throttle_page,
    with_links,
)
from ..context import Emulator, current_emulator
from ..outbox import OutboxFilter
from ..outbox_admin import shown
from ..schemas import Answer, ClockSchema, JournalEntrySchema, JsonInteger
from .journal import is_open, journal_filters, passes, summary, with_answer

blueprint = Blueprint(
    "inspector",
    __name__,
    url_prefix="/__mock/ui",
    template_folder="templates",
    static_folder="static",
)
blueprint.register_error_handler(AdminError, render_admin_error)


@blueprint.errorhandler(NotFound)
def no_such_file(error: NotFound) -> Response:
    """A static file the package lacks: the admin API's 404, not Pisano's (SPEC 2.2)."""
    return render_admin_error(AdminError(404, f"inspector: no file {request.path}"))


SCAN = 200  # journal entries, sharings or messages read per poll: each answer stays small
REFRESH = 50  # entries or messages still open that one poll reads again
THROTTLE_KEYS = 50  # buckets shown
FINAL = frozenset({"sent", "failed", "captured"})  # an outbox message that changes no more
# Nothing from elsewhere, and nothing by default: the page's script, its stylesheet and its polls
# come from the emulator (`'self'`); images only as `data:`. Emails render in `<iframe sandbox
# srcdoc>`, which inherits this policy: their scripts do not run, their remote pixels do not load,
# and their relative `<img>`/`<video>` cannot call the emulator either (they would be journaled);
# their inline styles may apply. No page may frame this one.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; img-src data:; "
        "style-src 'self' 'unsafe-inline'; frame-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@blueprint.after_request
def secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


@blueprint.get("")
def page() -> str:
    return render_template("inspector.html")


class JournalQuery(Schema):
    since = JsonInteger(load_default=0, validate=validate.Range(min=0))
    refresh = fields.List(
        JsonInteger(validate=validate.Range(min=1)),
        load_default=list,
        validate=validate.Length(max=REFRESH),
    )
    detail = JsonInteger(load_default=None, allow_none=True, validate=validate.Range(min=1))
    status = fields.String(load_default="", validate=validate.Regexp(r"\A(|[1-5]xx|\d{3})\Z"))
    code = JsonInteger(load_default=None, allow_none=True, validate=validate.Range(min=0))
    email = fields.String(load_default="", validate=validate.Length(max=320))
    token = fields.String(load_default="", validate=validate.Length(max=1000))


class CursorQuery(Schema):
    since = JsonInteger(load_default=0, validate=validate.Range(min=0))
    refresh = fields.List(
        JsonInteger(validate=validate.Range(min=1)),
        load_default=list,
        validate=validate.Length(max=REFRESH),
    )


class PollSchema(Schema):
    journal = fields.Nested(JournalQuery, load_default=lambda: JournalQuery().load({}))
    sharings = fields.Nested(CursorQuery, load_default=lambda: CursorQuery().load({}))
    outbox = fields.Nested(CursorQuery, load_default=lambda: CursorQuery().load({}))


class JournalPartSchema(Answer):
    entries = fields.List(
        fields.Dict(),
        metadata={
            "description": "Entries after `since` (and those in `refresh`) that pass the "
            "filters, newest first, in summary: id, time, method, path, status, code, trigger, "
            "reason (cut), warnings (how many), open."
        },
    )
    detail = fields.Nested(
        JournalEntrySchema,
        allow_none=True,
        metadata={"description": "The entry `detail` asked for, whole, with its `answer`."},
    )
    gone = fields.List(fields.Integer(), metadata={"description": "Refreshed, no longer shown."})
    pending = fields.List(fields.Integer(), metadata={"description": "Still being answered."})
    next = fields.Integer(metadata={"description": "The next poll's `since`."})
    more = fields.Boolean()
    first = fields.Integer(allow_none=True, metadata={"description": "The oldest id held."})
    dropped = fields.Integer()


class PollAnswerSchema(Answer):
    journal = fields.Nested(JournalPartSchema)
    sharings = fields.Dict(metadata={"description": "items (newest first), next, more, first"})
    outbox = fields.Dict(metadata={"description": "items, pending, next, more, first"})
    throttle = fields.Dict(metadata={"description": "enabled, counters (keys masked), more"})
    faults = fields.List(fields.Dict(), metadata={"description": "As GET /__mock/faults."})
    clock = fields.Nested(ClockSchema)


@blueprint.post("/poll")
def poll() -> Response:
    """Everything the page shows that changed since its last poll (its cursors), and the rest
    whole (throttle, faults, clock: small)."""
    query = load_body(PollSchema())
    emulator = current_emulator()
    return admin_json(
        {
            "journal": journal_part(emulator, query["journal"]),
            "sharings": sharings_part(emulator, query["sharings"]),
            "outbox": outbox_part(emulator, query["outbox"]),
            "throttle": throttle_part(emulator),
            "faults": [shown_fault(f) for f in emulator.store.faults()],
            "clock": {"now": emulator.clock.now(), "rate": emulator.clock.rate},
        }
    )


def journal_part(emulator: Emulator, query: dict[str, Any]) -> dict[str, Any]:
    """Entries after `since` (and those in `refresh`, still open when last seen) that pass the
    filters, newest first, in summary (a body may weigh megabytes); which are still open, which
    are gone; the next cursor; and the entry the page has open (`detail`) in full."""
    store = emulator.store
    keeps = journal_filters(query, store.link_secret())
    page = store.requests(query["since"], SCAN)
    refreshed = [one_entry(emulator, i) for i in query["refresh"] if i <= query["since"]]
    seen = page.items + [entry for entry in refreshed if entry is not None]
    shown = [summary(entry) for entry in seen if passes(entry, keeps)]
    shown_ids = {entry["id"] for entry in shown}
    detail = one_entry(emulator, query["detail"]) if query["detail"] else None
    return {
        "entries": sorted(shown, key=lambda entry: -entry["id"]),
        "detail": with_answer(detail) if detail else None,
        "gone": [i for i in query["refresh"] if i not in shown_ids],
        "pending": [entry["id"] for entry in seen if is_open(entry)][-REFRESH:],
        "next": page.items[-1]["id"] if page.items else query["since"],
        "more": page.more,
        "first": first_id(store.requests(0, 1).items),
        "dropped": page.dropped,
    }


def one_entry(emulator: Emulator, entry_id: int) -> dict[str, Any] | None:
    items = emulator.store.requests(entry_id - 1, 1).items
    return items[0] if items and items[0]["id"] == entry_id else None


def first_id(items: list[dict[str, Any]]) -> int | None:
    """The oldest id still held: the page forgets rows below it (dropped, or a reset)."""
    return items[0]["id"] if items else None


def sharings_part(emulator: Emulator, query: dict[str, Any]) -> dict[str, Any]:
    """Sharings never change once recorded: what came after `since`, newest first."""
    page = emulator.store.sharings(query["since"], SCAN, None, None)
    items = with_links(page.items, emulator)
    return {
        "items": items[::-1],
        "next": items[-1]["id"] if items else query["since"],
        "more": page.more,
        "first": first_id(emulator.store.sharings(0, 1, None, None).items),
    }


def outbox_part(emulator: Emulator, query: dict[str, Any]) -> dict[str, Any]:
    """Messages after `since`, and those in `refresh` (not delivered when last seen)."""
    outbox = emulator.outbox
    page = outbox.page(query["since"], SCAN, OutboxFilter())
    held = page.messages + [
        m for m in (outbox.get(i) for i in query["refresh"] if i <= query["since"]) if m
    ]
    items = [shown(message, emulator.links) for message in held]
    oldest = outbox.page(0, 1, OutboxFilter()).messages
    return {
        "items": sorted(items, key=lambda item: -item["id"]),
        "pending": [item["id"] for item in items if item["status"] not in FINAL][-REFRESH:],
        "next": page.messages[-1].id if page.messages else query["since"],
        "more": page.more,
        "first": oldest[0].id if oldest else None,
    }


def throttle_part(emulator: Emulator) -> dict[str, Any]:
    """Each bucket's count in each tier's current window (masked keys: admin.shown_counter)."""
    secret = emulator.store.link_secret()
    rows = [shown_counter(row, secret) for row in emulator.throttle.snapshot(emulator.clock.now())]
    counters, more = throttle_page(rows, "", THROTTLE_KEYS)
    settings = emulator.settings.throttle
    return {"enabled": settings.enabled, "counters": counters, "more": more}
