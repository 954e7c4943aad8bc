"""Requests/s and p50/p99 of `pisano-mock serve --no-throttle` against a bare parse-only app.

    python bench/throughput.py [--seconds 5] [--clients 2]

Both servers run as separate processes on this machine, served the same way (threaded Werkzeug,
HTTP/1.1 keep-alive); the client keeps one connection per thread. Figures are ratios against the
bare app measured in the same run, so they travel between machines better than absolute numbers.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from measure import peak_rss_mib  # a sibling script: the whole process tree's memory

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
PATH = f"/v1/email_campaigns/{CAMPAIGN}/email_sharings"
HEADERS = {"Authorization": "Token token=test-token", "Content-Type": "application/json"}


def body_of(recipients: int) -> bytes:
    emails = [f"customer.{i}+survey@example.com" for i in range(recipients)]
    return orjson.dumps(
        {
            "emails": emails,
            "custom_attributes": {
                e: {
                    "name": f"Müşteri Adı {i}",
                    "external_id": f"EXT-{i:08d}",
                    "phone_number": "5551234567",
                }
                for i, e in enumerate(emails)
            },
            "transactional_data": {
                e: {
                    "Segment": "Gold",
                    "Location": "İstanbul / Kadıköy şubesi",
                    "TransactionDate": "2026-11-27 10:00:00",
                    "Amount": 149.9,
                    "Items": 3,
                }
                for e in emails
            },
        }
    )


def start(command: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = process.stdout.readline() if process.stdout else ""
    base_url = line.split()[2]
    return process, base_url


def run_load(base_url: str, body: bytes, seconds: float, clients: int) -> list[float]:
    host = urlsplit(base_url)
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        mine = []
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            connection.request("POST", PATH, body=body, headers=HEADERS)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{base_url}: {response.status}")
            mine.append(time.perf_counter() - began)
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.append(-(time.perf_counter() - began))  # the wall time rides along, negative
    return latencies


def summarise(latencies: list[float]) -> tuple[float, float, float]:
    wall = -latencies.pop()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return len(ordered) / wall, statistics.median(ordered) * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (5)")
    parser.add_argument("--clients", type=int, default=2, help="concurrent connections (2)")
    args = parser.parse_args()
    servers = {
        "bare parse-only app": [sys.executable, "bench/bare_app.py"],
        "pisano-mock serve": [
            sys.executable,
            "-m",
            "mockserver.cli",
            "serve",
            "--no-throttle",
            "--quiet",
            "--port",
            "0",
        ],
    }
    bodies = {2: body_of(2), 5000: body_of(5000)}
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    peaks: dict[str, float] = {}
    for name, command in servers.items():
        process, base_url = start(command)
        try:
            for recipients, body in bodies.items():
                run_load(base_url, body, 1.0, args.clients)  # warm-up
                results[name, recipients] = summarise(
                    run_load(base_url, body, args.seconds, args.clients)
                )
            peaks[name] = peak_rss_mib(process.pid)
        finally:
            process.terminate()
            process.wait()
    row = "{:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}"
    print(row.format("server", "recipients", "body KB", "req/s", "p50 ms", "p99 ms", "vs bare"))
    for (name, recipients), (rate, p50, p99) in results.items():
        bare_rate = results["bare parse-only app", recipients][0]
        size = len(bodies[recipients]) / 1024
        figures = (
            f"{size:.0f}",
            f"{rate:.1f}",
            f"{p50:.2f}",
            f"{p99:.2f}",
            f"{rate / bare_rate:.0%}",
        )
        print(row.format(name, recipients, *figures))
    for name, peak in peaks.items():
        print(f"peak RSS of {name}: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
