"""The kit's checks on hand-built observations: each oracle here is written out by hand (a JSON
text, a journal entry), never computed with the kit's own helpers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings

from contracts.checks import (
    CHECKS,
    HOW_TO_FIX,
    check_name,
    every_customer_delivered,
    fields_arrive_intact,
    json_equal,
    judged_checks,
    non_retryable_errors_not_retried,
    requests_are_well_formed,
    run_checks,
)
from contracts.model import ContractFailure, Example, Observation, ServerBehaviour
from contracts.strategies import customer_batches

# -- numbers and other representation traps (issue 7, item 1) -----------------------------------

# (what the kit wrote, what a client in some language wrote back, equal as JSON values?)
REPRESENTATIONS = [
    ("-40388485656229152.0", "-40388485656229150", True),  # JS: the same float64, shortest form
    ("9007199254740993.0", "9007199254740992", True),  # a float above 2^53 is 2^53 anyway
    ("9007199254740992.0", "9007199254740992", True),  # exactly 2^53
    ("1.8446744073709552e19", "18446744073709551616", True),  # Go/jq: an integer, no exponent
    ("100", "1e2", True),
    ("100", "1E+2", True),
    ("100.0", "100", True),
    ("0.1", "0.1000000000000000055511151231257827", True),  # the same float64 written longer
    ("1e300", "1e+300", True),
    ("1e-7", "0.0000001", True),
    ("-0.0", "0", True),  # JSON.stringify(-0) is "0"
    ("0", "-0", True),
    ("-0.0", "0.0", True),
    ("12.5", "12.50", True),
    ("3", "4", False),
    ("0.1", "0.2", False),
    ("9007199254740991", "9007199254740990", False),  # integers within 2^53 stay exact
    ("1", "true", False),  # a boolean is not a number
    ("0", "false", False),
    ("1.0", "true", False),
    ("null", "0", False),
    ("null", '""', False),
    ('"1"', "1", False),  # a string is not a number
    ("1e400", "1e400", True),  # both overflow to the same float64
    ('{"\\u00e9": 1}', '{"é": 1}', True),  # escapes in keys are the same key
    ('{"k": "\\ud83d\\ude00"}', '{"k": "😀"}', True),  # a surrogate pair is the character
    ('{"a": 1, "b": 2}', '{"b": 2, "a": 1}', True),  # key order is no difference
    ("[1, 2]", "[2, 1]", False),  # list order is
    ('{"Amount": 12.5}', '{"Amount": "12.5"}', False),
    ('{"x": [1.0, {"y": -0.0}]}', '{"x": [1, {"y": 0}]}', True),
]


@pytest.mark.parametrize(("sent", "arrived", "equal"), REPRESENTATIONS)
def test_json_values_compare_by_value(sent, arrived, equal):
    assert json_equal(json.loads(sent), json.loads(arrived)) is equal
    assert json_equal(json.loads(arrived), json.loads(sent)) is equal


def test_nan_is_not_a_json_value_and_never_equal():
    # NaN cannot be written in JSON; a server that records one has not stored what was sent.
    assert not json_equal(float("nan"), float("nan"))
    assert not json_equal({"a": float("nan")}, {"a": 0})


# -- every customer delivered: a non-zero exit excuses only what the server caused (item 0) -----

CUSTOMERS = [{"email": "ada@example.com"}, {"email": "bob@example.com"}]


def entry(number: int, status: int | None, code: int | None = None, **extra: Any) -> dict:
    emails = extra.pop("emails", [c["email"] for c in CUSTOMERS])
    return {
        "id": number,
        "method": "POST",
        "path": "/v1/email_campaigns/c/email_sharings",
        "status": status,
        "code": code,
        "body": {"emails": emails},
        "headers": {"Content-Type": "application/json", "Authorization": "Token token=t"},
        "fault": None,
        "throttle": None,
        **extra,
    }


def observed(exit_status: int | None, requests: list[dict], delivered: list[str]) -> Observation:
    return Observation(exit_status, requests, [{"email": e} for e in delivered])


def ordinary(faults: tuple[dict, ...] = ()) -> Example:
    return Example("ordinary", CUSTOMERS, ServerBehaviour(faults=faults))


REFUSED_FOR_GOOD = ({"error": 13001, "match": {"path": "/v1/"}},)
DROPPED_AFTER = ({"drop": "after", "times": 1, "match": {"path": "/v1/"}},)

NPS_AS_FLOAT = "NPS=9.0 is not of schema type integer"
# (example, observation, does "every customer delivered" fail?)
DELIVERY_CASES = {
    "sent nothing, exit 1": (ordinary(), observed(1, [], []), True),
    "sent nothing, exit 0": (ordinary(), observed(0, [], []), True),
    "delivered all, exit 0": (
        ordinary(),
        observed(0, [entry(1, 200)], ["ada@example.com", "bob@example.com"]),
        False,
    ),
    "one missing, exit 0": (ordinary(), observed(0, [entry(1, 200)], ["ada@example.com"]), True),
    "own bug refused with 13028, exit 1": (
        ordinary(),
        observed(1, [entry(1, 400, 13028)], []),
        True,
    ),
    "its responses refused (judged by 'built in responses arrive in the link'), exit 1": (
        ordinary(),
        observed(1, [entry(1, 400, 13028, reason=f"built_in_responses: {NPS_AS_FLOAT}")], []),
        False,
    ),
    "refused for good by the server, exit 1": (
        ordinary(REFUSED_FOR_GOOD),
        observed(1, [entry(1, 401, 13001, fault={"kind": "error"})], []),
        False,
    ),
    "refused for good, sent nothing, exit 1": (
        ordinary(REFUSED_FOR_GOOD),
        observed(1, [], []),
        True,
    ),
    "dropped after, exit 1": (
        ordinary(DROPPED_AFTER),
        observed(
            1, [entry(1, 200, fault={"kind": "drop"})], ["ada@example.com", "bob@example.com"]
        ),
        False,
    ),
    "503 not retried (judged by 'transient errors retried'), exit 1": (
        ordinary(),
        observed(1, [entry(1, 503, fault={"kind": "status"})], []),
        False,
    ),
    "503 retried, then the next batch never sent, exit 1": (
        ordinary(),
        observed(
            1,
            [
                entry(1, 503, emails=["ada@example.com"], fault={"kind": "status"}),
                entry(2, 200, emails=["ada@example.com"]),
            ],
            ["ada@example.com"],
        ),
        True,
    ),
    "over 5000 in one request (judged by its own check), exit 1": (
        ordinary(),
        observed(1, [entry(1, 400, 13028, emails=[f"{i}@example.com" for i in range(5001)])], []),
        False,
    ),
    "timed out (judged by 'client finishes in time')": (ordinary(), observed(None, [], []), False),
    "empty list, exit 0": (Example("empty", []), observed(0, [], []), False),
}


def test_a_refusal_whose_answer_was_dropped_may_be_retried():
    # The client saw a dropped connection, not the 13028: sending the batch again is right.
    dropped = entry(1, 400, 13028, fault={"kind": "drop"})
    observation = observed(1, [dropped, entry(2, 400, 13028)], [])
    non_retryable_errors_not_retried(ordinary(DROPPED_AFTER), observation)
    with pytest.raises(ContractFailure):  # ...but not once it saw the refusal
        non_retryable_errors_not_retried(
            ordinary(), observed(1, [entry(1, 400, 13028), entry(2, 400, 13028)], [])
        )


@pytest.mark.parametrize(
    ("example", "observation", "fails"), DELIVERY_CASES.values(), ids=list(DELIVERY_CASES)
)
def test_every_customer_delivered_excuses_only_what_the_server_caused(example, observation, fails):
    if fails:
        with pytest.raises(ContractFailure):
            every_customer_delivered(example, observation)
    else:
        every_customer_delivered(example, observation)


# -- reports speak JSON and show only what differs (item 3) --------------------------------------


def test_a_field_mismatch_shows_only_the_differing_fields_in_json():
    customer = {
        "email": "ada@example.com",
        "name": "Ada",
        "external_id": None,
        "transactional_data": {"Amount": 12.5, "Vip": True, "Note": None},
    }
    sharing = {
        "email": "ada@example.com",
        "custom_attributes": {"name": "Ada"},
        "transactional_data": {"Amount": "12.5", "Vip": True, "Note": None},
    }
    example = Example("ordinary", [customer])
    with pytest.raises(ContractFailure) as caught:
        fields_arrive_intact(example, Observation(0, [], [sharing]))
    assert caught.value.expected == 'ada@example.com: {"transactional_data": {"Amount": 12.5}}'
    assert caught.value.received == '{"transactional_data": {"Amount": "12.5"}}'


def test_a_missing_field_is_shown_as_absent_and_allowed_omissions_are_not_shown():
    customer = {"email": "bob@example.com", "name": None, "phone_number": "555", "external_id": ""}
    sharing = {"email": "bob@example.com", "custom_attributes": {}, "transactional_data": {}}
    with pytest.raises(ContractFailure) as caught:
        fields_arrive_intact(Example("ordinary", [customer]), Observation(0, [], [sharing]))
    assert (
        caught.value.expected == 'bob@example.com: {"custom_attributes": {"phone_number": "555"}}'
    )
    assert caught.value.received == '{"custom_attributes": {}}'


def test_an_example_is_described_in_json():
    example = Example(
        "ordinary",
        [{"email": "o'neil@example.com", "name": None, "transactional_data": {"Vip": True}}],
        ServerBehaviour(faults=({"status": 503, "times": 1},)),
    )
    assert example.describe() == (
        'scenario ordinary: customers [{"email": "o\'neil@example.com", "name": null, '
        '"transactional_data": {"Vip": true}}]; faults [{"status": 503, "times": 1}]; '
        "built_in_responses {}"
    )


def test_an_example_shows_empty_built_in_responses_so_an_empty_link_is_explained():
    line = Example("ordinary", [{"email": "a@example.com"}]).describe()
    assert line.endswith("; the server behaves; built_in_responses {}")


def test_a_request_with_a_misspelt_key_is_not_well_formed_and_names_the_key():
    body = {"emails": ["ada@example.com"], "builtInResponses": {"NPS": 9}}
    warnings = ["ignored unknown field(s): builtInResponses"]
    request = entry(4, 200, body=body, warnings=warnings)
    with pytest.raises(ContractFailure) as caught:
        requests_are_well_formed(ordinary(), observed(0, [request], []))
    assert caught.value.received == "request #4: unknown field(s) builtInResponses"


def test_every_check_says_how_to_fix_it_in_one_line():
    for check in CHECKS:
        fix = HOW_TO_FIX[check]
        assert fix and "\n" not in fix and len(fix) <= 160, check_name(check)


def test_an_incomplete_record_spares_only_every_customer_delivered_and_warns():
    observation = observed(0, [], [])  # would fail "every customer delivered"
    observation.incomplete = "the emulator's memory bounds dropped 3 sharings"
    assert run_checks(ordinary(), observation) == []
    assert "every customer delivered" not in judged_checks(ordinary(), observation)
    assert any("dropped 3 sharings" in warning for warning in observation.warnings)


def test_a_flood_that_outgrew_the_journal_is_still_judged_on_what_it_left():
    # Before: a client retrying a 4xx at full speed overflowed the journal and nothing was judged,
    # so the kit passed it (exit 0, every check "skip").
    refusals = [entry(n, 400, 13028) for n in range(9001, 9011)]
    flood = observed(1, refusals, [])
    flood.incomplete = "the emulator's memory bounds dropped 9000 requests"
    failed = {failure.check for failure in run_checks(ordinary(), flood)}
    assert failed == {"non retryable errors not retried"}


def test_a_client_killed_at_the_timeout_fails_however_incomplete_its_record():
    killed = observed(None, [entry(n, 400, 13028) for n in range(1, 3)], [])
    killed.incomplete = "the emulator's memory bounds dropped 12929 requests"
    failed = {failure.check for failure in run_checks(ordinary(), killed)}
    assert "client finishes in time" in failed


@settings(max_examples=40, deadline=None)
@given(customer_batches(min_count=5001, max_count=7000))
def test_large_lists_hold_no_kilobyte_texts(batch):
    # 7000 customers holding kilobyte values would outgrow the emulator's 32 MiB journal (the
    # "above 5000" scenario's sizes): no text value longer than the ordinary 40 characters.
    for customer in batch.template:
        values = [customer.get(k) for k in ("name", "external_id", "phone_number")]
        values += list((customer.get("transactional_data") or {}).values())
        assert all(len(v) <= 40 for v in values if isinstance(v, str))


# -- checks with nothing to judge are not "ok" (attack on issue 11, finding 8) --------------------

BOTH = ["ada@example.com", "bob@example.com"]
EXIT_STATUS = "exit status zero when every customer arrived"
# (observation of the ordinary example, does the exit status check fail?): SPEC 3 says "exactly
# when", so both directions.
EXIT_CASES = {
    "sent nothing, exit 0": (observed(0, [], []), True),
    "one missing, exit 0": (observed(0, [entry(1, 200)], ["ada@example.com"]), True),
    "all arrived, exit 0": (observed(0, [entry(1, 200)], BOTH), False),
    "all arrived, exit 1": (observed(1, [entry(1, 200)], BOTH), True),
    "sent nothing, exit 1": (observed(1, [], []), False),
}


@pytest.mark.parametrize(("observation", "fails"), EXIT_CASES.values(), ids=list(EXIT_CASES))
def test_exit_status_zero_exactly_when_every_customer_arrived(observation, fails):
    assert EXIT_STATUS in judged_checks(ordinary(), observation)
    failed = {failure.check for failure in run_checks(ordinary(), observation)}
    assert (EXIT_STATUS in failed) is fails


def test_exit_0_on_an_incomplete_record_is_not_judged_by_what_it_lost():
    observation = observed(0, [], [])
    observation.incomplete = "the emulator's memory bounds dropped 3 sharings"
    assert EXIT_STATUS not in judged_checks(ordinary(), observation)


ABOVE_5000 = Example("above 5000", [{"email": f"{i}@example.com"} for i in range(5001)])


def test_no_request_over_5000_is_skipped_when_no_request_arrived():
    nothing = observed(1, [], [])
    assert "no request over 5000 recipients" not in judged_checks(ABOVE_5000, nothing)
    batch = observed(1, [entry(1, 200, emails=["0@example.com"])], ["0@example.com"])
    assert "no request over 5000 recipients" in judged_checks(ABOVE_5000, batch)
