"""The admin API under `/__mock/` (SPEC 2.2): never throttled, never journaled."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, request
from marshmallow import Schema, ValidationError

from .catalogue import PisanoError
from .context import current_emulator
from .schemas import PageQuerySchema, SharingsQuerySchema
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
