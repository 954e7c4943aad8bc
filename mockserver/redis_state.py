"""Every piece of the emulator's state in Redis (SPEC 2.5): store, clock and throttle.

Workers and replicas on one Redis URL behave as one Pisano: each read and each change is one
atomic Lua script or one transaction (`redis_scripts.py`), so nothing depends on which process
answers. All keys start with `PREFIX`: a database shared with other programs is not trampled, and
a reset deletes only ours. Starting a replica never wipes state: its configured fixture is ADDED
(entities of the same name replaced, others kept), so a replica started later sees everything.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
import redis

from . import redis_scripts as lua
from .bodies import HeldBody
from .bounded import give_back_big_blocks
from .clock import READING_BOUND, Clock
from .faults import Fault
from .settings import Bounds, ConfigError, Settings, ThrottleSettings
from .state import (
    ENTITY_TYPES,
    HELD_PARTS,
    Account,
    Batch,
    Begun,
    Campaign,
    LinkChannel,
    Page,
    Pick,
    Recipient,
    SharingBatch,
    Token,
    build_entities,
    entity,
    only_sharing,
    open_sharings,
    page_of,
    sharing_filter,
)
from .throttle import WINDOWS_KEPT, ThrottleRules, Tier, TierCount, Verdict, snapshot_row

PREFIX = "pisano-mock:"
READ_BATCHES = 256  # batches a page reads per round trip
MAX_CURSOR = 2**53  # above every id; Lua's numbers (doubles) are exact up to it
FAULT_POLL_SECONDS = 0.05  # how often a delay under way looks whether faults were cleared


def key(name: str) -> str:
    return PREFIX + name


def connect(url: str) -> redis.Redis:
    """A client for `url`, checked now: an unreachable Redis is a one-line start-up error."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"--storage {url}: cannot connect: {reason}") from None
    return client


def open_redis(settings: Settings) -> tuple[RedisStore, RedisClock, RedisThrottle]:
    client = connect(settings.storage)
    clock = RedisClock(client, settings.time_scale)
    store = RedisStore(client, settings.bounds, settings.fixture, clock)
    return store, clock, RedisThrottle(settings.throttle, clock)


# -- clock ----------------------------------------------------------------------------------------


class RedisClock:
    """clock.MemoryClock's semantics, kept in Redis and read against Redis' TIME: set on one
    replica, read the same on all."""

    def __init__(self, client: redis.Redis, rate: float = 1.0) -> None:
        self.client = client
        self.key = key("clock")
        self.default_rate = rate
        self._now = client.register_script(lua.CLOCK_NOW)
        self._set = client.register_script(lua.CLOCK_SET)
        self._advance = client.register_script(lua.CLOCK_ADVANCE)

    def reading(self) -> tuple[float, float]:
        """(now, rate) in one round trip."""
        now, rate = self._now(keys=[self.key], args=[repr(self.default_rate), READING_BOUND])
        return float(now), float(rate)

    def now(self) -> float:
        return self.reading()[0]

    @property
    def rate(self) -> float:
        return self.reading()[1]

    def set(self, when: float, rate: float = 0.0) -> None:
        self._set(keys=[self.key], args=[repr(float(when)), repr(rate + 0.0), READING_BOUND])

    def advance(self, seconds: float, rate: float = 0.0) -> None:
        args = (repr(float(seconds)), repr(rate + 0.0), repr(self.default_rate), READING_BOUND)
        self._advance(keys=[self.key], args=args)

    def reset(self) -> None:
        """Back to real time at this replica's starting rate: an absent clock reads so."""
        self.client.delete(self.key)

    def real_seconds(self, emulated_seconds: float) -> float | None:
        rate = self.rate
        return emulated_seconds / rate if rate > 0 else None

    def script_args(self) -> list[str | float]:
        """What a script that reads the clock needs first."""
        return [repr(self.default_rate), READING_BOUND]


# -- throttle -------------------------------------------------------------------------------------


