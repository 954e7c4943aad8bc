"""What survey links (issue 10) cost a read of `GET /__mock/sharings`: the page made with its links,
against the same page with the links left out, in one process, same data.

    python bench/sharings_links.py [--requests 2] [--recipients 5000] [--reads 7]

Each link is made as the page is shown (a MAC of the id, and the batch's `responses` encoded once
per batch): nothing is held for it, so its cost is on the read, never on the request path.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from mockserver import admin
from mockserver.app import create_app
from mockserver.settings import load_settings

CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
RESPONSES = {"NPS": 9, "Channel": "web", "Comment": "fine, thanks"}


def median_read(client: Any, limit: int, reads: int) -> float:
    times = []
    for _ in range(reads):
        began = time.perf_counter()
        answer = client.get(f"/__mock/sharings?limit={limit}")
        times.append(time.perf_counter() - began)
        assert answer.status_code == 200
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2)
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--reads", type=int, default=7)
    args = parser.parse_args()
    client = create_app(load_settings()).test_client()
    emails = [f"u{i}@example.com" for i in range(args.recipients)]
    for _ in range(args.requests):
        body = {"emails": emails, "built_in_responses": RESPONSES}
        answer = client.post(
            f"/v1/email_campaigns/{CAMPAIGN}/email_sharings",
            json=body,
            headers={"Authorization": "Token token=test-token"},
        )
        assert answer.status_code == 200, answer.headers
    limit = args.requests * args.recipients
    with_links = median_read(client, limit, args.reads)
    made: Callable[..., Any] = admin.with_links
    admin.with_links = lambda items, emulator: items  # the baseline: the page without links
    try:
        without = median_read(client, limit, args.reads)
    finally:
        admin.with_links = made
    print(f"| page of {limit} sharings | without links | with links | ratio |")
    print("|---|---|---|---|")
    print(
        f"| median of {args.reads} reads | {without * 1000:.1f} ms | {with_links * 1000:.1f} ms "
        f"| {with_links / without:.2f}x |"
    )


if __name__ == "__main__":
    main()
