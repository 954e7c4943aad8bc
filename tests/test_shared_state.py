"""Acceptance of issue 9's shared state: `pisano-mock serve --storage redis://...` processes on one
real redis-server behave as one Pisano (SPEC 2.5, 1.3 Exactness)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from redis_server import free_port

START_LINE = re.compile(r"pisano-mock serving (http://127\.0\.0\.1:\d+) token=(\S+) campaign=(\S+)")
ALIGNED = 1_000_000_000
CLIENTS = 32


class Replica:
    """One `pisano-mock serve` process; its admin API and its emulated API over HTTP."""

    def __init__(self, process: subprocess.Popen[str], base_url: str, token: str, campaign: str):
        self.process = process
        self.base_url = base_url
        self.token = token
        self.path = f"/v1/email_campaigns/{campaign}/email_sharings"

    def admin(self, method: str, name: str, body: Any = None) -> Any:
        answer = requests.request(method, f"{self.base_url}/__mock/{name}", json=body, timeout=30)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def share(self, email: str, token: str | None = None, session: Any = requests) -> int:
        answer = session.post(
            self.base_url + self.path,
            json={"emails": [email]},
            headers={"Authorization": f"Token token={token or self.token}"},
            timeout=30,
        )
        return int(answer.status_code)


@contextmanager
def replica(storage: str, *flags: str) -> Iterator[Replica]:
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", "--quiet"]
    with subprocess.Popen(
        [*command, "--storage", storage, *flags], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = START_LINE.match(line)
            assert match, f"no start line: {line!r}"
            yield Replica(process, *match.groups())
        finally:
            process.terminate()
            process.wait(timeout=15)


@pytest.fixture
def replicas(redis_url: str) -> Iterator[list[Replica]]:
    """Two replicas on one Redis; the second runs `--workers 2` (two gunicorn worker processes):
    three processes share one state."""
    with ExitStack() as stack:
        first = stack.enter_context(replica(redis_url))
        second = stack.enter_context(replica(redis_url, "--workers", "2"))
        assert len(worker_pids(second)) == 2
        yield [first, second]


def worker_pids(one: Replica) -> list[int]:
    """The gunicorn workers under a replica's process, once both have started."""
    pid = one.process.pid
    deadline = time.monotonic() + 10
    while True:
        pids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if len(pids) >= 2 or time.monotonic() > deadline:
            return [int(p) for p in pids]
        time.sleep(0.05)  # polling the process table while workers fork, not the throttle


def burst(replicas: list[Replica]) -> list[tuple[str, int]]:
    """CLIENTS concurrent clients on one token, alternating replicas: (email, status) each."""
    barrier = threading.Barrier(CLIENTS)
    results: list[tuple[str, int]] = []

    def client(number: int) -> None:
        session = requests.Session()
        email = f"client-{number}@example.com"
        barrier.wait()
        results.append((email, replicas[number % len(replicas)].share(email, session=session)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_replicas_on_one_redis_accept_exactly_twenty_and_all_see_them(redis_url, replicas):
    first, second = replicas
    first.admin("POST", "clock", {"set": ALIGNED})
    assert second.admin("GET", "clock") == {"now": ALIGNED, "rate": 0.0}  # set on one, seen by all
    results = burst(replicas)
    accepted = sorted(email for email, status in results if status == 200)
    assert len(accepted) == 20 and len(results) == CLIENTS
    assert sorted(status for _, status in results if status != 200) == [429] * (CLIENTS - 20)
    with replica(redis_url) as later:  # a replica started later sees everything
        for one in (first, second, later):
            sharings = one.admin("GET", "sharings?limit=1000")["sharings"]
            assert sorted(s["email"] for s in sharings) == accepted
            journal = one.admin("GET", "requests?limit=1000")["requests"]
            assert sorted(e["status"] for e in journal).count(200) == 20 and len(journal) == CLIENTS
            assert {e["time"] for e in journal} == {ALIGNED}
        assert later.admin("GET", "clock")["now"] == ALIGNED


def test_a_times_one_fault_fires_once_across_replicas(replicas):
    first, second = replicas
    first.admin("POST", "faults", {"times": 1, "status": 503})
    statuses = [status for _, status in burst(replicas)]
    assert statuses.count(503) == 1
    assert first.admin("GET", "faults") == second.admin("GET", "faults") == {"faults": []}


def test_a_fixture_added_on_one_serves_on_the_other_and_reset_on_one_empties_both(replicas):
    first, second = replicas
    fixture = {
        "accounts": {"initech": {}},
        "tokens": {"initech-token": {"account": "initech"}},
        "campaigns": {"initech-campaign": {"account": "initech"}},
    }
    first.admin("POST", "fixtures", fixture)
    second.path = "/v1/email_campaigns/initech-campaign/email_sharings"
    assert second.share("a@example.com", token="initech-token") == 200
    assert first.admin("GET", "health")["sharings"] == 1
    second.admin("POST", "reset")
    for one in (first, second):
        health = one.admin("GET", "health")
        assert (health["requests"], health["sharings"]) == (0, 0)
    assert first.share("b@example.com", token="initech-token") == 401  # back to the configuration's
    assert first.share("b@example.com") == 200


def test_an_unreachable_redis_is_one_line_and_exit_2():
    storage = f"redis://127.0.0.1:{free_port()}/0"
    result = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", "--storage", storage],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"pisano-mock: --storage {storage}: cannot connect: ")
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_replicas_show_a_throttle_bucket_under_one_key_id(replicas):
    # `GET /__mock/throttle?since=<key_id>` pages by key id: a page read from one replica must
    # continue on another, so every process names a bucket alike.
    first, second = replicas
    assert first.share("a@example.com") == 200
    shown = [one.admin("GET", "throttle")["counters"] for one in (first, second)]
    ids = [{row["key_id"] for row in counters} for counters in shown]
    assert len(ids[0]) == 1 and ids[0] == ids[1]
