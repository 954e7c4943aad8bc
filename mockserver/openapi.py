"""`GET /openapi.json`: OpenAPI 3 generated from the marshmallow schemas, never written by hand."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response

from . import schemas
from .faults import FaultSchema
from .settings import FixtureSchema

blueprint = Blueprint("openapi", __name__)

_ERROR = {
    "description": "A catalogue entry (13000-13038); X-Pisano-Mock-Reason says why.",
    "content": {"application/json": {"schema": "CatalogueError"}},
}
_THROTTLED = {"description": "Throttled: `Retry later` as text/plain (default profile)."}


def _json(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(*names: str) -> list[dict[str, Any]]:
    return [{"in": "query", "name": n, "schema": {"type": "string"}} for n in names]


# One row per path: (path, method, operation). Schemas are referenced by their registered names.
OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "/v1/email_campaigns/{campaign_id}/email_sharings",
        "post",
        {
            "summary": "Share an email campaign's survey with recipients (Pisano's API).",
            "parameters": [
                {
                    "in": "path",
                    "name": "campaign_id",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "security": [{"PisanoToken": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": "EmailSharing"}},
            },
            "responses": {"200": _json("EmailSharingAccepted"), "4XX": _ERROR, "429": _THROTTLED},
        },
    ),
    ("/__mock/health", "get", {"responses": {"200": _json("Health")}}),
    ("/__mock/reset", "post", {"responses": {"200": _json("Status")}}),
    (
        "/__mock/requests",
        "get",
        {"parameters": _query("since", "limit"), "responses": {"200": _json("RequestsPage")}},
    ),
    (
        "/__mock/sharings",
        "get",
        {
            "parameters": _query("since", "limit", "campaign_id", "email"),
            "responses": {"200": _json("SharingsPage")},
        },
    ),
    ("/__mock/clock", "get", {"responses": {"200": _json("Clock")}}),
    (
        "/__mock/clock",
        "post",
        {
            "requestBody": {"content": _json("ClockChange")["content"]},
            "responses": {"200": _json("Clock"), "400": _ERROR},
        },
    ),
    (
        "/__mock/faults",
        "post",
        {
            "requestBody": {"content": _json("Fault")["content"]},
            "responses": {"201": {"description": "Added; its id"}, "400": _ERROR},
        },
    ),
    ("/__mock/faults", "get", {"responses": {"200": {"description": "Live faults"}}}),
    ("/__mock/faults", "delete", {"responses": {"200": _json("Status")}}),
    ("/__mock/throttle", "get", {"responses": {"200": {"description": "Counters per key"}}}),
    (
        "/__mock/fixtures",
        "post",
        {
            "requestBody": {"content": {"application/json": {"schema": "Fixture"}}},
            "responses": {"201": _json("Status", "Added"), "400": _ERROR},
        },
    ),
]

SCHEMAS = {
    "EmailSharing": schemas.EmailSharingSchema,
    "EmailSharingAccepted": schemas.EmailSharingAcceptedSchema,
    "CatalogueError": schemas.CatalogueErrorSchema,
    "Status": schemas.StatusSchema,
    "Health": schemas.HealthSchema,
    "RequestsPage": schemas.RequestsPageSchema,
    "SharingsPage": schemas.SharingsPageSchema,
    "Fixture": FixtureSchema,
    "Clock": schemas.ClockSchema,
    "ClockChange": schemas.ClockChangeSchema,
    "Fault": FaultSchema,
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
    return orjson.dumps(spec.to_dict())


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    return Response(openapi_document(), 200, content_type="application/json")
