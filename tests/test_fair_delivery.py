"""Issue 10, "nothing else stalls", through the whole emulator (memory and Redis): campaign A's
HTTP provider accepts connections and never answers; campaign B's is a working SMTP server. B's
few messages, shared after A's many, are delivered while A's still wait: claims take turns
between campaigns, and no campaign holds more than its share of the senders."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from provider_servers import HOST, SmtpServer, silent_server, smtp_server

from contracts.pytest_plugin import DEFAULT_CAMPAIGN, DEFAULT_TOKEN
from mockserver.app import create_app
from mockserver.server import LiveServer
from mockserver.settings import load_settings

SLOW = DEFAULT_CAMPAIGN  # campaign A: its provider hangs
QUICK = "00000000-0000-4000-8000-0000000fa1b0"  # campaign B: its provider works
WITHIN_SECONDS = 5.0  # B's messages are sent by then; A's 200 would take 50 s at best
STORAGES = ["memory", "redis"]


def config(tmp_path: Path, hanging_port: int, smtp: SmtpServer) -> Path:
    path = tmp_path / "fair.toml"
    path.write_text(
        f"""
[delivery]
senders = 4
max_attempts = 2
backoff_seconds = 0.01
attempt_timeout_seconds = 1

[campaigns.{SLOW}]
account = "acme"
provider = {{ type = "http", url = "http://{HOST}:{hanging_port}/messages" }}

[campaigns.{QUICK}]
account = "acme"
subject = "Quick"
provider = {{ type = "smtp", host = "{HOST}", port = {smtp.port} }}
"""
    )
    return path


@contextmanager
def emulator(tmp_path: Path, storage: str) -> Iterator[tuple[str, SmtpServer]]:
    with silent_server() as hanging_port, smtp_server() as smtp:
        settings = load_settings(config(tmp_path, hanging_port, smtp), storage=storage)
        with LiveServer(create_app(settings)) as server:
            yield server.base_url, smtp


def share(base_url: str, campaign: str, emails: list[str]) -> None:
    answer = requests.post(
        f"{base_url}/v1/email_campaigns/{campaign}/email_sharings",
        json={"emails": emails},
        headers={"Authorization": f"Token token={DEFAULT_TOKEN}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def statuses(base_url: str, campaign: str) -> list[str]:
    answer = requests.get(
        f"{base_url}/__mock/outbox", params={"campaign_id": campaign, "limit": 1000}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    messages: list[dict[str, Any]] = answer.json()["messages"]
    return [message["status"] for message in messages]


def sent_within(base_url: str, campaign: str, seconds: float) -> bool:
    """Whether every message of `campaign` is sent within `seconds` (read through the admin API)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if set(statuses(base_url, campaign)) == {"sent"}:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return "memory://"


def test_a_hanging_provider_does_not_hold_up_another_campaign(tmp_path: Path, storage: str):
    with emulator(tmp_path, storage) as (base_url, smtp):
        share(base_url, SLOW, [f"slow{n}@example.com" for n in range(200)])
        share(base_url, QUICK, ["q1@example.com", "q2@example.com", "q3@example.com"])
        assert sent_within(base_url, QUICK, WITHIN_SECONDS), statuses(base_url, QUICK)
        waiting = statuses(base_url, SLOW)
    assert sorted(got.rcpt_tos[0] for got in smtp.received) == [
        "q1@example.com",
        "q2@example.com",
        "q3@example.com",
    ]
    assert waiting.count("queued") > 150  # A's still wait: its senders hang on its provider


# -- a growing outbox is visible (issue 10, attack finding 7) --------------------------------------
def watched(tmp_path: Path, storage: str, hanging_port: int) -> Any:
    """An app whose outbox holds 2 messages (captured ones go first), A's to a hanging provider."""
    path = tmp_path / "watched.toml"
    path.write_text(
        f"""
[bounds]
outbox_max_messages = 2

[delivery]
senders = 1
attempt_timeout_seconds = 30

[campaigns.{SLOW}]
account = "acme"
provider = {{ type = "http", url = "http://{HOST}:{hanging_port}/messages" }}

[campaigns.{QUICK}]
account = "acme"
"""
    )
    return create_app(load_settings(path, storage=storage)).test_client()


def shared_in(client: Any, campaign: str, emails: list[str]) -> None:
    answer = client.post(
        f"/v1/email_campaigns/{campaign}/email_sharings",
        json={"emails": emails},
        headers={"Authorization": f"Token token={DEFAULT_TOKEN}"},
    )
    assert answer.status_code == 200, answer.text


def filled(tmp_path: Path, storage: str, hanging_port: int) -> Any:
    """3 captured (1 of them dropped past the bound) then 3 to the hanging provider: 1 sending
    (its one sender hangs), 2 queued; the other captured dropped to make room."""
    client = watched(tmp_path, storage, hanging_port)
    shared_in(client, QUICK, ["c1@example.com", "c2@example.com", "c3@example.com"])
    shared_in(client, SLOW, ["h1@example.com", "h2@example.com", "h3@example.com"])
    deadline = time.monotonic() + WITHIN_SECONDS
    while client.get("/__mock/health").json["outbox"]["sending"] == 0:  # the sender claimed one
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return client


EXPECTED = {"queued": 2, "sending": 1, "sent": 0, "failed": 0, "captured": 0}


def test_health_counts_the_outbox_by_status_and_its_drops(tmp_path: Path, storage: str):
    with silent_server() as hanging_port:
        health = filled(tmp_path, storage, hanging_port).get("/__mock/health").json
    assert (health["outbox"], health["outbox_dropped"]) == (EXPECTED, 3)


def test_metrics_gauge_the_outbox_by_status(tmp_path: Path, storage: str):
    with silent_server() as hanging_port:
        text = filled(tmp_path, storage, hanging_port).get("/__mock/metrics").text
    for status, n in EXPECTED.items():
        assert f'pisano_mock_outbox_messages{{status="{status}"}} {float(n)}' in text
    assert "pisano_mock_outbox_dropped 3.0" in text
