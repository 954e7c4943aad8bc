"""The admin API under `/__mock/` (SPEC 2.2): never throttled, never journaled.

Its errors are ours, not Pisano's (SPEC 2.2): one type, `AdminError`, rendered as
`{"status": <word>, "reason": <what is wrong, naming the field>}`; who may call it is `access.py`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Blueprint, Response, request
from marshmallow import Schema, ValidationError

from .auth import mask_token
from .bodies import BodyTooLarge
from .catalogue import PisanoError
from .contacts import ContactFilter, contacts_page
from .context import Emulator, current_emulator
from .faults import FaultSchema
from .lifecycle import request_body
from .links import responses_query
from .metrics import exposition
from .rules import normalised_number
from .schemas import (
    CLOCK_BOUND,
    ClockChangeSchema,
    ContactsQuerySchema,
    NoQuerySchema,
    PageQuerySchema,
    SharingsQuerySchema,
    ThrottleQuerySchema,
)
from .settings import ConfigError, FixtureSchema, load_fixture
from .state import Recipient, Store

blueprint = Blueprint("admin", __name__, url_prefix="/__mock")

# The status word of each admin error, as Pisano's catalogue words its own (snake case).
ADMIN_STATUS_WORDS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    503: "service_unavailable",
}


class AdminError(Exception):
    """The one way the admin API refuses: an HTTP status and the reason, shown in the body."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        if status not in ADMIN_STATUS_WORDS:
            raise ValueError(f"{status} is not an admin error status")
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


def render_admin_error(error: AdminError) -> Response:
    body = {"status": ADMIN_STATUS_WORDS[error.status], "reason": error.reason}
    response = admin_json(body, error.status)
    response.headers.update(error.headers)
    return response


blueprint.register_error_handler(AdminError, render_admin_error)


def admin_json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, content_type="application/json")


def admin_body() -> dict[str, Any]:
    """The JSON object an admin write sent, or a 400 saying why not."""
    # The same reading as the emulated API's: bytes actually received, chunked or not (SPEC 2.5).
    try:
        raw = request_body()
    except BodyTooLarge:
        raise AdminError(413, "body: larger than max_body_bytes") from None
    except PisanoError as error:
        raise AdminError(400, error.reason) from None
    if not raw:
        raise AdminError(400, "body: absent; a JSON object is expected")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise AdminError(400, f"body: not JSON ({error})") from None
    if not isinstance(data, dict):
        raise AdminError(400, f"body: a JSON object is expected, not {type(data).__name__}")
    return data


def describe_errors(messages: Any, path: tuple[str, ...] = ()) -> list[str]:
    """marshmallow's nested messages as `field.sub: message` lines, naming each field."""
    if isinstance(messages, dict):
        return [
            line
            for key, value in messages.items()
            for line in describe_errors(value, path if key == "_schema" else (*path, str(key)))
        ]
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        text = " ".join(messages)
        return [f"{'.'.join(path)}: {text}" if path else text]
    return describe_errors(dict(enumerate(messages)), path)


def refusal(where: str, error: ValidationError) -> AdminError:
    return AdminError(400, f"{where}: " + "; ".join(describe_errors(error.messages)))


def load_body(schema: Schema) -> dict[str, Any]:
    try:
        return schema.load(admin_body())
    except ValidationError as error:
        raise refusal("body", error) from None


def load_query(schema: Schema) -> dict[str, Any]:
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as error:
        raise refusal("query", error) from None


@blueprint.get("/health")
def health() -> Response:
    load_query(NoQuerySchema())
    emulator = current_emulator()
    outbox = emulator.outbox.counts()
    dropped = outbox.pop("dropped")
    return admin_json(
        {"status": "ok", **emulator.store.counts(), "outbox": outbox, "outbox_dropped": dropped}
    )


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus text (OpenMetrics if the scraper asks for it): totals of every worker and
    replica sharing the storage; the journal's gauges from the store (metrics.py)."""
    load_query(NoQuerySchema())
    emulator = current_emulator()
    body, content_type = exposition(
        emulator.metrics,
        emulator.store.counts(),
        emulator.settings.storage,
        request.headers.get("Accept"),
        emulator.outbox.counts(),
    )
    return Response(body, 200, content_type=content_type)


