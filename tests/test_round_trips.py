"""Issue 9: what one emulated request costs in round trips to Redis, counted on redis-py's
connections (a regression that adds one fails here, not only in bench/storage.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis

from mockserver.app import create_app
from mockserver.settings import load_settings

CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
PATH = f"/v1/email_campaigns/{CAMPAIGN}/email_sharings"
HEADERS = {"Authorization": "Token token=test-token"}
BODY = {"emails": ["a@example.com", "b@example.com"]}
ADMIN_HEADERS = {"Content-Type": "application/json"}


class Counter:
    """Counts what redis-py sends: one `send_packed_command` is one round trip (a pipeline too)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(connection: Any, command: Any, check_health: bool = True) -> None:
            self.sent += 1
            original(connection, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)

    def per_request(self, client: Any, requests: int = 5) -> float:
        before = self.sent
        for _ in range(requests):
            answer = client.post(PATH, json=BODY, headers=HEADERS)
            assert answer.status_code == 200, answer.text
        return (self.sent - before) / requests


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Counter:
    return Counter(monkeypatch)


def client_on(redis_url: str, throttle: bool = False) -> Any:
    settings = load_settings(storage=redis_url)
    tiers = "1000000000/5 seconds"  # counts every request, refuses none
    counted = replace(settings.throttle, enabled=throttle, tiers=tiers)
    settings = settings.with_changes(throttle=counted)
    client = create_app(settings).test_client()
    client.post(PATH, json=BODY, headers=HEADERS)  # warm: scripts loaded, registry read
    return client


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    yield client_on(redis_url)


def test_a_request_costs_five_round_trips_with_the_throttle_off(client, counter):
    # Journal opened with the clock read, sharings recorded, the outbox's batch added (issue 10:
    # it needs the sharings' first id), journal closed, metrics counted.
    assert counter.per_request(client) == 5


def test_the_throttle_costs_one_more(redis_url, counter):
    assert counter.per_request(client_on(redis_url, throttle=True)) == 6


def test_a_fault_held_costs_one_more_to_look_for_it(client, counter):
    fault = {"match": {"path": "/nowhere"}, "status": 500}
    assert client.post("/__mock/faults", json=fault, headers=ADMIN_HEADERS).status_code == 201
    counter.per_request(client, requests=1)  # warm: the fault script loaded into Redis
    assert counter.per_request(client) == 6


def test_a_fixture_added_is_read_once_by_the_next_request_then_cached(client, counter):
    fixture = {"tokens": {"new-token": {"account": "acme"}}}
    assert client.post("/__mock/fixtures", json=fixture, headers=ADMIN_HEADERS).status_code == 201
    assert counter.per_request(client, requests=1) == 6  # the registry read again, once
    assert counter.per_request(client) == 5
    answer = client.post(PATH, json=BODY, headers={"Authorization": "Token token=new-token"})
    assert answer.status_code == 200  # served at once, from the registry read again
