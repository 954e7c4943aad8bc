"""SPEC 1.3 "Exactness" under real concurrency: bursts of real threads across real window edges.

The clock runs at RATE times real time, so a 5 s window passes in a quarter of a second; each trial
sets it just before an instant that ends a window of every tier at once and lets a burst of threads
loose on it. Whatever the interleaving, no window may accept more than its limit, and the journal's
`time` of every request must be the instant the throttle counted it at.
"""

from __future__ import annotations

import http.client
import math
import threading
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import SHARINGS_PATH
from tests.test_throttle import ALIGNED, TIERS, reference_verdicts

RATE = 20  # a 5 s window lasts 250 ms of real time
THREADS = 48
REQUESTS_PER_THREAD = 2
# Emulated seconds left before the edge when the burst starts (1/RATE of that in real time).
LEADS = [0.3, 0.6, 1.0, 0.4, 0.8, 1.5, 0.5, 0.2, 1.2, 0.7]
SPACING = 1250  # between two trials' edges: every tier's window is new at each trial
BODY = b'{"emails": ["a@example.com"]}'
HEADERS = {"Authorization": "Token token=test-token", "Content-Type": "application/json"}


def burst(base_url: str, start: Any) -> None:
    """THREADS connections, opened first, each sending REQUESTS_PER_THREAD once `start` ran."""
    target = urlsplit(base_url)
    connections = [
        http.client.HTTPConnection(target.hostname, target.port, timeout=30) for _ in range(THREADS)
    ]
    for connection in connections:
        connection.connect()
    barrier = threading.Barrier(THREADS + 1)

    def send(connection: http.client.HTTPConnection) -> None:
        barrier.wait()
        for _ in range(REQUESTS_PER_THREAD):
            connection.request("POST", SHARINGS_PATH, body=BODY, headers=HEADERS)
            connection.getresponse().read()
        connection.close()

    threads = [threading.Thread(target=send, args=(c,)) for c in connections]
    for thread in threads:
        thread.start()
    start()
    barrier.wait()
    for thread in threads:
        thread.join()


def accepted_per_window(entries: list[dict[str, Any]], period: int) -> Counter[int]:
    return Counter(math.floor(e["time"] / period) for e in entries if e["status"] == 200)


def crossed_by_its_burst(entries: list[dict[str, Any]], edge: float) -> bool:
    """Whether the trial at `edge` counted requests on both sides of it."""
    times = [e["time"] for e in entries if abs(e["time"] - edge) < SPACING / 2]
    return min(times) < edge <= max(times)


def tier_period(name: str) -> int:
    return next(period for limit, period in TIERS if name == f"{limit}/{period} seconds")


def test_bursts_across_window_edges_never_exceed_a_tier(pisano_mock):
    edges = [ALIGNED + SPACING * (trial + 1) for trial in range(len(LEADS))]
    for edge, lead in zip(edges, LEADS, strict=True):
        burst(
            pisano_mock.base_url,
            lambda edge=edge, lead=lead: pisano_mock.set_clock(edge - lead, rate=RATE),
        )
    entries = pisano_mock.requests()
    assert len(entries) == len(LEADS) * THREADS * REQUESTS_PER_THREAD
    assert {e["status"] for e in entries} <= {200, 429}
    crossed = [edge for edge in edges if crossed_by_its_burst(entries, edge)]
    assert len(crossed) >= len(edges) // 2, "too few bursts crossed their edge to test anything"

    for limit, period in TIERS:
        over = {w: n for w, n in accepted_per_window(entries, period).items() if n > limit}
        assert not over, f"tier {limit}/{period} s: windows over the limit {over}"
    # The journal's times, in the order the throttle counted them, replay to the same verdicts.
    in_order = sorted(entries, key=lambda e: (e["time"], e["status"] != 200))
    observed = [e["status"] == 200 for e in in_order]
    assert observed == reference_verdicts([e["time"] for e in in_order])
    for entry in entries:
        if entry["status"] == 429:
            end, period = entry["throttle"]["window_end"], tier_period(entry["throttle"]["tier"])
            assert end - period <= entry["time"] < end, entry
