"""SPEC 1.5 on a live server: SMS sharing, every rule of the ordered table, numbers, forms."""

from __future__ import annotations

import pytest

from contracts.pytest_plugin import DEFAULT_CAMPAIGN
from tests.conftest import AUTH_RULES, SHARINGS_PATH

SMS_CAMPAIGN = "00000000-0000-4000-8000-000000000501"  # SPEC 1.5's default fixture
NO_FLOW_SMS = "00000000-0000-4000-8000-000000050105"
OTHER_ACCOUNTS_SMS = "00000000-0000-4000-8000-000000050113"
VALID = {"phone_numbers": ["5321112233"]}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def sms_path(campaign_id: str = SMS_CAMPAIGN) -> str:
    return f"/v1/sms_campaigns/{campaign_id}/sms_sharings"


PATH = sms_path()


@pytest.fixture
def sms(api, pisano_mock):
    """The default fixture, plus SMS campaigns without a flow and of another account."""
    pisano_mock.add_fixtures(
        {
            "campaigns": {
                NO_FLOW_SMS: {"account": "acme", "channel": "sms", "flow": False},
                OTHER_ACCOUNTS_SMS: {"account": "globex", "channel": "sms"},
            }
        }
    )
    return api


# (rule of SPEC 1.4/1.5, request as keyword arguments of Api.post, expected code). Each row also
# breaks every LATER rule, so that it proves the order: the earliest rule must be the one that
# answers.
RULES = [
    ("1 no route", dict(path="/v1/sms_campaigns/x/nothing", data=b"{"), 13002),
    *AUTH_RULES,
    ("8 unknown campaign", dict(path=sms_path("nope"), data=b"{"), 13002),
    ("8 an email campaign", dict(path=sms_path(DEFAULT_CAMPAIGN), data=b"{"), 13002),
    ("9 another account's campaign", dict(path=sms_path(OTHER_ACCOUNTS_SMS), data=b"{"), 13013),
    ("9 campaign without flow", dict(path=sms_path(NO_FLOW_SMS), data=b"{"), 13005),
    ("10 not JSON", dict(data=b"{"), 13000),
    ("10 JSON array", dict(body=[{"phone_numbers": []}]), 13000),
    ("11 phone_numbers absent", dict(body={"emails": ["a@example.com"], "x": []}), 13015),
    ("12 phone_numbers empty", dict(body={"phone_numbers": [], "custom_attributes": 1}), 13028),
    ("12 phone_numbers a string (JSON)", dict(body={"phone_numbers": "5321112233"}), 13028),
    ("12 phone_numbers null", dict(body={"phone_numbers": None}), 13028),
    ("12 a number not a string", dict(body={"phone_numbers": ["5321112233", 5321112234]}), 13028),
    ("12 letters", dict(body={"phone_numbers": ["532111223a", "532111223a"]}), 13028),
    ("12 30 digits", dict(body={"phone_numbers": ["1" * 30, "1" * 30]}), 13028),
    ("12 16 digits", dict(body={"phone_numbers": ["1" * 16]}), 13028),
    ("12 6 digits", dict(body={"phone_numbers": ["123456"]}), 13028),
    ("12 an empty string", dict(body={"phone_numbers": ["", ""]}), 13028),
    ("12 only separators", dict(body={"phone_numbers": ["+ - ( ) ."]}), 13028),
    ("12 two leading +", dict(body={"phone_numbers": ["++905321112233"]}), 13028),
    ("12 a + inside", dict(body={"phone_numbers": ["90+5321112233"]}), 13028),
    ("12 Arabic-Indic digits", dict(body={"phone_numbers": ["٥٣٢١١١٢٢٣٣"]}), 13028),
    ("12 custom_attributes a list", dict(body={**VALID, "custom_attributes": []}), 13028),
    (
        "12 custom_attributes key not a number as sent",
        dict(
            body={
                "phone_numbers": ["532 111 22 33", "5321112233"],
                "custom_attributes": {"5321112233x": {}},
            }
        ),
        13028,
    ),
    (
        "12 custom_attributes keyed by the normalised number",
        dict(body={"phone_numbers": ["532 111 22 33"], "custom_attributes": {"5321112233": {}}}),
        13028,
    ),
    (
        "12 transactional_data key not a recipient",
        dict(body={**VALID, "transactional_data": {"5329999999": {}}}),
        13028,
    ),
    (
        "12 built_in_responses wrong type",
        dict(body={**VALID, "built_in_responses": {"NPS": "ten"}}),
        13028,
    ),
    ("13 duplicate", dict(body={"phone_numbers": ["5321112233", "5321112233"]}), 13017),
    (
        "13 duplicate after normalisation",
        dict(body={"phone_numbers": ["+90 (532) 111-22-33", "905321112233"]}),
        13017,
    ),
    (
        "13 duplicate with dots",
        dict(body={"phone_numbers": ["532.111.22.33", "5321112233"]}),
        13017,
    ),
]


@pytest.mark.parametrize(("rule", "request_kwargs", "code"), RULES, ids=[r[0] for r in RULES])
def test_each_rule_answers_in_order(sms, pisano_mock, rule, request_kwargs, code):
    response = sms.post(**{"path": PATH, **request_kwargs})
    assert response.json()["code"] == code, response.headers.get("X-Pisano-Mock-Reason")
    assert response.headers["X-Pisano-Mock-Reason"]
    assert pisano_mock.sharings() == []
    [entry] = pisano_mock.requests()
    assert entry["code"] == code


