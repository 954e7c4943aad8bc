"""The `Outbox` protocol's contract: every implementation passes the same tests.

Each test gets its outbox from `outbox_factory(bounds)`; a new implementation (Redis) is one more
parameter of that fixture."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockserver.bounded import BoundedLog
from mockserver.outbox import (
    Letterhead,
    MailBatch,
    MemoryOutbox,
    Outbox,
    OutboxFilter,
    Settled,
)
from mockserver.redis_outbox import RedisOutbox
from mockserver.settings import Bounds
from mockserver.state import SharingBatch

CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
OTHER = "00000000-0000-4000-8000-000000013005"
LONG = 3600.0  # a lease or retry that does not run out during a test


def memory_outbox(bounds: Bounds) -> Outbox:
    return MemoryOutbox(bounds)


@pytest.fixture(params=["memory", "redis"])
def outbox_factory(request: pytest.FixtureRequest) -> Callable[..., Outbox]:
    """One outbox per implementation: this process's memory, or a real redis-server's."""
    build: Callable[[Bounds], Outbox] = memory_outbox
    if request.param == "redis":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        request.addfinalizer(client.close)
        build = lambda bounds: RedisOutbox(client, bounds)  # noqa: E731

    def make(**bounds: int) -> Outbox:
        return build(Bounds(**bounds))

    return make


@pytest.fixture
def outbox(outbox_factory: Callable[..., Outbox]) -> Outbox:
    return outbox_factory()


def mail(
    first_id: int, count: int, provider: str = "smtp", campaign: str = CAMPAIGN, **parts: Any
) -> MailBatch:
    emails = [f"r{first_id + i}@example.com" for i in range(count)]
    sharings = SharingBatch.of(campaign, first_id, 1_700_000_000.0, emails, parts)
    head = Letterhead(campaign, "s@x.test", "Hi", None, None, {"type": provider}, {})
    return MailBatch(first_id, sharings, head)


def ids(outbox: Outbox, since: int = 0, limit: int = 100, **wanted: Any) -> list[int]:
    return [m.id for m in outbox.page(since, limit, OutboxFilter(**wanted)).messages]


def test_outbox_messages_are_captured_at_once_and_never_claimed(outbox):
    outbox.add(mail(1, 3, provider="outbox"))
    assert outbox.claim(LONG) is None
    assert outbox.statuses()["captured"] == 3
    assert [m.state.status for m in outbox.page(0, 10, OutboxFilter()).messages] == ["captured"] * 3


def test_a_claim_takes_the_oldest_queued_message_as_sending(outbox):
    outbox.add(mail(1, 2))
    claimed = outbox.claim(LONG)
    assert claimed is not None
    assert (claimed.message.id, claimed.message.index) == (1, 0)
    assert (claimed.message.state.status, claimed.message.state.attempts) == ("sending", 1)
    assert outbox.get(1).state.status == "sending"
    assert outbox.statuses() | {} == {
        "queued": 1,
        "sending": 1,
        "sent": 0,
        "failed": 0,
        "captured": 0,
    }


def test_each_message_is_claimed_once(outbox):
    outbox.add(mail(1, 3))
    outbox.add(mail(4, 2))
    claimed = [outbox.claim(LONG) for _ in range(6)]
    assert [c.message.id for c in claimed if c] == [1, 2, 3, 4, 5]
    assert claimed[-1] is None


def test_settle_sent_keeps_the_time_and_the_attempts(outbox):
    outbox.add(mail(1, 1))
    outbox.claim(LONG)
    outbox.settle(1, Settled(sent_at=123.0))
    state = outbox.get(1).state
    assert (state.status, state.sent_at, state.attempts, state.last_error) == (
        "sent",
        123.0,
        1,
        None,
    )
    assert outbox.statuses()["sent"] == 1


def test_settle_failed_keeps_the_error(outbox):
    outbox.add(mail(1, 1))
    outbox.claim(LONG)
    outbox.settle(1, Settled(error="smtp: 550 no such user"))
    state = outbox.get(1).state
    assert (state.status, state.last_error) == ("failed", "smtp: 550 no such user")
    assert outbox.claim(LONG) is None


def test_a_retry_is_claimable_when_due_and_counts_its_attempts(outbox):
    outbox.add(mail(1, 1))
    outbox.claim(LONG)
    outbox.settle(1, Settled(error="down", retry_in=0.0))
    assert outbox.get(1).state.status == "queued"
    assert outbox.get(1).state.last_error == "down"
    again = outbox.claim(LONG)
    assert again is not None
    assert (again.message.id, again.message.state.attempts) == (1, 2)


def test_a_retry_not_yet_due_is_not_claimed(outbox):
    outbox.add(mail(1, 1))
    outbox.claim(LONG)
    outbox.settle(1, Settled(error="down", retry_in=LONG))
    assert outbox.claim(LONG) is None
    assert outbox.statuses()["queued"] == 1


def test_a_lease_that_ran_out_makes_the_message_claimable_again(outbox):
    outbox.add(mail(1, 1))
    outbox.claim(0.0)  # its sender died at once
    again = outbox.claim(LONG)
    assert again is not None
    assert (again.message.id, again.message.state.attempts) == (1, 2)
    assert outbox.claim(LONG) is None  # held by a live lease now


def test_page_is_oldest_first_after_since_with_more(outbox):
    outbox.add(mail(1, 3, provider="outbox"))
    outbox.add(mail(4, 3, provider="outbox"))
    assert ids(outbox) == [1, 2, 3, 4, 5, 6]
    assert ids(outbox, since=2) == [3, 4, 5, 6]
    page = outbox.page(2, 2, OutboxFilter())
    assert ([m.id for m in page.messages], page.more) == ([3, 4], True)
    assert outbox.page(4, 2, OutboxFilter()).more is False


def test_page_filters(outbox):
    outbox.add(mail(1, 2, provider="outbox"))
    outbox.add(mail(3, 2, campaign=OTHER))
    outbox.claim(LONG)
    assert ids(outbox, campaign_id=OTHER) == [3, 4]
    assert ids(outbox, to="R2@EXAMPLE.com") == [2]
    assert ids(outbox, status="sending") == [3]
    assert ids(outbox, status="queued") == [4]
    assert ids(outbox, channel="email") == [1, 2, 3, 4]
    assert ids(outbox, channel="sms") == []


def test_get_unknown_is_none(outbox):
    outbox.add(mail(5, 2, provider="outbox"))
    assert outbox.get(4) is None
    assert outbox.get(7) is None
    assert outbox.get(6).index == 1


# -- bounds: the journal's rule (bounded.BoundedLog), but a batch with a message unsent is pinned --


def test_the_oldest_messages_are_dropped_one_by_one_and_counted(outbox_factory):
    outbox = outbox_factory(outbox_max_messages=4)
    outbox.add(mail(1, 3, provider="outbox"))
    outbox.add(mail(4, 3, provider="outbox"))
    page = outbox.page(0, 100, OutboxFilter())
    assert ([m.id for m in page.messages], page.dropped) == ([3, 4, 5, 6], 2)  # part of 1-3
    assert outbox.statuses()["captured"] == 4
    assert (outbox.get(1), outbox.get(2), outbox.get(3).index) == (None, None, 2)
    assert ids(outbox, since=1) == [3, 4, 5, 6]


def test_a_batch_bigger_than_the_bound_keeps_its_newest_messages(outbox_factory):
    outbox = outbox_factory(outbox_max_messages=3)
    outbox.add(mail(1, 10, provider="outbox"))
    page = outbox.page(0, 100, OutboxFilter())
    assert ([m.id for m in page.messages], page.dropped) == ([8, 9, 10], 7)
    assert outbox.statuses()["captured"] == 3
    assert outbox.get(7) is None


def test_the_byte_bound_drops_too(outbox_factory):
    small = mail(1, 2, provider="outbox")
    outbox = outbox_factory(outbox_max_bytes=small.nbytes + 1)
    outbox.add(small)
    outbox.add(mail(3, 2, provider="outbox"))
    assert ids(outbox) == [3, 4]


def test_the_byte_bound_drops_part_of_a_batch_by_its_share_of_the_bytes(outbox_factory):
    big = mail(1, 10, provider="outbox")
    outbox = outbox_factory(outbox_max_bytes=big.nbytes * 6 // 10)  # room for 6 of its 10
    outbox.add(big)
    assert ids(outbox) == [5, 6, 7, 8, 9, 10]
    assert outbox.page(0, 1, OutboxFilter()).dropped == 4


def test_a_partial_drop_takes_its_messages_out_of_the_counts_by_status(outbox_factory):
    outbox = outbox_factory(outbox_max_messages=3)
    outbox.add(mail(1, 3))
    for outcome in (Settled(sent_at=1.0), Settled(error="refused"), Settled(sent_at=2.0)):
        outbox.settle(outbox.claim(LONG).message.id, outcome)
    outbox.add(mail(4, 1, provider="outbox"))
    page = outbox.page(0, 10, OutboxFilter())
    assert ([m.id for m in page.messages], page.dropped) == ([2, 3, 4], 1)
    assert outbox.statuses() == {"queued": 0, "sending": 0, "sent": 1, "failed": 1, "captured": 1}
    assert outbox.claim(LONG) is None


def test_a_batch_with_unsent_messages_is_never_dropped(outbox_factory):
    outbox = outbox_factory(outbox_max_messages=2)
    outbox.add(mail(1, 2))  # queued
    outbox.add(mail(3, 2, provider="outbox"))
    assert ids(outbox) == [1, 2, 3, 4]  # over the bound while the oldest waits
    for message_id in (1, 2):
        outbox.claim(LONG)
        outbox.settle(message_id, Settled(sent_at=1.0))
    assert ids(outbox) == [3, 4]  # the last settle let the bound drop the batch
    outbox.add(mail(5, 1, provider="outbox"))
    assert ids(outbox) == [4, 5]
    assert outbox.page(0, 10, OutboxFilter()).dropped == 3


def test_a_batch_bigger_than_the_bound_is_pinned_whole_until_its_last_message_is_settled(
    outbox_factory,
):
    outbox = outbox_factory(outbox_max_messages=2)
    outbox.add(mail(1, 4))
    for outcome in (Settled(sent_at=1.0), Settled(error="refused"), Settled(sent_at=2.0)):
        outbox.settle(outbox.claim(LONG).message.id, outcome)
    assert ids(outbox) == [1, 2, 3, 4]  # message 4 is still queued: nothing of the batch goes
    last = outbox.claim(LONG).message.id
    assert ids(outbox) == [1, 2, 3, 4]  # sending
    outbox.settle(last, Settled(sent_at=3.0))
    page = outbox.page(0, 10, OutboxFilter())
    assert ([m.id for m in page.messages], page.dropped) == ([3, 4], 2)
    assert outbox.statuses() == {"queued": 0, "sending": 0, "sent": 2, "failed": 0, "captured": 0}


def test_a_newer_batch_is_not_dropped_past_a_pinned_older_one(outbox_factory):
    outbox = outbox_factory(outbox_max_messages=2)
    outbox.add(mail(1, 1))  # queued
    outbox.add(mail(2, 3, provider="outbox"))
    assert ids(outbox) == [1, 2, 3, 4]
    assert outbox.statuses()["captured"] == 3


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=8),
    max_messages=st.integers(1, 30),
    room=st.floats(0.05, 3.0),
)
def test_settled_messages_go_as_the_journal_drops_its_items(
    outbox_factory, sizes, max_messages, room
):
    """Nothing unsent: the outbox keeps and counts what a BoundedLog of the same bounds keeps."""
    batches, first_id = [], 1
    for size in sizes:
        batches.append(mail(first_id, size, provider="outbox"))
        first_id += size
    max_bytes = max(int(room * batches[0].nbytes), 1)
    outbox = outbox_factory(outbox_max_messages=max_messages, outbox_max_bytes=max_bytes)
    outbox.reset()  # one Redis for every example
    log: BoundedLog[int] = BoundedLog(max_messages, max_bytes)
    for batch in batches:
        outbox.add(batch)
        log.append(range(len(batch)), batch.nbytes)
    page = outbox.page(0, first_id, OutboxFilter())
    assert [m.id for m in page.messages] == [i for i, _ in log.items_since()]
    assert (page.dropped, outbox.statuses()["captured"]) == (log.dropped, log.count)


def test_reset_empties_everything(outbox):
    outbox.add(mail(1, 2))
    outbox.claim(LONG)
    outbox.reset()
    assert ids(outbox) == []
    assert outbox.claim(LONG) is None
    assert set(outbox.statuses().values()) == {0}
    outbox.add(mail(10, 1))
    assert ids(outbox) == [10]


# -- fairness (issue 10: a slow provider stalls nothing else) ----------------------------------
def claimed_campaigns(outbox: Outbox, n: int, share: int | None = None) -> list[str | None]:
    """The campaign of each of `n` claims (None: nothing claimable), leases held."""
    taken = [outbox.claim(LONG, share) for _ in range(n)]
    return [c and c.message.mail.letterhead.campaign_id for c in taken]


def test_claims_take_turns_between_campaigns_not_oldest_first(outbox):
    outbox.add(mail(1, 200))
    outbox.add(mail(201, 3, campaign=OTHER))
    assert claimed_campaigns(outbox, 8) == [CAMPAIGN, OTHER] * 3 + [CAMPAIGN] * 2


def test_a_campaign_holds_no_more_than_its_share_of_the_senders(outbox):
    outbox.add(mail(1, 200))
    assert claimed_campaigns(outbox, 3, share=2) == [CAMPAIGN, CAMPAIGN, None]
    outbox.add(mail(201, 3, campaign=OTHER))
    assert claimed_campaigns(outbox, 3, share=2) == [OTHER, OTHER, None]
    outbox.settle(1, Settled(sent_at=1.0))  # one of its senders is free again
    assert claimed_campaigns(outbox, 2, share=2) == [CAMPAIGN, None]


def test_retries_and_lapsed_leases_keep_the_share(outbox):
    outbox.add(mail(1, 3))
    outbox.claim(LONG, 1)
    outbox.settle(1, Settled(error="down", retry_in=0.0))
    outbox.claim(0.0, 1)  # message 1 again, its sender dies at once
    assert outbox.claim(LONG, 1).message.id == 1  # the lapsed lease, taken again
    assert outbox.claim(LONG, 1) is None  # message 2 waits: the campaign has its one sender