class RedisThrottle(ThrottleRules):
    """throttle.MemoryThrottle's semantics; the clock read and the count in one Lua script, so
    exact across processes (SPEC 1.3). One hash holds every key's record, one sorted set orders
    the keys by when they were last counted (for `max_keys`)."""

    def __init__(self, settings: ThrottleSettings, clock: RedisClock) -> None:
        super().__init__(settings, clock)
        self.redis_clock = clock
        self.client = clock.client
        self.records = key("throttle")  # hash: bucket → its record
        self.lru = key("throttle:lru")  # sorted set: bucket → when last counted
        self.sequence = key("throttle:seq")  # what "when" counts in
        self._hit = self.client.register_script(lua.THROTTLE_HIT)

    @property
    def keys_held(self) -> int:
        return int(self.client.zcard(self.lru))

    def hit(self, bucket: str, tiers: tuple[Tier, ...]) -> Verdict:
        args = [
            *self.redis_clock.script_args(),
            bucket,
            self.settings.max_keys,
            WINDOWS_KEPT,
            *(n for tier in tiers for n in (tier.limit, tier.period)),
        ]
        now_text, *counted = self._hit(
            keys=[self.redis_clock.key, self.records, self.lru, self.sequence], args=args
        )
        now = float(now_text)
        counts = tuple(
            TierCount(tier, int(count), tier.window_end(now))
            for tier, count in zip(tiers, counted, strict=False)
        )
        exceeded = counts[-1] if counts and counts[-1].count > counts[-1].tier.limit else None
        return Verdict(now, counts, exceeded)

    def snapshot(self, now: float) -> list[dict[str, object]]:
        held: dict[bytes, bytes] = self.client.hgetall(self.records)  # type: ignore[assignment]
        rows = []
        for bucket, text in sorted(held.items()):
            for tier, windows in sorted(decode_record(text), key=lambda item: item[0].period):
                count = windows.get(tier.window(now))
                if count is not None:
                    rows.append(snapshot_row(bucket.decode(), tier, count, now))
        return rows

    def reset(self) -> None:
        self.client.unlink(self.records, self.lru)


def decode_record(text: bytes) -> Iterator[tuple[Tier, dict[int, int]]]:
    """A record as THROTTLE_HIT writes it: per tier, its windows' counts by index."""
    for part in text.decode().split(";"):
        name, _, pairs = part.partition("=")
        limit, _, period = name.partition("/")
        numbers = [int(n) for n in pairs.split(",") if n]
        yield Tier(int(limit), int(period)), dict(zip(numbers[::2], numbers[1::2], strict=True))


# -- bounded logs ---------------------------------------------------------------------------------


class RedisLog:
    """bounded.BoundedLog in Redis: batches of items, bounded by items and bytes, the oldest
    dropped and counted, each change one script."""

    def __init__(
        self,
        client: redis.Redis,
        name: str,
        limits: tuple[int, int],
        expand: Callable[[bytes], Sequence[dict[str, Any]]],
    ) -> None:
        self.client = client
        self.keys = [key(f"{name}:{part}") for part in ("meta", "ids", "items", "sizes")]
        self.limits = limits
        self.expand = expand  # a stored batch → its items
        self._append = client.register_script(lua.LOG_APPEND)
        self._replace = client.register_script(lua.LOG_REPLACE)
        self._read = client.register_script(lua.LOG_READ)

    def append(self, payload: bytes, items: int, nbytes: int) -> int:
        return int(self._append(keys=self.keys, args=[payload, items, nbytes, *self.limits]))

    def replace(self, first_id: int, payload: bytes, nbytes: int) -> None:
        self._replace(keys=self.keys, args=[first_id, nbytes, payload, *self.limits])

    def page(
        self,
        since: int,
        limit: int,
        pick: Pick | None = None,
        open_batch: Callable[[Any], Sequence[dict[str, Any]]] = lambda items: items,
    ) -> Page:
        first_read: list[int] = []  # the dropped count as the first read saw it
        items, more = page_of(self._batches_since(since, first_read), limit, pick, open_batch)
        return Page(items, first_read[0] if first_read else self.dropped(), more)

    def _batches_since(self, since: int, first_read: list[int]) -> Iterator[Batch]:
        """(first id, first index wanted, batch) with ids > since, oldest first, read a chunk of
        batches at a time; the dropped count of the first read goes in `first_read`."""
        since = min(since, MAX_CURSOR)
        while True:
            dropped, start, oldest, *flat = self._read(keys=self.keys, args=[since, READ_BATCHES])
            if not flat:
                return
            if not first_read:
                first_read.append(int(dropped))
            for at in range(0, len(flat), 3):
                first_id, count = int(flat[at]), int(flat[at + 1])
                held_from = int(start) if flat[at] == oldest else 0
                yield first_id, max(held_from, since - first_id + 1), self.expand(flat[at + 2])
                since = first_id + count - 1

    def dropped(self) -> int:
        return int(self.client.hget(self.keys[0], "dropped") or 0)

    def counts(self, pipe: redis.client.Pipeline) -> None:
        pipe.hmget(self.keys[0], "count", "dropped")

    def clear(self, pipe: redis.client.Pipeline) -> None:
        """Empty it; ids go on from where they were, as in memory."""
        meta, *rest = self.keys
        pipe.unlink(*rest)
        pipe.hdel(meta, "count", "bytes", "dropped", "start")


