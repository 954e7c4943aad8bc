"""`GET /__mock/ui`, the inspector page (SPEC 2.7): what an integrator looks at when a test fails.

One server-rendered page, its script and stylesheet served from this package: nothing from
elsewhere, so it works in an air-gapped CI. The page polls `POST /__mock/ui/poll`, which reads
the shared state (on Redis: every worker's) and answers what changed since its last poll. Access
is the admin API's (access.py); every string shown came from a caller and is shown as text.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, render_template, request
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.exceptions import NotFound

from ..admin import (
    AdminError,
    admin_json,
    load_body,
    render_admin_error,
    shown_counter,
    shown_fault,
    with_links,
)
from ..context import Emulator, current_emulator
from ..outbox import HeldMessage, OutboxFilter
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
LARGEST = 2**63 - 1  # a cursor or an id above it is refused by name, not left to the encoder
# Nothing from elsewhere, and nothing by default: the page's script, its stylesheet and its polls
# come from the emulator (`'self'`); images only as `data:`; frames only this page's emails
# (`{emails}`, filled in per request: a path needs the origin). No page may frame this one.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; img-src data:; "
        "style-src 'self'; frame-src {emails}; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# An email is a document of its own (`/__mock/ui/outbox/<id>.html`) under its own policy, not the
# page's: it may fetch nothing at all (no stylesheet, @import, prefetch, frame, pixel: each would
# call the emulator and be journaled, or call elsewhere), runs no script (`sandbox`), and only the
# page may frame it. Its inline styles apply.
EMAIL_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
}
EMAIL_ENDPOINTS = frozenset({"inspector.email_html", "inspector.email_text"})


@blueprint.after_request
def secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    # Frames: this page's emails only (a path in a source expression narrows it to them).
    emails = f"{request.host_url}__mock/ui/outbox/"
    policy = SECURITY_HEADERS["Content-Security-Policy"].format(emails=emails)
    response.headers["Content-Security-Policy"] = policy
    if request.endpoint in EMAIL_ENDPOINTS:
        response.headers.update(EMAIL_HEADERS)
    return response


@blueprint.get("")
def page() -> str:
    return render_template("inspector.html")


@blueprint.get("/outbox/<int:message_id>.html")
def email_html(message_id: int) -> Response:
    """An email's HTML, framed by the page (`<iframe sandbox src>`) under EMAIL_HEADERS."""
    return email_part(message_id, "html", "text/html; charset=utf-8")


@blueprint.get("/outbox/<int:message_id>.txt")
def email_text(message_id: int) -> Response:
    """An email's (or a text message's) plain text, framed by the page like its HTML."""
    return email_part(message_id, "text", "text/plain; charset=utf-8")


def email_part(message_id: int, part: str, content_type: str) -> Response:
    emulator = current_emulator()
    held = emulator.outbox.get(message_id) if message_id <= LARGEST else None
    content = shown(held, emulator.links).get(part) if held else None
    if content is None:
        raise AdminError(404, f"inspector: outbox message {message_id} has no {part} part")
    return Response(content, content_type=content_type)


class Flag(fields.Boolean):
    """A JSON `true` or `false`: not `0`, `1` nor `"yes"` (the admin API's bodies are strict;
    a set of truthy values cannot tell `0` from `False`)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def flag(**kwargs: Any) -> Flag:
    return Flag(**kwargs)


def cursor(**kwargs: Any) -> JsonInteger:
    """An id or a cursor: a JSON integer from `low` up to LARGEST."""
    low = kwargs.pop("low", 0)
    return JsonInteger(validate=validate.Range(min=low, max=LARGEST), **kwargs)


class ShortList(fields.List):
    """A list refused for its length before any item is read: a 4 MB list costs no seconds."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, list) and len(value) > REFRESH:
            raise ValidationError(f"Longer than maximum length {REFRESH}.")
        return super()._deserialize(value, attr, data, **kwargs)


def refresh_list() -> ShortList:
    return ShortList(cursor(low=1), load_default=list)


class JournalQuery(Schema):
    since = cursor(load_default=0)
    refresh = refresh_list()
    detail = cursor(low=1, load_default=None, allow_none=True)
    tail = flag(load_default=False)
    older = cursor(low=1, load_default=None, allow_none=True)  # "load older": entries before it
    status = fields.String(load_default="", validate=validate.Regexp(r"\A(|[1-5]xx|\d{3})\Z"))
    code = cursor(load_default=None, allow_none=True)
    email = fields.String(load_default="", validate=validate.Length(max=320))
    token = fields.String(load_default="", validate=validate.Length(max=1000))


