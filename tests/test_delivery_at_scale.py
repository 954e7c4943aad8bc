"""Acceptance of issue 10 at scale: 5000 recipients are 5000 messages whose links carry what was
sent; with two workers and a second replica on one Redis, each message reaches a real SMTP
server exactly once."""

from __future__ import annotations

import base64
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import requests
from provider_servers import HOST, smtp_server
from test_delivery import config
from test_shared_state import replica, worker_pids

from contracts.pytest_plugin import DEFAULT_CAMPAIGN, DEFAULT_TOKEN

AUTH = {"Authorization": f"Token token={DEFAULT_TOKEN}"}
PATH = f"/v1/email_campaigns/{DEFAULT_CAMPAIGN}/email_sharings"
RESPONSES = {"NPS": 9, "Comment": "çok iyi", "Channel": "web"}  # Channel: an option question


def decoded(link: str) -> list[dict[str, object]]:
    (value,) = parse_qs(urlsplit(link).query)["responses"]
    items: list[dict[str, object]] = orjson.loads(base64.b64decode(value, validate=True))
    return items


def test_5000_recipients_are_5000_messages_whose_links_carry_what_was_sent(pisano_mock):
    emails = [f"customer{n}@example.com" for n in range(5000)]
    body = {"emails": emails, "built_in_responses": RESPONSES}
    answer = requests.post(pisano_mock.base_url + PATH, json=body, headers=AUTH, timeout=60)
    assert answer.status_code == 200, answer.text
    page = requests.get(
        f"{pisano_mock.base_url}/__mock/outbox", params={"limit": 10000}, timeout=60
    ).json()
    messages = page["messages"]
    assert [m["to"] for m in messages] == emails  # one each, in order, none dropped
    assert {m["status"] for m in messages} == {"captured"}
    assert len({m["link"] for m in messages}) == 5000  # a link of its own each
    expected = [
        {"question_key": "NPS", "body": 9},
        {"question_key": "Comment", "body": "çok iyi"},
        {"question_key": "Channel", "option_key": "web"},
    ]
    assert all(decoded(m["link"]) == expected for m in messages)


def test_two_workers_and_a_replica_on_redis_deliver_each_message_exactly_once(
    redis_url: str, tmp_path: Path
):
    with smtp_server() as server, ExitStack() as stack:
        provider = f'{{ type = "smtp", host = "{HOST}", port = {server.port} }}'
        settings = str(config(tmp_path, provider))
        first = stack.enter_context(replica(redis_url, "--config", settings))
        second = stack.enter_context(replica(redis_url, "--config", settings, "--workers", "2"))
        assert len(worker_pids(second)) == 2  # three processes, each with its senders
        sent: list[str] = []
        for batch in range(8):  # new connections: the two workers of `second` take both
            emails = [f"b{batch}-r{n}@example.com" for n in range(25)]
            target = (first, second)[batch % 2]
            answer = requests.post(
                target.base_url + target.path, json={"emails": emails}, headers=AUTH, timeout=30
            )
            assert answer.status_code == 200, answer.text
            sent += emails
        flushed = first.admin("POST", "outbox/flush", {"timeout": 60})
        assert flushed["pending"] == 0 and flushed["statuses"]["sent"] == 200, flushed
        received = sorted(to for got in server.received for to in got.rcpt_tos)
    assert received == sorted(sent)  # every message once: none lost, none twice
