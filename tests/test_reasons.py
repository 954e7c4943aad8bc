"""Every refusal carries its reason in `X-Pisano-Mock-Reason` (SPEC 2.3), whoever refused it: a
catalogue entry, the throttle, or a scripted status."""

from __future__ import annotations

import pytest

from mockserver.headers import REASON, ascii_header
from mockserver.rules import shown

BODY = {"emails": ["a@example.com"]}
ALIGNED = 1_000_000_000  # a multiple of every tier's period


def test_a_throttle_refusal_says_which_tier_refused(api, pisano_mock):
    pisano_mock.call("POST", "/__mock/clock", {"set": ALIGNED})
    for _ in range(20):
        assert api.post(BODY).status_code == 200
    refused = api.post(BODY)
    assert (refused.status_code, refused.content) == (429, b"Retry later\n")
    assert refused.headers[REASON].startswith("throttle: tier 20/5 seconds exceeded")
    assert refused.headers[REASON] == pisano_mock.requests()[-1]["reason"]


def test_a_scripted_status_says_which_fault_answered(api, pisano_mock):
    fault = pisano_mock.call("POST", "/__mock/faults", {"status": 503, "times": 1})
    answered = api.post(BODY)
    assert answered.status_code == 503
    assert answered.headers[REASON] == f"fault #{fault['id']}: status 503"


def test_an_accepted_request_carries_no_reason(api):
    assert REASON not in api.post(BODY).headers


# A reason quotes the value as the client sent it: JSON, not Python's spelling of it.
QUOTED = [
    ({"built_in_responses": {"Channel": True}}, "built_in_responses: Channel=true is not"),
    ({"built_in_responses": {"Channel": ["a"]}}, 'built_in_responses: Channel=["a"] is not'),
    ({"emails": ["a@example.com", None]}, "emails[1]: null is not an email address"),
    ({"emails": ["bad"]}, 'emails[0]: "bad" is not an email address'),
]


@pytest.mark.parametrize(("extra", "reason"), QUOTED)
def test_a_refusal_quotes_the_value_as_json(api, pisano_mock, extra, reason):
    refused = api.post({**BODY, **extra})
    assert refused.status_code == 400
    assert pisano_mock.requests()[-1]["reason"].startswith(reason)


def test_a_quoted_value_keeps_non_ascii_and_is_cut_at_80_characters():
    assert shown("çağrı") == '"çağrı"'
    assert shown({"a": None}) == '{"a":null}'
    long = shown("x" * 200)
    assert (len(long), long[:2], long[-3:]) == (80, '"x', "...")


def test_the_header_escapes_a_non_ascii_quote(api):
    refused = api.post({**BODY, "emails": ["çağrı"]})
    reason = 'emails[0]: "çağrı" is not an email address'
    assert refused.headers[REASON] == ascii_header(reason)
    assert refused.headers[REASON].startswith('emails[0]: "\\u00e7a')
