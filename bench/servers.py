"""Which WSGI server for `serve`: gunicorn (gthread) vs granian vs today's Werkzeug LiveServer.

    python bench/servers.py [--seconds 8] [--connections 16] [--threads N ...] [--quick]

Servers: Werkzeug, gunicorn gthread (1 and 2 workers, each --threads count), `serve`'s own
gunicorn setup once mockserver/serving.py exists, granian (1 and 2 workers). Each runs the emulator
(throttle off, memory storage: with 2 workers each worker has its own store, which is fine for
comparing servers and nothing else) and the bare parse-only app (bench/bare_app.py), loaded by
wrk with 2-recipient and 5000-recipient bodies. Ratios are against the baseline measured in the
same run: "vs today" is the same app and body on today's Werkzeug LiveServer, "emu/bare" the
emulator against the bare app on the same server and workers.

granian is not a dependency: `.venv/bin/pip install granian` to include it; without it its rows
are skipped with a message. granian cannot hand the app its socket, so `drop` faults (SPEC 2.2)
and catalogued 431 bodies are impossible on it: these figures only say what that trade is worth.
Figures taken while other work runs on the machine are indicative only.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import Figures, StartFailed, check_tools, load, machine_note, serving  # a sibling

PYTHON = shlex.quote(sys.executable)
APPS = ("emulator", "bare")
BIG = 5000
SMALL = 2


@dataclass(frozen=True)
class Server:
    name: str
    workers: int
    template: str  # {app} and {port} are filled in

    def command(self, app: str) -> str:
        return self.template.replace("{app}", app)


def werkzeug() -> Server:
    return Server("werkzeug (today)", 1, f"{PYTHON} bench/wsgi_entry.py {{app}} {{port}}")


def gunicorn(workers: int, threads: int) -> Server:
    template = (
        f"{PYTHON} -m gunicorn -k gthread --threads {threads} -w {workers} --log-level warning "
        "-b 127.0.0.1:{port} --chdir bench 'wsgi_entry:{app}()'"
    )
    return Server(f"gunicorn gthread {workers}w x{threads}t", workers, template)


def granian(workers: int) -> Server:
    template = (
        f"{PYTHON} -m granian --interface wsgi --factory --working-dir bench --no-ws "
        f"--workers {workers} --log-level warning --host 127.0.0.1 --port {{port}} "
        "wsgi_entry:{app}"
    )
    return Server(f"granian {workers}w", workers, template)


def serve_own(workers: int) -> Server:
    """`pisano-mock serve`'s own gunicorn setup (worker class, threads, limits), once it exists."""
    template = f"{PYTHON} bench/wsgi_entry.py {{app}} {{port}} {workers}"
    return Server(f"serve's own {workers}w", workers, template)


def servers(threads: list[int]) -> list[Server]:
    chosen = [werkzeug()]
    chosen += [gunicorn(workers, count) for count in threads for workers in (1, 2)]
    if importlib.util.find_spec("mockserver.serving") is not None:
        chosen += [serve_own(1), serve_own(2)]
    if importlib.util.find_spec("granian") is None:
        print(
            "granian: skipped: not installed (.venv/bin/pip install granian: a bench-only tool, "
            "not a dependency of pisano-mock)"
        )
    else:
        chosen += [granian(1), granian(2)]
    return chosen


Key = tuple[str, str, int]  # server name, app, recipients


def measure(server: Server, args: argparse.Namespace, results: dict[Key, Figures]) -> None:
    for app in APPS:
        try:
            with serving(server.command(app)) as (process, port):
                for recipients in (SMALL, BIG):
                    figures = load(
                        process, port, recipients, args.seconds, args.connections, args.warmup
                    )
                    results[server.name, app, recipients] = figures
                    print(f"  measured {server.name} / {app} / {recipients}", flush=True)
        except StartFailed as error:
            print(f"{server.name} / {app}: skipped: did not start: {error}", flush=True)


def ratio(figures: Figures, base: Figures | None) -> str:
    return f"{figures.rate / base.rate:.2f}x" if base and base.rate else "-"


def print_table(results: dict[Key, Figures], baseline: str) -> None:
    line = "| {:<24} | {:<8} | {:>6} | {:>8} | {:>7} | {:>7} | {:>8} | {:>8} | {:>8} |"
    print(
        line.format(
            "server",
            "app",
            "recip.",
            "req/s",
            "p50 ms",
            "p99 ms",
            "RSS MiB",
            "vs today",
            "emu/bare",
        )
    )
    print("|" + "---|" * 9)
    for (name, app, recipients), figures in results.items():
        bare = results.get((name, "bare", recipients)) if app == "emulator" else None
        row = (
            f"{figures.rate:.0f}",
            f"{figures.p50_ms:.1f}",
            f"{figures.p99_ms:.1f}",
            f"{figures.peak_rss_mib:.0f}",
            ratio(figures, results.get((baseline, app, recipients))),
            ratio(figures, bare),
        )
        print(line.format(name, app, recipients, *row))
        if not figures.clean:
            print(f"  ^ VOID: {figures.problem()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per load (8)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[16], help="gthread threads per worker (16)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 s per load")
    args = parser.parse_args()
    args.warmup = 1.0 if args.quick else 2.0
    if args.quick:
        args.seconds = 2.0
    check_tools()
    print("Figures taken while other work runs on this machine are indicative only.", flush=True)
    print(machine_note("before"), flush=True)
    results: dict[Key, Figures] = {}
    for server in servers(args.threads):
        measure(server, args, results)
    print_table(results, werkzeug().name)
    print(machine_note("after"))


if __name__ == "__main__":
    main()
