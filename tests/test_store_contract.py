"""One suite, two implementations (issue 9): the store, clock and throttle of `--storage memory://`
and of `--storage redis://` (a real redis-server) must be indistinguishable to the views."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis_server import free_port

from mockserver.bodies import hold_body
from mockserver.bounded import BoundedLog
from mockserver.redis_state import PREFIX, RedisLog, connect
from mockserver.settings import ConfigError, load_settings
from mockserver.state import SharingBatch
from mockserver.storage import Parts, open_parts
from mockserver.throttle import WINDOWS_KEPT

ALIGNED = 1_000_000_000
TOKEN, ACCOUNT = "test-token", "acme"
CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
OTHER_CAMPAIGN = "00000000-0000-4000-8000-000000013005"


class Opener:
    """`opener(bounds={...}, throttle={...})` → the parts of an emulator with those settings
    changed; with Redis (`shared`), each call on one test's database is another replica."""

    def __init__(self, storage: str) -> None:
        self.storage = storage
        self.shared = storage != "memory://"

    def __call__(self, **changes: dict[str, Any]) -> Parts:
        settings = load_settings(storage=self.storage)
        changed = {name: replace(getattr(settings, name), **v) for name, v in changes.items()}
        return open_parts(settings.with_changes(**changed))


@pytest.fixture(params=["memory", "redis"])
def opener(request: pytest.FixtureRequest) -> Opener:
    if request.param == "memory":
        return Opener("memory://")
    return Opener(request.getfixturevalue("redis_url"))


@pytest.fixture
def parts(opener: Opener) -> Parts:
    return opener()


def entry(number: int) -> dict[str, Any]:
    return {"id": None, "time": 0.0, "path": f"/p/{number}", "status": None, "reason": None}


def journal(parts: Parts, nbytes: int = 100, count: int = 1) -> list[int]:
    ids = [parts.store.begin_request(entry(n), nbytes, parts.clock).id for n in range(count)]
    for request_id in ids:
        parts.store.finish_request(request_id, {"status": 200}, nbytes)
    return ids


def batch(emails: list[str], campaign: str = CAMPAIGN, request_id: int = 1) -> SharingBatch:
    attributes = {email: {"n": index} for index, email in enumerate(emails)}
    parts = {"custom_attributes": attributes, "built_in_responses": {"a": 1}}
    return SharingBatch.of(campaign, request_id, float(ALIGNED), emails, parts)


# -- registry -------------------------------------------------------------------------------------


def test_the_configured_fixture_is_there(parts):
    token = parts.store.token(TOKEN)
    assert token is not None and token.account == ACCOUNT and token.active
    assert parts.store.account(ACCOUNT).locked is False
    assert parts.store.campaign(CAMPAIGN).account == ACCOUNT
    assert parts.store.token("nobody") is None and parts.store.campaign("none") is None


def test_a_fixture_added_at_run_time_is_served_and_a_dangling_account_refused(parts):
    added = parts.store.add_fixture(
        {
            "accounts": {"initech": {"locked": True, "customer_schema": {"age": "integer"}}},
            "tokens": {"new-token": {"account": "initech", "active": False}},
            "campaigns": {"c-1": {"account": ACCOUNT, "subject": "Hi", "flow": False}},
        }
    )
    assert added == {"accounts": 1, "tokens": 1, "campaigns": 1, "link_channels": 0}
    account = parts.store.account("initech")
    assert account.locked and account.customer_schema == {"age": "integer"}
    assert parts.store.token("new-token").active is False
    assert parts.store.campaign("c-1").subject == "Hi"
    with pytest.raises(ConfigError, match="unknown account 'ghost'"):
        parts.store.add_fixture({"tokens": {"t": {"account": "ghost"}}})
    assert parts.store.token("t") is None


# -- journal --------------------------------------------------------------------------------------


