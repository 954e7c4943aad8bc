"""The outbox in Redis (SPEC 1.7, 2.5): every worker and replica sees, and delivers, one outbox.

outbox.MemoryOutbox's semantics, each change one Lua script (`redis_scripts.OUTBOX_*`): a request
adds its batch in one round trip; a sender claims one message at a time, leased on Redis' TIME
(so every machine agrees) and re-queued when its lease runs out (a sender died or its worker was
restarted mid-delivery); a settle counts only for the claim it names. Messages of a batch for the
`outbox` provider keep no state: they are `captured`. A message of another batch has a state only
once claimed; before that it is `queued` (a cursor per batch, never a member per message).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from itertools import islice

import orjson
import redis

from . import redis_scripts as lua
from .outbox import (
    STATUSES,
    Claimed,
    DeliveryState,
    HeldMessage,
    Letterhead,
    MailBatch,
    OutboxFilter,
    OutboxPage,
    Settled,
)
from .redis_state import MAX_CURSOR, batch_json, key, sharing_batch
from .settings import Bounds

PARTS = ("meta", "ids", "batches", "sizes", "unsent", "turn", "cursor", "states", "leases", "due")
READ_BATCHES = 64  # batches a page reads per round trip
STATES_PER_READ = 1000  # message states a page reads per round trip
CACHED_BATCHES = 32  # parsed batches kept in this process: claims and pages read each once
CACHED_BYTES = 64 << 20
QUEUED, CAPTURED = DeliveryState("queued"), DeliveryState("captured")


@dataclass(frozen=True)
class HeldBatch:
    """A batch as a read answers it: which messages are held, whether they are delivered."""

    first_id: int
    messages: int
    start: int  # messages dropped already by the bounds
    delivers: bool  # False: the outbox provider, every message captured
    stamp: str


def stored(mail: MailBatch) -> bytes:
    """The batch as Redis holds it: the sharings as the store writes them, the letterhead last."""
    letterhead = orjson.dumps(asdict(mail.letterhead), default=dict)
    return batch_json(mail.sharings) + b"\n" + letterhead


def parsed(first_id: int, payload: bytes) -> MailBatch:
    sharings, letterhead = payload.rsplit(b"\n", 1)
    return MailBatch(first_id, sharing_batch(sharings), Letterhead(**orjson.loads(letterhead)))


def delivery_state(text: bytes | None, delivers: bool) -> DeliveryState:
    """A message's state as OUTBOX_* write it (`None`: never claimed, or captured)."""
    if not text:
        return QUEUED if delivers else CAPTURED
    state = orjson.loads(text)
    sent_at = state.get("t")
    return DeliveryState(
        state["s"], int(state["a"]), state.get("e"), None if sent_at is None else float(sent_at)
    )


class BatchCache:
    """Parsed batches by (first id, stamp), the least recently used let go past the bounds: 5000
    claims of one batch read its 1.6 MB once."""

    def __init__(self, max_batches: int = CACHED_BATCHES, max_bytes: int = CACHED_BYTES) -> None:
        self.limits = (max_batches, max_bytes)
        self.held: OrderedDict[tuple[int, str], tuple[MailBatch, int]] = OrderedDict()
        self.nbytes = 0
        self.lock = threading.Lock()

    def get(self, first_id: int, stamp: str) -> MailBatch | None:
        with self.lock:
            found = self.held.get((first_id, stamp))
            if found is None:
                return None
            self.held.move_to_end((first_id, stamp))
            return found[0]

    def put(self, first_id: int, stamp: str, mail: MailBatch, nbytes: int) -> None:
        with self.lock:
            if (first_id, stamp) in self.held:
                return
            self.held[(first_id, stamp)] = (mail, nbytes)
            self.nbytes += nbytes
            while len(self.held) > self.limits[0] or self.nbytes > self.limits[1]:
                self.nbytes -= self.held.popitem(last=False)[1][1]

    def clear(self) -> None:
        with self.lock:
            self.held.clear()
            self.nbytes = 0


@dataclass(frozen=True)
class Claim:
    """One of this process's claims: which attempt it is, and for the share, whose and until when
    (a claim never settled, its sender gone, stops counting when its lease runs out)."""

    attempts: int
    campaign: str
    until: float  # monotonic