class CursorQuery(Schema):
    since = cursor(load_default=0)
    refresh = refresh_list()
    tail = flag(load_default=False)


class PollSchema(Schema):
    journal = fields.Nested(JournalQuery, load_default=lambda: JournalQuery().load({}))
    sharings = fields.Nested(CursorQuery, load_default=lambda: CursorQuery().load({}))
    outbox = fields.Nested(CursorQuery, load_default=lambda: CursorQuery().load({}))
    throttle = flag(load_default=True)  # the page asks every few polls: a scan


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
    skipped = fields.Integer(
        metadata={"description": "With `tail`: the newest id left out (older ones not sent)."}
    )
    older = fields.Dict(
        allow_none=True,
        metadata={"description": "With `older`: entries (newest first) and the new `skipped`."},
    )


class PollAnswerSchema(Answer):
    journal = fields.Nested(JournalPartSchema)
    sharings = fields.Dict(metadata={"description": "items (newest first), next, more, first"})
    outbox = fields.Dict(metadata={"description": "items, pending, next, more, first"})
    throttle = fields.Dict(
        allow_none=True,
        metadata={
            "description": "enabled, counters (keys masked, busiest first), more; null "
            "when not asked"
        },
    )
    epoch = fields.String(
        metadata={
            "description": "Changes when the store is new (a restart, an emptied Redis): "
            "the page forgets what it holds"
        }
    )
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
            "throttle": throttle_part(emulator, query["journal"]["token"])
            if query["throttle"]
            else None,
            "epoch": epoch(emulator),
            "faults": [shown_fault(f) for f in emulator.store.faults()],
            "clock": {"now": emulator.clock.now(), "rate": emulator.clock.rate},
        }
    )


def epoch(emulator: Emulator) -> str:
    """Which store the page reads: drawn with the store's link secret (a new process, or a Redis
    come back empty, draws another; a reset keeps it, its ids go on). Not the secret itself."""
    digest = hashlib.sha256(b"pisano-mock inspector epoch\0" + emulator.store.link_secret())
    return digest.hexdigest()[:16]


Reader = Callable[[int], list[int]]  # the id of the first item after a cursor, or []


def tail_start(read: Reader, since: int) -> int:
    """The cursor from which the newest SCAN items follow: the first poll shows the newest,
    not the oldest (the page keeps a few hundred anyway). Exponential then binary search: a
    few dozen one-item reads, whatever the length."""
    low, step = since, 1
    while read(low + step):
        low, step = low + step, step * 2
    high = low + step  # read(low) holds something (or low is `since`), read(high) nothing
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if read(middle) else (low, middle)
    return max(since, high - SCAN)


def journal_reader(emulator: Emulator) -> Reader:
    return lambda since: [e["id"] for e in emulator.store.requests(since, 1).items]


def sharings_reader(emulator: Emulator) -> Reader:
    return lambda since: [s["id"] for s in emulator.store.sharings(since, 1, None, None).items]


def outbox_reader(emulator: Emulator) -> Reader:
    return lambda since: [m.id for m in emulator.outbox.page(since, 1, OutboxFilter()).messages]


def start(read: Reader, query: dict[str, Any]) -> int:
    return tail_start(read, query["since"]) if query["tail"] else query["since"]


def journal_part(emulator: Emulator, query: dict[str, Any]) -> dict[str, Any]:
    """Entries after `since` (and those in `refresh`, still open when last seen) that pass the
    filters, newest first, in summary (a body may weigh megabytes); which are still open, which
    are gone; the next cursor; and the entry the page has open (`detail`) in full."""
    store = emulator.store
    keeps = journal_filters(query, store.link_secret())
    since = start(journal_reader(emulator), query)
    page = store.requests(since, SCAN)
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
        "next": page.items[-1]["id"] if page.items else since,
        "more": page.more,
        "first": first_id(store.requests(0, 1).items),
        "dropped": page.dropped,
        "skipped": since if query["tail"] else 0,
        "older": older_part(store, keeps, query["older"]),
    }


def older_part(store: Any, keeps: list[Any], before: int | None) -> dict[str, Any] | None:
    """The page's "load older": up to SCAN entries just before `before` (the oldest it shows)
    that pass the filters, newest first, and the cursor they start from (the new `skipped`)."""
    if before is None:
        return None
    since = max(0, before - 1 - SCAN)
    items = [entry for entry in store.requests(since, SCAN).items if entry["id"] < before]
    shown = [summary(entry) for entry in items if passes(entry, keeps)]
    return {"entries": shown[::-1], "skipped": since}