def test_a_journal_entry_is_seen_open_then_finished(parts):
    parts.clock.set(ALIGNED)
    begun = parts.store.begin_request(entry(1), 100, parts.clock)
    first = begun.id
    assert begun.now == ALIGNED  # the entry is stamped with the clock's reading
    assert parts.store.requests(0, 10).items == [{**entry(1), "id": first, "time": ALIGNED}]
    parts.store.finish_request(first, {"status": 429, "reason": "throttle"}, 150)
    (shown,) = parts.store.requests(0, 10).items
    assert (shown["id"], shown["status"], shown["reason"]) == (first, 429, "throttle")
    assert next(iter(shown)) == "id"


def test_journal_pages_by_since_and_limit(parts):
    ids = journal(parts, count=5)
    assert ids == list(range(ids[0], ids[0] + 5))
    page = parts.store.requests(ids[1], 2)
    assert [item["id"] for item in page.items] == ids[2:4] and page.more
    page = parts.store.requests(ids[3], 2)
    assert [item["id"] for item in page.items] == ids[4:] and not page.more


@pytest.mark.parametrize("since", [2**53, 10**30])
def test_a_cursor_beyond_every_id_reads_nothing(parts, since):
    journal(parts, count=2)
    parts.store.record_sharings(batch(["a@x.io"]), 10)
    assert parts.store.requests(since, 10).items == []
    assert parts.store.sharings(since, 10, None, None).items == []


def test_the_journal_keeps_its_newest_entries_and_counts_the_dropped(opener):
    parts = opener(bounds={"journal_max_entries": 3})
    ids = journal(parts, count=5)
    page = parts.store.requests(0, 10)
    assert [item["id"] for item in page.items] == ids[2:] and page.dropped == 2
    assert parts.store.counts()["requests"] == 3


def test_the_journal_is_bounded_by_bytes_charged_when_a_request_ends(opener):
    parts = opener(bounds={"journal_max_bytes": 1000})
    ids = journal(parts, nbytes=300, count=3)
    late = parts.store.begin_request(entry(9), 50, parts.clock).id  # 950 bytes held
    parts.store.finish_request(late, {"status": 200}, 600)  # charged 600 now: two must go
    page = parts.store.requests(0, 10)
    assert [item["id"] for item in page.items] == [ids[2], late] and page.dropped == 2
    parts.store.finish_request(ids[0], {"status": 500}, 10)  # dropped already: nothing changes
    assert [item["id"] for item in parts.store.requests(0, 10).items] == [ids[2], late]


# -- sharings -------------------------------------------------------------------------------------


def test_each_recipient_of_a_batch_has_its_own_id(parts):
    first = parts.store.record_sharings(batch(["a@x.io", "b@x.io"]), 100)
    second = parts.store.record_sharings(batch(["c@x.io"], OTHER_CAMPAIGN, 2), 100)
    assert second == first + 2
    items = parts.store.sharings(0, 10, None, None).items
    assert [(s["id"], s["email"]) for s in items] == [
        (first, "a@x.io"),
        (first + 1, "b@x.io"),
        (second, "c@x.io"),
    ]
    assert items[1]["custom_attributes"] == {"n": 1} and items[1]["built_in_responses"] == {"a": 1}
    assert items[2]["request_id"] == 2 and items[2]["accepted_at"] == ALIGNED


def test_sharings_filter_by_campaign_and_email_and_page(parts):
    parts.store.record_sharings(batch(["a@x.io", "B@x.io"]), 100)
    parts.store.record_sharings(batch(["b@x.io"], OTHER_CAMPAIGN), 100)
    by_email = parts.store.sharings(0, 10, None, "b@X.io").items
    assert [s["campaign_id"] for s in by_email] == [CAMPAIGN, OTHER_CAMPAIGN]
    by_both = parts.store.sharings(0, 10, OTHER_CAMPAIGN, "b@x.io").items
    assert [s["email"] for s in by_both] == ["b@x.io"]
    page = parts.store.sharings(0, 1, CAMPAIGN, None)
    assert [s["email"] for s in page.items] == ["a@x.io"] and page.more
    page = parts.store.sharings(page.items[0]["id"], 1, CAMPAIGN, None)
    assert [s["email"] for s in page.items] == ["B@x.io"] and not page.more


