"""`GET /openapi.json`: OpenAPI 3 generated from the marshmallow schemas, never written by hand."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response
from marshmallow import fields

from . import inspector, schemas
from .api.sharing import ENDPOINTS, Endpoint, OpenApiRow
from .catalogue import CATALOGUE
from .faults import FAULT_RULES, FaultSchema, FaultStateSchema
from .headers import ADMIN_TOKEN, FORCE_ERROR, HEADER_LIMIT, REASON, REQUEST_ID, WARNING
from .outbox_admin import FlushSchema, OutboxQuerySchema
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
_ADMIN_SECURITY: list[dict[str, list[str]]] = [
    {"AdminBearer": []},
    {"AdminToken": []},
    {"AdminBasic": []},
    {},
]
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
    "AdminBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "HTTP Basic credentials whose password is the admin token, any user "
        "name: what a browser sends for the inspector page (`/__mock/ui`).",
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
    answers: dict[str, Any],
    body: str | None = None,
    query: type | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    """An admin operation: its answers, every admin error, and what it takes."""
    operation: dict[str, Any] = {
        "tags": ["admin"],
        "security": _ADMIN_SECURITY,
        "responses": {"401": _ADMIN_UNAUTHORIZED, "4XX": _ADMIN_ERROR, **answers},
    }
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": _json(body)["content"]}
    if query is not None:
        operation["parameters"] = [{"in": "query", "schema": query}]
    return operation


# -- issue 10-11's routes: the outbox, contacts, CSV uploads, workflows, the customer's pages -----

_EML = {
    "description": "The email as SMTP carries it (text and HTML alternatives), the same bytes each "
    "time; Content-Disposition names it `message-<id>.eml`. 404 (AdminError): no such message "
    "(never sent, dropped or reset), an sms message, or a campaign whose templates fail.",
    "content": {"message/rfc822": {"schema": {"type": "string"}}},
    "headers": {
        "Content-Disposition": {
            "description": 'attachment; filename="message-<id>.eml"',
            "schema": {"type": "string"},
        }
    },
}
_CSV_HEADERS = {
    **{name: _API_HEADERS[name] for name in (REASON, WARNING)},
    REQUEST_ID: {
        "description": "The upload's journal entry (`trigger: csv`), when it got one (access "
        "refusals come before).",
        "schema": _INTEGER,
    },
}


def _either(*names: str) -> dict[str, Any]:
    # anyOf, not oneOf: the answers are open objects, so one body may fit both.
    return {"anyOf": [{"$ref": f"#/components/schemas/{name}"} for name in names]}


_MESSAGE_ID = {"in": "path", "name": "message_id", "required": True, "schema": _INTEGER}
_CSV_ANSWERS = {
    "200": {
        "description": "The sharing endpoint's 200 for the campaign's channel: the file's rows "
        "shared as one API call would share them. X-Pisano-Mock-Warning: what was accepted but "
        "looks wrong.",
        "content": {
            "application/json": {"schema": _either("EmailSharingAccepted", "SmsSharingAccepted")}
        },
        "headers": _CSV_HEADERS,
    },
    "4XX": {
        "description": "A catalogue entry, as the sharing endpoint answers it (13002 unknown "
        "campaign, 13005 no flow, 13036 locked account, 13028/13017/13037 a line of the file, "
        "13000 too large), the reason naming the line; or an admin error (ours): 400 a multipart "
        "body without the field `file`, 401/403 access, 415 neither text/csv nor "
        "multipart/form-data.",
        "content": {"application/json": {"schema": _either("CatalogueError", "AdminError")}},
        "headers": _CSV_HEADERS,
    },
}
_CSV_BODY = {
    "required": True,
    "content": {
        "text/csv": {
            "schema": {"type": "string"},
            "example": "email,name\na@example.com,Ada\n",
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
    },
}


def _csv_upload() -> dict[str, Any]:
    operation = _admin(_CSV_ANSWERS)
    campaign = {
        "in": "path",
        "name": "campaign_id",
        "required": True,
        "schema": {"type": "string"},
        "example": "735c19a7-ee54-4b03-a84a-93dfe2a94a56",  # SPEC 2.1's default fixture
    }
    return {**operation, "parameters": [campaign], "requestBody": _CSV_BODY}


# What the customer's browser gets: not the API (no token, not journaled nor throttled).
_NOT_OURS = {
    "description": "13002 (Pisano's body): the token or code is not one this emulator made, or its "
    "sharing is no longer held (dropped by the bounds, or reset).",
    "content": {"application/json": {"schema": "CatalogueError"}},
    "headers": {REASON: _API_HEADERS[REASON]},
}
_PAGE_HEADERS = {
    name: {"schema": {"type": "string"}}
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "Cache-Control")
}


def _customer_page(parameter: str, answers: dict[str, Any], query: bool = False) -> dict[str, Any]:
    parameters = [{"in": "path", "name": parameter, "required": True, "schema": {"type": "string"}}]
    if query:
        parameters.append(
            {
                "in": "query",
                "name": "responses",
                "required": False,
                "description": "The prefilled answers: base64 of a UTF-8 JSON array (SPEC 1.7).",
                "schema": {"type": "string"},
            }
        )
    return {
        "tags": ["customer"],
        "security": [{}],
        "parameters": parameters,
        "responses": {**answers, "404": _NOT_OURS},
    }


_SURVEY_PAGE = _customer_page(
    "token",
    {
        "200": {
            "description": "The survey page: campaign, recipient, prefilled answers.",
            "content": {"text/html": {"schema": {"type": "string"}}},
            "headers": _PAGE_HEADERS,
        },
        "400": {
            "description": "The page, saying the link's `responses` does not decode.",
            "content": {"text/html": {"schema": {"type": "string"}}},
            "headers": _PAGE_HEADERS,
        },
    },
    query=True,
)
_SHORT_LINK = _customer_page(
    "code",
    {
        "302": {
            "description": "To the sharing's survey link, its responses as the long link has them.",
            "headers": {"Location": {"schema": {"type": "string"}}, **_PAGE_HEADERS},
        }
    },
)


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


# The inspector page (SPEC 2.7): a browser's, so its 401 asks for Basic credentials.
_INSPECTOR_401 = {
    **_ADMIN_UNAUTHORIZED,
    "headers": {"WWW-Authenticate": {"description": 'Basic realm="pisano-mock"', "schema": {}}},
}
_INSPECTOR_FILE = {
    "in": "path",
    "name": "filename",
    "required": True,
    "schema": {"type": "string", "example": "inspector.js"},
}
_INSPECTOR_OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "/__mock/ui",
        "get",
        _admin(
            {
                "200": {
                    "description": "The inspector page: journal, sharings, outbox, throttle, "
                    "faults, clock; live while open. Nothing loaded from elsewhere.",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                    "headers": _PAGE_HEADERS,
                },
                "401": _INSPECTOR_401,
            }
        ),
    ),
    (
        "/__mock/ui/poll",
        "post",
        _admin({"200": _json("InspectorPoll"), "401": _INSPECTOR_401}, body="InspectorPollQuery"),
    ),
    (
        "/__mock/ui/static/{filename}",
        "get",
        {
            **_admin(
                {
                    "200": {
                        "description": "The page's script or stylesheet.",
                        "content": {
                            "text/javascript": {"schema": {"type": "string"}},
                            "text/css": {"schema": {"type": "string"}},
                        },
                    },
                    "401": _INSPECTOR_401,
                }
            ),
            "parameters": [_INSPECTOR_FILE],
        },
    ),
    *(
        (
            f"/__mock/ui/outbox/{{message_id}}.{suffix}",
            "get",
            {
                **_admin(
                    {
                        "200": {
                            "description": f"An outbox message's {part}, framed by the page under "
                            "its own Content-Security-Policy (it fetches nothing); 404 "
                            f"(AdminError): no such message, or none {part}.",
                            "content": {media: {"schema": {"type": "string"}}},
                        },
                        "401": _INSPECTOR_401,
                    }
                ),
                "parameters": [_MESSAGE_ID],
            },
        )
        for suffix, part, media in (("html", "HTML", "text/html"), ("txt", "text", "text/plain"))
    ),
]


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
    (
        "/__mock/contacts",
        "get",
        _admin({"200": _json("ContactsPage")}, query=schemas.ContactsQuerySchema),
    ),
    ("/__mock/outbox", "get", _admin({"200": _json("OutboxPage")}, query=OutboxQuerySchema)),
    (
        "/__mock/outbox/{message_id}.eml",
        "get",
        {**_admin({"200": _EML}), "parameters": [_MESSAGE_ID]},
    ),
    (
        "/__mock/outbox/flush",
        "post",
        _admin({"200": _json("Flushed")}, body="Flush", body_required=False),
    ),
    ("/__mock/campaigns/{campaign_id}/csv", "post", _csv_upload()),
    (
        "/__mock/workflows",
        "get",
        _admin({"200": _json("Workflows")}, query=schemas.NoQuerySchema),
    ),
    (
        "/__mock/workflows/{name}/run",
        "post",
        {
            **_admin({"200": _json("WorkflowRan", "Ran now; 404 (AdminError): no such workflow")}),
            "parameters": [
                {"in": "path", "name": "name", "required": True, "schema": {"type": "string"}}
            ],
        },
    ),
    *_INSPECTOR_OPERATIONS,
    ("/s/{token}", "get", _SURVEY_PAGE),
    ("/l/{code}", "get", _SHORT_LINK),
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
    "OutboxPage": schemas.OutboxPageSchema,
    "Flush": FlushSchema,
    "Flushed": schemas.FlushedSchema,
    "ContactsPage": schemas.ContactsPageSchema,
    "Workflows": schemas.WorkflowsSchema,
    "WorkflowRan": schemas.WorkflowRanSchema,
    "InspectorPollQuery": inspector.PollSchema,
    "InspectorPoll": inspector.PollAnswerSchema,
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
