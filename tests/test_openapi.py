"""The OpenAPI document is what the server does: a short, deterministic schemathesis run.

`make fuzz` runs the same with ≥ 10,000 cases (README, "The admin API").
"""

from __future__ import annotations

import re

import pytest

from mockserver.app import create_app
from mockserver.catalogue import CATALOGUE
from mockserver.settings import Bounds, ThrottleSettings, load_settings
from tests.fuzz_openapi import fuzz


def test_schemathesis_finds_nothing_over_a_few_hundred_cases():
    run = fuzz(max_examples=40, seed=1)
    assert run.returncode == 0, run.output[-6000:]
    assert run.cases >= 300, run.output[-2000:]


# -- what the document states, against what the server does --------------------------------------

SHARING = "/v1/email_campaigns/{campaign_id}/email_sharings"
# Headers of ours (or the throttle's) an answer of the emulated API may carry.
OUR_HEADERS = {
    "x-pisano-mock-request-id",
    "x-pisano-mock-reason",
    "x-pisano-mock-warning",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
}
EMAILS = {"emails": ["a@example.com"]}


def declared_response(document: dict, status: int) -> dict | None:
    """The response the document declares for `status`, as OpenAPI picks it."""
    responses = document["paths"][SHARING]["post"]["responses"]
    return next(
        (responses[k] for k in (str(status), f"{status // 100}XX", "default") if k in responses),
        None,
    )


def assert_documented(document: dict, answer, scenario: str) -> None:
    declared = declared_response(document, answer.status_code)
    assert declared is not None, f"{scenario}: {answer.status_code} is not documented"
    media_type = answer.headers["Content-Type"].split(";")[0]
    assert media_type in declared["content"], (scenario, answer.status_code, media_type)
    sent = {name.lower() for name in answer.headers} & OUR_HEADERS
    assert sent <= {name.lower() for name in declared.get("headers", {})}, scenario


def fault_then_post(api, mock, **fault):
    mock.call("POST", "/__mock/faults", {**fault, "times": 1})
    return api.post(EMAILS)


SCENARIOS = {
    "accepted": lambda api, mock: api.post(EMAILS),
    "refused": lambda api, mock: api.post({}),
    "warned": lambda api, mock: api.post(
        data=b'{"emails":["a@example.com"]}', headers={"Content-Type": "text/plain"}
    ),
    "forced": lambda api, mock: api.post(EMAILS, headers={"X-Pisano-Mock-Error": "13036"}),
    "fault 599": lambda api, mock: fault_then_post(api, mock, status=599, retry_after=3),
    "fault 404": lambda api, mock: fault_then_post(api, mock, status=404),
    "fault 302": lambda api, mock: fault_then_post(api, mock, status=302),
    "fault 200": lambda api, mock: fault_then_post(api, mock, status=200),
    "too large": lambda api, mock: api.post({"emails": ["a@example.com"] * 100}),
    "throttled": lambda api, mock: [api.post(EMAILS) for _ in range(21)][-1],
}


@pytest.mark.parametrize("profile", ["rack_attack", "rich"])
def test_every_answer_of_the_sharing_endpoint_is_documented_with_its_headers(server_with, profile):
    settings = {
        "bounds": Bounds(max_body_bytes=1000),
        "throttle": ThrottleSettings(profile=profile),
    }
    with server_with(**settings) as (api, mock):
        document = mock.call("GET", "/openapi.json")
        statuses = set()
        for name, scenario in SCENARIOS.items():
            mock.reset()
            mock.call("POST", "/__mock/clock", {"set": 1_000_000_000})
            answer = scenario(api, mock)
            statuses.add(answer.status_code)
            assert_documented(document, answer, name)
        assert {200, 302, 400, 403, 404, 413, 429, 599} <= statuses  # every scenario did its part