def test_sharings_drop_the_oldest_recipients_even_within_a_batch(opener):
    parts = opener(bounds={"sharings_max_recipients": 4})
    first = parts.store.record_sharings(batch(["a@x.io", "b@x.io", "c@x.io"]), 30)
    parts.store.record_sharings(batch(["d@x.io", "e@x.io"]), 20)
    page = parts.store.sharings(0, 10, None, None)
    assert [s["email"] for s in page.items] == ["b@x.io", "c@x.io", "d@x.io", "e@x.io"]
    assert page.items[0]["id"] == first + 1 and page.dropped == 1
    assert parts.store.counts()["sharings_dropped"] == 1


def test_a_batch_reads_back_as_the_request_sent_it(parts):
    emails = ["a@x.io", "B@x.io", "a@x.io", "ç@x.io", "none@x.io"]
    sent = {
        "custom_attributes": {"a@x.io": {"n": 1.5, "t": "é\n"}, "B@x.io": {"k": [1, {"z": None}]}},
        "transactional_data": {"ç@x.io": {"Amount": 149.9}, "b@x.io": {"lower": True}},
        "built_in_responses": {"nps": 9},
    }
    first = parts.store.record_sharings(SharingBatch.of(CAMPAIGN, 7, 1.25, emails, sent), 100)
    expected = [
        {
            "id": first + index,
            "campaign_id": CAMPAIGN,
            "channel": "email",
            "email": email,
            "custom_attributes": sent["custom_attributes"].get(email, {}),
            "transactional_data": sent["transactional_data"].get(email, {}),
            "built_in_responses": {"nps": 9},
            "accepted_at": 1.25,
            "request_id": 7,
            "trigger": "api",
        }
        for index, email in enumerate(emails)
    ]
    assert orjson.dumps(parts.store.sharings(0, 10, None, None).items) == orjson.dumps(expected)
    assert parts.store.sharings(0, 10, None, "b@X.IO").items == [expected[1]]
    assert parts.store.sharings(first, 2, CAMPAIGN, "A@x.io").items == [expected[2]]


def test_a_journal_body_held_as_bytes_reads_back_as_shown(parts):
    bodies = [({"emails": ["a@x.io"], "f": 1e300}, b""), (None, b"\xff not json"), (None, b"")]
    for parsed, raw in bodies:
        begun = parts.store.begin_request(entry(0), 100, parts.clock)
        parts.store.finish_request(begun.id, {"body": hold_body(raw, parsed)}, 100)
    shown = [item["body"] for item in parts.store.requests(0, 10).items]
    assert shown == [bodies[0][0], "\ufffd not json", None]


# -- faults ---------------------------------------------------------------------------------------


def fault(**spec: Any) -> dict[str, Any]:
    return {"match": {}, "times": None, **spec}


def test_a_fault_matches_on_every_key_it_gives(parts):
    parts.store.add_fault(fault(match={"path": "/v1/", "token": "t", "campaign_id": "c"}, error=1))
    assert parts.store.take_fault("/v1/x", None, "c") is None
    assert parts.store.take_fault("/v2/x", "t", "c") is None
    assert parts.store.take_fault("/v1/x", "t", None) is None
    taken = parts.store.take_fault("/v1/x", "t", "c")
    assert taken is not None and taken.kind == "error" and taken.fired == 1