VALID_NUMBERS = [
    "5321112233",  # Pisano's samples: 10 digits, no +
    "+905321112233",
    "+90 (532) 111-22-33",
    "532.111.22.33",
    "1234567",  # 7 digits
    "123456789012345",  # 15 digits
    "+1 234 567",
]


@pytest.mark.parametrize("number", VALID_NUMBERS)
def test_valid_numbers_are_accepted_as_sent(sms, pisano_mock, number):
    response = sms.post({"phone_numbers": [number]}, path=PATH)
    assert response.status_code == 200, response.headers.get("X-Pisano-Mock-Reason")
    [sharing] = pisano_mock.sharings()
    assert sharing["phone_number"] == number


def test_accepted_body_and_sharings(sms, pisano_mock):
    numbers = ["+90 532 111 22 33", "5324445566"]
    body = {
        "phone_numbers": numbers,
        "custom_attributes": {numbers[0]: {"name": "Ada", "external_id": "7"}},
        "transactional_data": {numbers[1]: {"Segment": "Gold"}},
        "built_in_responses": {"NPS": 9},
    }
    response = sms.post(body, path=PATH)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    first = pisano_mock.sharings()[0]["id"]
    assert response.content == (
        b'{"status":"ok","campaign_id":"' + SMS_CAMPAIGN.encode() + b'","count":2,'
        b'"sharings":{"+90 532 111 22 33":%d,"5324445566":%d}}' % (first, first + 1)
    )
    ada, other = pisano_mock.sharings()
    assert ada["channel"] == "sms" and "email" not in ada
    assert (ada["phone_number"], ada["custom_attributes"]) == (
        numbers[0],
        {"name": "Ada", "external_id": "7"},
    )
    assert other["transactional_data"] == {"Segment": "Gold"}
    assert ada["built_in_responses"] == {"NPS": 9} and ada["trigger"] == "api"
    assert ada["request_id"] == int(response.headers["X-Pisano-Mock-Request-Id"])


def test_sharings_filter_by_phone_number_compares_normalised(sms, pisano_mock):
    sms.post({"phone_numbers": ["+90 532 111 22 33", "5324445566"]}, path=PATH)
    sms.post({"emails": ["a@example.com"]})
    found = pisano_mock.sharings(phone_number="905321112233")
    assert [s["phone_number"] for s in found] == ["+90 532 111 22 33"]
    assert pisano_mock.sharings(email="5324445566") == []  # an email filter finds no SMS
    assert [s["email"] for s in pisano_mock.sharings(email="A@example.com")] == ["a@example.com"]


def test_sharings_filters_email_and_phone_number_together_are_400(sms, pisano_mock):
    answer = sms.request("GET", "/__mock/sharings?email=a%40example.com&phone_number=5321112233")
    assert answer.status_code == 400
    assert "not both" in answer.json()["reason"]


def test_the_email_endpoint_with_an_sms_campaign_is_13002(api, pisano_mock):
    response = api.post(
        {"emails": ["a@example.com"]}, path=SHARINGS_PATH.replace(DEFAULT_CAMPAIGN, SMS_CAMPAIGN)
    )
    assert (response.status_code, response.json()["code"]) == (404, 13002)
    assert "sms campaign" in response.headers["X-Pisano-Mock-Reason"]


def test_form_repeated_key_without_brackets_keeps_the_last_and_says_so(sms, pisano_mock):
    response = sms.post(
        data="phone_numbers=5321112233&phone_numbers=5324445566&phone_numbers=5327778899",
        headers=FORM,
        path=PATH,
    )
    assert response.status_code == 200
    assert [s["phone_number"] for s in pisano_mock.sharings()] == ["5327778899"]
    assert "phone_numbers: 2 value(s) lost" in response.headers["X-Pisano-Mock-Warning"]
    assert any("phone_numbers: 2 value(s) lost" in w for w in pisano_mock.requests()[0]["warnings"])


def test_form_with_brackets_is_a_list_keyed_by_the_number_as_sent(sms, pisano_mock):
    data = (
        "phone_numbers[]=%2B90%20532%20111%2022%2033&phone_numbers[]=5324445566"
        "&custom_attributes[%2B90%20532%20111%2022%2033][name]=Ada"
    )
    response = sms.post(data=data, headers=FORM, path=PATH)
    assert response.status_code == 200, response.headers.get("X-Pisano-Mock-Reason")
    ada, _ = pisano_mock.sharings()
    assert (ada["phone_number"], ada["custom_attributes"]) == ("+90 532 111 22 33", {"name": "Ada"})


def test_form_single_value_counts_as_one_item_list(sms, pisano_mock):
    assert sms.post(data="phone_numbers=5321112233", headers=FORM, path=PATH).status_code == 200
    assert [s["phone_number"] for s in pisano_mock.sharings()] == ["5321112233"]


def test_more_than_5000_is_flagged_naming_phone_numbers(sms, pisano_mock):
    numbers = [f"53{i:08d}" for i in range(5001)]
    response = sms.post({"phone_numbers": numbers}, path=PATH)
    assert response.status_code == 200
    assert "phone_numbers: 5001 recipients" in response.headers["X-Pisano-Mock-Warning"]


def test_path_forms_are_tolerated(sms):
    path = "//v1///sms_campaigns//" + SMS_CAMPAIGN + "//sms_sharings//"
    assert sms.post(VALID, path=path).status_code == 200