def journal_entry(payload: bytes) -> Sequence[dict[str, Any]]:
    entry = orjson.loads(payload)
    entry.pop("id", None)  # the id is the log's: shown first, as memory shows it
    return [entry]


def sharing_batch(payload: bytes) -> SharingBatch:
    """A batch as `batch_json` wrote it: only its first line is parsed here."""
    head, emails, attributes, data, responses = payload.split(b"\n")
    fields = orjson.loads(head)
    return SharingBatch(
        fields["campaign_id"],
        fields["request_id"],
        fields["accepted_at"],
        fields["recipients"],
        emails,
        custom_attributes=attributes,
        transactional_data=data,
        built_in_responses=responses,
        channel=fields["channel"],
        trigger=fields.get("trigger", "api"),  # batches written before triggers existed
    )


def batch_json(batch: SharingBatch) -> bytes:
    """One line of JSON for the batch's fields, then each held part as held, one per line (JSON
    written by orjson holds no newline): a page reads a batch without parsing its parts."""
    fields = ("campaign_id", "request_id", "accepted_at", "channel", "trigger", "recipients")
    head = orjson.dumps({name: getattr(batch, name) for name in fields})
    return b"\n".join([head, *(getattr(batch, name) for name in HELD_PARTS)])


# -- faults ---------------------------------------------------------------------------------------


class ClearedAnywhere(threading.Event):
    """A fault's `cleared`: set once faults are cleared (or the emulator reset) on ANY replica,
    which a wait sees by polling the faults' epoch, so that a delay under way ends early."""

    def __init__(self, read_epoch: Callable[[], int], epoch: int) -> None:
        super().__init__()
        self.read_epoch = read_epoch
        self.epoch = epoch

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if self.read_epoch() != self.epoch:
                self.set()
                break
            left = FAULT_POLL_SECONDS if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            super().wait(min(left, FAULT_POLL_SECONDS))
        return True


class RedisFaults:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.keys = [key("faults"), key("faults:fired"), key("faults:meta")]
        self._take = client.register_script(lua.FAULT_TAKE)
        self._add = client.register_script(lua.FAULT_ADD)

    def add(self, spec: dict[str, Any]) -> Fault:
        given = {name: value for name, value in spec.items() if value is not None}
        fault_id = int(self._add(keys=[self.keys[0], self.keys[2]], args=[orjson.dumps(given)]))
        return self._fault(fault_id, given, 0, self.epoch())

    def take(self, path: str, token: str | None, campaign_id: str | None) -> Fault | None:
        given = (int(token is not None), int(campaign_id is not None))
        args = (path, token or "", given[0], campaign_id or "", given[1])
        taken = self._take(keys=self.keys, args=args)
        if not taken:
            return None
        fault_id, text, fired, epoch = taken
        return self._fault(int(fault_id), orjson.loads(text), int(fired), int(epoch))

    def describe(self) -> list[dict[str, Any]]:
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(self.keys[0])
        pipe.hgetall(self.keys[1])
        specs, fired = pipe.execute()
        return [
            self._fault(int(i), orjson.loads(specs[i]), int(fired.get(i, 0)), 0).describe()
            for i in sorted(specs, key=int)
        ]

    def clear(self, pipe: redis.client.Pipeline) -> None:
        """Remove every fault; delays under way, on any replica, end now."""
        pipe.unlink(self.keys[0], self.keys[1])
        pipe.hincrby(self.keys[2], "epoch", 1)

    def epoch(self) -> int:
        return int(self.client.hget(self.keys[2], "epoch") or 0)

    def _fault(self, fault_id: int, spec: dict[str, Any], fired: int, epoch: int) -> Fault:
        cleared = ClearedAnywhere(self.epoch, epoch)
        return Fault(id=fault_id, **{"times": None, **spec}, fired=fired, cleared=cleared)