def test_a_fault_fires_its_times_then_is_spent_and_the_first_added_fires_first(parts):
    first = parts.store.add_fault(fault(times=2, status=503, retry_after=7))
    second = parts.store.add_fault(fault(delay_ms=5))
    assert first.describe()["remaining"] == 2 and second.id == first.id + 1
    taken = [parts.store.take_fault("/p", None, None) for _ in range(3)]
    assert [(f.id, f.kind) for f in taken] == [(first.id, "status")] * 2 + [(second.id, "delay_ms")]
    assert taken[0].retry_after == 7 and taken[1].status == 503
    assert [(f["id"], f["remaining"], f["fired"]) for f in parts.store.faults()] == [
        (second.id, None, 1)
    ]
    parts.store.clear_faults()
    assert parts.store.faults() == [] and parts.store.take_fault("/p", None, None) is None


def test_clearing_faults_ends_a_delay_under_way(parts):
    parts.store.add_fault(fault(delay_ms=60_000))
    taken = parts.store.take_fault("/p", None, None)
    threading.Timer(0.1, parts.store.clear_faults).start()
    started = time.monotonic()
    assert taken.cleared.wait(5)  # before the 60 s delay would have ended
    assert time.monotonic() - started < 5


# -- the whole store ------------------------------------------------------------------------------


def test_reset_empties_everything_and_restores_the_configured_fixture(parts):
    parts.store.add_fixture({"tokens": {"extra": {"account": ACCOUNT}}})
    parts.store.add_fixture({"tokens": {TOKEN: {"account": ACCOUNT, "active": False}}})
    ids = journal(parts, count=2)
    parts.store.record_sharings(batch(["a@x.io"]), 10)
    parts.store.add_fault(fault(error=1))
    parts.store.reset()
    assert parts.store.counts() == dict.fromkeys(
        ("requests", "requests_dropped", "sharings", "sharings_dropped"), 0
    )
    assert parts.store.faults() == [] and parts.store.requests(0, 10).items == []
    assert parts.store.token("extra") is None and parts.store.token(TOKEN).active
    assert journal(parts) == [ids[-1] + 1]  # ids go on: a cursor kept by a client stays valid


# -- clock ----------------------------------------------------------------------------------------


def test_the_clock_reads_real_time_at_its_rate_until_set(opener):
    clock = opener().clock
    assert abs(clock.now() - time.time()) < 5 and clock.rate == 1.0
    clock.set(ALIGNED)
    assert clock.now() == ALIGNED and clock.rate == 0.0 and clock.real_seconds(5) is None
    clock.advance(2.5)
    assert clock.now() == ALIGNED + 2.5
    clock.set(ALIGNED, rate=1000.0)
    first = clock.now()
    assert ALIGNED <= first < ALIGNED + 1000 * 60 and clock.real_seconds(5) == 0.005
    assert clock.now() >= first
    clock.advance(-10)  # set back: it may read earlier now
    assert clock.now() < first
    clock.reset()
    assert abs(clock.now() - time.time()) < 5 and clock.rate == 1.0


# -- throttle -------------------------------------------------------------------------------------


def frozen(opener: Opener, **throttle: Any) -> Parts:
    parts = opener(throttle=throttle)
    parts.clock.set(ALIGNED)
    return parts


def accepted(parts: Parts, times: int, bucket: str = "k") -> int:
    throttle = parts.throttle
    return sum(throttle.hit(bucket, throttle.tiers).allowed for _ in range(times))


def test_twenty_in_five_seconds_then_429_counting_up_to_the_first_tier_exceeded(opener):
    parts = frozen(opener)
    throttle = parts.throttle
    verdicts = [throttle.hit("k", throttle.tiers) for _ in range(25)]
    assert [v.allowed for v in verdicts] == [True] * 20 + [False] * 5
    assert [c.count for c in verdicts[19].counts] == [20, 20, 20, 20]
    last = verdicts[-1]
    assert [c.count for c in last.counts] == [25] and last.exceeded.tier.limit == 20
    assert last.now == ALIGNED and last.exceeded.window_end == ALIGNED + 5


