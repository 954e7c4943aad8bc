"""Scripted faults (SPEC 2.2) from a real client: errors, statuses, delays, dropped connections."""

from __future__ import annotations

import threading
import time

import pytest
import requests

BODY = {"emails": ["a@example.com", "b@example.com"]}


def add_fault(mock, **fault):
    return mock.call("POST", "/__mock/faults", fault)


def test_error_fault_answers_the_catalogue_entry_then_is_spent(api, pisano_mock):
    fault = add_fault(pisano_mock, error=13036, times=2)
    assert fault["remaining"] == 2
    first, second, third = (api.post(BODY) for _ in range(3))
    assert first.content == b'{"status":"forbidden","code":13036,"message":"Account locked"}'
    assert second.json()["code"] == 13036
    assert third.status_code == 200
    journal = pisano_mock.requests()
    assert [e["fault"] for e in journal] == [{"id": fault["id"], "kind": "error"}] * 2 + [None]
    assert len(pisano_mock.sharings()) == 2  # only the third request delivered


@pytest.mark.parametrize("status", [500, 502, 503])
def test_status_fault_without_retry_after(api, pisano_mock, status):
    add_fault(pisano_mock, status=status, times=1)
    response = api.post(BODY)
    assert response.status_code == status
    assert "Retry-After" not in response.headers
    assert pisano_mock.sharings() == []
    assert pisano_mock.requests()[0]["status"] == status


def test_status_fault_with_retry_after(api, pisano_mock):
    add_fault(pisano_mock, status=429, retry_after=7, times=1)
    response = api.post(BODY)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    assert response.content == b"Retry later\n"


def test_delay_fault_answers_normally_after_the_delay(api, pisano_mock):
    add_fault(pisano_mock, delay_ms=300, times=1)
    began = time.monotonic()
    response = api.post(BODY)
    assert time.monotonic() - began >= 0.3
    assert response.status_code == 200
    assert len(pisano_mock.sharings()) == 2


def test_drop_before_closes_the_connection_and_records_nothing(api, pisano_mock):
    add_fault(pisano_mock, drop="before", times=1)
    with pytest.raises(requests.ConnectionError):
        api.post(BODY)
    assert pisano_mock.sharings() == []
    [entry] = pisano_mock.requests()
    assert entry["fault"]["kind"] == "drop" and entry["status"] is None
    assert api.post(BODY).status_code == 200  # spent: the next one goes through


def test_drop_after_records_the_recipients_then_closes(api, pisano_mock):
    add_fault(pisano_mock, drop="after", times=1)
    with pytest.raises(requests.ConnectionError):
        api.post(BODY)
    assert [s["email"] for s in pisano_mock.sharings()] == BODY["emails"]
    [entry] = pisano_mock.requests()
    assert (entry["status"], entry["fault"]["kind"]) == (200, "drop")


def test_every_match_key_must_hold(api, pisano_mock):
    other = "00000000-0000-4000-8000-0000000000bb"
    pisano_mock.add_fixtures({"campaigns": {other: {"account": "acme"}}})
    add_fault(
        pisano_mock,
        error=13013,
        match={"path": "/v1/email_campaigns", "token": "test-token", "campaign_id": other},
    )
    assert api.post(BODY).status_code == 200  # another campaign
    assert (
        api.post(
            BODY,
            headers={"Authorization": "Bearer nobody"},
            path=f"/v1/email_campaigns/{other}/email_sharings",
        ).json()["code"]
        == 13001
    )
    hit = api.post(BODY, path=f"/v1/email_campaigns/{other}/email_sharings")
    assert hit.json()["code"] == 13013
    assert "fault #" in hit.headers["X-Pisano-Mock-Reason"]


def test_path_prefix_must_match(api, pisano_mock):
    add_fault(pisano_mock, error=13000, match={"path": "/v1/sms_campaigns"})
    assert api.post(BODY).status_code == 200


def test_faults_are_listed_with_what_is_left_and_deleted(api, pisano_mock):
    add_fault(pisano_mock, error=13000, times=3)
    add_fault(pisano_mock, status=503)
    api.post(BODY)
    listed = pisano_mock.call("GET", "/__mock/faults")["faults"]
    assert [(f["error"] if "error" in f else f["status"], f["remaining"]) for f in listed] == [
        (13000, 2),
        (503, None),
    ]
    assert pisano_mock.call("DELETE", "/__mock/faults") == {"status": "ok"}
    assert pisano_mock.call("GET", "/__mock/faults") == {"faults": []}
    assert api.post(BODY).status_code == 200


def test_fault_without_times_fires_every_time(api, pisano_mock):
    add_fault(pisano_mock, status=502)
    assert [api.post(BODY).status_code for _ in range(4)] == [502] * 4


