"""SPEC 1.1 and 1.4 on a live server: every rule of the ordered table, auth forms, paths, forms."""

from __future__ import annotations

import pytest

from contracts.pytest_plugin import DEFAULT_CAMPAIGN
from tests.conftest import AUTH_RULES, SHARINGS_PATH

NO_FLOW = "00000000-0000-4000-8000-000000013005"
OTHER_ACCOUNTS = "00000000-0000-4000-8000-000000013013"
VALID = {"emails": ["ada@example.com"]}


def sharing_path(campaign_id: str) -> str:
    return f"/v1/email_campaigns/{campaign_id}/email_sharings"


# (rule of SPEC 1.4, request as keyword arguments of Api.post, expected code). Each row also breaks
# every LATER rule, so that it proves the order: the earliest rule must be the one that answers.
RULES = [
    ("1 no route", dict(path="/v1/email_campaigns/x/nothing", data=b"{"), 13002),
    ("1 no route, outside the API", dict(path="/", data=b"{"), 13002),
    *AUTH_RULES,
    ("5 Basic", dict(headers={"Authorization": "Basic eHl6"}, data=b"{"), 13030),
    ("8 unknown campaign", dict(path=sharing_path("nope"), data=b"{"), 13002),
    ("9 another account's campaign", dict(path=sharing_path(OTHER_ACCOUNTS), data=b"{"), 13013),
    ("9 campaign without flow", dict(path=sharing_path(NO_FLOW), data=b"{"), 13005),
    ("10 not JSON", dict(data=b"{"), 13000),
    ("10 empty body", dict(data=b""), 13000),
    ("10 JSON array", dict(body=[{"emails": []}]), 13000),
    ("10 JSON string", dict(body="emails"), 13000),
    (
        "10 form not parseable",
        dict(data="emails=%zz", headers={"Content-Type": "application/x-www-form-urlencoded"}),
        13000,
    ),
    ("11 emails absent", dict(body={"custom_attributes": []}), 13015),
    ("12 emails empty", dict(body={"emails": [], "x": 1}), 13028),
    ("12 emails a string (JSON)", dict(body={"emails": "a@example.com"}), 13028),
    ("12 emails null", dict(body={"emails": None}), 13028),
    ("12 an email not a string", dict(body={"emails": ["a@example.com", 7]}), 13028),
    ("12 not an address", dict(body={"emails": ["a@example.com", "a@example.com", "nope"]}), 13028),
    ("12 custom_attributes a list", dict(body={**VALID, "custom_attributes": []}), 13028),
    (
        "12 custom_attributes value a string",
        dict(body={**VALID, "custom_attributes": {"ada@example.com": "x"}}),
        13028,
    ),
    ("12 transactional_data a string", dict(body={**VALID, "transactional_data": "x"}), 13028),
    ("12 built_in_responses a list", dict(body={**VALID, "built_in_responses": [1]}), 13028),
    (
        "12 custom_attributes key not a recipient",
        dict(
            body={
                "emails": ["a@example.com", "A@example.com"],
                "custom_attributes": {"b@example.com": {}},
            }
        ),
        13028,
    ),
    (
        "12 transactional_data key not a recipient",
        dict(body={**VALID, "transactional_data": {"b@example.com": {}}}),
        13028,
    ),
    (
        "12 built_in_responses wrong type",
        dict(body={**VALID, "built_in_responses": {"NPS": "ten"}}),
        13028,
    ),
    (
        "12 built_in_responses bad date",
        dict(body={**VALID, "built_in_responses": {"VisitDate": "2024-02-30"}}),
        13028,
    ),
    (
        "12 built_in_responses bad date time",
        dict(body={**VALID, "built_in_responses": {"VisitTime": "2024-02-03T10:00:00"}}),
        13028,
    ),
    (
        "12 built_in_responses bool as integer",
        dict(body={**VALID, "built_in_responses": {"NPS": True}}),
        13028,
    ),
    (
        "13 duplicate",
        dict(body={"emails": ["a@example.com", "b@example.com", "A@EXAMPLE.com"]}),
        13017,
    ),
]


@pytest.mark.parametrize(("rule", "request_kwargs", "code"), RULES, ids=[r[0] for r in RULES])
def test_each_rule_answers_in_order(api, pisano_mock, rule, request_kwargs, code):
    response = api.post(**request_kwargs)
    assert response.json()["code"] == code, response.headers.get("X-Pisano-Mock-Reason")
    assert response.headers["X-Pisano-Mock-Reason"]
    assert pisano_mock.sharings() == []
    [entry] = pisano_mock.requests()
    assert entry["code"] == code
    assert entry["reason"] == response.headers["X-Pisano-Mock-Reason"] or len(entry["reason"]) > 250


