"""`GET /openapi.json`: OpenAPI 3 generated from the marshmallow schemas, never written by hand."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response
from marshmallow import fields

from . import schemas
from .faults import FAULT_RULES, FaultSchema, FaultStateSchema
from .settings import FixtureSchema

blueprint = Blueprint("openapi", __name__)

DEFAULT_CAMPAIGN_EXAMPLE = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"  # SPEC 2.1's default fixture

_CATALOGUE_ERROR = {
    "description": "A catalogue entry (13000-13038), Pisano's body byte for byte; "
    "X-Pisano-Mock-Reason says why. A missing or malformed Authorization is 400/13030 and an "
    "unknown token 401/13001, as Pisano answers (not a generic 401).",
    "content": {"application/json": {"schema": "CatalogueError"}},
}
_THROTTLED = {
    "description": "Throttled: `Retry later` as text/plain (default profile; JSON in `rich`).",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
_ADMIN_ERROR = {
    "description": "An admin error (ours): 400 a field is wrong, 401 admin token missing or "
    "wrong, 403 caller not on loopback without an admin token, or a foreign Origin or Host, "
    "404/405 no such route, 415 a write whose body is not JSON.",
    "content": {"application/json": {"schema": "AdminError"}},
}


def _json(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _admin(
    answers: dict[str, Any], body: str | None = None, query: type | None = None
) -> dict[str, Any]:
    """An admin operation: its answers, every admin error, and what it takes."""
    operation: dict[str, Any] = {"tags": ["admin"], "responses": {**answers, "4XX": _ADMIN_ERROR}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)["content"]}
    if query is not None:
        operation["parameters"] = [{"in": "query", "schema": query}]
    return operation


# One row per operation: (path, method, operation). Schemas are referenced by registered names.
OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "/v1/email_campaigns/{campaign_id}/email_sharings",
        "post",
        {
            "summary": "Share an email campaign's survey with recipients (Pisano's API).",
            "description": "Rules across fields that JSON Schema cannot state (13028/13017): a "
            "`custom_attributes` or `transactional_data` key must be one of `emails`; the same "
            "address twice (case-insensitively) is 13017; `built_in_responses` values are typed "
            "by the account's customer schema. A method other than POST is 404/13002, as Rails "
            "answers a path without that route.",
            "tags": ["pisano"],
            "parameters": [
                {
                    "in": "path",
                    "name": "campaign_id",
                    "required": True,
                    "schema": {"type": "string"},
                    "example": DEFAULT_CAMPAIGN_EXAMPLE,
                }
            ],
            "security": [{"PisanoToken": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": "EmailSharing"}},
            },
            "responses": {
                "200": _json("EmailSharingAccepted"),
                "4XX": _CATALOGUE_ERROR,
                "429": _THROTTLED,
            },
        },
    ),
    ("/__mock/health", "get", _admin({"200": _json("Health")})),
    ("/__mock/reset", "post", _admin({"200": _json("Status")})),
    (
        "/__mock/requests",
        "get",
        _admin({"200": _json("RequestsPage")}, query=schemas.PageQuerySchema),
    ),
    (
        "/__mock/sharings",
        "get",
        _admin({"200": _json("SharingsPage")}, query=schemas.SharingsQuerySchema),
    ),
    ("/__mock/clock", "get", _admin({"200": _json("Clock")})),
    ("/__mock/clock", "post", _admin({"200": _json("Clock")}, body="ClockChange")),
    ("/__mock/faults", "post", _admin({"201": _json("FaultState", "Added")}, body="Fault")),
    ("/__mock/faults", "get", _admin({"200": _json("Faults", "Live faults")})),
    ("/__mock/faults", "delete", _admin({"200": _json("Status")})),
    (
        "/__mock/throttle",
        "get",
        _admin({"200": _json("ThrottleState")}, query=schemas.ThrottleQuerySchema),
    ),
    ("/__mock/fixtures", "post", _admin({"201": _json("FixturesAdded")}, body="Fixture")),
]


class FaultsSchema(schemas.Answer):
    faults = fields.List(fields.Nested(FaultStateSchema))


SCHEMAS = {
    "EmailSharing": schemas.EmailSharingSchema,
    "EmailSharingAccepted": schemas.EmailSharingAcceptedSchema,
    "CatalogueError": schemas.CatalogueErrorSchema,
    "AdminError": schemas.AdminErrorSchema,
    "Status": schemas.StatusSchema,
    "Health": schemas.HealthSchema,
    "RequestsPage": schemas.RequestsPageSchema,
    "SharingsPage": schemas.SharingsPageSchema,
    "Fixture": FixtureSchema,
    "FixturesAdded": schemas.FixturesAddedSchema,
    "Clock": schemas.ClockSchema,
    "ClockChange": schemas.ClockChangeSchema,
    "Fault": FaultSchema,
    "FaultState": FaultStateSchema,
    "Faults": FaultsSchema,
    "ThrottleState": schemas.ThrottleStateSchema,
}

# Rules across fields, as far as JSON Schema states them (the server checks them all anyway).
CROSS_FIELD_RULES: dict[str, dict[str, Any]] = {
    "Fault": FAULT_RULES,
    "ClockChange": {"not": {"required": ["set", "advance"]}},
}


@cache
def openapi_document() -> bytes:
    spec = APISpec(
        title="pisano-mock",
        version="0.1.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
    )
    spec.components.security_scheme(
        "PisanoToken",
        {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Token token=<API TOKEN>",
        },
    )
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    operations: dict[str, dict[str, Any]] = {}
    for path, method, operation in OPERATIONS:
        operations.setdefault(path, {})[method] = operation
    for path, by_method in operations.items():
        spec.path(path=path, operations=by_method)
    document = spec.to_dict()
    for name, rules in CROSS_FIELD_RULES.items():
        document["components"]["schemas"][name].update(rules)
    return orjson.dumps(document)


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    return Response(openapi_document(), 200, content_type="application/json")
