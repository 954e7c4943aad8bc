"""Every refusal carries its reason in `X-Pisano-Mock-Reason` (SPEC 2.3), whoever refused it: a
catalogue entry, the throttle, or a scripted status."""

from __future__ import annotations

from mockserver.headers import REASON

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
