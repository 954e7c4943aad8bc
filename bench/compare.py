"""Issue 9's performance table: the emulator against WireMock and a bare app, in ONE run.

    python bench/compare.py [--seconds 10] [--connections 16] [--threads 16] [--quick]
        [--emulator-cmd 'pisano-mock serve ... --port {port} --workers {workers} ...']

Rows, each loaded by wrk (2 threads) with 2-recipient and 5000-recipient bodies, throttle off:
WireMock 3.13.2 (request journal off, one stub answering the POST with a small JSON; installed by
npm into --wiremock-cache on first use, run with java), the bare parse-only app (bench/bare_app.py)
on the same server with 1 and 2 workers, the emulator with 1 worker on memory, with 1 worker on
Redis (what sharing through Redis costs) and with 2 workers on Redis (a redis-server this script
starts on a free port). Peak RSS is taken under the big load (for Redis rows: the emulator's
processes plus redis-server's); start is spawn to first answer of /__mock/health, the median of
several starts. Ratios against the rows of the same run, with the issue's targets beside them.

Figures taken while other work runs on the machine are indicative only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import (  # a sibling script
    SCRATCH,
    Figures,
    StartFailed,
    check_tools,
    free_port,
    load,
    machine_note,
    process_tree,
    serving,
    spawn,
    start_seconds,
    stop,
)

PYTHON = shlex.quote(sys.executable)
WIREMOCK_VERSION = "3.13.2"
SMALL, BIG = 2, 5000
JVM_WARMUP = 8.0
# The success answer's shape, so WireMock writes about as many bytes as the emulator.
STUB_BODY = {"status": "ok", "campaign_id": "x", "count": 2, "sharings": {"a": 1, "b": 2}}
SERVE = (
    f"{PYTHON} -m mockserver.cli serve --no-throttle --quiet --host 127.0.0.1 --port {{port}} "
    "--workers {workers} --storage {storage}"
)
SERVE_BARE = f"{PYTHON} bench/wsgi_entry.py bare {{port}} {{workers}}"
GUNICORN = (
    f"{PYTHON} -m gunicorn -k gthread --threads {{threads}} -w {{workers}} --log-level warning "
    "-b 127.0.0.1:{port} --chdir bench 'wsgi_entry:{app}()'"
)


@dataclass
class Row:
    """One server under test; `skipped` says why it has no figures."""

    name: str
    command: str
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    timed_start: bool = False
    warmup: float = 0.0  # the least warm-up, whatever --quick says
    uses_redis: bool = False
    small: Figures | None = None
    big: Figures | None = None
    start: float | None = None
    skipped: str = ""


# --- the servers --------------------------------------------------------------------------


def wiremock_jar(cache: Path) -> Path:
    """WireMock's standalone jar from the npm package, installed into `cache` on first use."""
    jar = cache / f"node_modules/wiremock/build/wiremock-standalone-{WIREMOCK_VERSION}.jar"
    if not jar.exists():
        if shutil.which("npm") is None:
            raise StartFailed("npm is not installed (Debian: apt-get install npm)")
        print(f"installing wiremock@{WIREMOCK_VERSION} into {cache} with npm", flush=True)
        install = ["npm", "install", "--prefix", str(cache), "--no-audit", "--no-fund"]
        subprocess.run([*install, f"wiremock@{WIREMOCK_VERSION}"], check=True)
    return jar


def wiremock_command(cache: Path) -> str:
    root = SCRATCH / "wiremock"
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    stub = {
        "request": {"method": "POST", "urlPathPattern": "/v1/email_campaigns/[^/]+/email_sharings"},
        "response": {
            "status": 200,
            "headers": {"Content-Type": "application/json"},
            "jsonBody": STUB_BODY,
        },
    }
    (root / "mappings" / "sharing.json").write_text(json.dumps(stub))
    jar = shlex.quote(str(wiremock_jar(cache)))
    return (
        f"java -jar {jar} --port {{port}} --bind-address 127.0.0.1 --no-request-journal "
        f"--disable-banner --root-dir {shlex.quote(str(root))}"
    )


def production_serve() -> bool:
    """Whether `pisano-mock serve` runs on its production server (mockserver/serving.py)."""
    return importlib.util.find_spec("mockserver.serving") is not None


def emulator_template(given: str | None) -> str:
    """The emulator's command: as given, else `pisano-mock serve` once it runs on its production
    server, else gunicorn gthread on bench/wsgi_entry.py. Each reads the storage from
    $PISANO_MOCK_STORAGE when the command does not name it."""
    if given:
        return given
    return SERVE if production_serve() else GUNICORN.replace("{app}", "emulator")


def emulator_row(template: str, threads: int, workers: int, storage: str) -> Row:
    command = template.replace("{workers}", str(workers)).replace("{threads}", str(threads))
    where = "memory" if storage == "memory://" else "Redis"
    return Row(
        f"emulator {workers}w {where}",
        command.replace("{storage}", storage),
        workers,
        {"PISANO_MOCK_STORAGE": storage},
        timed_start=True,
        uses_redis=where == "Redis",
    )


