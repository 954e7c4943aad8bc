"""The outbox (SPEC 1.7): one message per accepted recipient, held bounded, and its delivery state.

A request adds one `MailBatch` (its recipients and the campaign's letterhead as they were at the
request's instant): nothing is rendered on the request path. A message is rendered when it is
read or delivered (`messages.render`). `Outbox` is the interface; `MemoryOutbox` keeps it in this
process, `redis_outbox.RedisOutbox` in Redis, shared by every worker and replica.
"""

from __future__ import annotations

import bisect
import heapq
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from .bounded import oldest_to_drop, share_of_bytes
from .settings import Bounds
from .state import Account, Campaign, SharingBatch

STATUSES = ("queued", "sending", "sent", "failed", "captured")
UNSENT = ("queued", "sending")  # pin their batch against the bounds; what a flush waits for
LETTERHEAD_BYTES = 512  # what a batch's letterhead costs the bounds, near enough


@dataclass(frozen=True)
class Letterhead:
    """What a campaign says of its messages, as it was when the request was answered."""

    campaign_id: str
    sender: str
    subject: str | None
    text_template: str | None
    html_template: str | None
    provider: Mapping[str, Any]
    customer_schema: Mapping[str, str]  # the account's: types the survey link's responses

    @classmethod
    def of(cls, campaign: Campaign, account: Account) -> Letterhead:
        return cls(
            campaign.id,
            campaign.sender,
            campaign.subject,
            campaign.text_template,
            campaign.html_template,
            campaign.provider,
            account.customer_schema,
        )

    @property
    def provider_type(self) -> str:
        return str(self.provider.get("type", "outbox"))


@dataclass(frozen=True)
class MailBatch:
    """One request's accepted recipients as the outbox holds them; message `first_id + i` goes to
    recipient `i` and is its sharing `first_id + i`."""

    first_id: int
    sharings: SharingBatch
    letterhead: Letterhead

    @property
    def nbytes(self) -> int:
        return self.sharings.nbytes + LETTERHEAD_BYTES

    def __len__(self) -> int:
        return len(self.sharings)


@dataclass(frozen=True)
class DeliveryState:
    status: str  # one of STATUSES
    attempts: int = 0
    last_error: str | None = None
    sent_at: float | None = None  # on the emulator's clock


@dataclass(frozen=True)
class HeldMessage:
    """A message as the outbox holds it: rendered only when shown or delivered."""

    id: int
    mail: MailBatch
    index: int
    state: DeliveryState


@dataclass(frozen=True)
class Claimed:
    """A message taken for one delivery attempt (its status is `sending` until settled)."""

    message: HeldMessage  # state.attempts counts this attempt


@dataclass(frozen=True)
class OutboxFilter:
    campaign_id: str | None = None
    to: str | None = None  # compared case-insensitively
    status: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class OutboxPage:
    messages: list[HeldMessage]
    dropped: int
    more: bool


@dataclass(frozen=True)
class Settled:
    """How a delivery attempt ended: sent, failed for good, or to be tried again later."""

    sent_at: float | None = None  # set: sent
    error: str | None = None  # set (and no retry): failed, with this last_error
    retry_in: float | None = None  # set with an error: queued again, due in this many seconds


class Outbox(Protocol):
    """What the views and the senders need of the outbox, whatever keeps it."""

    def add(self, mail: MailBatch) -> None: ...
    def claim(self, lease_seconds: float, share: int | None = None) -> Claimed | None: ...
    def settle(self, message_id: int, outcome: Settled) -> None: ...
    def page(self, since: int, limit: int, wanted: OutboxFilter) -> OutboxPage: ...
    def get(self, message_id: int) -> HeldMessage | None: ...
    def statuses(self) -> dict[str, int]: ...
    def counts(self) -> dict[str, int]: ...
    def reset(self) -> None: ...


CAPTURED = DeliveryState("captured")
QUEUED = DeliveryState("queued")


@dataclass
class _Lane:
    """One campaign's work waiting for a sender: batches with messages never claimed, retries."""

    fresh: deque[_Held] = field(default_factory=deque)
    due: list[tuple[float, int]] = field(default_factory=list)  # (monotonic due time, id)

    def __bool__(self) -> bool:
        return bool(self.fresh or self.due)


@dataclass
class _Held:
    """One batch in the memory outbox. Only messages once claimed have a state of their own: the
    others are `captured` (provider outbox) or `queued` (from `cursor` on): an add is O(1)."""

    mail: MailBatch
    captured: bool
    unsent: int  # queued or sending: while any, the bounds drop nothing of this batch
    cursor: int = 0  # messages from here on were never claimed
    start: int = 0  # messages before this index were dropped by the bounds
    states: dict[int, DeliveryState] = field(default_factory=dict)  # by index

    @property
    def kept(self) -> int:
        return len(self.mail) - self.start

    @property
    def kept_bytes(self) -> int:
        return share_of_bytes(self.mail.nbytes, len(self.mail), self.kept)

    def state(self, index: int) -> DeliveryState:
        if self.captured:
            return CAPTURED
        return self.states.get(index, QUEUED)

    @property
    def last_id(self) -> int:
        return self.mail.first_id + len(self.mail) - 1


