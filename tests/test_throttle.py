"""The throttle (SPEC 1.3) on the emulator's clock: never sleeping, except where the clock runs at
100x and a real client sleeps for real (as integrators' clients do)."""

from __future__ import annotations

import http.client
import math
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest

from mockserver.settings import ThrottleSettings, TierOverride
from tests.conftest import SHARINGS_PATH

ALIGNED = 1_000_000_000  # a multiple of 5, 25, 125 and 625
TIERS = [(20, 5), (40, 25), (80, 125), (160, 625)]
BODY = {"emails": ["a@example.com"]}


def freeze(mock, when: float) -> None:
    mock.call("POST", "/__mock/clock", {"set": when})


def advance(mock, seconds: float) -> None:
    mock.call("POST", "/__mock/clock", {"advance": seconds})


def send_until_refused(api, limit: int = 200, **kwargs) -> int:
    for accepted in range(limit):
        response = api.post(BODY, **kwargs)
        if response.status_code == 429:
            return accepted
        assert response.status_code == 200, response.text
    raise AssertionError("never refused")


def test_stepping_one_second_at_a_time_meets_every_tier_exactly(api, pisano_mock):
    freeze(pisano_mock, ALIGNED)
    accepted_at: list[int] = []
    for second in range(625):
        accepted_at += [second] * send_until_refused(api)
        advance(pisano_mock, 1)
    for limit, period in TIERS:
        assert sum(1 for s in accepted_at if s < period) == limit, (limit, period)
    assert len(accepted_at) == 160
    # At 625 s every window is new again.
    assert send_until_refused(api) == 20


def test_a_new_window_opens_at_the_epoch_boundary(api, pisano_mock):
    freeze(pisano_mock, ALIGNED + 3)
    assert send_until_refused(api) == 20
    advance(pisano_mock, 1.999)
    assert api.post(BODY).status_code == 429
    advance(pisano_mock, 0.001)  # ALIGNED + 5: tier 1's next window
    assert api.post(BODY).status_code == 200


def test_default_refusal_is_rack_attacks_exactly(api, pisano_mock):
    freeze(pisano_mock, ALIGNED)
    send_until_refused(api)
    response = api.post(BODY)
    assert response.status_code == 429
    assert response.headers["Content-Type"] == "text/plain"
    assert response.content == b"Retry later\n"
    assert "Retry-After" not in response.headers
    assert not any(name.startswith("RateLimit") for name in response.headers)


def test_refused_requests_are_journaled_with_the_tier(api, pisano_mock):
    freeze(pisano_mock, ALIGNED)
    send_until_refused(api)
    last = pisano_mock.requests()[-1]
    assert last["status"] == 429 and last["code"] is None
    assert "tier 20/5 seconds exceeded" in last["reason"]
    assert last["throttle"] == {"tier": "20/5 seconds", "window_end": ALIGNED + 5}


@pytest.mark.parametrize(("offset", "expected"), [(0, 5), (3, 2), (4.5, 1)])
def test_rich_profile_retry_after_is_the_seconds_left(server_with, offset, expected):
    with server_with(throttle=ThrottleSettings(profile="rich")) as (api, mock):
        freeze(mock, ALIGNED + offset)
        first = api.post(BODY)
        assert first.headers["RateLimit-Limit"] == "20"
        assert first.headers["RateLimit-Remaining"] == "19"
        send_until_refused(api)
        response = api.post(BODY)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == str(expected)
        assert response.json()["retry_after"] == expected
        assert response.headers["RateLimit-Remaining"] == "0"


@pytest.mark.parametrize("rate", [2, 4])
def test_rich_profile_retry_after_counts_real_seconds_at_the_clocks_rate(server_with, rate):
    # The oracle: the refused request's own instant and window end, from the journal, and the rate
    # this test set. Retry-After = ceil(emulated seconds left / rate).
    with server_with(throttle=ThrottleSettings(profile="rich")) as (api, mock):
        freeze(mock, ALIGNED)
        assert send_until_refused(api) == 20
        mock.set_clock(ALIGNED + 0.5, rate=rate)  # the window's last 4.5 s, running
        response = api.post(BODY)
        assert response.status_code == 429
        refused = mock.requests()[-1]
        left = refused["throttle"]["window_end"] - refused["time"]
        expected = math.ceil(left / rate)
        assert expected < math.ceil(left)  # else a throttle ignoring the rate would pass too
        assert response.headers["Retry-After"] == str(expected)
        assert response.json()["retry_after"] == expected


