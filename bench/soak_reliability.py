"""A reliability soak: mixed traffic against `pisano-mock serve`, then every answer reconciled.

    python bench/soak_reliability.py [--requests 200000] [--clients 6]

The emulator runs with small bounds so that they are reached early. Client threads, each on a
keep-alive connection, send a mix: valid JSON and form bodies, refusals, bodies over
max_body_bytes (Content-Length and chunked), JSON nested 300 deep, form keys nested 150 deep,
5000 unknown keys, 60 KB of headers; an admin thread keeps scripted faults on (status 503, and
`drop: after`, which records the recipients and closes the connection unanswered). Auditor threads
follow `/__mock/sharings` and `/__mock/requests` with their cursors while the load runs.

Printed: resident memory over time (it must stay flat once the bounds are reached), and the
reconciliation: every recipient a 200 named must be in the sharings log exactly once with the id the
answer gave, unless the log's bound dropped it before the auditor read it (counted); a recipient in
the log that no answer named must come from a request whose answer a fault dropped (counted); every
journal entry must carry the status its client received.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from measure import rss_mib  # bench/measure.py: these scripts run from bench/

ROOT = Path(__file__).resolve().parents[1]
PATH = "/v1/email_campaigns/735c19a7-ee54-4b03-a84a-93dfe2a94a56/email_sharings"
AUTH = {"Authorization": "Token token=test-token"}
JSON = {**AUTH, "Content-Type": "application/json"}
FORM = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
MAX_BODY = 256 << 10
BOUNDS = {
    "journal_max_entries": 5000,
    "journal_max_bytes": 8 << 20,
    "sharings_max_recipients": 50_000,
    "sharings_max_bytes": 16 << 20,
    "max_body_bytes": MAX_BODY,
}
# (kind, weight, expected statuses): out of 100 requests.
MIX = [
    ("valid_json", 40, {200}),
    ("valid_form", 15, {200}),
    ("refused", 14, {400, 401, 403, 422}),
    ("many_keys", 4, {200}),
    ("deep_json", 7, {400}),
    ("deep_form", 7, {400}),
    ("oversize", 3, {413}),
    ("oversize_chunked", 3, {413}),
    ("big_headers", 7, {404}),
]
BIG_HEADERS = {f"X-Big-{i}": "h" * 3000 for i in range(20)}
FAULTS = [{"match": {"path": "/v1/"}, "times": 3, "status": 503}, {"times": 2, "drop": "after"}]


def small_bounds_config() -> Path:
    text = (ROOT / "fixtures" / "default.toml").read_text(encoding="utf-8")
    lines = [
        f"{line.split('=')[0].strip()} = {BOUNDS[line.split('=')[0].strip()]}"
        if line.split("=")[0].strip() in BOUNDS
        else line
        for line in text.splitlines()
    ]
    config = Path(tempfile.mkdtemp()) / "soak-bounds.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


# -- what the clients send ------------------------------------------------------------------------
@dataclass
class Sent:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    emails: list[str] = field(default_factory=list)


def emails_for(tag: str, count: int) -> list[str]:
    return [f"{tag}r{k}@example.com" for k in range(count)]


def build(kind: str, tag: str, seq: int) -> Sent:
    if kind == "valid_json":
        emails = emails_for(tag, 1 + seq % 4)
        attributes = {emails[0]: {"name": "Ayşe", "external_id": tag}}
        body = orjson.dumps({"emails": emails, "custom_attributes": attributes})
        return Sent("POST", PATH, body, JSON, emails)
    if kind == "valid_form":
        emails = emails_for(tag, 1 + seq % 3)
        return Sent("POST", PATH, "&".join(f"emails[]={quote(e)}" for e in emails), FORM, emails)
    if kind == "many_keys":
        emails = emails_for(tag, 1)
        body = orjson.dumps({"emails": emails, **{f"k{i}": i for i in range(5000)}})
        return Sent("POST", PATH, body, JSON, emails)
    return Sent(*REFUSED_BUILDERS[kind](seq))


REFUSED_BUILDERS: dict[str, Any] = {
    "refused": lambda seq: (
        "POST",
        PATH,
        [b'{"emails": ["a@example.com"]}', b'{"emails": ["not-an-email"]}', b"{}"][seq % 3],
        [{**JSON, "Authorization": "Token token=wrong"}, JSON, JSON][seq % 3],
    ),
    "deep_json": lambda seq: ("POST", PATH, b"[" * 300 + b"]" * 300, JSON),
    "deep_form": lambda seq: ("POST", PATH, "emails[]=a@example.com&x" + "[a]" * 150, FORM),
    "oversize": lambda seq: ("POST", PATH, b'{"emails": ["' + b"a" * MAX_BODY + b'"]}', JSON),
    "oversize_chunked": lambda seq: (
        "POST",
        PATH,
        iter([b'{"emails": ["', b"a" * MAX_BODY, b'"]}']),
        JSON,
    ),
    "big_headers": lambda seq: ("GET", "/nope", None, BIG_HEADERS),
}


# -- the soak -------------------------------------------------------------------------------------
@dataclass
class Ledger:
    """What the clients saw, shared by all threads under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answered: dict[str, int] = field(default_factory=dict)  # email -> sharing id of a 200
    unanswered: set[str] = field(default_factory=set)  # emails of requests whose answer was lost
    statuses: dict[int, int] = field(default_factory=dict)  # request id -> status received
    kinds: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    done: int = 0


