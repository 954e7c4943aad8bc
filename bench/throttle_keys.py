"""Throttle cost against the number of distinct keys: hits/s on the object, req/s over HTTP.

    python bench/throttle_keys.py [--keys 10 1000 10000 100000] [--seconds 60] [--no-http]
    python bench/throttle_keys.py --memory     # bytes held per key (tracemalloc), and at max_keys

Workload, the same for every row: K distinct keys (tokens) take turns, and each request is its
key's first in its window (the clock moves on one tier-1 window after each pass over the K keys),
so every request opens a window, as a flood of new tokens or a crowd of steady clients does. A row
runs at least `--hits` requests (`--http-requests` over HTTP) and at most `--seconds`; a row cut
short says how many keys it reached. Object rows are the best of `--repeat` runs (the machine is
shared; the best run is the one least disturbed). Ratios are against the 10-key row of the same run.
Over HTTP the tokens are unknown: the throttle counts them before authentication answers 401.

--memory: the bytes `tracemalloc` sees the throttle hold per key, for keys of the longest form held
(a long token under `token_and_ip` with an IPv6 address), once with one window per tier and once
with every window a key keeps (WINDOWS_KEPT per tier), and what `throttle.max_keys` keys cost.
"""

from __future__ import annotations

import argparse
import http.client
import math
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import PATH, start  # a sibling script, not a package

from mockserver.clock import MemoryClock
from mockserver.settings import ThrottleSettings
from mockserver.throttle import WINDOWS_KEPT, MemoryThrottle

ALIGNED = 1_000_000_000
WINDOW = 5  # tier 1's period: one pass over the keys per window
LONGEST_ADDRESS = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"


class Row:
    def __init__(self, keys: int) -> None:
        self.keys = keys
        self.done = 0
        self.seconds = 0.0
        self.reached = 0  # distinct keys seen when the row stopped

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else float("nan")


def run_passes(
    keys: int, least: int, budget: float, hit: Callable[[str], object], next_window: Callable
) -> Row:
    """Passes over the keys, one window each, until `least` hits are done or `budget` is spent."""
    row = Row(keys)
    passes = math.ceil(least / keys)
    began = time.perf_counter()
    deadline = began + budget
    for _ in range(passes):
        for index in range(keys):
            hit(f"key-{index}")
            row.done += 1
            row.reached = max(row.reached, index + 1)
            if row.done % 64 == 0 and time.perf_counter() > deadline:
                row.seconds = time.perf_counter() - began
                return row
        next_window()
    row.seconds = time.perf_counter() - began
    return row


def best_of(times: int, measure: Callable[..., Row], *args: object) -> Row:
    return max((measure(*args) for _ in range(times)), key=lambda row: row.rate)


def on_the_object(keys: int, least: int, budget: float) -> Row:
    clock = MemoryClock()
    clock.set(ALIGNED)
    throttle = MemoryThrottle(ThrottleSettings(), clock)
    tiers = throttle.tiers
    return run_passes(
        keys,
        least,
        budget,
        lambda key: throttle.hit(f"token:{key}", tiers),
        lambda: clock.advance(WINDOW),
    )


def over_http(base_url: str, keys: int, least: int, budget: float) -> Row:
    target = urlsplit(base_url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)

    def call(method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    def admin(path: str, payload: dict[str, float] | None = None) -> None:
        body = orjson.dumps(payload or {})
        call("POST", path, body, {"Content-Type": "application/json"})

    def hit(key: str) -> None:
        headers = {"Authorization": f"Token token={key}", "Content-Type": "application/json"}
        status = call("POST", PATH, b'{"emails": ["a@example.com"]}', headers)
        if status != 401:
            raise RuntimeError(f"{key}: {status}, expected 401 (counted, then unknown)")

    admin("/__mock/reset")
    admin("/__mock/clock", {"set": ALIGNED})
    row = run_passes(keys, least, budget, hit, lambda: admin("/__mock/clock", {"advance": WINDOW}))
    connection.close()
    return row


def bytes_per_key(keys: int, windows: int) -> float:
    """Held per key once `keys` keys have each counted in `windows` windows of every tier."""
    clock = MemoryClock()
    clock.set(ALIGNED)
    throttle = MemoryThrottle(ThrottleSettings(key="token_and_ip", max_keys=keys), clock)
    longest = max(tier.period for tier in throttle.tiers)
    tracemalloc.start()
    held_before = tracemalloc.get_traced_memory()[0]
    for window in range(windows):
        clock.set(ALIGNED + window * longest)  # a new window of every tier
        for index in range(keys):
            token = f"{index:08d}" + "t" * 200
            throttle.hit(
                throttle.bucket(token, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), throttle.tiers
            )
    held = tracemalloc.get_traced_memory()[0] - held_before
    tracemalloc.stop()
    return held / keys


def print_memory(keys: int) -> None:
    max_keys = ThrottleSettings().max_keys
    line = "{:<28} {:>14} {:>22}"
    print(f"\nBytes held per key ({keys} keys, tracemalloc); throttle.max_keys = {max_keys}")
    print(line.format("windows per tier", "bytes per key", "at max_keys (MiB)"))
    for windows in (1, WINDOWS_KEPT):
        each = bytes_per_key(keys, windows)
        print(line.format(windows, f"{each:.0f}", f"{each * max_keys / 2**20:.0f}"))


def print_table(title: str, unit: str, rows: list[Row]) -> None:
    base = rows[0].rate
    line = "{:<8} {:>9} {:>12} {:>10} {:>9} {:>14}"
    print(f"\n{title}")
    print(line.format("keys", "requests", f"{unit}/s", "us each", "vs 10", "keys reached"))
    for row in rows:
        each = 1e6 / row.rate if row.rate else float("nan")
        reached = "all" if row.reached >= row.keys else f"{row.reached} (cut)"
        print(
            line.format(
                row.keys,
                row.done,
                f"{row.rate:.0f}",
                f"{each:.1f}",
                f"{row.rate / base:.0%}",
                reached,
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[10, 1000, 10_000, 100_000])
    parser.add_argument("--hits", type=int, default=50_000, help="least hits per object row")
    parser.add_argument("--http-requests", type=int, default=3_000, help="least per HTTP row")
    parser.add_argument("--seconds", type=float, default=60.0, help="most per row")
    parser.add_argument("--repeat", type=int, default=5, help="object rows: the best of (5)")
    parser.add_argument("--no-http", action="store_true", help="the Throttle object only")
    parser.add_argument("--memory", action="store_true", help="bytes held per key, then stop")
    args = parser.parse_args()
    if args.memory:
        print_memory(20_000)
        return
    rows = [best_of(args.repeat, on_the_object, k, args.hits, args.seconds) for k in args.keys]
    print_table("Throttle.hit, in-process", "hits", rows)
    if args.no_http:
        return
    process, base_url = start([sys.executable, "-m", "mockserver.cli", "serve", "--port", "0"])
    try:
        http_rows = [over_http(base_url, k, args.http_requests, args.seconds) for k in args.keys]
    finally:
        process.terminate()
        process.wait()
    print_table("pisano-mock serve, one keep-alive client", "req", http_rows)


if __name__ == "__main__":
    main()
