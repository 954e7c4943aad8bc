"""What one inspector poll costs with K throttle keys held, with and without its throttle part.

    python bench/inspector_poll.py [--keys 0 1000 10000 30000] [--polls 20]

Each row: K unknown tokens each send one request (the throttle counts them before authentication
answers 401), then the page's steady poll (`{"journal": {"since": <last>}}`) runs `--polls` times
with the throttle part and as many times without (`"throttle": false`, what the page sends on two
polls out of three). Times are the median over the polls, through Flask's test client (no socket:
the poll's own work). Ratios are against the same row's poll without the throttle part.
"""

from __future__ import annotations

import argparse
import statistics
import time

from mockserver.app import create_app
from mockserver.settings import load_settings

PATH = "/v1/email_campaigns/c/email_sharings"


def median_ms(client, body: dict, polls: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(polls):
        started = time.perf_counter()
        answer = client.post("/__mock/ui/poll", json=body)
        times.append((time.perf_counter() - started) * 1000)
        size = len(answer.data)
    return statistics.median(times), size


def row(keys: int, polls: int) -> str:
    client = create_app(load_settings()).test_client()
    for n in range(keys):
        client.post(PATH, json={}, headers={"Authorization": f"Token token=bench-{n}"})
    first = client.post("/__mock/ui/poll", json={"journal": {"tail": True}}).get_json()
    since = first["journal"]["next"]
    steady = {"journal": {"since": since}}
    with_part, size = median_ms(client, steady, polls)
    without, small = median_ms(client, {**steady, "throttle": False}, polls)
    ratio = with_part / without if without else float("nan")
    return f"{keys:>7} | {with_part:9.1f} | {size:>8} | {without:9.1f} | {small:>8} | {ratio:6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[0, 1000, 10000, 30000])
    parser.add_argument("--polls", type=int, default=20)
    args = parser.parse_args()
    print("   keys | with (ms) | bytes    |  w/o (ms) | bytes    |  ratio")
    for keys in args.keys:
        print(row(keys, args.polls), flush=True)


if __name__ == "__main__":
    main()