@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_the_endpoint_are_13002(api, pisano_mock, method):
    response = api.request(method, SHARINGS_PATH)
    assert (response.status_code, response.json()["code"]) == (404, 13002)
    assert pisano_mock.requests()[0]["method"] == method


def test_get_on_the_endpoint_is_13002(api):
    response = api.request("GET", SHARINGS_PATH)
    assert response.status_code == 404
    assert (
        response.content
        == b'{"status":"NOT_FOUND","code":13002,"message":"Requested resource not found!"}'
    )


def test_accepted_body_is_recorded_with_every_field(api, pisano_mock):
    body = {
        "emails": ["ada@example.com", "bob+tag@example.org"],
        "custom_attributes": {
            "ada@example.com": {"name": "Ada", "external_id": "7", "phone_number": "5551234567"}
        },
        "transactional_data": {"bob+tag@example.org": {"Segment": "Gold", "Amount": 12.5}},
        "built_in_responses": {
            "NPS": 9,
            "Satisfied": True,
            "Score": 4,
            "Tags": ["a"],
            "VisitDate": "2024-02-29",
            "VisitTime": "2024-02-29 23:59:59",
        },
    }
    response = api.post(body)
    assert response.status_code == 200
    receipts = response.json()
    assert receipts["count"] == 2
    sharings = pisano_mock.sharings()
    assert {s["email"]: s["id"] for s in sharings} == receipts["sharings"]
    ada, bob = sharings
    assert ada["custom_attributes"] == body["custom_attributes"]["ada@example.com"]
    assert bob["transactional_data"] == {"Segment": "Gold", "Amount": 12.5}
    assert ada["built_in_responses"] == body["built_in_responses"]
    assert ada["campaign_id"] == DEFAULT_CAMPAIGN
    assert ada["request_id"] == int(response.headers["X-Pisano-Mock-Request-Id"])


AUTH_FORMS = [
    "Token token=test-token",
    "Token token= test-token",
    'Token token="test-token"',
    "Bearer test-token",
    "test-token",
]


@pytest.mark.parametrize("header", AUTH_FORMS)
def test_every_auth_form_is_accepted(api, header):
    assert api.post(VALID, headers={"Authorization": header}).status_code == 200


@pytest.mark.parametrize(
    "header", ["", "Basic dGVzdA==", "Token test-token", "Bearer ", "Token token=", "two words"]
)
def test_other_auth_headers_are_13030(api, header):
    assert api.post(VALID, headers={"Authorization": header}).json()["code"] == 13030


def test_absent_authorization_is_13030(api):
    response = api.session.post(api.base_url + SHARINGS_PATH, json=VALID)
    assert response.json()["code"] == 13030
    assert "absent" in response.headers["X-Pisano-Mock-Reason"]


def test_auth_forms_setting_narrows_what_is_accepted(server_with):
    from mockserver.settings import Fidelity

    with server_with(fidelity=Fidelity(auth_forms=("token",))) as (api, _):
        assert api.post(VALID).status_code == 200
        assert (
            api.post(VALID, headers={"Authorization": "Bearer test-token"}).json()["code"] == 13030
        )


PATHS = [
    SHARINGS_PATH,
    SHARINGS_PATH + "/",
    "/v1//email_campaigns/" + DEFAULT_CAMPAIGN + "/email_sharings",
    "//v1///email_campaigns//" + DEFAULT_CAMPAIGN + "//email_sharings//",
]


@pytest.mark.parametrize("path", PATHS)
def test_path_forms_are_tolerated_without_redirect(api, pisano_mock, path):
    response = api.post(VALID, path=path)
    assert response.status_code == 200
    assert not response.history
    # Python's http.server folds a leading "//" to "/" before any WSGI code sees the path.
    assert pisano_mock.requests()[0]["path"] == "/" + path.lstrip("/")


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_form_with_brackets_is_a_list(api, pisano_mock):
    data = (
        "emails[]=a%40example.com&emails[]=b%40example.com"
        "&custom_attributes[a%40example.com][name]=Ada"
    )
    response = api.post(data=data, headers=FORM)
    assert response.status_code == 200
    assert "X-Pisano-Mock-Warning" not in response.headers
    assert [s["email"] for s in pisano_mock.sharings()] == ["a@example.com", "b@example.com"]
    assert pisano_mock.sharings()[0]["custom_attributes"] == {"name": "Ada"}


def test_form_repeated_key_without_brackets_keeps_the_last_and_says_so(api, pisano_mock):
    response = api.post(
        data="emails=a%40example.com&emails=b%40example.com&emails=c%40example.com", headers=FORM
    )
    assert response.status_code == 200
    assert [s["email"] for s in pisano_mock.sharings()] == ["c@example.com"]
    assert "emails: 2 value(s) lost" in response.headers["X-Pisano-Mock-Warning"]
    assert any("emails: 2 value(s) lost" in w for w in pisano_mock.requests()[0]["warnings"])