def test_the_journal_time_is_the_instant_the_throttle_counted_at(api, pisano_mock):
    # A scripted delay holds the request between its arrival, 0.3 s before a window ends, and the
    # throttle, 0.6 s later: it is counted in the next window, and journaled at that instant.
    pisano_mock.add_fault(delay_ms=600, times=1)
    pisano_mock.set_clock(ALIGNED + 5 - 0.3, rate=1)
    assert api.post(BODY).status_code == 200
    counted = pisano_mock.throttle()["counters"][0]
    assert (counted["tier"], counted["count"]) == ("20/5 seconds", 1)
    window_end = counted["window_end"]
    assert window_end == ALIGNED + 10
    assert window_end - 5 <= pisano_mock.requests()[-1]["time"] < window_end


def test_rich_profile_names_the_exceeded_tier(server_with):
    with server_with(throttle=ThrottleSettings(profile="rich")) as (api, mock):
        freeze(mock, ALIGNED)
        send_until_refused(api)
        advance(mock, 5)
        send_until_refused(api)
        advance(mock, 5)
        refused = api.post(BODY)
        assert refused.json()["tier"] == "40/25 seconds"
        assert refused.headers["Retry-After"] == "15"


def test_sixteen_threads_get_exactly_twenty_in_a_frozen_window(pisano_mock):
    freeze(pisano_mock, ALIGNED)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    target = urlsplit(pisano_mock.base_url)

    def hammer() -> None:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        for _ in range(10):
            connection.request(
                "POST",
                SHARINGS_PATH,
                body=b'{"emails": ["a@example.com"]}',
                headers={
                    "Authorization": "Token token=test-token",
                    "Content-Type": "application/json",
                },
            )
            response = connection.getresponse()
            response.read()
            with lock:
                statuses[response.status] += 1

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == {200: 20, 429: 140}


def reference_verdicts(times: list[float], tiers=TIERS) -> list[bool]:
    """Rack::Attack's algorithm, written again independently: True for each request let through."""
    counts: Counter[tuple[int, int]] = Counter()
    verdicts = []
    for now in times:
        allowed = True
        for limit, period in tiers:
            window = (period, math.floor(now / period))
            counts[window] += 1
            if counts[window] > limit:
                allowed = False
                break
        verdicts.append(allowed)
    return verdicts


def test_at_rate_100_a_client_sleeping_for_real_crosses_tier_windows(api, pisano_mock):
    pisano_mock.call("POST", "/__mock/clock", {"set": ALIGNED, "rate": 100})
    began = time.monotonic()
    while time.monotonic() - began < 1.0:  # 100 emulated seconds: 20 tier-1 and 4 tier-2 windows
        if api.post(BODY).status_code == 429:
            time.sleep(0.01)  # one emulated second
    entries = pisano_mock.requests()
    times = [entry["time"] for entry in entries]
    assert times[-1] - times[0] >= 50
    observed = [entry["status"] == 200 for entry in entries]
    assert observed == reference_verdicts(times)
    per_tier2_window = Counter(
        math.floor(t / 25) for t, ok in zip(times, observed, strict=True) if ok
    )
    assert max(per_tier2_window.values()) == 40
    assert len(per_tier2_window) >= 2


def test_throttle_comes_before_authentication(api, pisano_mock):
    freeze(pisano_mock, ALIGNED)
    bad = {"Authorization": "Token token=nobody"}
    statuses = [api.post(BODY, headers=bad).status_code for _ in range(21)]
    assert statuses == [401] * 20 + [429]


def test_forced_answers_are_not_counted(api, pisano_mock):
    freeze(pisano_mock, ALIGNED)
    for _ in range(30):
        assert api.post(BODY, headers={"X-Pisano-Mock-Error": "13028"}).status_code == 400
    assert send_until_refused(api) == 20


def test_admin_api_is_never_throttled(api, pisano_mock):
    freeze(pisano_mock, ALIGNED)
    send_until_refused(api)
    for _ in range(50):
        pisano_mock.call("GET", "/__mock/health")


def test_reset_clears_counters_and_unfreezes_the_clock(api, pisano_mock):
    freeze(pisano_mock, ALIGNED)
    send_until_refused(api)
    pisano_mock.reset()
    clock = pisano_mock.call("GET", "/__mock/clock")
    assert clock["rate"] == 1.0 and abs(clock["now"] - time.time()) < 60
    assert api.post(BODY).status_code == 200