@blueprint.post("/reset")
def reset() -> Response:
    current_emulator().reset()
    return admin_json({"status": "ok"})


@blueprint.get("/requests")
def requests() -> Response:
    query = load_query(PageQuerySchema())
    page = current_emulator().store.requests(query["since"], query["limit"])
    return admin_json({"requests": page.items, "dropped": page.dropped, "more": page.more})


@blueprint.get("/sharings")
def sharings() -> Response:
    query = load_query(SharingsQuerySchema())
    emulator = current_emulator()
    page = emulator.store.sharings(
        query["since"], query["limit"], query["campaign_id"], recipient_filter(query)
    )
    shown = with_links(page.items, emulator)
    return admin_json({"sharings": shown, "dropped": page.dropped, "more": page.more})


def recipient_filter(query: dict[str, Any]) -> Recipient | None:
    """`email` (case-insensitively) or `phone_number` (as normalised, SPEC 1.5); not both."""
    if query["email"] and query["phone_number"]:
        raise AdminError(400, "email, phone_number: filter by one of them, not both")
    if query["phone_number"]:
        return Recipient("phone_number", query["phone_number"], normalised_number)
    return Recipient("email", query["email"]) if query["email"] else None


def with_links(items: list[dict[str, Any]], emulator: Emulator) -> list[dict[str, Any]]:
    """Each sharing with its survey link (SPEC 1.7), made as the page is shown: a link is a MAC
    of the id, so the request path holds nothing for it."""
    schema_of = CustomerSchemas(emulator.store)
    queries: dict[tuple[int, str], str] = {}  # a batch's recipients share one responses object

    def query(item: dict[str, Any]) -> str:
        key = (id(item["built_in_responses"]), item["campaign_id"])
        if key not in queries:
            schema = schema_of(item["campaign_id"])
            queries[key] = responses_query(item["built_in_responses"], schema)
        return queries[key]

    for item in items:  # each item a dict made for this page: no copy needed
        item["link"] = emulator.links.link(item["id"], query(item))
    return items


