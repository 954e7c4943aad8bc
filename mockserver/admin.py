"""The admin API under `/__mock/` (SPEC 2.2): never throttled, never journaled."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, request
from marshmallow import Schema, ValidationError

from .catalogue import PisanoError
from .context import current_emulator
from .faults import FaultSchema
from .schemas import ClockChangeSchema, PageQuerySchema, SharingsQuerySchema
from .settings import ConfigError, load_fixture

blueprint = Blueprint("admin", __name__, url_prefix="/__mock")


def admin_json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, content_type="application/json")


def admin_body() -> dict[str, Any]:
    """The JSON object an admin call sent, or 13000 with the reason."""
    try:
        data = orjson.loads(request.get_data(cache=True) or b"{}")
    except orjson.JSONDecodeError as error:
        raise PisanoError(13000, f"admin body: not JSON ({error})") from None
    if not isinstance(data, dict):
        raise PisanoError(13000, "admin body: a JSON object is expected")
    return data


def load_body(schema: Schema) -> dict[str, Any]:
    try:
        return schema.load(admin_body())
    except ValidationError as error:
        raise PisanoError(13028, f"admin body: {error.messages}") from None


def load_query(schema: Schema) -> dict[str, Any]:
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as error:
        raise PisanoError(13028, f"query: {error.messages}") from None


@blueprint.get("/health")
def health() -> Response:
    return admin_json({"status": "ok", **current_emulator().store.counts()})


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
    page = current_emulator().store.sharings(
        query["since"], query["limit"], query["campaign_id"], query["email"]
    )
    return admin_json({"sharings": page.items, "dropped": page.dropped, "more": page.more})


@blueprint.post("/fixtures")
def add_fixtures() -> Response:
    try:
        added = current_emulator().store.add_fixture(load_fixture(admin_body()))
    except ConfigError as error:
        raise PisanoError(13028, f"fixtures: {error}") from None
    return admin_json({"status": "ok", "added": added}, 201)


@blueprint.get("/clock")
def clock() -> Response:
    emulator_clock = current_emulator().clock
    return admin_json({"now": emulator_clock.now(), "rate": emulator_clock.rate})


@blueprint.post("/clock")
def move_clock() -> Response:
    change = load_body(ClockChangeSchema())
    emulator_clock = current_emulator().clock
    rate = change.get("rate", 0.0)
    if "set" in change:
        emulator_clock.set(change["set"], rate)
    elif "advance" in change:
        emulator_clock.advance(change["advance"], rate)
    else:
        emulator_clock.set(emulator_clock.now(), rate)
    return admin_json({"now": emulator_clock.now(), "rate": emulator_clock.rate})


@blueprint.post("/faults")
def add_fault() -> Response:
    fault = current_emulator().store.add_fault(load_body(FaultSchema()))
    return admin_json({"id": fault.id, **fault.describe()}, 201)


@blueprint.get("/faults")
def list_faults() -> Response:
    return admin_json({"faults": current_emulator().store.faults()})


@blueprint.delete("/faults")
def clear_faults() -> Response:
    current_emulator().store.clear_faults()
    return admin_json({"status": "ok"})


@blueprint.get("/throttle")
def throttle() -> Response:
    emulator = current_emulator()
    settings = emulator.settings.throttle
    return admin_json(
        {
            "enabled": settings.enabled,
            "profile": settings.profile,
            "tiers": [str(tier) for tier in emulator.throttle.tiers],
            "counters": emulator.throttle.snapshot(emulator.clock.now()),
        }
    )
