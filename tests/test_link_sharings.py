"""SPEC 1.6 on a live server: link generation, every rule of the ordered table, the links."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from mockserver.links import decode_responses
from tests.conftest import AUTH_RULES

LINK_CHANNEL = "00000000-0000-4000-8000-000000000701"  # SPEC 1.6's default fixture
OTHER_ACCOUNTS_CHANNEL = "00000000-0000-4000-8000-000000070113"
VALID = {"customer": {"email": "ada@example.com"}}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def link_path(channel_id: str = LINK_CHANNEL) -> str:
    return f"/external/v1/link_sharings/{channel_id}/generate_link"


PATH = link_path()


@pytest.fixture
def link(api, pisano_mock):
    """The default fixture, plus a link channel of another account."""
    pisano_mock.add_fixtures({"link_channels": {OTHER_ACCOUNTS_CHANNEL: {"account": "globex"}}})
    return api


# (rule of SPEC 1.4 rows 1-7 then 1.6, request as keyword arguments of Api.post, expected code).
# Each row also breaks every LATER rule, so that it proves the order.
RULES = [
    ("1 no route", dict(path="/external/v1/link_sharings/x/nothing", data=b"{"), 13002),
    *AUTH_RULES,
    ("unknown channel", dict(path=link_path("nope"), data=b"{"), 13035),
    ("another account's channel", dict(path=link_path(OTHER_ACCOUNTS_CHANNEL), data=b"{"), 13013),
    ("not JSON", dict(data=b"{"), 13000),
    ("JSON array", dict(body=[VALID]), 13000),
    ("customer absent", dict(body={"built_in_responses": {"NPS": "ten"}}), 13015),
    ("customer a list", dict(body={"customer": [VALID["customer"]], "x": 1}), 13038),
    ("customer a string", dict(body={"customer": "ada@example.com"}), 13038),
    ("customer null", dict(body={"customer": None}), 13038),
    (
        "customer with no identity key",
        dict(body={"customer": {"Segment": "Gold"}, "built_in_responses": {"NPS": "ten"}}),
        13038,
    ),
    ("customer empty", dict(body={"customer": {}}), 13038),
    ("an identity value not a string", dict(body={"customer": {"external_id": 7}}), 13028),
    ("built_in_responses a list", dict(body={**VALID, "built_in_responses": []}), 13028),
    ("transactional_data a list", dict(body={**VALID, "transactional_data": []}), 13028),
    (
        "built_in_responses wrong type",
        dict(body={**VALID, "built_in_responses": {"NPS": "ten"}}),
        13028,
    ),
]


@pytest.mark.parametrize(("rule", "request_kwargs", "code"), RULES, ids=[r[0] for r in RULES])
def test_each_rule_answers_in_order(link, pisano_mock, rule, request_kwargs, code):
    response = link.post(**{"path": PATH, **request_kwargs})
    assert response.json()["code"] == code, response.headers.get("X-Pisano-Mock-Reason")
    assert response.headers["X-Pisano-Mock-Reason"]
    assert pisano_mock.sharings() == []
    [entry] = pisano_mock.requests()
    assert entry["code"] == code


def test_the_answer_is_a_survey_link_recorded_as_a_link_sharing(link, pisano_mock):
    customer = {"email": "ada@example.com", "external_id": "7", "name": "", "Tier": "Gold"}
    body = {
        "customer": customer,
        "transactional_data": {"Segment": "Gold"},
        "built_in_responses": {"NPS": 9, "Channel": "web"},
    }
    response = link.post(body, path=PATH)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    answer = response.json()
    assert list(answer) == ["status", "link"] and answer["status"] == "ok"
    [sharing] = pisano_mock.sharings()
    assert answer["link"] == sharing["link"]
    assert sharing["channel"] == "link" and sharing["campaign_id"] == LINK_CHANNEL
    assert sharing["email"] == "ada@example.com"
    assert sharing["customer"] == {"email": "ada@example.com", "name": "", "external_id": "7"}
    assert sharing["custom_attributes"] == customer
    assert sharing["transactional_data"] == {"Segment": "Gold"}
    assert sharing["request_id"] == int(response.headers["X-Pisano-Mock-Request-Id"])
    [responses] = parse_qs(urlsplit(answer["link"]).query)["responses"]
    assert decode_responses(responses) == [
        {"question_key": "NPS", "body": 9},
        {"question_key": "Channel", "option_key": "web"},
    ]


def test_a_customer_without_email_is_shown_with_email_null(link, pisano_mock):
    assert link.post({"customer": {"phone_number": "5321112233"}}, path=PATH).status_code == 200
    [sharing] = pisano_mock.sharings()
    assert sharing["email"] is None
    assert sharing["customer"] == {"phone_number": "5321112233"}


def test_empty_identity_values_are_accepted(link):
    assert link.post({"customer": {"email": "", "external_id": ""}}, path=PATH).status_code == 200


@pytest.mark.parametrize("options", [True, "true"])
def test_options_true_adds_a_short_link(link, pisano_mock, options):
    answer = link.post({**VALID, "options": options}, path=PATH).json()
    assert list(answer) == ["status", "link", "short_link"]
    assert "/l/" in answer["short_link"]
    followed = link.session.get(
        link.base_url + urlsplit(answer["short_link"]).path, allow_redirects=False
    )
    assert (followed.status_code, followed.headers["Location"]) == (302, answer["link"])


@pytest.mark.parametrize("options", [False, "false", None])
def test_options_false_or_null_add_no_short_link(link, options):
    response = link.post({**VALID, "options": options}, path=PATH)
    assert list(response.json()) == ["status", "link"]
    assert "X-Pisano-Mock-Warning" not in response.headers


@pytest.mark.parametrize("options", ["yes", 1, "True", {"short": True}])
def test_other_options_add_no_short_link_and_a_warning(link, options):
    response = link.post({**VALID, "options": options}, path=PATH)
    assert list(response.json()) == ["status", "link"]
    assert "options: " in response.headers["X-Pisano-Mock-Warning"]


def test_each_call_is_one_more_sharing_with_its_own_link(link, pisano_mock):
    first, second = (link.post(VALID, path=PATH).json()["link"] for _ in range(2))
    assert first != second
    assert len(pisano_mock.sharings()) == 2


def test_a_form_body(link, pisano_mock):
    data = (
        "customer[email]=ada%40example.com&customer[Tier]=Gold&options=true"
        "&built_in_responses[NPS]=9"
    )
    answer = link.post(data=data, headers=FORM, path=PATH).json()
    assert "short_link" in answer
    [sharing] = pisano_mock.sharings()
    assert sharing["custom_attributes"] == {"email": "ada@example.com", "Tier": "Gold"}


def test_a_form_customer_as_a_string_is_13038(link):
    assert link.post(data="customer=ada", headers=FORM, path=PATH).json()["code"] == 13038


def test_no_message_goes_to_the_outbox(link, pisano_mock):
    link.post(VALID, path=PATH)
    assert pisano_mock.call("GET", "/__mock/outbox")["messages"] == []


def test_a_fault_matching_campaign_id_matches_the_link_channel(link, pisano_mock):
    pisano_mock.add_fault(match={"campaign_id": LINK_CHANNEL}, error=13026, times=1)
    assert link.post(VALID, path=PATH).json()["code"] == 13026
    assert link.post(VALID, path=PATH).status_code == 200