def test_faulted_answers_are_not_counted_by_the_throttle(api, pisano_mock):
    pisano_mock.call("POST", "/__mock/clock", {"set": 1_000_000_000})
    add_fault(pisano_mock, status=503, times=25)
    assert all(api.post(BODY).status_code == 503 for _ in range(25))
    assert (
        sum(api.post({"emails": [f"r{i}@example.com"]}).status_code == 200 for i in range(21)) == 20
    )


def test_reset_clears_faults(api, pisano_mock):
    add_fault(pisano_mock, status=503)
    pisano_mock.reset()
    assert api.post(BODY).status_code == 200


@pytest.mark.parametrize(
    ("fault", "named"),
    [
        ({}, "give exactly one of"),
        ({"error": 13000, "status": 500}, "give exactly one of"),
        ({"error": 12345}, "error"),
        ({"status": 99}, "status"),
        ({"status": 100}, "status"),
        ({"status": 199}, "status"),
        ({"status": 600}, "status"),
        ({"status": 503, "retry_after": 1e20}, "retry_after"),
        ({"status": 503, "retry_after": 1_000_001}, "retry_after"),
        ({"status": 503, "retry_after": -1}, "retry_after"),
        ({"delay_ms": 60_001}, "delay_ms"),
        ({"delay_ms": 600_000}, "delay_ms"),
        ({"status": 503, "times": 1e20}, "times"),
        ({"status": "503"}, "status"),
        ({"status": 503.5}, "status"),
        ({"delay_ms": 2.5e-42}, "delay_ms"),
        ({"status": True}, "status"),
        ({"drop": "sideways"}, "drop"),
        ({"retry_after": 3, "error": 13000}, "retry_after goes with status"),
        ({"error": 13000, "match": {"method": "GET"}}, "match"),
        ({"error": 13000, "times": 0}, "times"),
    ],
)
def test_bad_faults_are_refused_naming_the_field(pisano_mock, fault, named):
    response = requests.post(f"{pisano_mock.base_url}/__mock/faults", json=fault)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "bad_request" and named in body["reason"]
    assert pisano_mock.call("GET", "/__mock/faults") == {"faults": []}


@pytest.mark.parametrize(
    "fault",
    [{"status": 200}, {"status": 599, "retry_after": 1_000_000}, {"delay_ms": 60_000, "times": 1}],
)
def test_faults_at_the_bounds_are_accepted(pisano_mock, fault):
    assert requests.post(f"{pisano_mock.base_url}/__mock/faults", json=fault).status_code == 201
    listed = pisano_mock.call("GET", "/__mock/faults")["faults"]
    assert len(listed) == 1


def start_delayed_request(api, pisano_mock, delay_ms: int = 60_000) -> threading.Thread:
    add_fault(pisano_mock, delay_ms=delay_ms, times=1)
    answers: list[int] = []
    thread = threading.Thread(target=lambda: answers.append(api.post(BODY).status_code))
    thread.answers = answers  # type: ignore[attr-defined]
    thread.start()
    deadline = time.monotonic() + 10
    while not pisano_mock.requests():  # the request is in, asleep in its delay
        assert time.monotonic() < deadline, "the delayed request never reached the emulator"
        time.sleep(0.01)
    return thread


@pytest.mark.parametrize("end", ["DELETE /__mock/faults", "POST /__mock/reset"])
def test_a_delay_ends_when_faults_are_cleared_or_the_emulator_reset(api, pisano_mock, end):
    thread = start_delayed_request(api, pisano_mock)
    method, path = end.split()
    pisano_mock.call(method, path)
    thread.join(timeout=10)  # far below the 60 s delay: it ended early, or this fails
    assert not thread.is_alive()
    assert thread.answers == [200]  # type: ignore[attr-defined]


def test_a_delay_ends_when_the_server_stops(api, pisano_mock):
    # A SIGTERM while a 60 s delay held a request: the worker was killed at the grace period and
    # the request never answered (the master still exited 0).
    from mockserver import faults

    thread = start_delayed_request(api, pisano_mock)
    try:
        faults.end_delays()
        thread.join(timeout=10)  # far below the 60 s delay: it ended early, or this fails
    finally:
        faults.SERVER_STOPPING.clear()  # this test process serves on
    assert not thread.is_alive()
    assert thread.answers == [200]  # type: ignore[attr-defined]