class Client(threading.Thread):
    def __init__(self, base_url: str, index: int, count: int, ledger: Ledger) -> None:
        super().__init__(daemon=True)
        self.address = urlsplit(base_url)
        self.index, self.count, self.ledger = index, count, ledger
        self.connection = self._connect()
        weighted = [kind for kind, weight, _ in MIX for _ in range(weight)]
        self.kinds = itertools.cycle(weighted[index % 7 :] + weighted[: index % 7])

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.address.hostname, self.address.port, timeout=60)

    def run(self) -> None:
        for seq in range(self.count):
            kind = next(self.kinds)
            sent = build(kind, f"c{self.index}s{seq}", seq)
            self._send(kind, sent)

    def _send(self, kind: str, sent: Sent) -> None:
        try:
            chunked = kind == "oversize_chunked"
            self.connection.request(
                sent.method, sent.path, sent.body, sent.headers, encode_chunked=chunked
            )
            response = self.connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = self._connect()
            self._record_lost(kind, sent)
            return
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
            self.connection = self._connect()
        self._record(kind, sent, response, payload)

    def _record_lost(self, kind: str, sent: Sent) -> None:
        with self.ledger.lock:
            self.ledger.done += 1
            self.ledger.kinds[kind] += 1
            self.ledger.outcomes["connection dropped"] += 1
            self.ledger.unanswered.update(sent.emails)

    def _record(self, kind: str, sent: Sent, response: Any, payload: bytes) -> None:
        expected = dict((k, s) for k, _, s in MIX)[kind]
        request_id = int(response.getheader("X-Pisano-Mock-Request-Id", "0"))
        with self.ledger.lock:
            self.ledger.done += 1
            self.ledger.kinds[kind] += 1
            self.ledger.statuses[request_id] = response.status
            if response.status == 503:
                self.ledger.outcomes["503 (fault)"] += 1
                return
            self.ledger.outcomes[str(response.status)] += 1
            if response.status not in expected:
                self.ledger.unexpected.append(f"{kind}: {response.status} {payload[:120]!r}")
                return
            if response.status == 200:
                sharings = orjson.loads(payload)["sharings"]
                if sorted(sharings) != sorted(sent.emails):
                    self.ledger.unexpected.append(f"{kind}: 200 named {sharings} for {sent.emails}")
                self.ledger.answered.update(sharings)


@dataclass
class Follower:
    """Reads one admin log with a cursor while the load runs; ids the bound dropped are gaps."""

    base_url: str
    path: str
    key: str
    cursor: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    read: int = 0

    def poll(self, take: Any) -> None:
        connection = connect(self.base_url)
        while True:
            connection.request("GET", f"{self.path}?since={self.cursor}&limit=2000")
            items = orjson.loads(connection.getresponse().read())[self.key]
            advanced = False
            for item in items:
                if not take(item):
                    break  # still open: read it again next time
                if item["id"] > self.cursor + 1:
                    self.gaps.append((self.cursor + 1, item["id"] - 1))
                self.cursor, self.read, advanced = item["id"], self.read + 1, True
            if len(items) < 2000 or not advanced:
                break
        connection.close()

    def in_gap(self, item_id: int) -> bool:
        return any(low <= item_id <= high for low, high in self.gaps)


class Audit:
    def __init__(self, base_url: str) -> None:
        self.sharings = Follower(base_url, "/__mock/sharings", "sharings")
        self.journal = Follower(base_url, "/__mock/requests", "requests")
        self.seen: dict[str, list[int]] = {}
        self.journal_status: dict[int, int | None] = {}

    def take_sharing(self, item: dict[str, Any]) -> bool:
        self.seen.setdefault(item["email"], []).append(item["id"])
        return True

    def take_entry(self, item: dict[str, Any]) -> bool:
        if item["status"] is None and item["reason"] is None and item["code"] is None:
            return False
        self.journal_status[item["id"]] = item["status"]
        return True

    def poll(self) -> None:
        self.sharings.poll(self.take_sharing)
        self.journal.poll(self.take_entry)


def keep_faults_on(base_url: str, stop: threading.Event) -> None:
    connection = connect(base_url)
    for fault in itertools.cycle(FAULTS):
        if stop.wait(1.0):
            break
        connection.request("POST", "/__mock/faults", orjson.dumps(fault), JSON)
        connection.getresponse().read()
    connection.close()