def bare_row(threads: int, workers: int) -> Row:
    """The bare app on the server `serve` uses: its own setup once there, else gunicorn gthread."""
    template = SERVE_BARE if production_serve() else GUNICORN.replace("{app}", "bare")
    command = template.replace("{threads}", str(threads))
    return Row(f"bare app {workers}w", command.replace("{workers}", str(workers)), workers)


@contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    """A throwaway redis-server on a free loopback port: its URL and pid."""
    if shutil.which("redis-server") is None:
        raise StartFailed("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    command = f"redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no"
    process = spawn(command, port, SCRATCH / f"redis-{port}.log")
    client = redis.Redis(port=port)
    try:
        for _ in range(500):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        client.close()
        stop(process)


# --- measuring ----------------------------------------------------------------------------


def measure(row: Row, args: argparse.Namespace, redis_pid: int | None) -> None:
    also = (redis_pid,) if row.uses_redis and redis_pid else ()
    try:
        with serving(row.command, row.env) as (process, port):
            warmup = max(args.warmup, row.warmup)
            row.small = load(process, port, SMALL, args.seconds, args.connections, warmup)
            workers = len(process_tree(process.pid)) - 1  # a master and its workers, by now
            if row.workers > 1 and workers < row.workers:
                row.small = None
                row.skipped = f"asked for {row.workers} workers, the command started {workers}"
                return
            row.big = load(process, port, BIG, args.seconds, args.connections, warmup, also)
    except StartFailed as error:
        row.skipped = f"did not start: {error}"
        return
    if row.timed_start:
        with contextlib.suppress(StartFailed):  # no start figure: shown as "-"
            row.start = start_seconds(row.command, args.starts, row.env)


def flush(url: str | None) -> None:
    """Each Redis row starts on an empty Redis, as the memory rows start empty."""
    if url:
        with redis.Redis.from_url(url) as client:
            client.flushall()


# --- the table ----------------------------------------------------------------------------


def cell(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def rate(figures: Figures | None) -> float | None:
    return figures.rate if figures and figures.clean else None


def print_rows(rows: list[Row]) -> None:
    line = "| {:<20} | {:>9} | {:>7} | {:>7} | {:>9} | {:>7} | {:>11} | {:>11} | {:>8} |"
    heads = (
        "server",
        "small r/s",
        "p50 ms",
        "p99 ms",
        "big r/s",
        "p99 ms",
        "big RSS MiB",
        "big PSS MiB",
        "start s",
    )
    print(line.format(*heads))
    print("|" + "---|" * len(heads))
    for row in rows:
        if row.skipped:
            print(f"| {row.name:<20} | skipped: {row.skipped} |")
            continue
        small, big = row.small, row.big
        assert small and big  # a row not skipped was measured with both bodies
        figures = (
            cell(rate(small), ".0f"),
            cell(small.p50_ms, ".1f"),
            cell(small.p99_ms, ".1f"),
            cell(rate(big), ".0f"),
            cell(big.p99_ms, ".1f"),
            cell(big.peak_rss_mib, ".0f"),
            cell(big.peak_pss_mib, ".0f"),
            cell(row.start, ".3f"),
        )
        print(line.format(row.name, *figures))
        for size, got in (("small", small), ("big", big)):
            if got and not got.clean:
                print(f"  ^ {size} load VOID: {got.problem()}")


@dataclass(frozen=True)
class Ratio:
    label: str
    top: str  # row names
    bottom: str
    figure: str  # "small", "big", "rss", "start"
    target: float | None  # None: shown without a target
    at_most: bool = False  # RSS and start: smaller is better


RATIOS = [
    Ratio("small: emulator 2w Redis / WireMock", "emulator 2w Redis", "WireMock", "small", 1.0),
    Ratio("small: emulator 1w memory / WireMock", "emulator 1w memory", "WireMock", "small", None),
    Ratio("small: emulator 1w memory / bare 1w", "emulator 1w memory", "bare app 1w", "small", 0.6),
    Ratio("small: emulator 2w Redis / bare 2w", "emulator 2w Redis", "bare app 2w", "small", 0.6),
    Ratio("big: emulator 2w Redis / WireMock", "emulator 2w Redis", "WireMock", "big", 1.5),
    Ratio("big: emulator 1w memory / WireMock", "emulator 1w memory", "WireMock", "big", None),
    Ratio(
        "RSS big: emulator 2w Redis / WireMock", "emulator 2w Redis", "WireMock", "rss", 0.1, True
    ),
    Ratio(
        "RSS big: emulator 1w memory / WireMock", "emulator 1w memory", "WireMock", "rss", 0.1, True
    ),
    Ratio(
        "Redis cost, small: 1w Redis / 1w memory",
        "emulator 1w Redis",
        "emulator 1w memory",
        "small",
        None,
    ),
    Ratio(
        "Redis cost, big: 1w Redis / 1w memory",
        "emulator 1w Redis",
        "emulator 1w memory",
        "big",
        None,
    ),
]


def figure(row: Row | None, which: str) -> float | None:
    if row is None or row.skipped:
        return None
    return {
        "small": rate(row.small),
        "big": rate(row.big),
        "rss": row.big.peak_rss_mib if row.big else None,
        "start": row.start,
    }[which]


def verdict(value: float | None, target: float | None, at_most: bool) -> str:
    if target is None:
        return "(no target)"
    if value is None:
        return "not measured"
    met = value <= target if at_most else value >= target
    return "met" if met else "NOT MET"


def print_ratios(rows: list[Row]) -> None:
    by_name = {row.name: row for row in rows}
    print("\n| ratio | measured | target | verdict |\n|---|---|---|---|")
    for ratio in RATIOS:
        top, bottom = (
            figure(by_name.get(ratio.top), ratio.figure),
            figure(by_name.get(ratio.bottom), ratio.figure),
        )
        value = top / bottom if top is not None and bottom else None
        target = (
            "-"
            if ratio.target is None
            else ("<= " if ratio.at_most else ">= ") + f"{ratio.target:g}x"
        )
        judged = verdict(value, ratio.target, ratio.at_most)
        shown = "-" if value is None else f"{value:.2f}x"
        print(f"| {ratio.label} | {shown} | {target} | {judged} |")
    for row in rows:
        if row.timed_start:
            judged = verdict(row.start, 0.5, True)
            label = f"start to first answer: {row.name}"
            shown = "-" if row.start is None else f"{row.start:.3f} s"
            print(f"| {label} | {shown} | <= 0.5 s | {judged} |")


# --- main ---------------------------------------------------------------------------------


def build_rows(args: argparse.Namespace) -> list[Row]:
    template = emulator_template(args.emulator_cmd)
    # The JVM compiles WireMock's hot paths over its first seconds: measured cold, it would
    # flatter the emulator (152 req/s after 1 s, 5500 after 2 s of warm-up on this machine).
    rows = [Row("WireMock", "", timed_start=True, warmup=JVM_WARMUP)]
    try:
        rows[0].command = wiremock_command(args.wiremock_cache)
    except (StartFailed, subprocess.CalledProcessError) as error:
        rows[0].skipped = f"not installed: {error}"
    rows += [bare_row(args.threads, 1), bare_row(args.threads, 2)]
    rows.append(emulator_row(template, args.threads, 1, "memory://"))
    rows.append(emulator_row(template, args.threads, 1, "{redis}"))
    rows.append(emulator_row(template, args.threads, 2, "{redis}"))
    return rows


def run_rows(rows: list[Row], args: argparse.Namespace) -> None:
    try:
        with redis_server() as (url, pid):
            for row in rows:
                if row.uses_redis:
                    flush(url)
                    row.command = row.command.replace("{redis}", url)
                    row.env = {k: v.replace("{redis}", url) for k, v in row.env.items()}
                run_one(row, args, pid)
    except StartFailed as error:  # no redis-server: the memory rows still run
        for row in rows:
            row.skipped = row.skipped or (f"no Redis: {error}" if row.uses_redis else "")
            run_one(row, args, None)


def run_one(row: Row, args: argparse.Namespace, redis_pid: int | None) -> None:
    if row.skipped or row.small:
        return
    print(f"  measuring {row.name}: {row.command}", flush=True)
    measure(row, args, redis_pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per load (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument(
        "--threads", type=int, default=16, help="threads per worker without serve's own setup (16)"
    )
    parser.add_argument("--starts", type=int, default=5, help="starts timed per row (5)")
    parser.add_argument(
        "--emulator-cmd", help="with {port} {workers} {storage}; default: see above"
    )
    parser.add_argument("--wiremock-cache", type=Path, default=Path("/tmp/pisano-bench-wiremock"))
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 s loads, 2 starts")
    args = parser.parse_args()
    args.warmup = 1.0 if args.quick else 3.0
    if args.quick:
        args.seconds, args.starts = 2.0, 2
    check_tools()
    print("Figures taken while other work runs on this machine are indicative only.", flush=True)
    print(machine_note("before"), flush=True)
    server = "`serve`'s own (mockserver/serving.py)" if production_serve() else "gunicorn gthread"
    print(
        f"Emulator and bare app on {server}; wrk 2 threads, {args.connections} connections, "
        f"{args.seconds:g} s per load after {args.warmup:g} s of warm-up.",
        flush=True,
    )
    rows = build_rows(args)
    run_rows(rows, args)
    print()
    print_rows(rows)
    print_ratios(rows)
    print(machine_note("after"))


if __name__ == "__main__":
    main()
