"""RedisOutbox (SPEC 1.7, 2.5) on a real redis-server: bounds, claims, leases, retries, settles,
several claimers at once (threads, and processes with their own clients), reset.

Leases and due times are real time on Redis' TIME: a lease of 0 has run out by the next claim and
a retry due in 0 s is due at once, so nothing here sleeps; one of an hour never is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from mockserver.outbox import Letterhead, MailBatch, Outbox, OutboxFilter, Settled
from mockserver.redis_outbox import RedisOutbox
from mockserver.settings import Bounds
from mockserver.state import SharingBatch

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600.0
OutboxFactory = Callable[[Bounds], Outbox]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def outbox_factory(client: redis.Redis) -> OutboxFactory:
    """A fresh outbox with these bounds (the contract tests' fixture: same name, same shape)."""
    return lambda bounds: RedisOutbox(client, bounds)


@pytest.fixture
def outbox(outbox_factory: OutboxFactory) -> Outbox:
    return outbox_factory(Bounds())


def mail(
    first_id: int,
    recipients: int,
    provider: str = "http",
    campaign_id: str = "c1",
    channel: str = "email",
) -> MailBatch:
    emails = [f"user{first_id + i}@example.test" for i in range(recipients)]
    parts = {"custom_attributes": {email: {"name": f"N{i}"} for i, email in enumerate(emails)}}
    sharings = SharingBatch.of(campaign_id, first_id, 1000.0, emails, parts)
    if channel != "email":
        sharings = SharingBatch(**{**sharings.__dict__, "channel": channel})
    settings = {"type": provider, "url": "http://127.0.0.1:9/"} if provider == "http" else {}
    letterhead = Letterhead(campaign_id, "s@example.test", "Hi", None, None, settings, {})
    return MailBatch(first_id, sharings, letterhead)


def ids(outbox: Outbox, since: int = 0, **wanted: str) -> list[int]:
    return [held.id for held in outbox.page(since, 10_000, OutboxFilter(**wanted)).messages]


def claimed_id(outbox: Outbox, lease: float = HOUR) -> int | None:
    claimed = outbox.claim(lease)
    return None if claimed is None else claimed.message.id


def drain(outbox: Outbox) -> list[int]:
    """Claim and settle as sent until nothing is left; the ids claimed, in order."""
    taken = []
    while (claimed := outbox.claim(HOUR)) is not None:
        taken.append(claimed.message.id)
        outbox.settle(claimed.message.id, Settled(sent_at=1.0))
    return taken


# -- what is held ---------------------------------------------------------------------------------


def test_a_batch_for_the_outbox_provider_is_captured_and_never_claimed(outbox: Outbox) -> None:
    outbox.add(mail(1, 3, provider="outbox"))
    assert outbox.statuses()["captured"] == 3
    assert outbox.claim(HOUR) is None
    held = outbox.get(2)
    assert held is not None
    assert (held.index, held.state.status, held.mail.letterhead.campaign_id) == (
        1,
        "captured",
        "c1",
    )
    assert outbox.get(4) is None
    assert outbox.get(0) is None


def test_a_batch_for_a_provider_is_queued_and_read_back_as_added(outbox: Outbox) -> None:
    added = mail(10, 4)
    outbox.add(added)
    assert outbox.statuses() == {"queued": 4, "sending": 0, "sent": 0, "failed": 0, "captured": 0}
    held = outbox.get(13)
    assert held is not None
    assert held.mail == added
    assert (held.index, held.state.status, held.state.attempts) == (3, "queued", 0)


def test_the_page_filters_and_pages(outbox: Outbox) -> None:
    outbox.add(mail(1, 3, provider="outbox", campaign_id="a"))
    outbox.add(mail(4, 2, campaign_id="b", channel="sms"))
    assert ids(outbox) == [1, 2, 3, 4, 5]
    assert ids(outbox, since=2) == [3, 4, 5]
    assert ids(outbox, campaign_id="b") == [4, 5]
    assert ids(outbox, channel="sms") == [4, 5]
    assert ids(outbox, to="USER2@Example.TEST") == [2]
    assert ids(outbox, status="queued") == [4, 5]
    first = outbox.page(0, 2, OutboxFilter())
    assert ([m.id for m in first.messages], first.more) == ([1, 2], True)
    last = outbox.page(3, 2, OutboxFilter())
    assert ([m.id for m in last.messages], last.more) == ([4, 5], False)


# -- bounds (the rule, shared with memory, is pinned by tests/test_outbox_contract.py) ----------


def test_over_the_message_bound_the_oldest_batch_is_dropped_and_counted(
    outbox_factory: OutboxFactory,
) -> None:
    outbox = outbox_factory(Bounds(outbox_max_messages=4))
    for first_id in (1, 3, 5):
        outbox.add(mail(first_id, 2, provider="outbox"))
    page = outbox.page(0, 100, OutboxFilter())
    assert ([m.id for m in page.messages], page.dropped) == ([3, 4, 5, 6], 2)
    assert outbox.statuses()["captured"] == 4
    assert outbox.get(1) is None


def test_over_the_byte_bound_the_oldest_batch_is_dropped(outbox_factory: OutboxFactory) -> None:
    one = mail(1, 2, provider="outbox")
    outbox = outbox_factory(Bounds(outbox_max_bytes=2 * one.nbytes + 10))
    for first_id in (1, 3, 5):
        outbox.add(mail(first_id, 2, provider="outbox"))
    assert ids(outbox) == [3, 4, 5, 6]
    assert outbox.page(0, 100, OutboxFilter()).dropped == 2


def test_a_batch_with_unsent_messages_is_never_dropped(outbox_factory: OutboxFactory) -> None:
    outbox = outbox_factory(Bounds(outbox_max_messages=2))
    outbox.add(mail(1, 2))  # queued: held past the bound
    outbox.add(mail(3, 2, provider="outbox"))
    assert (ids(outbox), outbox.page(0, 10, OutboxFilter()).dropped) == ([1, 2, 3, 4], 0)
    outbox.settle(claimed_id(outbox) or 0, Settled(sent_at=1.0))
    assert ids(outbox) == [1, 2, 3, 4]  # one still queued
    outbox.settle(claimed_id(outbox) or 0, Settled(error="refused"))
    page = outbox.page(0, 10, OutboxFilter())
    assert ([m.id for m in page.messages], page.dropped) == ([3, 4], 2)
    assert outbox.statuses() == {"queued": 0, "sending": 0, "sent": 0, "failed": 0, "captured": 2}


# -- claims, leases, retries, settles -------------------------------------------------------------


def test_claims_take_a_lapsed_lease_then_a_due_retry_then_the_oldest_batch(
    outbox: Outbox,
) -> None:
    outbox.add(mail(1, 3))
    outbox.add(mail(4, 1))
    assert claimed_id(outbox) == 1
    assert claimed_id(outbox, lease=0) == 2  # its sender "dies": the lease runs out at once
    outbox.settle(1, Settled(error="busy", retry_in=0.0))  # due again at once
    order = []
    while (claimed := outbox.claim(HOUR)) is not None:
        order.append((claimed.message.id, claimed.message.state.attempts))
    assert order == [(2, 2), (1, 2), (3, 1), (4, 1)]


def test_a_claim_is_sending_with_its_attempt_counted(outbox: Outbox) -> None:
    outbox.add(mail(1, 1))
    claimed = outbox.claim(HOUR)
    assert claimed is not None
    state = claimed.message.state
    assert (state.status, state.attempts, claimed.message.index) == ("sending", 1, 0)
    assert outbox.statuses()["sending"] == 1
    got = outbox.get(1)
    assert got is not None and got.state == state


def test_a_retry_is_queued_until_due_with_its_error(outbox: Outbox, client: redis.Redis) -> None:
    outbox.add(mail(1, 1))
    claimed_id(outbox)
    outbox.settle(1, Settled(error="421 try later", retry_in=HOUR))
    assert outbox.claim(HOUR) is None  # not due for an hour
    held = outbox.get(1)
    assert held is not None
    assert (held.state.status, held.state.attempts, held.state.last_error) == (
        "queued",
        1,
        "421 try later",
    )
    seconds, micros = client.time()
    due = client.zscore("pisano-mock:outbox:turn:due:c1", "1")  # campaign c1's retries
    assert due is not None and HOUR - 5 < due - (seconds + micros / 1e6) <= HOUR


def test_a_message_whose_lease_ran_out_is_claimed_again(outbox: Outbox) -> None:
    outbox.add(mail(1, 2))
    assert claimed_id(outbox, lease=HOUR) == 1
    assert claimed_id(outbox, lease=0) == 2
    again = outbox.claim(HOUR)
    assert again is not None
    assert (again.message.id, again.message.state.attempts) == (2, 2)
    assert outbox.claim(HOUR) is None  # message 1's lease holds
    assert outbox.statuses()["sending"] == 2


def test_sent_and_failed_are_kept_with_their_details(outbox: Outbox) -> None:
    outbox.add(mail(1, 2))
    outbox.settle(claimed_id(outbox) or 0, Settled(sent_at=1234.5))
    outbox.settle(claimed_id(outbox) or 0, Settled(error="550 no such user"))
    sent, failed = outbox.page(0, 10, OutboxFilter()).messages
    assert (sent.state.status, sent.state.sent_at) == ("sent", 1234.5)
    assert (failed.state.status, failed.state.last_error) == ("failed", "550 no such user")
    assert ids(outbox, status="failed") == [2]


def test_a_settle_after_the_lease_was_lost_is_ignored(client: redis.Redis, redis_url: str) -> None:
    first = RedisOutbox(client, Bounds())
    second = RedisOutbox(redis.Redis.from_url(redis_url), Bounds())  # another worker
    first.add(mail(1, 1))
    assert claimed_id(first, lease=0) == 1  # first stalls past its lease...
    assert claimed_id(second) == 1  # ...and another sender takes the message over
    first.settle(1, Settled(error="timed out"))  # too late: not first's claim any more
    held = second.get(1)
    assert held is not None
    assert (held.state.status, held.state.attempts) == ("sending", 2)
    second.settle(1, Settled(sent_at=2.0))
    assert second.statuses()["sent"] == 1
    assert second.statuses()["failed"] == 0


def test_a_settle_after_the_lease_was_lost_to_a_thread_of_the_same_process_is_ignored(
    outbox: Outbox,
) -> None:
    first, second = ThreadPoolExecutor(1), ThreadPoolExecutor(1)  # two sender threads
    outbox.add(mail(1, 1))
    assert first.submit(claimed_id, outbox, 0).result() == 1  # stalls past its lease...
    assert second.submit(claimed_id, outbox).result() == 1  # ...and the other takes it over
    first.submit(outbox.settle, 1, Settled(error="timed out")).result()
    held = outbox.get(1)
    assert held is not None
    assert (held.state.status, held.state.attempts) == ("sending", 2)
    second.submit(outbox.settle, 1, Settled(sent_at=2.0)).result()
    assert outbox.statuses()["sent"] == 1
    first.shutdown()
    second.shutdown()


def test_a_settle_from_a_thread_that_did_not_claim_counts(outbox: Outbox) -> None:
    outbox.add(mail(1, 1))
    with ThreadPoolExecutor(1) as sender:
        assert sender.submit(claimed_id, outbox).result() == 1
    outbox.settle(1, Settled(sent_at=2.0))
    assert outbox.statuses()["sent"] == 1


def test_a_settle_within_the_lease_counts_from_another_instance_too(
    client: redis.Redis,
) -> None:
    outbox = RedisOutbox(client, Bounds())
    outbox.add(mail(1, 1))
    claimed_id(outbox, lease=0)  # lapsed, but nobody took it over: the claim is still ours
    outbox.settle(1, Settled(sent_at=3.0))
    assert outbox.statuses()["sent"] == 1
    RedisOutbox(client, Bounds()).settle(1, Settled(error="not mine"))  # never claimed there
    held = outbox.get(1)
    assert held is not None and held.state.status == "sent"


def test_each_forked_worker_claims_as_its_own_claimant(client: redis.Redis) -> None:
    outbox = RedisOutbox(client, Bounds())  # built before the fork, as `serve` builds the app
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write_end, outbox.claimant.encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read_end, 100).decode() not in ("", outbox.claimant)