def test_throttle_endpoint_shows_counts_and_window_ends(api, pisano_mock):
    freeze(pisano_mock, ALIGNED + 3)
    for _ in range(3):
        api.post(BODY)
    counters = pisano_mock.call("GET", "/__mock/throttle")["counters"]
    assert [(c["tier"], c["count"], c["window_end"]) for c in counters] == [
        ("20/5 seconds", 3, ALIGNED + 5),
        ("40/25 seconds", 3, ALIGNED + 25),
        ("80/125 seconds", 3, ALIGNED + 125),
        ("160/625 seconds", 3, ALIGNED + 625),
    ]
    assert counters[0]["key"] == "token:tes****ken"  # masked when shown (SPEC 2.6)


# -- on-premises settings and key choices -------------------------------------------------------


def test_no_throttle(server_with):
    with server_with(throttle=ThrottleSettings(enabled=False)) as (api, mock):
        freeze(mock, ALIGNED)
        assert all(api.post(BODY).status_code == 200 for _ in range(200))


def test_other_tiers(server_with):
    with server_with(throttle=ThrottleSettings(tiers="3/10 seconds")) as (api, mock):
        freeze(mock, ALIGNED)
        assert send_until_refused(api) == 3
        advance(mock, 10)
        assert send_until_refused(api) == 3


def post_from(base_url: str, source_ip: str, token: str = "test-token") -> int:
    target = urlsplit(base_url)
    connection = http.client.HTTPConnection(
        target.hostname, target.port, timeout=10, source_address=(source_ip, 0)
    )
    connection.request(
        "POST",
        SHARINGS_PATH,
        body=b'{"emails": ["a@example.com"]}',
        headers={"Authorization": f"Token token={token}", "Content-Type": "application/json"},
    )
    status = connection.getresponse().status
    connection.close()
    return status


def count_until_refused(base_url: str, source_ip: str, token: str = "test-token") -> int:
    for accepted in range(500):
        if post_from(base_url, source_ip, token) == 429:
            return accepted
    return 500


def test_per_ip_override_by_cidr(server_with):
    overrides = (
        TierOverride(cidr="127.0.0.2/32", tiers="2/5 seconds"),
        TierOverride(cidr="127.0.0.3/32", enabled=False),
    )
    with server_with(throttle=ThrottleSettings(overrides=overrides, key="ip")) as (_, mock):
        freeze(mock, ALIGNED)
        assert count_until_refused(mock.base_url, "127.0.0.2") == 2
        assert count_until_refused(mock.base_url, "127.0.0.3") == 500
        assert count_until_refused(mock.base_url, "127.0.0.4") == 20


def test_key_token_shares_a_bucket_across_ips_but_not_tokens(server_with):
    with server_with() as (_, mock):
        mock.add_fixtures({"tokens": {"second-token": {"account": "acme"}}})
        freeze(mock, ALIGNED)
        assert count_until_refused(mock.base_url, "127.0.0.2") == 20
        assert post_from(mock.base_url, "127.0.0.3") == 429  # same token, other IP
        assert count_until_refused(mock.base_url, "127.0.0.2", "second-token") == 20


def test_key_ip_shares_a_bucket_across_tokens(server_with):
    with server_with(throttle=ThrottleSettings(key="ip")) as (_, mock):
        mock.add_fixtures({"tokens": {"second-token": {"account": "acme"}}})
        freeze(mock, ALIGNED)
        assert count_until_refused(mock.base_url, "127.0.0.2") == 20
        assert post_from(mock.base_url, "127.0.0.2", "second-token") == 429
        assert count_until_refused(mock.base_url, "127.0.0.3") == 20


def test_key_token_and_ip_separates_both(server_with):
    with server_with(throttle=ThrottleSettings(key="token_and_ip")) as (_, mock):
        freeze(mock, ALIGNED)
        assert count_until_refused(mock.base_url, "127.0.0.2") == 20
        assert count_until_refused(mock.base_url, "127.0.0.3") == 20


def test_without_a_token_requests_are_keyed_by_ip(api, pisano_mock):
    freeze(pisano_mock, ALIGNED)
    no_auth = [
        api.session.post(api.base_url + SHARINGS_PATH, json=BODY).status_code for _ in range(21)
    ]
    assert no_auth == [400] * 20 + [429]
    assert pisano_mock.call("GET", "/__mock/throttle")["counters"][0]["key"] == "ip:127.0.0.1"
    assert api.post(BODY).status_code == 200  # the token's bucket is another
