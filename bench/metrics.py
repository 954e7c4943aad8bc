"""What the metrics cost per request: the emulator with no metrics against memory and Redis ones.

    python bench/metrics.py [--requests 2000] [--repeat 5]

Each row sends the same 2-recipient POST through Flask's test client (in process: no HTTP server
between, so the difference is the emulator's own cost), throttle off, best of `--repeat` rounds
in which the rows take turns (the machine is shared). `record µs` times `Metrics.record` alone,
the direct measure of the cost; on a busy machine the req/s column is the noisier one. Ratios are
against the row without metrics, in the same run. The Redis row starts a redis-server of its own
on a free loopback port: Redis on the same machine, so its round trip is the least it can be.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mockserver.app import create_app
from mockserver.context import EXTENSION_KEY
from mockserver.metrics import Key, Metrics, Sample, open_metrics
from mockserver.settings import ThrottleSettings, load_settings
from tests.redis_server import _answers_ping, free_port  # the test fixture's own helpers

PATH = "/v1/email_campaigns/735c19a7-ee54-4b03-a84a-93dfe2a94a56/email_sharings"
BODY = {"emails": ["a@example.com", "b@example.com"]}
AUTH = {"Authorization": "Token token=test-token"}


class NoMetrics:
    """The baseline: a request that records nothing."""

    def record(self, sample: Sample) -> None:
        pass

    def totals(self) -> dict[Key, float]:
        return {}


def requests_per_second(metrics: Metrics, count: int) -> float:
    app = create_app(load_settings().with_changes(throttle=ThrottleSettings(enabled=False)))
    app.extensions[EXTENSION_KEY].metrics = metrics
    client = app.test_client()
    began = time.perf_counter()
    for _ in range(count):
        assert client.post(PATH, json=BODY, headers=AUTH).status_code == 200
    return count / (time.perf_counter() - began)


def record_microseconds(metrics: Metrics, count: int) -> float:
    sample = Sample("/v1/x/{y}", "POST", 200, None, 0.002, recipients=2)
    began = time.perf_counter()
    for _ in range(count):
        metrics.record(sample)
    return (time.perf_counter() - began) / count * 1e6


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server not found (Debian: apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        process = subprocess.Popen([*command, "--dir", workdir], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not _answers_ping(port) and time.monotonic() < deadline:
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


def best_of(
    rows: list[tuple[str, Callable[[], Metrics]]], count: int, repeat: int
) -> dict[str, tuple[float, float]]:
    """Each row's best rate and cost; the rows take turns in every round, so a busy moment of
    the shared machine falls on all of them alike."""
    rates: dict[str, float] = {}
    costs: dict[str, float] = {}
    for _ in range(repeat):
        for name, make in rows:
            rates[name] = max(rates.get(name, 0.0), requests_per_second(make(), count))
            cost = record_microseconds(make(), count)
            costs[name] = min(costs.get(name, cost), cost)
    return {name: (rates[name], costs[name]) for name, _ in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with redis_server() as url:
        rows: list[tuple[str, Callable[[], Metrics]]] = [
            ("none", NoMetrics),
            ("memory", lambda: open_metrics("memory://")),
            ("redis (loopback)", lambda: open_metrics(url)),
        ]
        results = best_of(rows, args.requests, args.repeat)
    baseline = results["none"][0]
    print(f"{'metrics':<18} {'req/s':>8} {'ratio':>6} {'record µs':>10}")
    for name, (rate, cost) in results.items():
        print(f"{name:<18} {rate:>8.0f} {rate / baseline:>6.2f} {cost:>10.1f}")


if __name__ == "__main__":
    main()