def test_form_bodies_are_documented_and_accepted(api, pisano_mock):
    document = pisano_mock.call("GET", "/openapi.json")
    content = document["paths"][SHARING]["post"]["requestBody"]["content"]
    form = content["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["emails[]"]
    assert form["properties"]["emails[]"]["items"]["format"] == "email"
    answer = api.post(
        data="emails[]=a@example.com&emails[]=b@example.com",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200 and answer.json()["count"] == 2


def test_the_forcing_header_is_a_documented_parameter(pisano_mock):
    document = pisano_mock.call("GET", "/openapi.json")
    [forcing] = [
        p
        for p in document["paths"][SHARING]["post"]["parameters"]
        if p["name"] == "X-Pisano-Mock-Error"
    ]
    assert forcing["in"] == "header" and forcing["required"] is False
    assert forcing["schema"]["enum"] == sorted(CATALOGUE)


def test_admin_operations_state_the_admin_token(pisano_mock):
    document = pisano_mock.call("GET", "/openapi.json")
    schemes = document["components"]["securitySchemes"]
    assert schemes["AdminBearer"] == {**schemes["AdminBearer"], "type": "http", "scheme": "bearer"}
    assert (schemes["AdminToken"]["in"], schemes["AdminToken"]["name"]) == (
        "header",
        "X-Pisano-Mock-Admin-Token",
    )
    admin = [
        op
        for path, ops in document["paths"].items()
        if path.startswith("/__mock/")
        for op in ops.values()
    ]
    # 12, and issue 10-11's outbox, contacts, csv and workflows, and issue 12's inspector (with
    # its emails' .html and .txt)
    assert len(admin) == 24
    for operation in admin:
        # Either header, or none at all when no admin token is set.
        assert operation["security"] == [
            {"AdminBearer": []},
            {"AdminToken": []},
            {"AdminBasic": []},
            {},
        ]
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


# -- every route is documented (issue 11, polish item 1) -----------------------------------------

UNDOCUMENTED = {("/static/{filename}", "get"), ("/openapi.json", "get")}  # Flask's; the document


def routes(app) -> set[tuple[str, str]]:
    """Every (path, method) the app serves, spelled as OpenAPI spells a path."""
    found = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        found |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found - UNDOCUMENTED


def test_every_route_is_documented(pisano_mock):
    document = pisano_mock.call("GET", "/openapi.json")
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert routes(create_app(load_settings())) - documented == set()


def test_the_new_answers_are_stated(pisano_mock):
    paths = pisano_mock.call("GET", "/openapi.json")["paths"]
    eml = paths["/__mock/outbox/{message_id}.eml"]["get"]["responses"]
    assert list(eml["200"]["content"]) == ["message/rfc822"]
    csv = paths["/__mock/campaigns/{campaign_id}/csv"]["post"]
    assert set(csv["requestBody"]["content"]) == {"text/csv", "multipart/form-data"}
    assert csv["responses"]["200"]["content"]["application/json"]["schema"] == {
        "anyOf": [
            {"$ref": "#/components/schemas/EmailSharingAccepted"},
            {"$ref": "#/components/schemas/SmsSharingAccepted"},
        ]
    }
    page = paths["/s/{token}"]["get"]["responses"]
    assert "text/html" in page["200"]["content"]
    assert "application/json" in page["404"]["content"]
    assert set(paths["/l/{code}"]["get"]["responses"]) >= {"302", "404"}


CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
CSV = f"/__mock/campaigns/{CAMPAIGN}/csv"


def declared(document: dict, path: str, method: str, status: int) -> dict | None:
    responses = document["paths"][path][method]["responses"]
    keys = (str(status), f"{status // 100}XX", "default")
    return next((responses[k] for k in keys if k in responses), None)


def _first_message(api) -> str:
    api.post(EMAILS)
    message = api.request("GET", "/__mock/outbox").json()["messages"][0]
    return f"/__mock/outbox/{message['id']}.eml"


def _survey_link(api) -> str:
    sharing = api.request("GET", "/__mock/sharings").json()["sharings"]
    if not sharing:
        api.post(EMAILS)
        sharing = api.request("GET", "/__mock/sharings").json()["sharings"]
    return sharing[0]["link"].split("://", 1)[1].split("/", 1)[1]


# (documented path, method, what to send) for the routes of issues 10-11
NEW_ANSWERS = [
    ("/__mock/outbox", "get", lambda api: api.request("GET", "/__mock/outbox?limit=0")),
    ("/__mock/outbox", "get", lambda api: api.request("GET", "/__mock/outbox?limit=1")),
    ("/__mock/outbox/{message_id}.eml", "get", lambda api: api.request("GET", _first_message(api))),
    (
        "/__mock/outbox/{message_id}.eml",
        "get",
        lambda api: api.request("GET", "/__mock/outbox/9.eml"),
    ),
    ("/__mock/outbox/flush", "post", lambda api: api.request("POST", "/__mock/outbox/flush")),
    ("/__mock/contacts", "get", lambda api: api.request("GET", "/__mock/contacts")),
    (
        "/__mock/campaigns/{campaign_id}/csv",
        "post",
        lambda api: api.request(
            "POST", CSV, data=b"email\na@x.com\n", headers={"Content-Type": "text/csv"}
        ),
    ),
    (
        "/__mock/campaigns/{campaign_id}/csv",
        "post",
        lambda api: api.request("POST", CSV, files={"file": ("c.csv", b"email\nnope\n")}),
    ),
    (
        "/__mock/campaigns/{campaign_id}/csv",
        "post",
        lambda api: api.request("POST", CSV, files={"other": ("c.csv", b"email\n")}),
    ),
    ("/__mock/workflows", "get", lambda api: api.request("GET", "/__mock/workflows")),
    (
        "/__mock/workflows/{name}/run",
        "post",
        lambda api: api.request("POST", "/__mock/workflows/x/run"),
    ),
    ("/s/{token}", "get", lambda api: api.request("GET", "/" + _survey_link(api))),
    ("/s/{token}", "get", lambda api: api.request("GET", "/s/nope")),
    (
        "/s/{token}",
        "get",
        lambda api: api.request("GET", "/" + _survey_link(api) + "?responses=%%"),
    ),
    ("/l/{code}", "get", lambda api: api.request("GET", "/l/nope", allow_redirects=False)),
]


def test_every_answer_of_the_new_routes_is_documented(api, pisano_mock):
    document = pisano_mock.call("GET", "/openapi.json")
    seen = set()
    for path, method, send in NEW_ANSWERS:
        answer = send(api)
        seen.add((path, answer.status_code))
        response = declared(document, path, method, answer.status_code)
        assert response is not None, (path, answer.status_code)
        media_type = answer.headers.get("Content-Type", "").split(";")[0]
        assert media_type in response.get("content", {media_type: None}), (path, media_type)
    assert {status for path, status in seen} == {200, 400, 404}  # each scenario did its part
    assert {("/__mock/outbox/{message_id}.eml", 200), ("/s/{token}", 400)} <= seen