def connect(base_url: str) -> http.client.HTTPConnection:
    address = urlsplit(base_url)
    return http.client.HTTPConnection(address.hostname, address.port, timeout=120)


def health(base_url: str) -> dict[str, int]:
    connection = connect(base_url)
    connection.request("GET", "/__mock/health")
    result: dict[str, int] = orjson.loads(connection.getresponse().read())
    connection.close()
    return result


def reconcile(ledger: Ledger, audit: Audit) -> dict[str, int]:
    doubled = sum(1 for ids in audit.seen.values() if len(ids) > 1)
    found = wrong_id = dropped = lost = 0
    for email, sharing_id in ledger.answered.items():
        ids = audit.seen.get(email)
        if ids:
            found += 1
            wrong_id += ids[0] != sharing_id
        elif audit.sharings.in_gap(sharing_id):
            dropped += 1
        else:
            lost += 1
    unnamed = [email for email in audit.seen if email not in ledger.answered]
    answer_dropped = sum(1 for email in unnamed if email in ledger.unanswered)
    compared = [i for i in ledger.statuses if i in audit.journal_status]
    return {
        "recipients answered 200": len(ledger.answered),
        "  found in the sharings log once": found - doubled,
        "  dropped by the bound before read": dropped,
        "  LOST": lost,
        "  DOUBLED": doubled,
        "  id differs from the answer": wrong_id,
        "recipients recorded, answer dropped by fault": answer_dropped,
        "recipients recorded, never answered (PHANTOM)": len(unnamed) - answer_dropped,
        "journal entries read": audit.journal.read,
        "  compared with the client's status": len(compared),
        "  status differs": sum(ledger.statuses[i] != audit.journal_status[i] for i in compared),
        "journal ids dropped by the bound before read": sum(
            high - low + 1 for low, high in audit.journal.gaps
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--sample-seconds", type=float, default=20.0, help="RSS sampling period")
    args = parser.parse_args()
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", "--no-throttle"]
    process = subprocess.Popen(
        [*command, "--config", str(small_bounds_config())],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        base_url = (process.stdout.readline().split()[2]) if process.stdout else ""
        soak(base_url, process.pid, args)
    finally:
        process.terminate()
        process.wait()


def soak(base_url: str, pid: int, args: argparse.Namespace) -> None:
    ledger, audit, stop = Ledger(), Audit(base_url), threading.Event()
    # Every requested request is sent: the first clients take one more when the split is uneven.
    shares = [
        args.requests // args.clients + (i < args.requests % args.clients)
        for i in range(args.clients)
    ]
    clients = [Client(base_url, i, share, ledger) for i, share in enumerate(shares)]
    faults = threading.Thread(target=keep_faults_on, args=(base_url, stop), daemon=True)
    began = time.monotonic()
    print(f"soak: {sum(shares)} requests, {args.clients} clients, bounds {BOUNDS}")
    print(
        f"{'seconds':>8} {'requests':>9} {'RSS MiB':>8} {'journal':>8} {'j.dropped':>10} "
        f"{'sharings':>9} {'s.dropped':>10}",
        flush=True,
    )
    for thread in [*clients, faults]:
        thread.start()
    next_sample = 0.0
    while any(client.is_alive() for client in clients):
        time.sleep(0.5)
        audit.poll()
        if time.monotonic() - began >= next_sample:
            next_sample += args.sample_seconds
            sample(began, ledger, pid, base_url)
    stop.set()
    audit.poll()
    sample(began, ledger, pid, base_url)
    report(ledger, audit, time.monotonic() - began)


def sample(began: float, ledger: Ledger, pid: int, base_url: str) -> None:
    counts = health(base_url)
    print(
        f"{time.monotonic() - began:>8.0f} {ledger.done:>9} {rss_mib(pid):>8.1f} "
        f"{counts['requests']:>8} {counts['requests_dropped']:>10} {counts['sharings']:>9} "
        f"{counts['sharings_dropped']:>10}",
        flush=True,
    )


def report(ledger: Ledger, audit: Audit, seconds: float) -> None:
    print(f"\n{ledger.done} requests in {seconds:.0f} s ({ledger.done / seconds:.0f}/s)")
    print("sent:    " + ", ".join(f"{kind} {n}" for kind, n in sorted(ledger.kinds.items())))
    print("answers: " + ", ".join(f"{key} {n}" for key, n in sorted(ledger.outcomes.items())))
    print(f"unexpected answers: {len(ledger.unexpected)}")
    for line in ledger.unexpected[:10]:
        print("  " + line)
    print("\nreconciliation")
    for name, value in reconcile(ledger, audit).items():
        print(f"  {name:<48} {value:>9}")


if __name__ == "__main__":
    main()