def test_form_single_string_counts_as_one_item_list(api, pisano_mock):
    assert api.post(data="emails=a%40example.com", headers=FORM).status_code == 200
    assert [s["email"] for s in pisano_mock.sharings()] == ["a@example.com"]


def test_form_built_in_responses_are_read_as_their_schema_type(api):
    ok = "emails[]=a%40example.com&built_in_responses[NPS]=9&built_in_responses[Satisfied]=true"
    assert api.post(data=ok, headers=FORM).status_code == 200
    bad = "emails[]=b%40example.com&built_in_responses[NPS]=nine"
    assert api.post(data=bad, headers=FORM).json()["code"] == 13028


def test_form_type_conflict_is_13000(api):
    assert api.post(data="emails=a&emails[]=b", headers=FORM).json()["code"] == 13000


def test_form_bodies_can_be_turned_off(server_with):
    from mockserver.settings import Fidelity

    with server_with(fidelity=Fidelity(form_bodies=False)) as (api, _):
        assert api.post(data="emails[]=a%40example.com", headers=FORM).json()["code"] == 13000


def test_more_than_5000_is_accepted_and_flagged(api, pisano_mock):
    emails = [f"r{i}@example.com" for i in range(5001)]
    response = api.post({"emails": emails})
    assert response.status_code == 200
    assert "5001 recipients" in response.headers["X-Pisano-Mock-Warning"]
    assert len(pisano_mock.sharings()) == 5001
    assert "5001 recipients" in pisano_mock.requests()[0]["warnings"][0]


def test_strict_batch_limit_refuses_more_than_5000(server_with):
    from mockserver.settings import Fidelity

    with server_with(fidelity=Fidelity(strict_batch_limit=True)) as (api, mock):
        assert api.post({"emails": [f"r{i}@example.com" for i in range(5000)]}).status_code == 200
        response = api.post({"emails": [f"s{i}@example.com" for i in range(5001)]})
        assert response.json()["code"] == 13028
        assert len(mock.sharings()) == 5000


def test_reason_header_is_ascii_and_bounded(api, pisano_mock):
    stray = "çok-uzun-" + "x" * 400 + "😀@example.com"
    response = api.post({"emails": ["a@example.com"], "custom_attributes": {stray: {}}})
    header = response.headers["X-Pisano-Mock-Reason"]
    assert header.isascii() and len(header) <= 300
    assert header.startswith('custom_attributes: key "\\u00e7ok-uzun-')
    assert stray in pisano_mock.requests()[0]["reason"]


def test_reason_header_drops_control_characters(api):
    response = api.post({"emails": ["a\tb\n@example.com"]})
    assert response.json()["code"] == 13028
    assert "\t" not in response.headers["X-Pisano-Mock-Reason"]


def test_request_id_header_on_every_answer(api, pisano_mock):
    answers = [api.post(VALID), api.post(data=b"{"), api.request("GET", "/nowhere")]
    ids = [int(r.headers["X-Pisano-Mock-Request-Id"]) for r in answers]
    assert ids == [entry["id"] for entry in pisano_mock.requests()]
    assert ids == sorted(set(ids))


def test_unknown_fields_are_ignored_with_a_warning(api):
    response = api.post({**VALID, "emial": "typo"})
    assert response.status_code == 200
    assert "emial" in response.headers["X-Pisano-Mock-Warning"]


def test_missing_content_type_is_read_as_json_with_a_warning(api):
    response = api.post(
        data=b'{"emails": ["a@example.com"]}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200
    assert "text/plain" in response.headers["X-Pisano-Mock-Warning"]


def test_integer_beyond_64_bits_is_read_as_a_float_not_a_500(api, pisano_mock):
    big = b"1" + b"0" * 30
    response = api.post(
        data=b'{"emails": ["a@example.com"], "built_in_responses": {"NPS": ' + big + b"}}"
    )
    assert response.json()["code"] == 13028
    assert "1e+30 is not of schema type integer" in response.headers["X-Pisano-Mock-Reason"]


def test_lone_surrogate_is_13000(api):
    response = api.post(data=rb"""{"emails": ["a@example.com"], "x": "\ud800"}""")
    assert response.json()["code"] == 13000


@pytest.mark.parametrize("path", ["endpoint", "/__mock/health"])
def test_a_websocket_upgrade_header_is_routed_as_any_request(api, path):
    # Werkzeug took `Connection: Upgrade` + `Upgrade: websocket` for a websocket handshake and
    # matched no rule: 13002 "no route" for a route that exists. Rails ignores the header.
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket"}
    if path == "endpoint":
        answer = api.post({"emails": ["w@example.com"]}, headers=upgrade)
    else:
        answer = api.request("GET", path, headers=upgrade)
    assert answer.status_code == 200, answer.text
