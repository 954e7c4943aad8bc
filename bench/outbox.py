"""Issue 10's outbox figures, in ONE run: what holding the outbox costs the API, and how soon
5000 messages can be read rendered.

    python bench/outbox.py [--seconds 10] [--connections 8] [--rounds 2] [--reads 5]
        [--baseline-ref 1013b32]

1. Throughput of the 5000-recipient request (wrk, bench/load.py), throttle off, one worker on
   memory, the default campaign (provider `outbox`): this tree against the tree BEFORE issue 10
   (`--baseline-ref`, the commit before the groundwork; extracted with `git archive` and served
   from there). The rows alternate `--rounds` times; the medians are compared. Target ≥ 0.9×.
2. From the answer of one 5000-recipient request to all its 5000 messages read rendered from
   `GET /__mock/outbox?limit=5000` (captured messages are rendered when read), `--reads` times
   on this tree. Target ≤ 2 s.
3. In process: render time per message (messages.render_many over a 5000-recipient batch).

Figures taken while other work runs on the machine are indicative only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import (  # sibling scripts
    ROOT,
    SCRATCH,
    Figures,
    check_tools,
    load,
    machine_note,
    serving,
)
from throughput import CAMPAIGN, HEADERS, PATH, body_of

PYTHON = shlex.quote(sys.executable)
BIG = 5000
SERVE = "{python} -m mockserver.cli serve --no-throttle --quiet --host 127.0.0.1 --port {{port}}"
ISSUE_10_GROUNDWORK = "ee11b24"


def baseline_tree(ref: str) -> Path:
    """The source tree at `ref`, extracted into the scratch directory."""
    where = SCRATCH / f"tree-{ref}"
    where.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where


def serve_command(tree: Path | None) -> str:
    """`serve` from this tree, or from `tree` (its cwd first on sys.path: its own mockserver)."""
    command = SERVE.format(python=PYTHON)
    if tree is None:
        return command
    return f"sh -c {shlex.quote(f'cd {shlex.quote(str(tree))} && exec {command}')}"


def throughput(command: str, args: argparse.Namespace) -> Figures:
    with serving(command) as (process, port):
        return load(process, port, BIG, args.seconds, args.connections, args.warmup)


def seconds_to_rendered(port: int, body: bytes) -> float:
    """From the 200 of one 5000-recipient request to its messages read rendered."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/__mock/reset", headers={"Content-Type": "application/json"})
    connection.getresponse().read()
    connection.request("POST", PATH, body=body, headers=HEADERS)
    answer = connection.getresponse()
    answer.read()
    began = time.perf_counter()
    connection.request("GET", f"/__mock/outbox?campaign_id={CAMPAIGN}&limit={BIG}")
    page = json.loads(connection.getresponse().read())
    taken = time.perf_counter() - began
    connection.close()
    rendered = [m for m in page["messages"] if m["text"] and m["link"] in m["text"]]
    if answer.status != 200 or len(rendered) != BIG:
        raise RuntimeError(f"answer {answer.status}, {len(rendered)} messages rendered of {BIG}")
    return taken


def render_microseconds() -> float:
    """In process: one message rendered (the default templates, a 5000-recipient batch)."""
    from mockserver.links import LinkMaker
    from mockserver.messages import render_many
    from mockserver.outbox import Letterhead, MailBatch
    from mockserver.state import SharingBatch

    parts = json.loads(body_of(BIG))
    sharings = SharingBatch.of(CAMPAIGN, 1, time.time(), parts["emails"], parts)
    head = Letterhead(CAMPAIGN, "s@x.test", "Hi", None, None, {"type": "outbox"}, {})
    mail = MailBatch(1, sharings, head)
    links = LinkMaker("http://localhost:8080", b"k" * 32)
    began = time.perf_counter()
    for _ in render_many(mail, range(BIG), links):
        pass
    return (time.perf_counter() - began) / BIG * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reads", type=int, default=5)
    parser.add_argument("--baseline-ref", default=f"{ISSUE_10_GROUNDWORK}^")
    args = parser.parse_args()
    check_tools()
    print(machine_note("before"), flush=True)
    ref = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline_ref],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    rows = {
        f"baseline {ref}": serve_command(baseline_tree(ref)),
        "this tree": serve_command(None),
    }
    runs: dict[str, list[Figures]] = {name: [] for name in rows}
    for _ in range(args.rounds):
        for name, command in rows.items():
            runs[name].append(throughput(command, args))
            print(f"  {name}: {runs[name][-1].rate:.1f} req/s", flush=True)
    with serving(serve_command(None)) as (_, port):
        body = body_of(BIG)
        reads = [seconds_to_rendered(port, body) for _ in range(args.reads)]
    print_tables(runs, reads, render_microseconds())
    print(machine_note("after"))


def print_tables(runs: dict[str, list[Figures]], reads: list[float], render_us: float) -> None:
    line = "| {:<26} | {:>8} | {:>7} | {:>7} | {:>7} | {:>12} |"
    print(f"\n{BIG}-recipient request, provider outbox, 1 worker, memory (medians of runs)")
    print(line.format("tree", "req/s", "p50 ms", "p99 ms", "RSS MiB", "vs before"))
    print("|" + "---|" * 6)
    base = statistics.median(f.rate for f in next(iter(runs.values())))
    for name, figures in runs.items():
        rate = statistics.median(f.rate for f in figures)
        void = "; ".join(f.problem() for f in figures if not f.clean)
        print(
            line.format(
                name,
                f"{rate:.1f}",
                f"{statistics.median(f.p50_ms for f in figures):.1f}",
                f"{statistics.median(f.p99_ms for f in figures):.1f}",
                f"{max(f.peak_rss_mib for f in figures):.0f}",
                f"{rate / base:.2f}x (≥ 0.90)",
            )
            + (f" VOID: {void}" if void else "")
        )
    print(f"\nfrom the answer to {BIG} messages read rendered (GET /__mock/outbox), {len(reads)}x")
    print(f"| median {statistics.median(reads):.2f} s | max {max(reads):.2f} s | target ≤ 2 s |")
    total = render_us * BIG / 1e6
    print(f"\nrender, in process: {render_us:.0f} µs per message ({total:.2f} s for {BIG})")


if __name__ == "__main__":
    main()