class MemoryOutbox:
    """The outbox in this process's memory (one lock); see `Outbox`."""

    def __init__(self, bounds: Bounds) -> None:
        self.max_messages = bounds.outbox_max_messages
        self.max_bytes = bounds.outbox_max_bytes
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._batches: list[_Held] = []  # by first id (ids are sharing ids: nearly always
            self._firsts: list[int] = []  # appended in order; insorted when two requests race)
            # Campaign → its waiting work, in turn order: a claim serves the first that has a
            # message due and moves it last (round robin: a backlog cannot starve a small batch).
            self._lanes: dict[str, _Lane] = {}
            self._leases: dict[int, tuple[float, str]] = {}  # id → (expiry, campaign): sending
            self._counts: Counter[str] = Counter()
            self._messages = 0
            self._bytes = 0
            self._dropped = 0

    def add(self, mail: MailBatch) -> None:
        captured = mail.letterhead.provider_type == "outbox"
        held = _Held(mail, captured, unsent=0 if captured else len(mail))
        with self._lock:
            at = bisect.bisect(self._firsts, mail.first_id)
            self._firsts.insert(at, mail.first_id)
            self._batches.insert(at, held)
            self._counts["captured" if captured else "queued"] += len(mail)
            self._messages += len(mail)
            self._bytes += mail.nbytes
            if not captured:
                self._lane(mail.letterhead.campaign_id).fresh.append(held)
            self._trim()

    def claim(self, lease_seconds: float, share: int | None = None) -> Claimed | None:
        """The next message due, now `sending`: one whose sender's lease ran out, else the next
        campaign in turn's retry whose time came or its oldest never claimed. A campaign with
        `share` messages sending already is passed over (None: no limit)."""
        now = time.monotonic()
        with self._lock:
            full = self._full(now, share)
            found = self._lease_expired(now, full) or self._next_in_turn(now, full)
            if found is None:
                return None
            held, index = found
            before = held.state(index)
            state = DeliveryState("sending", before.attempts + 1, before.last_error)
            self._change(held, index, state)
            campaign = held.mail.letterhead.campaign_id
            self._leases[held.mail.first_id + index] = (now + lease_seconds, campaign)
            return Claimed(HeldMessage(held.mail.first_id + index, held.mail, index, state))

    def _full(self, now: float, share: int | None) -> set[str]:
        """The campaigns with `share` live leases (as many leases as senders: a scan is cheap)."""
        if share is None:
            return set()
        busy = Counter(campaign for until, campaign in self._leases.values() if until > now)
        return {campaign for campaign, n in busy.items() if n >= share}

    def _lease_expired(self, now: float, full: set[str]) -> tuple[_Held, int] | None:
        expired = next(
            (i for i, (until, c) in self._leases.items() if until <= now and c not in full), None
        )
        if expired is None:
            return None
        del self._leases[expired]
        return self._locate(expired)

    def _next_in_turn(self, now: float, full: set[str]) -> tuple[_Held, int] | None:
        for campaign in [c for c in self._lanes if c not in full]:
            lane = self._lanes[campaign]
            found = self._retry_due(lane, now) or _never_claimed(lane)
            if found is not None:
                self._lanes[campaign] = self._lanes.pop(campaign)  # last in turn now
                return found
            if not lane:
                del self._lanes[campaign]
        return None

    def _retry_due(self, lane: _Lane, now: float) -> tuple[_Held, int] | None:
        while lane.due and lane.due[0][0] <= now:
            _, message_id = heapq.heappop(lane.due)
            found = self._locate(message_id)
            if found is not None and found[0].state(found[1]).status == "queued":
                return found
        return None

    def _lane(self, campaign: str) -> _Lane:
        return self._lanes.setdefault(campaign, _Lane())

    def settle(self, message_id: int, outcome: Settled) -> None:
        with self._lock:
            self._leases.pop(message_id, None)
            found = self._locate(message_id)
            if found is None or found[0].state(found[1]).status != "sending":
                return  # reset, or settled already by a sender whose lease had run out
            held, index = found
            before = held.state(index)
            self._change(held, index, settled_state(before, outcome))
            if outcome.retry_in is not None and outcome.sent_at is None:
                due = (time.monotonic() + outcome.retry_in, message_id)
                heapq.heappush(self._lane(held.mail.letterhead.campaign_id).due, due)
            self._trim()

    def _change(self, held: _Held, index: int, state: DeliveryState) -> None:
        before = held.state(index).status
        held.states[index] = state
        self._counts[before] -= 1
        self._counts[state.status] += 1
        held.unsent += (state.status in UNSENT) - (before in UNSENT)

    def _locate(self, message_id: int) -> tuple[_Held, int] | None:
        at = bisect.bisect(self._firsts, message_id) - 1
        if at < 0 or self._batches[at].last_id < message_id:
            return None
        held, index = self._batches[at], message_id - self._firsts[at]
        return None if index < held.start else (held, index)

    def _trim(self) -> None:
        """Drop the oldest messages while over a bound, as the journal does (bounded.BoundedLog):
        part of the oldest batch when that is enough, even of the newest; but nothing of a batch
        while one of its messages is unsent (a message not yet sent is never lost)."""
        while self._batches and self._over() and self._batches[0].unsent == 0:
            oldest = self._batches[0]
            over = (self._messages - self.max_messages, self._bytes - self.max_bytes)
            self._drop_front(
                oldest, oldest_to_drop(over, len(oldest.mail), oldest.mail.nbytes, oldest.kept)
            )

    def _drop_front(self, held: _Held, n: int) -> None:
        """The oldest batch's next `n` messages leave the outbox and its counts."""
        bytes_before = held.kept_bytes
        self._counts -= _dropped_statuses(held, held.start, held.start + n)
        held.start += n
        self._messages -= n
        self._bytes -= bytes_before - held.kept_bytes
        self._dropped += n
        if held.kept == 0:
            self._batches.pop(0)
            self._firsts.pop(0)

    def _over(self) -> bool:
        return self._messages > self.max_messages or self._bytes > self.max_bytes

    def get(self, message_id: int) -> HeldMessage | None:
        with self._lock:
            found = self._locate(message_id)
            if found is None:
                return None
            held, index = found
            return HeldMessage(message_id, held.mail, index, held.state(index))

    def page(self, since: int, limit: int, wanted: OutboxFilter) -> OutboxPage:
        """Messages with ids over `since`, oldest first, that `wanted` keeps; at most `limit`."""
        with self._lock:
            start = max(bisect.bisect(self._firsts, since) - 1, 0)
            batches = self._batches[start:]
            dropped = self._dropped
        # Read outside the lock: a state is replaced whole, and one `dict.get` is atomic (GIL).
        found: list[HeldMessage] = []
        for held, index, state in _matching(batches, since, wanted):
            if len(found) == limit:
                return OutboxPage(found, dropped, more=True)
            found.append(HeldMessage(held.mail.first_id + index, held.mail, index, state))
        return OutboxPage(found, dropped, more=False)

    def statuses(self) -> dict[str, int]:
        with self._lock:
            return {status: self._counts[status] for status in STATUSES}

    def counts(self) -> dict[str, int]:
        """Messages by status, and `dropped`: what health and metrics show (one reading)."""
        with self._lock:
            by_status = {status: self._counts[status] for status in STATUSES}
            return {**by_status, "dropped": self._dropped}


