"""What the outbox in Redis costs (SPEC 1.7, 2.5), against what the request path pays already.

    python bench/redis_outbox.py [--recipients 5000] [--repeat 20] [--messages 5000]

Starts a redis-server on a free loopback port. Rows, each with its ratio to a baseline measured in
the same run:
- the request path: `RedisOutbox.add` of a batch (captured, and for a provider that delivers)
  against `RedisStore.record_sharings` of the same batch, the one write the request makes of its
  recipients before this issue; "trips" is round trips to Redis per call (counted on the client's
  connections: a script or a pipeline is one);
- the senders: claim + settle of one message, by 1 and by 4 threads of one process and by 2
  processes, against PING (one round trip, nothing done);
- the admin page: 100 messages of a delivering batch;
- Redis memory per message held, against the sharings log's per recipient.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from storage import redis_server

from mockserver.outbox import Letterhead, MailBatch, OutboxFilter, Settled
from mockserver.redis_outbox import RedisOutbox
from mockserver.redis_state import RedisClock, RedisStore
from mockserver.settings import Bounds
from mockserver.state import SharingBatch

HOUR = 3600.0
CLAIMER = """
import sys, time, redis
from mockserver.outbox import Settled
from mockserver.redis_outbox import RedisOutbox
from mockserver.settings import Bounds
client = redis.Redis.from_url(sys.argv[1])
outbox = RedisOutbox(client, Bounds())
client.rpush("bench:ready", 1)
client.blpop(["bench:go"], timeout=60)
n = 0
while (claimed := outbox.claim(3600)) is not None:
    outbox.settle(claimed.message.id, Settled(sent_at=1.0))
    n += 1
print(n)
"""


def batch(first_id: int, recipients: int, provider: str) -> MailBatch:
    emails = [f"customer{i}@example.test" for i in range(recipients)]
    parts = {
        "custom_attributes": {
            e: {"name": f"Customer {i}", "tier": "gold"} for i, e in enumerate(emails)
        },
        "transactional_data": {e: {"order": 100000 + i} for i, e in enumerate(emails)},
    }
    sharings = SharingBatch.of("campaign-1", first_id, 1000.0, emails, parts)
    provider_settings = {"type": provider, "url": "http://127.0.0.1:9/"}
    letterhead = Letterhead("campaign-1", "s@example.test", "Hi", None, None, provider_settings, {})
    return MailBatch(first_id, sharings, letterhead)


@contextmanager
def counted_trips() -> Iterator[list[int]]:
    """Round trips sent by this process meanwhile, in the list's one item."""
    sent = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def per_call(call: Callable[[int], object], repeat: int) -> tuple[float, float]:
    """(median ms, round trips) per call; call(i) is the i-th call."""
    call(-1)  # warm: scripts loaded
    times = []
    with counted_trips() as sent:
        for i in range(repeat):
            started = time.perf_counter()
            call(i)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), sent[0] / repeat