class CustomerSchemas:
    """The customer schema of a campaign's account, looked up once per campaign per page."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.known: dict[str, dict[str, str]] = {}

    def __call__(self, campaign_id: str) -> dict[str, str]:
        if campaign_id not in self.known:
            self.known[campaign_id] = customer_schema(self.store, campaign_id)
        return self.known[campaign_id]


def customer_schema(store: Store, campaign_id: str) -> dict[str, str]:
    """The schema typing a campaign's links (or a link channel's: a link sharing's campaign_id);
    empty when the campaign or account is gone."""
    owner = store.campaign(campaign_id) or store.link_channel(campaign_id)
    account = store.account(owner.account) if owner else None
    return account.customer_schema if account else {}


@blueprint.post("/fixtures")
def add_fixtures() -> Response:
    load_body(FixtureSchema())  # a wrong field is named here, as in every admin body
    try:
        added = current_emulator().store.add_fixture(load_fixture(admin_body()))
    except ConfigError as error:  # what a schema cannot see: an account that does not exist
        raise AdminError(400, f"fixtures: {error}") from None
    return admin_json({"status": "ok", "added": added}, 201)


@blueprint.get("/clock")
def clock() -> Response:
    load_query(NoQuerySchema())
    emulator_clock = current_emulator().clock
    return admin_json({"now": emulator_clock.now(), "rate": emulator_clock.rate})


@blueprint.post("/clock")
def move_clock() -> Response:
    change = load_body(ClockChangeSchema())
    emulator_clock = current_emulator().clock
    target = clock_target(change, emulator_clock.now())
    rate = abs(change.get("rate", 0.0))  # the range holds it at 0 or more: -0.0 shows as 0.0
    if "set" in change:
        emulator_clock.set(target, rate)
    else:  # read and moved in one step: advances sent at once to several replicas all count
        emulator_clock.advance(change.get("advance", 0.0), rate)
    current_emulator().scheduler.catch_up()  # before answering: the runs it passed are listed
    return admin_json({"now": emulator_clock.now(), "rate": emulator_clock.rate})


def clock_target(change: dict[str, Any], now: float) -> float:
    """Where a clock change moves the clock; the result must stay within bounds too (SPEC 2.6),
    or at least come closer: a clock left running at its bound reads beyond it a moment later,
    and an advance back must still bring it home."""
    target = change["set"] if "set" in change else now + change.get("advance", 0.0)
    if abs(target) > CLOCK_BOUND and abs(target) >= abs(now):
        field = "set" if "set" in change else "advance"
        raise AdminError(
            400, f"body: {field}: the clock would read {target:g} s, beyond ±{CLOCK_BOUND:g} s"
        )
    return target


@blueprint.post("/faults")
def add_fault() -> Response:
    fault = current_emulator().store.add_fault(load_body(FaultSchema()))
    return admin_json(shown_fault({"id": fault.id, **fault.describe()}), 201)


@blueprint.get("/faults")
def list_faults() -> Response:
    load_query(NoQuerySchema())
    return admin_json({"faults": [shown_fault(f) for f in current_emulator().store.faults()]})


def shown_fault(described: dict[str, Any]) -> dict[str, Any]:
    """A fault as the admin API shows it: its `match.token` masked (SPEC 2.6); the fault book
    keeps it whole, for matching."""
    match = described.get("match") or {}
    if "token" not in match:
        return described
    return {**described, "match": {**match, "token": mask_token(match["token"])}}


@blueprint.delete("/faults")
def clear_faults() -> Response:
    current_emulator().store.clear_faults()
    return admin_json({"status": "ok"})


@blueprint.get("/throttle")
def throttle() -> Response:
    query = load_query(ThrottleQuerySchema())
    emulator = current_emulator()
    settings = emulator.settings.throttle
    secret = emulator.store.link_secret()
    rows = [shown_counter(row, secret) for row in emulator.throttle.snapshot(emulator.clock.now())]
    counters, more = throttle_page(rows, query["since"], query["limit"])
    return admin_json(
        {
            "enabled": settings.enabled,
            "profile": settings.profile,
            "tiers": [str(tier) for tier in emulator.throttle.tiers],
            "counters": counters,
            "more": more,
        }
    )


KEY_ID_LENGTH = 12  # hex characters: 48 bits, no collision expected among millions of keys


def key_id(key: str, secret: bytes) -> str:
    """A throttle bucket's identifier as shown: tells apart keys whose masked forms are alike.
    Keyed under the store's secret, so that a key id cannot confirm a guessed token offline, and
    every worker and replica on one Redis names a bucket alike (a page read from one continues
    on another)."""
    digest = hmac.new(secret, b"throttle-key:" + key.encode(), hashlib.sha256).hexdigest()
    return digest[:KEY_ID_LENGTH]


def shown_counter(row: dict[str, object], secret: bytes) -> dict[str, object]:
    key = str(row["key"])
    return {**row, "key": masked_bucket(key), "key_id": key_id(key, secret)}


def throttle_page(
    rows: list[dict[str, object]], since: str, limit: int
) -> tuple[list[dict[str, object]], bool]:
    """The rows of the first `limit` key ids after `since`, in key-id order, and whether more
    wait: a key's tiers never straddle two pages."""
    ids = sorted({str(row["key_id"]) for row in rows if str(row["key_id"]) > since})
    page = set(ids[:limit])
    chosen = [row for row in rows if row["key_id"] in page]
    chosen.sort(key=lambda row: str(row["key_id"]))  # stable: each key's tiers stay by period
    return chosen, len(ids) > limit


def masked_bucket(key: str) -> str:
    """A throttle bucket as shown (`token:<t>`, `ip:<a>`, `token:<t>|ip:<a>`): the token masked,
    the address kept (SPEC 2.6)."""
    if not key.startswith("token:"):
        return key
    token, sep, address = key.removeprefix("token:").rpartition("|ip:")
    if not sep:
        token, address = address, ""
    return f"token:{mask_token(token)}{sep}{address}"


@blueprint.get("/contacts")
def contacts() -> Response:
    """Contacts matched or created from the sharings held (SPEC 1.2), derived as read."""
    page = contacts_page(
        current_emulator().store, ContactFilter(**load_query(ContactsQuerySchema()))
    )
    return admin_json({"contacts": page.items, "dropped": page.dropped, "more": page.more})