def test_windows_are_kept_per_key_while_the_clock_goes_back_and_forth(opener):
    parts = frozen(opener, tiers="2/5 seconds")
    for window in range(WINDOWS_KEPT + 1):  # the first window touched is the one let go
        parts.clock.set(ALIGNED + 5 * window)
        assert accepted(parts, 3) == 2
    for offset in (5, 14, 6, 39):
        parts.clock.set(ALIGNED + offset)
        assert accepted(parts, 1) == 0, offset
    parts.clock.set(ALIGNED)
    assert accepted(parts, 3) == 2
    assert accepted(parts, 2, "other") == 2  # keys are apart


def test_past_max_keys_the_key_counted_longest_ago_is_forgotten(opener):
    parts = frozen(opener, max_keys=5)
    assert accepted(parts, 21, "kept") == 20
    assert accepted(parts, 1, "forgotten") == 1
    for index in range(3):
        accepted(parts, 1, f"key-{index}")
    assert accepted(parts, 1, "kept") == 0  # counted last now: "forgotten" is the oldest
    accepted(parts, 1, "one-more")
    assert parts.throttle.keys_held == 5
    assert accepted(parts, 20, "forgotten") == 20  # its windows start afresh
    assert accepted(parts, 1, "kept") == 0


def test_the_snapshot_shows_each_keys_current_windows_and_reset_clears_it(opener):
    parts = frozen(opener, tiers="20/5 seconds; 40/25 seconds")
    accepted(parts, 3, "b")
    accepted(parts, 21, "a")
    rows = parts.throttle.snapshot(parts.clock.now())
    assert [(r["key"], r["tier"], r["count"], r["window_end"]) for r in rows] == [
        ("a", "20/5 seconds", 21, ALIGNED + 5),
        ("a", "40/25 seconds", 20, ALIGNED + 25),
        ("b", "20/5 seconds", 3, ALIGNED + 5),
        ("b", "40/25 seconds", 3, ALIGNED + 25),
    ]
    assert parts.throttle.snapshot(ALIGNED + 25) == []  # new windows: nothing counted there
    parts.throttle.reset()
    assert parts.throttle.snapshot(ALIGNED) == [] and parts.throttle.keys_held == 0
    assert accepted(parts, 21, "a") == 20


def test_no_window_accepts_more_than_its_limit_under_concurrency(opener):
    # SPEC 1.3 Exactness: 32 threads on two emulators' parts (with Redis, two replicas).
    replicas = [frozen(opener), opener()] if opener.shared else [frozen(opener)]
    barrier = threading.Barrier(32)
    allowed = []

    def client(number: int) -> None:
        throttle = replicas[number % len(replicas)].throttle
        barrier.wait()
        allowed.extend(throttle.hit("k", throttle.tiers).allowed for _ in range(3))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 20 and len(allowed) == 96


# -- Redis only: replicas, the key prefix, start-up --------------------------------------------


def test_a_replica_started_later_sees_everything_and_wipes_nothing(redis_url):
    first = open_parts(load_settings(storage=redis_url))
    first.store.add_fixture({"tokens": {"extra": {"account": ACCOUNT}}})
    ids = journal(first, count=2)
    first.store.record_sharings(batch(["a@x.io"]), 10)
    first.store.add_fault(fault(times=1, error=13000))
    first.clock.set(ALIGNED)
    first.throttle.hit("k", first.throttle.tiers)
    later = open_parts(load_settings(storage=redis_url))
    assert later.store.token("extra") is not None
    assert [item["id"] for item in later.store.requests(0, 10).items] == ids
    assert [s["email"] for s in later.store.sharings(0, 10, None, None).items] == ["a@x.io"]
    assert later.clock.now() == ALIGNED and later.throttle.keys_held == 1
    assert later.store.take_fault("/", None, None) is not None
    assert first.store.take_fault("/", None, None) is None  # times: 1, across replicas