def one_entry(emulator: Emulator, entry_id: int) -> dict[str, Any] | None:
    items = emulator.store.requests(entry_id - 1, 1).items
    return items[0] if items and items[0]["id"] == entry_id else None


def first_id(items: list[dict[str, Any]]) -> int | None:
    """The oldest id still held: the page forgets rows below it (dropped, or a reset)."""
    return items[0]["id"] if items else None


def sharings_part(emulator: Emulator, query: dict[str, Any]) -> dict[str, Any]:
    """Sharings never change once recorded: what came after `since`, newest first."""
    since = start(sharings_reader(emulator), query)
    page = emulator.store.sharings(since, SCAN, None, None)
    items = with_links(page.items, emulator)
    return {
        "items": items[::-1],
        "skipped": since if query["tail"] else 0,
        "next": items[-1]["id"] if items else since,
        "more": page.more,
        "first": first_id(emulator.store.sharings(0, 1, None, None).items),
    }


def outbox_part(emulator: Emulator, query: dict[str, Any]) -> dict[str, Any]:
    """Messages after `since`, in summary (their HTML and text are the frames' own routes), and
    the delivery state of those in `refresh` (not delivered when last seen): a re-check costs a
    few bytes, whatever the email weighs."""
    outbox = emulator.outbox
    since = start(outbox_reader(emulator), query)
    page = outbox.page(since, SCAN, OutboxFilter())
    items = [summary_of(shown(message, emulator.links)) for message in page.messages]
    held = (outbox.get(i) for i in query["refresh"] if i <= since)
    states = [delivery(message) for message in held if message]
    oldest = outbox.page(0, 1, OutboxFilter()).messages
    return {
        "items": sorted(items, key=lambda item: -item["id"]),
        "states": states,
        "pending": [m["id"] for m in items + states if m["status"] not in FINAL][-REFRESH:],
        "next": page.messages[-1].id if page.messages else since,
        "more": page.more,
        "first": oldest[0].id if oldest else None,
        "skipped": since if query["tail"] else 0,
    }


def summary_of(message: dict[str, Any]) -> dict[str, Any]:
    """A message without its bodies: which one it has (`content`) says which route frames it."""
    content = "html" if message.get("html") else "text" if message.get("text") else None
    return {key: value for key, value in message.items() if key not in ("html", "text")} | {
        "content": content
    }


def delivery(held: HeldMessage) -> dict[str, Any]:
    state = held.state
    return {
        "id": held.id,
        "status": state.status,
        "attempts": state.attempts,
        "last_error": state.last_error,
    }


def throttle_part(emulator: Emulator, token: str = "") -> dict[str, Any]:
    """Each bucket's count in each tier's current window (masked keys: admin.shown_counter); the
    token the journal is filtered by comes first, whatever its count."""
    secret = emulator.store.link_secret()
    snapshot = emulator.throttle.snapshot(emulator.clock.now())
    rows = [shown_counter(row, secret) | {"of_token": is_of(row, token)} for row in snapshot]
    counters, more = busiest(rows, THROTTLE_KEYS)
    settings = emulator.settings.throttle
    return {"enabled": settings.enabled, "counters": counters, "more": more}


def busiest(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], int]:
    """The rows of the `limit` keys counted most (the token under test, most likely), busiest
    first, each key's tiers together; and how many keys are left out."""
    top: dict[str, float] = {}
    for row in rows:
        weight = float("inf") if row.get("of_token") else int(row["count"])
        top[row["key_id"]] = max(top.get(row["key_id"], 0), weight)
    chosen = heapq.nsmallest(limit, top, key=lambda key_id: (-top[key_id], key_id))
    rank = {key_id: place for place, key_id in enumerate(chosen)}
    kept = [row for row in rows if row["key_id"] in rank]
    kept.sort(key=lambda row: rank[row["key_id"]])  # stable: each key's tiers stay by period
    return kept, len(top) - len(chosen)


def is_of(row: dict[str, Any], token: str) -> bool:
    """Whether a bucket counts `token`'s requests (`token:<t>` or `token:<t>|ip:<a>`)."""
    key = str(row["key"])
    return bool(token) and (key == f"token:{token}" or key.startswith(f"token:{token}|ip:"))
