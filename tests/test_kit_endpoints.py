"""The kit on the SMS and link endpoints (SPEC 1.5, 1.6, 3): keys, what must arrive, and what the
emulator shows of a link that the kit reads back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings

from contracts.checks import link_responses, run_checks
from contracts.endpoints import SMS, link_key, normal_number
from contracts.model import Example, Observation
from contracts.strategies import customer_batches

LINK_CHANNEL = "00000000-0000-4000-8000-000000000701"


def test_a_link_sharing_shows_the_link_generate_link_answered(api, pisano_mock):
    # Before: /__mock/sharings typed a link channel's responses with no customer schema (it looked
    # the id up among campaigns only), so an `option` question came back as `body`.
    answer = api.post(
        {"customer": {"external_id": "L-1"}, "built_in_responses": {"Channel": "web"}},
        path=f"/external/v1/link_sharings/{LINK_CHANNEL}/generate_link",
    )
    assert answer.status_code == 200, answer.text
    (sharing,) = pisano_mock.sharings()
    assert link_responses(sharing["link"]) == [{"question_key": "Channel", "option_key": "web"}]
    assert sharing["link"] == answer.json()["link"]


# -- keys and generated customers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("+90 (532) 123-45-67", "905321234567"),
        ("5551234567", "5551234567"),
        ("555.123.4567", "5551234567"),
        ("+ 1 202 555 0143", "12025550143"),
    ],
)
def test_a_number_is_compared_as_spec_1_5_says(written, normal):
    assert normal_number(written) == normal


@pytest.mark.parametrize(
    ("customer", "key"),
    [
        ({"external_id": "A-1", "email": "a@example.com"}, "external_id=A-1"),
        ({"external_id": "", "email": "a@example.com", "name": "Ada"}, "email=a@example.com"),
        ({"phone_number": "555 1234567", "name": "Ada"}, "phone_number=555 1234567"),
        ({"name": "Ada", "Tier": "Gold"}, "name=Ada"),
        ({"Tier": "Gold"}, ""),
        (["not", "an", "object"], ""),
    ],
)
def test_a_link_customer_is_known_by_its_first_identity_key_in_matching_order(customer, key):
    assert link_key(customer) == key


@settings(max_examples=30, deadline=None)
@given(data=customer_batches(min_count=1, max_count=40, endpoint="sms"))
def test_generated_sms_customers_are_unique_once_normalised(data):
    customers = data.expand()
    keys = [SMS.key_of(c) for c in customers]
    assert len(set(keys)) == len(keys)
    assert all(7 <= len(k) <= 15 and k.isdigit() for k in keys)


@settings(max_examples=30, deadline=None)
@given(data=customer_batches(min_count=1, max_count=8, endpoint="link"))
def test_generated_link_customers_each_have_their_own_key(data):
    customers = data.expand()
    keys = [link_key(c) for c in customers]
    assert all(keys) and len(set(keys)) == len(keys)


# -- the checks on hand-built journal entries ------------------------------------------------

SMS_PATH = "/v1/sms_campaigns/00000000-0000-4000-8000-000000000501/sms_sharings"
LINK_PATH = f"/external/v1/link_sharings/{LINK_CHANNEL}/generate_link"
HEADERS = {"Content-Type": "application/json", "Authorization": "Token token=tes****ken"}


def entry(number: int, path: str, body, status: int = 200) -> dict:
    return {
        "id": number, "method": "POST", "path": path, "headers": HEADERS, "body": body,
        "status": status, "code": None if status == 200 else 13028,
    }  # fmt: skip


# A customer missing at exit status 0 fails both: SPEC 3's exit status zero *exactly* when every
# customer arrived.
MISSING_AT_EXIT_0 = frozenset(
    {"every customer delivered", "exit status zero when every customer arrived"}
)


def as_set(checks: str | frozenset[str]) -> set[str]:
    return set(checks) if isinstance(checks, frozenset) else {checks}


def failed(example: Example, *entries: dict, exit_status: int = 0) -> set[str]:
    observation = Observation(exit_status, list(entries), sharings=[])
    return {f.check for f in run_checks(example, observation)}


ADA = {"phone_number": "+90 532 123 45 67", "name": "Ada", "transactional_data": {"Amount": 1.5}}
BOB = {"phone_number": "555 123 4567", "name": "Bob"}
SMS_EXAMPLE = Example("ordinary", [ADA, BOB], endpoint="sms")


def sms_body(numbers, attributes, data) -> dict:
    return {"phone_numbers": numbers, "custom_attributes": attributes, "transactional_data": data}


def test_an_sms_client_that_delivers_as_sent_holds():
    body = sms_body(
        ["+90 532 123 45 67", "555 123 4567"],
        {"+90 532 123 45 67": {"name": "Ada"}, "555 123 4567": {"name": "Bob"}},
        {"+90 532 123 45 67": {"Amount": 1.5}},
    )
    assert failed(SMS_EXAMPLE, entry(1, SMS_PATH, body)) == set()


def test_an_sms_number_written_another_way_is_the_same_customer():
    # The client normalised the numbers, and keyed their fields by what it sent: delivered.
    body = sms_body(
        ["905321234567", "5551234567"],
        {"905321234567": {"name": "Ada"}, "5551234567": {"name": "Bob"}},
        {"905321234567": {"Amount": 1.5}},
    )
    assert failed(SMS_EXAMPLE, entry(1, SMS_PATH, body)) == set()


@pytest.mark.parametrize(
    ("body", "check"),
    [
        (sms_body(["+90 532 123 45 67"], {"+90 532 123 45 67": {"name": "Ada"}},
                  {"+90 532 123 45 67": {"Amount": 1.5}}), MISSING_AT_EXIT_0),
        (sms_body(["+90 532 123 45 67", "555 123 4567"],
                  {"+90 532 123 45 67": {"name": "Bob"}, "555 123 4567": {"name": "Ada"}},
                  {"555 123 4567": {"Amount": 1.5}}), "attributes keyed by the right email"),
        (sms_body(["+90 532 123 45 67", "555 123 4567"],
                  {"+90 532 123 45 67": {"name": "Ada"}, "555 123 4567": {"name": "Bob"}},
                  {"+90 532 123 45 67": {"Amount": "1.5"}}), "fields arrive intact"),
    ],
    ids=["one missing", "fields swapped", "a number as a string"],
)  # fmt: skip
def test_an_sms_client_that_deviates_fails_that_check(body, check):
    assert failed(SMS_EXAMPLE, entry(1, SMS_PATH, body)) == as_set(check)


def test_an_sms_number_sent_twice_in_two_forms_is_delivered_twice():
    first = sms_body(["+90 532 123 45 67", "555 123 4567"],
                     {"+90 532 123 45 67": {"name": "Ada"}, "555 123 4567": {"name": "Bob"}},
                     {"+90 532 123 45 67": {"Amount": 1.5}})  # fmt: skip
    again = sms_body(["905321234567"], {}, {})
    assert failed(SMS_EXAMPLE, entry(1, SMS_PATH, first), entry(2, SMS_PATH, again)) == {
        "no customer delivered twice"
    }


LINK_ADA = {"external_id": "A-1", "name": "Ada", "Tier": "Gold", "transactional_data": {"N": 3}}
LINK_BOB = {"email": "bob@example.org", "phone_number": "", "Vip": True}
LINK_EXAMPLE = Example("ordinary", [LINK_ADA, LINK_BOB], endpoint="link")
ADA_CALL = {"customer": {"external_id": "A-1", "name": "Ada", "Tier": "Gold"},
            "transactional_data": {"N": 3}}  # fmt: skip
BOB_CALL = {"customer": {"email": "bob@example.org", "Vip": True}}


def test_a_link_client_calling_once_per_customer_holds():
    assert (
        failed(LINK_EXAMPLE, entry(1, LINK_PATH, ADA_CALL), entry(2, LINK_PATH, BOB_CALL)) == set()
    )


@pytest.mark.parametrize(
    ("calls", "check"),
    [
        ([ADA_CALL], MISSING_AT_EXIT_0),
        ([ADA_CALL, BOB_CALL, BOB_CALL], "no customer delivered twice"),
        ([{**ADA_CALL, "transactional_data": {"N": "3"}}, BOB_CALL], "fields arrive intact"),
        ([{"customer": {**ADA_CALL["customer"], "Tier": None}, "transactional_data": {"N": 3}},
          BOB_CALL], "fields arrive intact"),
    ],
    ids=["one missing", "one twice", "data as a string", "an attribute lost"],
)  # fmt: skip
def test_a_link_client_that_deviates_fails_that_check(calls, check):
    entries = [entry(n, LINK_PATH, call) for n, call in enumerate(calls, 1)]
    assert failed(LINK_EXAMPLE, *entries) == as_set(check)


def test_a_link_call_to_the_email_path_is_not_well_formed():
    email_path = "/v1/email_campaigns/735c19a7-ee54-4b03-a84a-93dfe2a94a56/email_sharings"
    entries = [entry(1, email_path, ADA_CALL, 404), entry(2, email_path, BOB_CALL, 404)]
    assert "requests are well formed" in failed(LINK_EXAMPLE, *entries, exit_status=1)


@pytest.fixture
def reference_client():
    """The Python reference client, importable, left on the email endpoint afterwards."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "clients" / "python"))
    import reference_client

    yield reference_client
    reference_client.ENDPOINT[0] = reference_client.ENDPOINTS["email"]


def test_the_plugin_runs_a_python_callable_on_the_sms_endpoint(pisano_contract, reference_client):
    reference_client.ENDPOINT[0] = reference_client.ENDPOINTS["sms"]
    result = pisano_contract(
        reference_client.deliver_all, endpoint="sms", max_examples=0, scenarios=("ordinary",)
    )
    assert result.passed and result.endpoint == "sms"
    assert "every customer delivered" in result.played[0].judged


def test_the_plugin_fails_an_email_callable_on_the_sms_endpoint(pisano_contract, reference_client):
    with pytest.raises(pytest.fail.Exception, match="requests are well formed"):
        pisano_contract(
            reference_client.deliver_all, endpoint="sms", max_examples=0, scenarios=("ordinary",)
        )