def test_a_fault_with_times_one_fires_once_across_racing_replicas(redis_url):
    replicas = [open_parts(load_settings(storage=redis_url)) for _ in range(4)]
    replicas[0].store.add_fault(fault(times=1, error=13000))
    barrier = threading.Barrier(16)
    taken = []

    def worker(number: int) -> None:
        barrier.wait()
        taken.append(replicas[number % 4].store.take_fault("/p", None, None))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(fault is not None for fault in taken) == 1


def test_clearing_faults_on_one_replica_ends_a_delay_under_way_on_another(redis_url):
    first, second = (open_parts(load_settings(storage=redis_url)) for _ in range(2))
    first.store.add_fault(fault(delay_ms=60_000))
    taken = second.store.take_fault("/p", None, None)
    threading.Timer(0.1, first.store.clear_faults).start()
    started = time.monotonic()
    assert taken.cleared.wait(5)  # before the 60 s delay would have ended
    assert time.monotonic() - started < 5


def test_a_step_back_of_redis_real_time_never_reads_the_clock_back(redis_url):
    # As MemoryClock: the machine's clock stepped back (NTP) holds the reading still.
    clock = open_parts(load_settings(storage=redis_url)).clock
    clock.set(ALIGNED, rate=1.0)
    first = clock.now()
    client = redis.Redis.from_url(redis_url)
    anchor = float(client.hget(PREFIX + "clock", "real_anchor"))
    client.hset(PREFIX + "clock", "real_anchor", repr(anchor + 3600))  # real time reads 1 h less
    assert clock.now() == first
    clock.advance(-10)  # set back on purpose: it may read earlier now
    assert clock.now() < first


def test_reset_deletes_only_our_keys(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("someone-else:key", "kept")
    parts = open_parts(load_settings(storage=redis_url))
    journal(parts, count=2)
    parts.clock.set(ALIGNED)
    parts.throttle.hit("k", parts.throttle.tiers)
    parts.store.reset()
    parts.throttle.reset()
    parts.clock.reset()
    assert client.get("someone-else:key") == b"kept"
    others = [name for name in client.scan_iter() if not name.startswith(PREFIX.encode())]
    assert others == [b"someone-else:key"]


def test_an_unreachable_redis_is_a_one_line_config_error():
    port = free_port()  # nothing listens there
    with pytest.raises(ConfigError) as caught:
        connect(f"redis://127.0.0.1:{port}/0")
    message = str(caught.value)
    assert message.startswith(f"--storage redis://127.0.0.1:{port}/0: cannot connect: ")
    assert "\n" not in message


# -- the bounded log: Redis' Lua against bounded.BoundedLog, on any sequence of batches --------

_log_names = itertools.count()


@pytest.fixture(scope="module")
def redis_client(redis_server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(f"{redis_server}/1")
    yield client
    client.flushdb()


@given(
    batches=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 500)), max_size=25),
    max_items=st.integers(1, 40),
    max_bytes=st.integers(1, 2000),
)
def test_the_redis_log_keeps_and_drops_exactly_what_bounded_log_does(
    redis_client, batches, max_items, max_bytes
):
    memory: BoundedLog[dict[str, Any]] = BoundedLog(max_items, max_bytes)
    shared = RedisLog(
        redis_client, f"log-{next(_log_names)}", (max_items, max_bytes), _numbered_batch
    )
    for size, nbytes in batches:
        items = [{"n": n} for n in range(size)]
        first = memory.append(items, nbytes)
        assert shared.append(_payload(size), size, nbytes) == first
    held = shared.page(0, 10_000)
    assert held.items == [{"id": i, **item} for i, item in memory.items_since()]
    assert held.dropped == memory.dropped


def _payload(size: int) -> bytes:
    return str(size).encode()


def _numbered_batch(payload: bytes) -> list[dict[str, Any]]:
    return [{"n": n} for n in range(int(payload))]
