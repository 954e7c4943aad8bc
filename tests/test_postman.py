"""The senders: real threads, real retries (tiny backoff), a `send` injected in place of the
providers; and one end to end through a real HTTP receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mockserver import postman as postman_module
from mockserver.clock import MemoryClock
from mockserver.links import LinkMaker
from mockserver.messages import Message
from mockserver.outbox import Letterhead, MailBatch, MemoryOutbox, OutboxFilter
from mockserver.postman import Postman
from mockserver.providers import DeliveryError
from mockserver.settings import Bounds, Delivery
from mockserver.state import SharingBatch

CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
LINKS = LinkMaker("http://mock.test", b"k" * 32)
FAST = Delivery(max_attempts=3, backoff_seconds=0.001, attempt_timeout_seconds=1.0, senders=2)
NOW = 1_800_000_000.0


class Recorder:
    """A `send` that records what it is given and fails as told: `failures[to]` times."""

    def __init__(self, failures: Mapping[str, int] | None = None) -> None:
        self.failures = dict(failures or {})
        self.sent: list[Message] = []
        self.lock = threading.Lock()

    def __call__(self, message: Message, provider: Mapping[str, Any], timeout: float) -> None:
        with self.lock:
            if self.failures.get(message.to, 0) > 0:
                self.failures[message.to] -= 1
                raise DeliveryError(f"smtp {provider['host']}: 451 try later")
            self.sent.append(message)


def mail(first_id: int, count: int, text: str | None = None) -> MailBatch:
    emails = [f"r{first_id + i}@example.com" for i in range(count)]
    sharings = SharingBatch.of(CAMPAIGN, 1, NOW - 5, emails, {})
    provider = {"type": "smtp", "host": "smtp.test"}
    return MailBatch(
        first_id, sharings, Letterhead(CAMPAIGN, "s@x.test", "Hi", text, None, provider, {})
    )


@pytest.fixture
def outbox() -> MemoryOutbox:
    return MemoryOutbox(Bounds())


@pytest.fixture
def make_postman(outbox: MemoryOutbox) -> Iterator[Any]:
    made: list[Postman] = []

    def make(send: Any, delivery: Delivery = FAST) -> Postman:
        clock = MemoryClock()
        clock.set(NOW)  # frozen: sent_at is exactly the emulator's now
        made.append(Postman(outbox, LINKS, delivery, clock, send=send))
        return made[-1]

    yield make
    for postman in made:
        postman.stop()


def states(outbox: MemoryOutbox) -> list[tuple[int, str, int, str | None]]:
    page = outbox.page(0, 100, OutboxFilter())
    return [(m.id, m.state.status, m.state.attempts, m.state.last_error) for m in page.messages]


def test_every_queued_message_is_rendered_and_sent_once(outbox, make_postman):
    send = Recorder()
    postman = make_postman(send)
    outbox.add(mail(1, 5))
    postman.wake()
    counts = postman.flush(10)
    assert (counts["sent"], counts["queued"], counts["sending"]) == (5, 0, 0)
    assert sorted(m.to for m in send.sent) == [f"r{i}@example.com" for i in range(1, 6)]
    assert send.sent[0].link.startswith("http://mock.test/s/")
    assert {outbox.get(i).state.sent_at for i in range(1, 6)} == {NOW}


def test_a_failure_is_retried_until_it_is_sent(outbox, make_postman):
    postman = make_postman(Recorder({"r1@example.com": 2}))
    outbox.add(mail(1, 2))
    postman.wake()
    postman.flush(10)
    assert states(outbox) == [(1, "sent", 3, None), (2, "sent", 1, None)]


def test_after_max_attempts_the_message_is_failed_with_the_last_error(outbox, make_postman):
    send = Recorder({"r1@example.com": 99})
    postman = make_postman(send)
    outbox.add(mail(1, 1))
    postman.wake()
    counts = postman.flush(10)
    assert counts["failed"] == 1
    assert states(outbox) == [(1, "failed", 3, "smtp smtp.test: 451 try later")]


def test_a_permanent_refusal_fails_at_once_without_retries(outbox, make_postman):
    def refuses(message: Message, provider: Mapping[str, Any], timeout: float) -> None:
        raise DeliveryError(f"smtp: 550 <{message.to}> refused: no such user", permanent=True)

    postman = make_postman(refuses)
    outbox.add(mail(1, 1))
    postman.wake()
    postman.flush(10)
    assert states(outbox) == [(1, "failed", 1, "smtp: 550 <r1@example.com> refused: no such user")]


def test_a_template_that_fails_fails_its_message_at_once_and_the_others_go(outbox, make_postman):
    send = Recorder()
    postman = make_postman(send)
    outbox.add(mail(1, 1, text="{{ nope }}"))
    outbox.add(mail(2, 1))
    postman.wake()
    postman.flush(10)
    assert states(outbox) == [
        (1, "failed", 1, "template: text_template line 1: 'nope' is undefined"),
        (2, "sent", 1, None),
    ]
    assert [m.to for m in send.sent] == ["r2@example.com"]


def test_a_provider_bug_fails_the_message_not_the_sender(outbox, make_postman):
    def broken(message: Message, provider: Mapping[str, Any], timeout: float) -> None:
        raise KeyError("port")

    postman = make_postman(broken, Delivery(max_attempts=1, senders=1))
    outbox.add(mail(1, 2))
    postman.wake()
    postman.flush(10)
    assert states(outbox) == [
        (1, "failed", 1, "KeyError: 'port'"),
        (2, "failed", 1, "KeyError: 'port'"),
    ]


def test_the_backoff_doubles(make_postman):
    postman = make_postman(Recorder(), Delivery(max_attempts=4, backoff_seconds=1.5))
    assert [postman.retry_or_fail(n, "x").retry_in for n in (1, 2, 3)] == [1.5, 3.0, 6.0]
    assert postman.retry_or_fail(4, "x").retry_in is None


def test_flush_gives_up_at_its_timeout_and_says_what_is_pending(outbox, make_postman):
    release = threading.Event()

    def stuck(message: Message, provider: Mapping[str, Any], timeout: float) -> None:
        release.wait(10)

    postman = make_postman(stuck, Delivery(senders=1))
    outbox.add(mail(1, 2))
    postman.wake()
    counts = postman.flush(0.3)
    assert (counts["sending"], counts["queued"]) == (1, 1)
    release.set()
    assert postman.flush(10)["sent"] == 2


def test_idle_senders_stop_and_a_wake_starts_them_again(outbox, make_postman, monkeypatch):
    monkeypatch.setattr(postman_module, "IDLE_EXIT_SECONDS", 0.05)
    send = Recorder()
    postman = make_postman(send)
    postman.wake()
    assert postman.senders == FAST.senders
    deadline = time.monotonic() + 10
    while postman.senders and time.monotonic() < deadline:
        time.sleep(0.02)  # waiting for threads to end, not for the emulator's clock
    assert postman.senders == 0
    outbox.add(mail(1, 1))
    postman.wake()
    assert postman.flush(10)["sent"] == 1


def test_on_shared_storage_one_sender_keeps_looking_for_work_added_elsewhere(outbox, monkeypatch):
    # Another replica queued this message and died before its senders took it: nobody wakes us.
    monkeypatch.setattr(postman_module, "IDLE_EXIT_SECONDS", 0.05)
    send = Recorder()
    clock = MemoryClock()
    postman = Postman(outbox, LINKS, FAST, clock, send=send, shared=True)
    try:
        postman.wake()
        deadline = time.monotonic() + 10
        while postman.senders > 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for threads to end, not for the emulator's clock
        time.sleep(0.2)  # well past the idle limit: the last sender must still be there
        assert postman.senders == 1
        outbox.add(mail(1, 1))  # no wake, as if added by another process
        while not send.sent and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [m.to for m in send.sent] == ["r1@example.com"]
    finally:
        postman.stop()


def test_stop_ends_every_sender(make_postman):
    postman = make_postman(Recorder())
    postman.wake()
    postman.stop()
    assert postman.senders == 0
    postman.wake()  # a wake after the stop starts them again (the next test, the next request)
    assert postman.senders > 0


# -- end to end: the request, a sender, the http provider, a real receiver ----------------------


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/messages", received
    server.shutdown()
    server.server_close()


def test_five_recipients_are_five_posts_to_the_http_provider(server_with, receiver):
    url, received = receiver
    campaign = "00000000-0000-4000-8000-0000000000e2"
    fixture = {
        "campaigns": {campaign: {"account": "acme", "provider": {"type": "http", "url": url}}}
    }
    emails = [f"c{i}@example.com" for i in range(5)]
    with server_with(delivery=FAST) as (api, mock):
        mock.add_fixtures(fixture)
        answer = api.post({"emails": emails}, path=f"/v1/email_campaigns/{campaign}/email_sharings")
        assert answer.status_code == 200
        flushed = mock.call("POST", "/__mock/outbox/flush", {"timeout": 20})
        shown = mock.call("GET", "/__mock/outbox")["messages"]
    assert flushed["statuses"]["sent"] == 5, shown[0]["last_error"]
    assert sorted(post["to"] for post in received) == emails
    assert {post["sharing_id"] for post in received} == set(answer.json()["sharings"].values())
    assert {m["status"] for m in shown} == {"sent"}


def test_a_sender_outlives_an_outbox_it_cannot_read_for_a_while(outbox, make_postman, caplog):
    claim = outbox.claim
    failures = iter(range(3))

    def flaky(lease_seconds: float, share: int | None = None) -> Any:
        if next(failures, None) is not None:
            raise ConnectionError("redis went away")
        return claim(lease_seconds, share)

    outbox.claim = flaky  # type: ignore[method-assign]
    postman = make_postman(Recorder(), Delivery(senders=1))
    outbox.add(mail(1, 1))
    postman.wake()
    assert postman.flush(10)["sent"] == 1
    logged = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert logged == ["sender: the outbox cannot be read: ConnectionError: redis went away"]
