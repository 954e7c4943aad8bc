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
from .api.sharing import ENDPOINTS, Endpoint, OpenApiRow
from .catalogue import CATALOGUE
from .faults import FAULT_RULES, FaultSchema, FaultStateSchema
from .headers import ADMIN_TOKEN, FORCE_ERROR, HEADER_LIMIT, REASON, REQUEST_ID, WARNING
from .settings import FixtureSchema

blueprint = Blueprint("openapi", __name__)

# -- the emulated API's answers -------------------------------------------------------------------

_INTEGER = {"type": "integer", "minimum": 0}
# Headers an answer of the emulated API may carry; only the request id is on every one.
_API_HEADERS: dict[str, dict[str, Any]] = {
    REQUEST_ID: {
        "description": "The id of this request's journal entry (`GET /__mock/requests`).",
        "required": True,
        "schema": _INTEGER,
    },
    REASON: {
        "description": "Why the request was not accepted as sent: a catalogue refusal (naming "
        "the field, the value and the rule), the throttle's tier, or the scripted fault that "
        "answered (ASCII, at most 300 characters; the journal keeps the full text).",
        "schema": {"type": "string", "maxLength": HEADER_LIMIT},
    },
    WARNING: {
        "description": "What was accepted but looks wrong (e.g. a body read as JSON whose "
        "Content-Type said otherwise), `; `-separated.",
        "schema": {"type": "string", "maxLength": HEADER_LIMIT},
    },
    "Retry-After": {
        "description": "Seconds to wait: the `rich` profile's 429, or a scripted fault's "
        "`retry_after`.",
        "schema": _INTEGER,
    },
    **{
        f"RateLimit-{part}": {
            "description": f"`rich` profile: {meaning} of the tier closest to refusing.",
            "schema": _INTEGER,
        }
        for part, meaning in (
            ("Limit", "the limit"),
            ("Remaining", "requests left in the window"),
            ("Reset", "seconds until the window ends"),
        )
    },
}
_FAULT_TEXT = {
    "text/plain": {
        "schema": {"type": "string"},
        "example": "Service Unavailable\n",
    }
}


def _api_answer(description: str, content: dict[str, Any]) -> dict[str, Any]:
    # Any answer may carry the reason: a scripted fault can answer with any status, 200 included.
    return {"description": description, "content": content, "headers": _API_HEADERS}


_API_RESPONSES = {  # the 200 is each endpoint's (_api_operation)
    "4XX": _api_answer(
        "A catalogue entry (13000-13038), Pisano's body byte for byte; X-Pisano-Mock-Reason says "
        "why. A missing or malformed Authorization is 400/13030 and an unknown token 401/13001, "
        "as Pisano answers (not a generic 401). text/plain: a scripted fault's status, its "
        "reason phrase as the body.",
        {"application/json": {"schema": "CatalogueError"}, **_FAULT_TEXT},
    ),
    "413": _api_answer(
        "13000: a body over `max_body_bytes` (counted as received, Content-Length or chunked).",
        {"application/json": {"schema": "CatalogueError"}, **_FAULT_TEXT},
    ),
    "429": _api_answer(
        "Throttled: `Retry later` as text/plain (default profile), JSON in the `rich` profile.",
        {"text/plain": {"schema": {"type": "string"}}, "application/json": {"schema": "Throttled"}},
    ),
    "5XX": _api_answer(
        "A scripted fault's status (`POST /__mock/faults` with `status`), its reason phrase as "
        "the body (`Error` when it has none, e.g. 599).",
        _FAULT_TEXT,
    ),
    "default": _api_answer(
        "A scripted fault's status with no other entry here (any of 201-399).", _FAULT_TEXT
    ),
}

# A Rack-style form (setting `form_bodies`, on by default): what JSON Schema can say of it.
_LIST_FORM_BODY = (
    "Rack-style keys: `{field}[]=a&{field}[]=b` (a lone `{field}=` value counts as a one-item "
    "list; a repeated key without `[]` keeps its last value, with a warning), "
    "`custom_attributes[<recipient>][<field>]=v`, `transactional_data[<recipient>][<field>]=v`, "
    "`built_in_responses[<key>]=v`. Values are strings."
)
_ITEM_FORMATS = {
    "emails": {"type": "string", "format": "email"},
    "phone_numbers": {"type": "string"},
}


def _form_body(row: OpenApiRow) -> dict[str, Any]:
    field = row.form_field
    if field == "customer":
        return {
            "type": "object",
            "description": "Rack-style keys: `customer[email]=v`, `customer[<attribute>]=v`, "
            "`transactional_data[<field>]=v`, `built_in_responses[<key>]=v`, `options=true`. "
            "Values are strings.",
        }
    return {
        "type": "object",
        "description": _LIST_FORM_BODY.format(field=field),
        "required": [f"{field}[]"],
        "properties": {
            f"{field}[]": {"type": "array", "minItems": 1, "items": _ITEM_FORMATS[field]}
        },
    }


