"""Acceptance of issue 10's delivery (SPEC 1.7), through the whole emulator: a config file whose
campaign's provider is a real server on 127.0.0.1, a request to the API, `POST
/__mock/outbox/flush`, then what the server received and what `GET /__mock/outbox` says."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from provider_servers import HOST, Recorder, free_port, http_receiver, smtp_server

from contracts.pytest_plugin import DEFAULT_CAMPAIGN, DEFAULT_TOKEN
from mockserver.app import create_app
from mockserver.server import LiveServer
from mockserver.settings import load_settings

SUBJECT = "How was your visit?"
RECIPIENTS = [f"customer{n}@example.com" for n in range(5)]
FLUSH_SECONDS = 20  # flush answers as soon as nothing is queued or sending: an upper bound


def config(
    tmp_path: Path, provider: str, max_attempts: int = 3, backoff: float = 0.02, timeout: float = 2
) -> Path:
    """The default fixture with the example campaign's provider replaced, delivery made quick."""
    path = tmp_path / "delivery.toml"
    path.write_text(
        f"""
[delivery]
max_attempts = {max_attempts}
backoff_seconds = {backoff}
attempt_timeout_seconds = {timeout}

[campaigns.{DEFAULT_CAMPAIGN}]
account = "acme"
subject = "{SUBJECT}"
provider = {provider}
"""
    )
    return path


class Emulator:
    """The emulated API and its admin API on one live server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def share(self, emails: list[str]) -> requests.Response:
        names = {email: {"name": f"Customer {email[8]}"} for email in emails}
        body = {"emails": emails, "custom_attributes": names, "built_in_responses": {"nps": 9}}
        return self.session.post(
            f"{self.base_url}/v1/email_campaigns/{DEFAULT_CAMPAIGN}/email_sharings",
            json=body,
            headers={"Authorization": f"Token token={DEFAULT_TOKEN}"},
            timeout=30,
        )

    def flush(self) -> dict[str, Any]:
        url = f"{self.base_url}/__mock/outbox/flush"
        answer = self.session.post(url, json={"timeout": FLUSH_SECONDS}, timeout=60)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def messages(self) -> list[dict[str, Any]]:
        url = f"{self.base_url}/__mock/outbox"
        answer = self.session.get(url, params={"campaign_id": DEFAULT_CAMPAIGN}, timeout=30)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["messages"]
        return found

    def by_recipient(self) -> dict[str, dict[str, Any]]:
        return {message["to"]: message for message in self.messages()}


@contextmanager
def emulator(config_path: Path) -> Iterator[Emulator]:
    with LiveServer(create_app(load_settings(config_path))) as server:
        yield Emulator(server.base_url)


def shared(mock: Emulator, emails: list[str] = RECIPIENTS) -> None:
    answer = mock.share(emails)
    assert answer.status_code == 200, answer.text  # the API answers first, whatever the provider


def wait_until(holds: Callable[[], bool], seconds: float = 10) -> None:
    """Until `holds()` (read through the admin API), for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while not holds():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.02)


# --- SMTP -----------------------------------------------------------------------------------------


def test_five_recipients_are_five_smtp_messages_with_their_links(tmp_path: Path) -> None:
    with smtp_server() as server:
        provider = f'{{ type = "smtp", host = "{HOST}", port = {server.port} }}'
        with emulator(config(tmp_path, provider)) as mock:
            shared(mock)
            mock.flush()
            outbox = mock.by_recipient()
    assert sorted(outbox) == RECIPIENTS
    assert {m["status"] for m in outbox.values()} == {"sent"}
    assert len(server.received) == 5  # exactly: one transaction per recipient, none twice
    for got in server.received:
        (to,) = got.rcpt_tos
        link = outbox[to]["link"]
        assert got.email["To"] == to and got.email["Subject"] == SUBJECT
        assert "?responses=" in link
        assert link in got.part("plain") and link in got.part("html")
    assert sorted(got.rcpt_tos[0] for got in server.received) == RECIPIENTS


