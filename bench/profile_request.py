"""Where the emulator's time goes on one request, in-process (no server, no sockets).

    python bench/profile_request.py [--requests 3000] [--recipients 2] [--storage URL] [--top 25]

The same POST through Flask's test client, first to the bare parse-only app, then to the emulator
(throttle off): microseconds per request for both (their ratio is the ceiling of "emulator / bare"
on any server), then the emulator's functions by cumulative time under cProfile. The profile
slows everything down; read its shares, not its absolute times.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import PATH, body_of  # a sibling script
from wsgi_entry import bare, emulator

from mockserver.settings import STORAGE_VARIABLE

HEADERS = {"Authorization": "Token token=test-token", "Content-Type": "application/json"}


def post_many(client: Any, body: bytes, requests: int) -> float:
    """Microseconds per request; every answer must be 200."""
    began = time.perf_counter()
    for _ in range(requests):
        answer = client.post(PATH, data=body, headers=HEADERS)
        if answer.status_code != 200:
            raise RuntimeError(f"{answer.status_code}: {answer.data[:200]!r}")
    return (time.perf_counter() - began) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--recipients", type=int, default=2)
    parser.add_argument("--storage", default="memory://", help="memory:// or redis://HOST:PORT/DB")
    parser.add_argument("--top", type=int, default=25, help="functions listed (25)")
    args = parser.parse_args()
    os.environ[STORAGE_VARIABLE] = args.storage
    body = body_of(args.recipients)
    clients = {"bare": bare().test_client(), "emulator": emulator().test_client()}
    timings = {}
    for name, client in clients.items():
        post_many(client, body, max(args.requests // 10, 1))  # warm-up
        timings[name] = post_many(client, body, args.requests)
    print(f"{args.recipients} recipients, {args.storage}, {args.requests} requests, in-process:")
    for name, micros in timings.items():
        print(f"  {name:<9} {micros:8.0f} us/request  {timings['bare'] / micros:5.2f}x bare's rate")
    profile = cProfile.Profile()
    profile.runcall(post_many, clients["emulator"], body, args.requests)
    stats = pstats.Stats(profile).strip_dirs().sort_stats("cumulative")
    stats.print_stats(args.top)


if __name__ == "__main__":
    main()
