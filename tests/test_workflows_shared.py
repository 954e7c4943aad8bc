"""Workflows on shared storage (SPEC 1.8, 2.5): two `serve` replicas on one real redis-server, one
of them with two workers, run each due time ONCE between them, and list the runs from any."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
from test_shared_state import Replica, replica, worker_pids

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "workflows" / "example.toml"
MINUTE = 60
H = 1_700_000_000 // 3600 * 3600
ADVANCES = 30  # POST {"advance": 60} sent at once across the replicas: 30 minutes passed
CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"


@pytest.fixture
def every_minute(tmp_path: Path, redis_url: str) -> Iterator[list[Replica]]:
    """The example's CSV shared every minute, by two replicas (the second with two workers)."""
    config = tmp_path / "minutely.toml"
    config.write_text(
        f'[[workflows]]\nname = "minutely"\ncampaign = "{CAMPAIGN}"\n'
        f'source = "{EXAMPLE.parent / "customers.csv"}"\nschedule = "* * * * *"\n'
    )
    with ExitStack() as stack:
        first = stack.enter_context(replica(redis_url, "--config", str(config)))
        second = stack.enter_context(replica(redis_url, "--config", str(config), "--workers", "2"))
        assert len(worker_pids(second)) == 2
        yield [first, second]


def advance_at_once(replicas: list[Replica]) -> None:
    """ADVANCES clock advances sent together, alternating replicas: each looks at the schedule."""
    barrier = threading.Barrier(ADVANCES)

    def advance(index: int) -> None:
        barrier.wait()
        replicas[index % 2].admin("POST", "clock", {"advance": MINUTE})

    threads = [threading.Thread(target=advance, args=(i,)) for i in range(ADVANCES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_each_due_time_runs_once_across_replicas_and_workers(
    every_minute: list[Replica],
) -> None:
    first, second = every_minute
    first.admin("POST", "clock", {"set": H})  # back from real time: re-armed at H
    advance_at_once(every_minute)
    assert second.admin("GET", "clock")["now"] == H + ADVANCES * MINUTE  # no advance lost
    (shown,) = second.admin("GET", "workflows")["workflows"]
    # Each once AND in order (SPEC 1.8): runs of one process's span used to finish among
    # another's (attack on issue 11: `[1240, 1300, 1360, 40, ...]`).
    assert [run["at"] for run in shown["runs"]] == [H + MINUTE * m for m in range(1, ADVANCES + 1)]
    assert {run["status"] for run in shown["runs"]} == {"ok"}
    sharings = requests.get(f"{first.base_url}/__mock/sharings?limit=1000", timeout=30).json()
    assert len(sharings["sharings"]) == 2 * ADVANCES  # the CSV's two rows, once per due time
    assert first.admin("GET", "workflows") == second.admin("GET", "workflows")
