"""SPEC 1.3: one instant per request. The journal entry's `time` and its sharings' `accepted_at`
are the same reading of the emulator's clock, on both storages, even while the clock runs."""

from __future__ import annotations

from typing import Any

import pytest

from mockserver.app import create_app
from mockserver.settings import load_settings

CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
PATH = f"/v1/email_campaigns/{CAMPAIGN}/email_sharings"
HEADERS = {"Authorization": "Token token=test-token"}


@pytest.fixture(params=["memory", "redis"])
def client(request: pytest.FixtureRequest) -> Any:
    storage = "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")
    return create_app(load_settings(storage=storage)).test_client()


def test_accepted_at_is_the_journal_time_of_the_request_while_the_clock_runs(client):
    # A clock running a million times faster than real time: two readings never agree.
    clock = {"set": 1_000_000_000, "rate": 1_000_000}
    assert client.post("/__mock/clock", json=clock).status_code == 200
    for _ in range(3):
        answer = client.post(PATH, json={"emails": ["a@example.com"]}, headers=HEADERS)
        assert answer.status_code == 200
        request_id = int(answer.headers["X-Pisano-Mock-Request-Id"])
        (entry,) = [
            e for e in client.get("/__mock/requests").json["requests"] if e["id"] == request_id
        ]
        sharings = client.get("/__mock/sharings").json["sharings"]
        (sharing,) = [s for s in sharings if s["request_id"] == request_id]
        assert sharing["accepted_at"] == entry["time"]