_FORCE_ERROR_PARAMETER = {
    "in": "header",
    "name": FORCE_ERROR,
    "required": False,
    "description": "Answer this catalogue entry, exactly, instead of processing the request "
    "(before the throttle, not counted by it). Anything else is 13028.",
    "schema": {"type": "integer", "enum": sorted(CATALOGUE)},
}

# -- the admin API's ------------------------------------------------------------------------------

_ADMIN_ERROR = {
    "description": "An admin error (ours): 400 a field is wrong, 401 admin token missing or "
    "wrong, 403 caller not on loopback without an admin token, or a foreign Origin or Host, "
    "404/405 no such route, 413 a body over max_body_bytes, 415 a write whose body is not JSON.",
    "content": {"application/json": {"schema": "AdminError"}},
}
_ADMIN_UNAUTHORIZED = {
    **_ADMIN_ERROR,
    "description": "An admin token is set and the request does not carry it.",
    "headers": {
        "WWW-Authenticate": {
            "description": 'Bearer realm="pisano-mock admin"',
            "schema": {"type": "string"},
        }
    },
}
# Either header carries the admin token; with none set, loopback callers need neither (`{}`).
_ADMIN_SECURITY: list[dict[str, list[str]]] = [{"AdminBearer": []}, {"AdminToken": []}, {}]
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "PisanoToken": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "Token token=<API TOKEN>",
    },
    "AdminBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The admin token (`serve --admin-token T`): `Authorization: Bearer T`.",
    },
    "AdminToken": {
        "type": "apiKey",
        "in": "header",
        "name": ADMIN_TOKEN,
        "description": "The admin token, when Authorization carries something else.",
    },
}


def _json(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# What a scrape answers: Prometheus text, or OpenMetrics when the Accept header asks for it.
_METRICS_ANSWER = {
    "description": "Counters of the emulated API's requests (admin calls not counted) by route "
    "template, method, status and catalogue code; their durations; requests refused by the "
    "throttle, recipients accepted, faults fired; the journal's and sharings' counts; the build. "
    "With --storage redis:// the totals of every worker and replica; counters survive "
    "POST /__mock/reset, the journal's counts follow it. No label holds a token or a request "
    "value.",
    "content": {
        "text/plain": {"schema": {"type": "string"}},
        "application/openmetrics-text": {"schema": {"type": "string"}},
    },
}


def _admin(
    answers: dict[str, Any], body: str | None = None, query: type | None = None
) -> dict[str, Any]:
    """An admin operation: its answers, every admin error, and what it takes."""
    operation: dict[str, Any] = {
        "tags": ["admin"],
        "security": _ADMIN_SECURITY,
        "responses": {**answers, "401": _ADMIN_UNAUTHORIZED, "4XX": _ADMIN_ERROR},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)["content"]}
    if query is not None:
        operation["parameters"] = [{"in": "query", "schema": query}]
    return operation


def _openapi_path(endpoint: Endpoint) -> str:
    return endpoint.rule.replace("<", "{").replace(">", "}")


def _api_operation(endpoint: Endpoint) -> dict[str, Any]:
    """A sharing endpoint's operation, from its row of the endpoint table (api/sharing.py)."""
    row = endpoint.openapi
    answers = {
        **_API_RESPONSES,
        "200": _api_answer(
            "Accepted (JSON); text/plain when a scripted fault answers 200.",
            {"application/json": {"schema": row.answer}, **_FAULT_TEXT},
        ),
    }
    path_parameter = {
        "in": "path",
        "name": endpoint.id_name,
        "required": True,
        "schema": {"type": "string"},
        "example": row.example,
    }
    return {
        "summary": row.summary,
        "description": row.description,
        "tags": ["pisano"],
        "parameters": [path_parameter, _FORCE_ERROR_PARAMETER],
        "security": [{"PisanoToken": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": row.body},
                "application/x-www-form-urlencoded": {"schema": _form_body(row)},
            },
        },
        "responses": answers,
    }


# One row per operation: (path, method, operation). Schemas are referenced by registered names.
OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    *((_openapi_path(endpoint), "post", _api_operation(endpoint)) for endpoint in ENDPOINTS),
    ("/__mock/health", "get", _admin({"200": _json("Health")})),
    ("/__mock/reset", "post", _admin({"200": _json("Status")})),
    ("/__mock/metrics", "get", _admin({"200": _METRICS_ANSWER})),
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
    **{name: schema for endpoint in ENDPOINTS for name, schema in endpoint.openapi.schemas.items()},
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
    "Throttled": schemas.ThrottledSchema,
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
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
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