def _never_claimed(lane: _Lane) -> tuple[_Held, int] | None:
    while lane.fresh:
        held = lane.fresh[0]
        if held.cursor < len(held.mail):
            held.cursor += 1
            return held, held.cursor - 1
        lane.fresh.popleft()
    return None


def _dropped_statuses(held: _Held, start: int, stop: int) -> Counter[str]:
    """Messages `start` to `stop` - 1 of a settled batch by status: all captured, or each claimed
    and so with a state of its own. Their states stay until the batch goes: a page reads states
    outside the lock, and one batch's are bounded by its size."""
    if held.captured:
        return Counter({"captured": stop - start})
    return Counter(held.state(index).status for index in range(start, stop))


def settled_state(before: DeliveryState, outcome: Settled) -> DeliveryState:
    """A sending message's state once its attempt ended (`Settled`)."""
    if outcome.sent_at is not None:
        return DeliveryState("sent", before.attempts, None, outcome.sent_at)
    status = "queued" if outcome.retry_in is not None else "failed"
    return DeliveryState(status, before.attempts, outcome.error)


def _matching(
    batches: list[_Held], since: int, wanted: OutboxFilter
) -> Iterator[tuple[_Held, int, DeliveryState]]:
    """(batch, index, state) of each message a page's filter keeps, in id order."""
    for held in batches:
        if not _batch_wanted(held, wanted):
            continue
        for index in _indexes(held, since, wanted.to):
            state = held.state(index)
            if wanted.status is None or state.status == wanted.status:
                yield held, index, state


def _batch_wanted(held: _Held, wanted: OutboxFilter) -> bool:
    head = held.mail.letterhead
    if wanted.campaign_id is not None and head.campaign_id != wanted.campaign_id:
        return False
    return wanted.channel is None or held.mail.sharings.channel == wanted.channel


def _indexes(held: _Held, since: int, to: str | None) -> Iterator[int]:
    start = max(since + 1 - held.mail.first_id, held.start)
    if to is None:
        yield from range(start, len(held.mail))
        return
    emails = orjson.loads(held.mail.sharings.emails)  # parsed only for a `to` filter
    wanted = to.lower()
    yield from (i for i in range(start, len(emails)) if emails[i].lower() == wanted)