# -- the store ------------------------------------------------------------------------------------

# A new random value each time accounts, tokens or campaigns change (never a counter: a value
# once seen cannot come back, even after the database was flushed and filled again).
REGISTRY_VERSION = key("registry:version")
LINK_SECRET = key("links:secret")


class Registry:
    """Accounts, tokens and campaigns as read at one version, kept in this process.

    A request reads the version with its journal entry (one round trip) and looks entities up
    here, reloading all of them only when the version changed: the registry is read as it was
    at the request's instant, without three more round trips. Outside a request (admin, tests)
    lookups go to Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.version = ""
        self.tables: dict[str, dict[str, Any]] = {table: {} for table in ENTITY_TYPES}
        self.lock = threading.Lock()
        self.local = threading.local()  # the version this thread's request reads at

    def use(self, version: str) -> None:
        """This thread's request reads the registry at `version`: reload if ours differs."""
        with self.lock:
            if version != self.version:
                self._load()
            self.local.tables = self.tables if self.version else None

    def done(self) -> None:
        self.local.tables = None

    def get(self, table: str, name: str) -> tuple[bool, Any]:
        """(True, entity or None) when this thread's request has read the registry's version."""
        tables = getattr(self.local, "tables", None)
        if tables is None:
            return False, None
        return True, tables[table].get(name)

    def _load(self) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.get(REGISTRY_VERSION)
        for table in ENTITY_TYPES:
            pipe.hgetall(key(table))
        version, *held = pipe.execute()
        self.version = (version or b"").decode()
        self.tables = {
            table: {
                name.decode(): entity(table, name.decode(), orjson.loads(data))
                for name, data in rows.items()
            }
            for table, rows in zip(ENTITY_TYPES, held, strict=True)
        }