def claim_rate(url: str, threads: int, messages: int) -> float:
    """Claims + settles per second by `threads` threads of this process sharing one client."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    outbox = RedisOutbox(client, Bounds())
    outbox.add(batch(1, messages, "http"))
    outbox.get(1)  # parsed once here: the rate is of claims, not of the first read

    def drain() -> None:
        while (claimed := outbox.claim(HOUR)) is not None:
            outbox.settle(claimed.message.id, Settled(sent_at=1.0))

    workers = [threading.Thread(target=drain) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return messages / (time.perf_counter() - started)


def process_claim_rate(url: str, processes: int, messages: int) -> float:
    client = redis.Redis.from_url(url)
    client.flushdb()
    RedisOutbox(client, Bounds()).add(batch(1, messages, "http"))
    command = [sys.executable, "-c", CLAIMER, url]
    running = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)
    ]
    for _ in running:
        client.blpop(["bench:ready"], timeout=60)
    started = time.perf_counter()
    client.rpush("bench:go", *[1] * processes)
    done = sum(int(process.communicate(timeout=300)[0]) for process in running)
    assert done == messages, (done, messages)
    return messages / (time.perf_counter() - started)


def ping_rate(url: str, calls: int) -> float:
    client = redis.Redis.from_url(url)
    started = time.perf_counter()
    for _ in range(calls):
        client.ping()
    return calls / (time.perf_counter() - started)


def request_path_rows(url: str, recipients: int, repeat: int) -> list[tuple[str, str, str, str]]:
    client = redis.Redis.from_url(url)
    client.flushdb()
    store = RedisStore(client, Bounds(), {}, RedisClock(client))
    outbox = RedisOutbox(client, Bounds())
    mails = {p: batch(1, recipients, p) for p in ("outbox", "http")}
    size = mails["http"].nbytes
    base_ms, base_trips = per_call(
        lambda i: store.record_sharings(mails["http"].sharings, size), repeat
    )
    rows = [
        (f"record_sharings ({recipients}, baseline)", f"{base_ms:.2f}", "1.00", f"{base_trips:.1f}")
    ]
    step = recipients + 1
    for provider, mail in mails.items():

        def add(i: int, mail: MailBatch = mail, provider: str = provider) -> None:
            offset = (i + 2) * step + (10**9 if provider == "http" else 0)
            outbox.add(MailBatch(offset, mail.sharings, mail.letterhead))

        ms, trips = per_call(add, repeat)
        rows.append(
            (
                f"outbox.add ({recipients}, {provider})",
                f"{ms:.2f}",
                f"{ms / base_ms:.2f}",
                f"{trips:.1f}",
            )
        )
    return rows


def page_row(url: str, recipients: int, repeat: int) -> tuple[str, str, str, str]:
    client = redis.Redis.from_url(url)
    client.flushdb()
    outbox = RedisOutbox(client, Bounds())
    outbox.add(batch(1, recipients, "http"))
    for _ in range(recipients // 2):
        claimed = outbox.claim(HOUR)
        assert claimed is not None
        outbox.settle(claimed.message.id, Settled(sent_at=1.0))
    ms, trips = per_call(lambda i: outbox.page(recipients // 4, 100, OutboxFilter()), repeat)
    return ("page of 100 (half sent)", f"{ms:.2f}", "", f"{trips:.1f}")


def held_bytes(client: redis.Redis, keys: list[str]) -> int:
    """What Redis says these keys take (MEMORY USAGE, every element counted)."""
    return sum(int(client.memory_usage(name, samples=0) or 0) for name in keys)


def memory_rows(url: str, recipients: int) -> list[tuple[str, float]]:
    """Redis bytes per message held: captured, and delivered (each with its state), against
    the sharings log's bytes per recipient for the same batch."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    store = RedisStore(client, Bounds(), {}, RedisClock(client))
    mail = batch(1, recipients, "http")
    store.record_sharings(mail.sharings, mail.nbytes)
    rows = [("sharings log (baseline)", held_bytes(client, store._sharings.keys) / recipients)]
    for label, provider in (("outbox, captured", "outbox"), ("outbox, delivered (sent)", "http")):
        client.flushdb()
        outbox = RedisOutbox(client, Bounds())
        outbox.add(batch(1, recipients, provider))
        while (claimed := outbox.claim(HOUR)) is not None:
            outbox.settle(claimed.message.id, Settled(sent_at=1.0))
        rows.append((label, held_bytes(client, outbox.keys) / recipients))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5000)
    options = parser.parse_args()
    with redis_server() as url:
        print(f"{'request path':<34} {'ms/call':>9} {'ratio':>7} {'trips':>6}")
        for row in request_path_rows(url, options.recipients, options.repeat):
            print(f"{row[0]:<34} {row[1]:>9} {row[2]:>7} {row[3]:>6}")
        name, ms, _, trips = page_row(url, options.recipients, options.repeat)
        print(f"{name:<34} {ms:>9} {'':>7} {trips:>6}")
        print()
        print(f"{'Redis memory':<34} {'B/msg':>9} {'ratio':>7}")
        memory = memory_rows(url, options.recipients)
        for label, per_message in memory:
            print(f"{label:<34} {per_message:>9.0f} {per_message / memory[0][1]:>7.2f}")
        print()
        ping = ping_rate(url, options.messages)
        print(f"{'senders':<34} {'msg/s':>9} {'ratio':>7}")
        print(f"{'PING (baseline, 1 trip)':<34} {ping:>9.0f} {1:>7.2f}")
        for threads in (1, 4):
            rate = claim_rate(url, threads, options.messages)
            print(f"{f'claim+settle, {threads} thread(s)':<34} {rate:>9.0f} {rate / ping:>7.2f}")
        rate = process_claim_rate(url, 2, options.messages)
        print(f"{'claim+settle, 2 processes':<34} {rate:>9.0f} {rate / ping:>7.2f}")


if __name__ == "__main__":
    main()