def test_an_smtp_server_that_is_down_leaves_failed_messages_naming_it(tmp_path: Path) -> None:
    port = free_port()
    provider = f'{{ type = "smtp", host = "{HOST}", port = {port} }}'
    with emulator(config(tmp_path, provider, max_attempts=3)) as mock:
        shared(mock)
        mock.flush()
        outbox = mock.messages()
    assert len(outbox) == 5
    for message in outbox:
        assert (message["status"], message["attempts"]) == ("failed", 3)
        assert message["last_error"] == f"smtp {HOST}:{port}: connection refused"
        assert message["sent_at"] is None


def test_an_smtp_server_back_within_the_retries_gets_every_message(tmp_path: Path) -> None:
    port = free_port()
    provider = f'{{ type = "smtp", host = "{HOST}", port = {port} }}'
    # Waits of 0.2, 0.4, 0.8, 1.6, 3.2 s: 6 s of retries, time enough to bring the server up.
    with emulator(config(tmp_path, provider, max_attempts=6, backoff=0.2)) as mock:
        shared(mock)
        wait_until(lambda: all(m["last_error"] for m in mock.messages()))
        with smtp_server(port=port) as server:
            mock.flush()
            outbox = mock.messages()
    assert {m["status"] for m in outbox} == {"sent"}
    assert all(m["attempts"] >= 2 for m in outbox)
    assert sorted(got.rcpt_tos[0] for got in server.received) == RECIPIENTS


def test_a_refused_recipient_fails_alone_naming_the_refusal(tmp_path: Path) -> None:
    refused = RECIPIENTS[2]
    recorder = Recorder(refuse_rcpt={refused: "550 5.1.1 No such user here"})
    with smtp_server(recorder) as server:
        provider = f'{{ type = "smtp", host = "{HOST}", port = {server.port} }}'
        with emulator(config(tmp_path, provider)) as mock:
            shared(mock)
            mock.flush()
            outbox = mock.by_recipient()
    assert outbox.pop(refused)["last_error"] == (
        f"smtp: 550 <{refused}> refused: 5.1.1 No such user here"
    )
    assert {m["status"] for m in outbox.values()} == {"sent"}  # the others did not wait for it
    assert sorted(got.rcpt_tos[0] for got in server.received) == sorted(outbox)


# --- HTTP -----------------------------------------------------------------------------------------


def test_five_recipients_are_five_posts_to_the_http_provider(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        url = f"{receiver.base_url}/ok"
        provider = f'{{ type = "http", url = "{url}", headers = {{ Authorization = "Bearer k" }} }}'
        with emulator(config(tmp_path, provider)) as mock:
            shared(mock)
            mock.flush()
            outbox = mock.by_recipient()
    assert {m["status"] for m in outbox.values()} == {"sent"}
    assert len(receiver.posts) == 5
    for post in receiver.posts:
        body = post.json
        message = outbox[body["to"]]
        assert post.headers["Authorization"] == "Bearer k"
        assert body["link"] == message["link"] and body["sharing_id"] == message["sharing_id"]
        assert (body["subject"], body["campaign_id"]) == (SUBJECT, DEFAULT_CAMPAIGN)
        assert body["custom_attributes"] == {"name": f"Customer {body['to'][8]}"}
    assert sorted(post.json["to"] for post in receiver.posts) == RECIPIENTS


def test_an_http_provider_answering_500_leaves_failed_messages_naming_it(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        url = f"{receiver.base_url}/fail"
        with emulator(config(tmp_path, f'{{ type = "http", url = "{url}" }}')) as mock:
            shared(mock, RECIPIENTS[:2])
            mock.flush()
            outbox = mock.messages()
    assert len(receiver.posts) == 2 * 3  # every attempt was a POST
    for message in outbox:
        assert (message["status"], message["attempts"]) == ("failed", 3)
        assert message["last_error"] == (
            f"http: 500 Internal Server Error from {url}: upstream exploded"
        )


def test_an_http_provider_that_hangs_fails_each_message_in_its_time(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        url = f"{receiver.base_url}/hang"
        provider = f'{{ type = "http", url = "{url}" }}'
        with emulator(config(tmp_path, provider, max_attempts=2, timeout=0.3)) as mock:
            shared(mock)  # answered at once: delivery is off the request path
            mock.flush()
            outbox = mock.messages()
    assert len(outbox) == 5
    for message in outbox:
        assert (message["status"], message["attempts"]) == ("failed", 2)
        assert message["last_error"] == f"http: no answer within 0.3 s from {url}"