# -- several claimers -----------------------------------------------------------------------------


def test_threads_claim_each_of_500_messages_exactly_once(outbox: Outbox) -> None:
    outbox.add(mail(1, 300))
    outbox.add(mail(301, 200))
    taken: list[list[int]] = [[] for _ in range(4)]
    threads = [
        threading.Thread(target=lambda n=n: taken[n].extend(drain(outbox))) for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = sorted(i for ids_taken in taken for i in ids_taken)
    assert every == list(range(1, 501))
    assert outbox.statuses()["sent"] == 500


CLAIMER = """
import json, sys, redis
from mockserver.outbox import Settled
from mockserver.redis_outbox import RedisOutbox
from mockserver.settings import Bounds
client = redis.Redis.from_url(sys.argv[1])
outbox = RedisOutbox(client, Bounds())
client.rpush("test:ready", 1)
client.blpop(["test:go"], timeout=30)
taken = []
while (claimed := outbox.claim(3600)) is not None:
    taken.append(claimed.message.id)
    outbox.settle(claimed.message.id, Settled(sent_at=1.0))
print(json.dumps(taken))
"""


def test_processes_with_their_own_clients_claim_each_message_exactly_once(
    outbox: Outbox, client: redis.Redis, redis_url: str
) -> None:
    outbox.add(mail(1, 500))
    command = [sys.executable, "-c", CLAIMER, redis_url]
    processes = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    for _ in processes:  # both ready before either claims: they race for the same messages
        assert client.blpop(["test:ready"], timeout=30) is not None
    client.rpush("test:go", *[1] * len(processes))
    results = [json.loads(process.communicate(timeout=60)[0]) for process in processes]
    assert sorted(results[0] + results[1]) == list(range(1, 501))
    assert all(results), "both processes claimed some"
    assert outbox.statuses()["sent"] == 500


# -- the cache, reset -----------------------------------------------------------------------------


def test_claims_read_a_batch_once(outbox: Outbox, client: redis.Redis) -> None:
    outbox.add(mail(1, 50))
    reads = []
    original = client.hget
    client.hget = lambda name, field: reads.append(name) or original(name, field)  # type: ignore[method-assign,assignment,func-returns-value]
    assert len(drain(outbox)) == 50
    assert reads.count("pisano-mock:outbox:batches") == 1


def test_a_batch_added_after_redis_was_emptied_is_not_read_from_the_cache(
    outbox: Outbox, client: redis.Redis
) -> None:
    outbox.add(mail(1, 2, campaign_id="before"))
    held = outbox.get(1)
    assert held is not None and held.mail.letterhead.campaign_id == "before"
    client.flushdb()
    outbox.add(mail(1, 2, campaign_id="after"))
    again = outbox.get(1)
    assert again is not None and again.mail.letterhead.campaign_id == "after"


def test_reset_empties_it_and_a_claim_under_way_is_then_ignored(outbox: Outbox) -> None:
    outbox.add(mail(1, 2))
    outbox.add(mail(3, 2, provider="outbox"))
    claimed_id(outbox)
    outbox.reset()
    assert outbox.statuses() == dict.fromkeys(
        ("queued", "sending", "sent", "failed", "captured"), 0
    )
    assert outbox.page(0, 10, OutboxFilter()).messages == []
    outbox.settle(1, Settled(sent_at=1.0))
    assert outbox.statuses()["sent"] == 0
    assert outbox.claim(HOUR) is None
    outbox.add(mail(5, 1))
    assert ids(outbox) == [5]
    assert claimed_id(outbox) == 5


def test_reset_leaves_no_key_of_a_campaign_behind(outbox: Outbox, client: redis.Redis) -> None:
    outbox.add(mail(1, 3))
    outbox.add(mail(4, 2, campaign_id="c2"))
    outbox.settle(claimed_id(outbox) or 0, Settled(error="down", retry_in=HOUR))
    assert client.keys("pisano-mock:outbox:turn:*")  # c1's retries, c2's fresh batch
    outbox.reset()
    assert client.keys("pisano-mock:outbox*") == []
