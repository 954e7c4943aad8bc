"""Resident memory of `pisano-mock serve` (1 worker, memory) holding full bounds of big requests,
and what reading them back costs (issue 9).

    python bench/held_memory.py [--requests 80] [--before REF]

N 5000-recipient requests (1.5 MiB each: 80 fill the journal's 32 MiB and the sharings' 64 MiB
several times over) are sent one after the other; then the RSS of the server's process tree, its
peak while sending, and the median time of 5 reads of `GET /__mock/sharings?limit=1000` and of
`GET /__mock/requests?limit=100` (whole answers, read off the socket). With `--before REF`, the
same is measured first on that git revision (checked out in a temporary worktree, imported
instead of this tree), and the last column gives this tree's figure against it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import PeakSampler, machine_note, serving, tree_memory_mib  # siblings, not a package
from throughput import HEADERS, PATH, body_of

ROOT = Path(__file__).resolve().parents[1]
RECIPIENTS = 5000
READS = 5
# -P: the current directory is not put first on sys.path, so PYTHONPATH picks the tree measured.
SERVE = (
    f"{shlex.quote(sys.executable)} -P -m mockserver.cli serve --no-throttle --quiet "
    "--host 127.0.0.1 --port {port} --workers 1 --storage memory://"
)
READ_PATHS = {
    "sharings read ms": "/__mock/sharings?limit=1000",
    "requests read ms": "/__mock/requests?limit=100",
}


@dataclass
class Figures:
    rss_mib: float
    peak_rss_mib: float
    reads_ms: dict[str, float]
    answer_mib: dict[str, float]

    def row(self) -> dict[str, float]:
        return {"RSS after MiB": self.rss_mib, "peak RSS MiB": self.peak_rss_mib, **self.reads_ms}


def send_all(port: int, requests: int) -> None:
    body = body_of(RECIPIENTS)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(requests):
        connection.request("POST", PATH, body=body, headers=HEADERS)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"POST answered {response.status}: the figures would be void")
    connection.close()


def timed_read(port: int, path: str) -> tuple[float, int]:
    """Milliseconds for one whole answer, and its size."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    began = time.perf_counter()
    connection.request("GET", path)
    size = len(connection.getresponse().read())
    elapsed = time.perf_counter() - began
    connection.close()
    return elapsed * 1000, size


def measure(tree: Path, requests: int) -> Figures:
    with serving(SERVE, env={"PYTHONPATH": str(tree)}) as (process, port):
        with PeakSampler([process.pid]) as sampler:
            send_all(port, requests)
        rss, _ = tree_memory_mib([process.pid])
        reads, sizes = {}, {}
        for name, path in READ_PATHS.items():
            timings = [timed_read(port, path) for _ in range(READS)]
            reads[name] = statistics.median(ms for ms, _ in timings)
            sizes[name] = timings[0][1] / (1 << 20)
    return Figures(rss, max(sampler.peak_rss, rss), reads, sizes)


@contextlib.contextmanager
def checked_out(ref: str) -> Iterator[Path]:
    """`ref` in a temporary git worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pisano-before-") as scratch:
        tree = Path(scratch) / "tree"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(tree), ref], check=True)
        try:
            yield tree
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=True)


def print_table(figures: dict[str, Figures]) -> None:
    names = list(figures)
    columns = list(next(iter(figures.values())).row())
    print(
        f"{'':18}"
        + "".join(f"{name:>16}" for name in names)
        + ("   ratio" if len(names) > 1 else "")
    )
    for column in columns:
        values = [figures[name].row()[column] for name in names]
        ratio = f"{values[-1] / values[0]:8.2f}" if len(values) > 1 and values[0] else ""
        print(f"{column:18}" + "".join(f"{value:16.1f}" for value in values) + ratio)
    sizes = next(iter(figures.values())).answer_mib
    print("answers read: " + ", ".join(f"{k.split()[0]} {v:.1f} MiB" for k, v in sizes.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=80, help="5000-recipient POSTs (80)")
    parser.add_argument("--before", metavar="REF", help="a git revision to measure first")
    args = parser.parse_args()
    print(machine_note("before"))
    figures: dict[str, Figures] = {}
    if args.before:
        with checked_out(args.before) as tree:
            figures[f"before {args.before[:10]}"] = measure(tree, args.requests)
    figures["this tree"] = measure(ROOT, args.requests)
    print(f"{args.requests} requests of {RECIPIENTS} recipients, 1 worker, memory://")
    print_table(figures)
    print(machine_note("after"))


if __name__ == "__main__":
    main()
