"""What sharing the state through Redis costs: the same workload on `--storage memory://` and
`--storage redis://` (a redis-server this script starts on a free loopback port).

    python bench/storage.py [--seconds 3] [--clients 2]

Each row is `pisano-mock serve` in its own process, with the throttle off and on (a tier too high
to refuse, so every request is counted), bodies of 2 and 5000 recipients. Figures are ratios
against memory measured in the same run. "trips/req" is how many round trips to Redis one request
makes (counted in-process on the client's connections: a script or a pipeline is one), and
"cmds/req" how many commands Redis ran for it, those inside scripts included (INFO commandstats).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis
from throughput import HEADERS, PATH, body_of, run_load, start, summarise

from mockserver.app import create_app
from mockserver.settings import load_settings

SERVE = [sys.executable, "-m", "mockserver.cli", "serve", "--quiet", "--port", "0"]
THROTTLES = {"off": ["--no-throttle"], "on": []}
HIGH_TIERS = "1000000000/5 seconds"  # counts every request, refuses none
HIGH_TIER = f'[throttle]\ntiers = "{HIGH_TIERS}"\n'


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server not found (Debian: apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        flags = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir]
        process = subprocess.Popen([binary, *flags], stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url)
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait()


def commands_done(url: str | None) -> int:
    if url is None:
        return 0
    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(int(row["calls"]) for row in stats.values())


def measure(
    command: list[str], url: str | None, body: bytes, seconds: float, clients: int
) -> tuple[float, float, float, float]:
    """(req/s, p50 ms, p99 ms, Redis commands per request) of one serve process."""
    process, base_url = start(command)
    try:
        run_load(base_url, body, 1.0, clients)  # warm-up
        before = commands_done(url)
        latencies = run_load(base_url, body, seconds, clients)
        requests = len(latencies) - 1
        per_request = (commands_done(url) - before) / max(requests, 1)
        rate, p50, p99 = summarise(latencies)
        return rate, p50, p99, per_request
    finally:
        process.terminate()
        process.wait()


def round_trips(url: str, body: bytes, throttle: bool, requests: int = 50) -> float:
    """Round trips to Redis per request, counted on the client's side in this process."""
    sent = 0
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        nonlocal sent
        sent += 1
        original(self, command, check_health)

    settings = load_settings(storage=url)
    counted = replace(settings.throttle, enabled=throttle, tiers=HIGH_TIERS)
    settings = settings.with_changes(throttle=counted)
    client = create_app(settings).test_client()
    headers = {**HEADERS, "Authorization": "Token token=test-token"}
    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        for _ in range(requests):
            client.post(PATH, data=body, headers=headers)
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
    return sent / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (3)")
    parser.add_argument("--clients", type=int, default=2, help="concurrent connections (2)")
    args = parser.parse_args()
    bodies = {2: body_of(2), 5000: body_of(5000)}
    rows: dict[tuple[str, str, int], tuple[float, float, float, float]] = {}
    trips: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as workdir, redis_server() as url:
        config = Path(workdir) / "high-tier.toml"
        config.write_text(HIGH_TIER)
        for throttle, flags in THROTTLES.items():
            extra = [*flags, "--config", str(config)]
            for recipients, body in bodies.items():
                for storage, used in (("memory", None), ("redis", url)):
                    command = [*SERVE, *extra, "--storage", used or "memory://"]
                    redis.Redis.from_url(url).flushdb()
                    rows[storage, throttle, recipients] = measure(
                        command, used, body, args.seconds, args.clients
                    )
                trips[throttle, recipients] = round_trips(url, body, throttle == "on")
    line = "{:<8} {:>8} {:>10} {:>9} {:>8} {:>8} {:>10} {:>9} {:>9}"
    print(
        line.format(
            "storage",
            "throttle",
            "recipients",
            "req/s",
            "p50 ms",
            "p99 ms",
            "vs memory",
            "trips/req",
            "cmds/req",
        )
    )
    for (storage, throttle, recipients), (rate, p50, p99, per_request) in rows.items():
        baseline = rows["memory", throttle, recipients][0]
        figures = (
            f"{rate:.0f}",
            f"{p50:.2f}",
            f"{p99:.2f}",
            f"{rate / baseline:.0%}",
            f"{trips[throttle, recipients] if storage == 'redis' else 0:.1f}",
            f"{per_request:.1f}",
        )
        print(line.format(storage, throttle, recipients, *figures))


if __name__ == "__main__":
    main()
