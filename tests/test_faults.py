"""Scripted faults (SPEC 2.2) from a real client: errors, statuses, delays, dropped connections."""

from __future__ import annotations

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
    "fault",
    [
        {},
        {"error": 13000, "status": 500},
        {"error": 12345},
        {"status": 99},
        {"drop": "sideways"},
        {"retry_after": 3, "error": 13000},
        {"error": 13000, "match": {"method": "GET"}},
        {"error": 13000, "times": 0},
    ],
)
def test_bad_faults_are_refused_with_a_reason(pisano_mock, fault):
    response = requests.post(f"{pisano_mock.base_url}/__mock/faults", json=fault)
    assert response.json()["code"] == 13028
    assert response.headers["X-Pisano-Mock-Reason"]


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


@pytest.mark.parametrize("change", [{"set": 1, "advance": 1}, {"rate": -1}, {"set": "noon"}])
def test_bad_clock_changes_are_13028(pisano_mock, change):
    assert (
        requests.post(f"{pisano_mock.base_url}/__mock/clock", json=change).json()["code"] == 13028
    )


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