def test_clock_set_advance_and_rate(pisano_mock):
    assert pisano_mock.call("POST", "/__mock/clock", {"set": 1_000_000_000}) == {
        "now": 1_000_000_000,
        "rate": 0,
    }
    assert pisano_mock.call("POST", "/__mock/clock", {"advance": 5})["now"] == 1_000_000_005
    running = pisano_mock.call("POST", "/__mock/clock", {"advance": 0, "rate": 1000})
    assert running["rate"] == 1000
    later = pisano_mock.call("GET", "/__mock/clock")["now"]
    assert later > 1_000_000_005
    stopped = pisano_mock.call("POST", "/__mock/clock", {"rate": 0})
    assert stopped["rate"] == 0
    assert pisano_mock.call("GET", "/__mock/clock")["now"] == stopped["now"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"set": 1, "advance": 1}, "give set or advance, not both"),
        ({"rate": -1}, "rate"),
        ({"set": "noon"}, "set"),
        ({"set": 1e308}, "set"),
        ({"set": -1e11 - 1}, "set"),
        ({"advance": 1e308}, "advance"),
        ({"advance": -2e11}, "advance"),
        ({"set": True}, "set"),
        ({"sett": 1}, "sett"),
    ],
)
def test_bad_clock_changes_are_400_naming_the_field(pisano_mock, change, named):
    response = requests.post(f"{pisano_mock.base_url}/__mock/clock", json=change)
    assert response.status_code == 400
    assert named in response.json()["reason"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_clock_refuses_what_is_not_a_finite_number(pisano_mock, literal):
    response = requests.post(
        f"{pisano_mock.base_url}/__mock/clock",
        data=b'{"set": ' + literal + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert pisano_mock.call("GET", "/__mock/clock")["rate"] == 1


def test_the_resulting_clock_must_stay_in_bounds(api, pisano_mock):
    pisano_mock.call("POST", "/__mock/clock", {"set": 1e11})
    response = requests.post(f"{pisano_mock.base_url}/__mock/clock", json={"advance": 1e11})
    assert response.status_code == 400
    assert "advance" in response.json()["reason"]
    assert pisano_mock.call("GET", "/__mock/clock")["now"] == 1e11
    assert api.post(BODY).status_code == 200  # the emulated API still answers


def test_a_clock_running_at_its_bound_is_accepted(pisano_mock):
    assert pisano_mock.call("POST", "/__mock/clock", {"set": -1e11})["now"] == -1e11
    assert pisano_mock.call("POST", "/__mock/clock", {"advance": 1e11})["now"] == 0
    assert pisano_mock.call("POST", "/__mock/clock", {"advance": 1e11})["now"] == 1e11


def test_journal_and_sharings_times_follow_the_clock(api, pisano_mock):
    pisano_mock.call("POST", "/__mock/clock", {"set": 1_234_567_890})
    api.post(BODY)
    assert pisano_mock.requests()[0]["time"] == 1_234_567_890
    assert pisano_mock.sharings()[0]["accepted_at"] == 1_234_567_890


def test_time_scale_starts_the_clock_fast(server_with):
    with server_with(time_scale=50.0) as (_, mock):
        clock = mock.call("GET", "/__mock/clock")
        assert clock["rate"] == 50.0
        mock.call("POST", "/__mock/clock", {"set": 0})
        mock.reset()
        assert mock.call("GET", "/__mock/clock")["rate"] == 50.0


def test_a_faults_match_token_is_masked_when_shown_and_matched_whole(api, pisano_mock):
    secret = "SuperSecretMatchToken"
    pisano_mock.add_fixtures({"tokens": {secret: {"account": "acme"}}})
    added = add_fault(pisano_mock, status=503, match={"token": secret})
    listed = pisano_mock.call("GET", "/__mock/faults")["faults"]
    assert added["match"] == listed[0]["match"] == {"token": "Sup****ken"}
    assert secret not in str(added) + str(listed)
    assert api.post(BODY).status_code == 200  # another token: no match
    assert api.post(BODY, headers={"Authorization": f"Token token={secret}"}).status_code == 503


def test_a_clock_run_past_its_bound_can_be_advanced_back(pisano_mock):
    # A clock set at its bound and left running (rate 10^6) reads beyond it a moment later; an
    # advance that moves it back toward the bound is accepted, one that moves it further is not.
    pisano_mock.call("POST", "/__mock/clock", {"set": 1e11, "rate": 1_000_000})
    beyond = requests.post(f"{pisano_mock.base_url}/__mock/clock", json={"advance": 1})
    assert beyond.status_code == 400 and "advance" in beyond.json()["reason"]
    back = requests.post(f"{pisano_mock.base_url}/__mock/clock", json={"advance": -1})
    assert back.status_code == 200, back.text
    assert back.json()["rate"] == 0 and back.json()["now"] <= 1e11 + 10_000_000
    assert pisano_mock.call("POST", "/__mock/clock", {"advance": -1e11})["now"] < 1e11


def test_a_negative_zero_rate_is_shown_as_zero(pisano_mock):
    response = requests.post(
        f"{pisano_mock.base_url}/__mock/clock",
        data=b'{"advance": 0, "rate": -0.0}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert '"rate":0.0' in response.text and "-0.0" not in response.text