class RedisOutbox:
    """outbox.Outbox in Redis, shared by every process on the same URL."""

    def __init__(self, client: redis.Redis, bounds: Bounds) -> None:
        self.client = client
        self.keys = [key(f"outbox:{part}") for part in PARTS]
        self.limits = (bounds.outbox_max_messages, bounds.outbox_max_bytes)
        self._token = uuid.uuid4().hex
        # (message id, thread) → the attempt it claimed: a sender thread claims and settles, and
        # a thread whose lease was lost to another thread of ours must not settle that one's.
        self._claims: dict[tuple[int, int], Claim] = {}
        self._claiming = threading.Lock()  # the share read and the claim made as one step
        self._cache = BatchCache()
        self._add = client.register_script(lua.OUTBOX_ADD)
        self._claim = client.register_script(lua.OUTBOX_CLAIM)
        self._settle = client.register_script(lua.OUTBOX_SETTLE)
        self._read = client.register_script(lua.OUTBOX_READ)
        self._find = client.register_script(lua.OUTBOX_FIND)
        self._reset = client.register_script(lua.OUTBOX_RESET)

    @property
    def claimant(self) -> str:
        """Whose claims a settle may settle: this outbox in this process (the app is built
        before gunicorn forks its workers: each worker is a claimant of its own)."""
        return f"{self._token}-{os.getpid()}"

    # -- the request path and the senders -------------------------------------------------------
    def add(self, mail: MailBatch) -> None:
        """One round trip: the batch held, the bounds kept; its messages claimable unless
        captured."""
        delivers = int(mail.letterhead.provider_type != "outbox")
        stamp = uuid.uuid4().hex[:16]
        args: list[bytes | str | int] = [mail.first_id, len(mail), mail.nbytes, delivers, stamp]
        args += [stored(mail), *self.limits, mail.letterhead.campaign_id]
        self._add(keys=self.keys, args=args)

    def claim(self, lease_seconds: float, share: int | None = None) -> Claimed | None:
        """One round trip (two when the batch is not cached here): the next message to deliver,
        `sending` with this attempt counted, leased for `lease_seconds` of real time; campaigns
        with `share` of this process's claims under way are passed over (None: no limit)."""
        with self._claiming:
            full = self._full(share)
            args = [self.claimant, repr(float(lease_seconds)), *full]
            taken = self._claim(keys=self.keys, args=args)
            if not taken:
                return None
            message_id, first_id, stamp, attempts, last_error, campaign = taken
            message_id, first_id, attempts = int(message_id), int(first_id), int(attempts)
            until = time.monotonic() + lease_seconds
            claim = Claim(attempts, campaign.decode(), until)
            self._claims[message_id, threading.get_ident()] = claim
        mail = self._mail(first_id, stamp.decode())
        if mail is None:  # emptied (reset) between the two reads
            return None
        error = None if last_error is None else last_error.decode()
        state = DeliveryState("sending", attempts, error)
        return Claimed(HeldMessage(message_id, mail, message_id - first_id, state))

    def _full(self, share: int | None) -> list[str]:
        """The campaigns with `share` of this process's claims under way."""
        if share is None:
            return []
        now = time.monotonic()
        busy = Counter(c.campaign for c in list(self._claims.values()) if c.until > now)
        return [campaign for campaign, n in busy.items() if n >= share]

    def settle(self, message_id: int, outcome: Settled) -> None:
        """This thread's claim of `message_id` ends: ignored when the claim is no longer its own
        (its lease ran out and another sender claimed it, or the outbox was reset)."""
        attempts = self._claimed_attempt(message_id)
        if attempts is None:
            return
        status = settled_status(outcome)
        args: list[str | int] = [
            message_id,
            self.claimant,
            attempts,
            status,
            repr(outcome.sent_at or 0.0),
            outcome.error or "",
            repr(float(outcome.retry_in or 0.0)),
            *self.limits,
        ]
        self._settle(keys=self.keys, args=args)

    def _claimed_attempt(self, message_id: int) -> int | None:
        """The attempt this thread claimed; else (settled from a thread that did not claim it)
        the latest of our threads' claims of it."""
        mine = self._claims.pop((message_id, threading.get_ident()), None)
        if mine is not None:
            return mine.attempts
        ours = [(c.attempts, at) for at, c in list(self._claims.items()) if at[0] == message_id]
        latest = self._claims.pop(max(ours)[1], None) if ours else None
        return None if latest is None else latest.attempts

    # -- reads ------------------------------------------------------------------------------------
    def page(self, since: int, limit: int, wanted: OutboxFilter) -> OutboxPage:
        first_read: list[int] = []  # the dropped count as the first read saw it
        found = (
            held
            for held in self._held_since(since, wanted, first_read)
            if not wanted.status or held.state.status == wanted.status
        )
        messages = list(islice(found, limit))
        more = next(found, None) is not None
        return OutboxPage(messages, first_read[0] if first_read else self.dropped(), more)

    def get(self, message_id: int) -> HeldMessage | None:
        found = self._find(keys=self.keys, args=[min(message_id, MAX_CURSOR)])
        if not found:
            return None
        *row, state = found
        held = held_batch(row)
        mail = self._mail(held.first_id, held.stamp)
        if mail is None:
            return None
        index = message_id - held.first_id
        return HeldMessage(message_id, mail, index, delivery_state(state, held.delivers))

    def statuses(self) -> dict[str, int]:
        counts = self.client.hmget(self.keys[0], list(STATUSES))
        return {status: int(n or 0) for status, n in zip(STATUSES, counts, strict=True)}  # type: ignore[arg-type]

    def counts(self) -> dict[str, int]:
        """Messages by status, and `dropped`: what health and metrics show (one round trip)."""
        fields = [*STATUSES, "dropped"]
        found = self.client.hmget(self.keys[0], fields)
        return {name: int(n or 0) for name, n in zip(fields, found, strict=True)}  # type: ignore[arg-type]

    def dropped(self) -> int:
        return int(self.client.hget(self.keys[0], "dropped") or 0)  # type: ignore[arg-type]

    def reset(self) -> None:
        """Empty: every message, state and count; a sender's claim under way is then ignored."""
        self._reset(keys=self.keys)
        self._cache.clear()

    # -- helpers ----------------------------------------------------------------------------------
    def _mail(self, first_id: int, stamp: str) -> MailBatch | None:
        """The batch, parsed once in this process; None when no longer held."""
        mail = self._cache.get(first_id, stamp)
        if mail is None:
            payload = self.client.hget(self.keys[2], first_id)
            if payload is None:
                return None
            mail = parsed(first_id, payload)  # type: ignore[arg-type]
            self._cache.put(first_id, stamp, mail, len(payload))  # type: ignore[arg-type]
        return mail

    def _held_since(
        self, since: int, wanted: OutboxFilter, first_read: list[int]
    ) -> Iterator[HeldMessage]:
        """The messages with ids > since that `wanted` keeps (but its status), oldest first,
        read a chunk of batches at a time."""
        since = min(since, MAX_CURSOR)
        while True:
            dropped, *flat = self._read(keys=self.keys, args=[since, READ_BATCHES])
            if not first_read:
                first_read.append(int(dropped))
            if not flat:
                return
            for at in range(0, len(flat), 5):
                held = held_batch(flat[at : at + 5])
                yield from self._messages(held, since, wanted)
                since = held.first_id + held.messages - 1

    def _messages(self, held: HeldBatch, since: int, wanted: OutboxFilter) -> Iterator[HeldMessage]:
        mail = self._mail(held.first_id, held.stamp)
        if mail is None or not batch_wanted(mail, wanted):
            return
        first = max(held.start, since - held.first_id + 1)
        indexes = picked(mail, range(first, held.messages), wanted.to)
        for chunk in chunks(indexes, STATES_PER_READ):
            for index, state in zip(chunk, self._states(held, chunk), strict=True):
                yield HeldMessage(held.first_id + index, mail, index, state)

    def _states(self, held: HeldBatch, indexes: list[int]) -> list[DeliveryState]:
        if not held.delivers:
            return [CAPTURED] * len(indexes)
        ids = [held.first_id + index for index in indexes]
        texts: list[bytes | None] = self.client.hmget(self.keys[7], ids)  # type: ignore[assignment]
        return [delivery_state(text, True) for text in texts]


SETTLED_STATUS = (("sent", "sent_at"), ("queued", "retry_in"))  # the first given, else failed


def settled_status(outcome: Settled) -> str:
    for status, field in SETTLED_STATUS:
        if getattr(outcome, field) is not None:
            return status
    return "failed"


def held_batch(row: list[bytes]) -> HeldBatch:
    first_id, messages, start, delivers, stamp = row
    return HeldBatch(int(first_id), int(messages), int(start), delivers == b"1", stamp.decode())


def batch_wanted(mail: MailBatch, wanted: OutboxFilter) -> bool:
    """The filters a whole batch answers: its campaign and its channel."""
    return (not wanted.campaign_id or mail.letterhead.campaign_id == wanted.campaign_id) and (
        not wanted.channel or mail.sharings.channel == wanted.channel
    )


def picked(mail: MailBatch, indexes: range, to: str | None) -> Iterable[int]:
    """The indexes whose recipient is `to` (case-insensitively); all of them without `to`."""
    if not to:
        return indexes
    emails = orjson.loads(mail.sharings.emails)
    wanted = to.lower()
    return (index for index in indexes if emails[index].lower() == wanted)


def chunks(items: Iterable[int], size: int) -> Iterator[list[int]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