class RedisStore:
    """state.Store in Redis. Entities are hashes of JSON; journal and sharings are RedisLogs."""

    def __init__(
        self, client: redis.Redis, bounds: Bounds, fixture: dict[str, Any], clock: RedisClock
    ) -> None:
        give_back_big_blocks()  # big bodies pass through here too: their memory must leave
        self.client = client
        self._clock = clock
        self._bounds = bounds
        self._begin = client.register_script(lua.BEGIN_REQUEST)
        self._registry = Registry(client)
        self._journal = RedisLog(
            client,
            "journal",
            (bounds.journal_max_entries, bounds.journal_max_bytes),
            journal_entry,
        )
        self._sharings = RedisLog(
            client,
            "sharings",
            (bounds.sharings_max_recipients, bounds.sharings_max_bytes),
            sharing_batch,
        )
        self._faults = RedisFaults(client)
        # A request is begun and finished by the same process: its entry waits here meanwhile.
        self._open_requests: dict[int, dict[str, Any]] = {}
        self._fixture = fixture or {}  # what reset returns to
        self.add_fixture(self._fixture)  # added, never wiping: other replicas may be running

    # -- registry ---------------------------------------------------------------------------------
    def _entity(self, table: str, name: str) -> Any:
        cached, found = self._registry.get(table, name)
        if cached:
            return found
        data = self.client.hget(key(table), name)
        return None if data is None else entity(table, name, orjson.loads(data))  # type: ignore[arg-type]

    def token(self, token: str) -> Token | None:
        return self._entity("tokens", token)  # type: ignore[no-any-return]

    def account(self, name: str) -> Account | None:
        return self._entity("accounts", name)  # type: ignore[no-any-return]

    def campaign(self, campaign_id: str) -> Campaign | None:
        return self._entity("campaigns", campaign_id)  # type: ignore[no-any-return]

    def link_channel(self, channel_id: str) -> LinkChannel | None:
        return self._entity("link_channels", channel_id)  # type: ignore[no-any-return]

    def add_fixture(self, fixture: dict[str, Any]) -> dict[str, int]:
        """Add (or replace) entities; refuse dangling account names."""
        names: list[bytes] = self.client.hkeys(key("accounts"))  # type: ignore[assignment]
        known = {name.decode() for name in names}
        entities = build_entities(fixture, known)
        pipe = self.client.pipeline(transaction=True)
        write_entities(pipe, fixture)
        pipe.execute()
        return entities.counts()

    # -- journal ----------------------------------------------------------------------------------
    def begin_request(self, entry: dict[str, Any], nbytes: int, clock: Clock) -> Begun:
        """One round trip: the clock read, the entry opened and stamped with it, the registry's
        version and whether any fault is held. `clock` is ours (Redis'), whatever is passed."""
        entry["time"] = None  # the script writes the clock's reading here
        bounds = self._bounds
        args = [
            *self._clock.script_args(),
            orjson.dumps(entry),
            nbytes,
            bounds.journal_max_entries,
            bounds.journal_max_bytes,
        ]
        keys = [*self._journal.keys, self._clock.key, self._faults.keys[0], REGISTRY_VERSION]
        request_id, now, version, faults = self._begin(keys=keys, args=args)
        entry["id"], entry["time"] = int(request_id), float(now)
        self._open_requests[entry["id"]] = entry
        if not version:  # no registry at all: Redis was emptied (restarted without persistence)
            self.add_fixture(self._fixture)  # seeded again, as when this replica started
            version = self.client.get(REGISTRY_VERSION) or b""
        self._registry.use(version.decode())
        return Begun(entry["id"], entry["time"], faults=int(faults) > 0)

    def finish_request(self, request_id: int, updates: dict[str, Any], nbytes: int) -> None:
        self._registry.done()
        entry = self._open_requests.pop(request_id, None)
        if entry is not None:
            entry.update(updates)
            payload = orjson.dumps(entry, default=HeldBody.as_json)  # the journal's body as shown
            self._journal.replace(request_id, payload, nbytes)

    def requests(self, since: int, limit: int) -> Page:
        return self._journal.page(since, limit)

    # -- sharings ---------------------------------------------------------------------------------
    def record_sharings(self, batch: SharingBatch, nbytes: int) -> int:
        return self._sharings.append(batch_json(batch), len(batch), nbytes)

    def sharings(
        self, since: int, limit: int, campaign_id: str | None, wanted: Recipient | str | None
    ) -> Page:
        return self._sharings.page(since, limit, sharing_filter(campaign_id, wanted), open_sharings)

    def sharing(self, sharing_id: int) -> dict[str, Any] | None:
        page = self._sharings.page(max(sharing_id - 1, 0), 1, None, open_sharings)
        return only_sharing(page.items, sharing_id)

    # -- faults -----------------------------------------------------------------------------------
    def add_fault(self, spec: dict[str, Any]) -> Fault:
        return self._faults.add(spec)

    def take_fault(self, path: str, token: str | None, campaign_id: str | None) -> Fault | None:
        return self._faults.take(path, token, campaign_id)

    def faults(self) -> list[dict[str, Any]]:
        return self._faults.describe()

    def clear_faults(self) -> None:
        pipe = self.client.pipeline(transaction=True)
        self._faults.clear(pipe)
        pipe.execute()

    # -- whole store ------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=True)
        self._journal.counts(pipe)
        self._sharings.counts(pipe)
        (requests, requests_dropped), (sharings, sharings_dropped) = pipe.execute()
        return {
            "requests": int(requests or 0),
            "requests_dropped": int(requests_dropped or 0),
            "sharings": int(sharings or 0),
            "sharings_dropped": int(sharings_dropped or 0),
        }

    def link_secret(self) -> bytes:
        """One secret for every worker and replica: the first to ask sets it (links.py)."""
        self.client.set(LINK_SECRET, os.urandom(32), nx=True)
        secret = self.client.get(LINK_SECRET)
        assert isinstance(secret, bytes)  # the client answers bytes (no decode_responses)
        return secret

    def reset(self) -> None:
        """Journal, sharings and faults emptied; entities back to this replica's fixture."""
        pipe = self.client.pipeline(transaction=True)
        self._journal.clear(pipe)
        self._sharings.clear(pipe)
        self._faults.clear(pipe)
        pipe.unlink(*(key(table) for table in ENTITY_TYPES))
        write_entities(pipe, self._fixture)  # in the same transaction: no request sees none
        pipe.execute()
        self._open_requests.clear()


def write_entities(pipe: redis.client.Pipeline, fixture: dict[str, Any]) -> None:
    pipe.set(REGISTRY_VERSION, uuid.uuid4().hex)  # in the same transaction as the change
    for table in ENTITY_TYPES:
        given = fixture.get(table, {})
        if given:
            pipe.hset(key(table), mapping={n: orjson.dumps(d) for n, d in given.items()})
