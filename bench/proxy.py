"""What `pisano-mock proxy` costs: wrk against an upstream served directly, then through the proxy.

    python bench/proxy.py [--seconds 4] [--connections 16] [--rounds 3]

Upstreams, each a production server (gunicorn, as `serve` runs) in its own process:
  - the `matching` Pisano stand-in (tests/pisano_standins.py: the emulator itself) with its
    throttle off, loaded with a 1-recipient share (200) and with a catalogue refusal (13028,
    `{"emails": []}`): the target is a proxy keeping >= 0.5x of the stand-in's requests/s;
  - a trivial upstream (`trivial_app` below: reads the body, answers a fixed 200 JSON body; on
    gunicorn gthread with `serve`'s thread count), for honesty: there the proxy's own work (the
    shadow emulator answering every request too) is most of the cost, so its ratio is the floor.
The proxy runs with `--config` throttle disabled (its shadow never refuses), `--quiet`, no
`--record`. wrk: 2 threads, N keep-alive connections, a warm-up then the measured run; a Lua hook
counts every answer whose status is not the expected one (a row with any is VOID). The ratio is
"through the proxy" over "direct", measured in the same command: with the upstream and the proxy
both up, each round loads the upstream directly and then through the proxy, so the two runs of a
round see the same machine; the median of the rounds' rates and of their ratios is shown.
Figures taken while other work runs on the machine (2 cores shared) are indicative only.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import (  # sibling scripts
    SCRATCH,
    PeakSampler,
    check_tools,
    lua_script,
    machine_note,
    serving,
)
from throughput import body_of

from mockserver.worker import THREADS

PYTHON = shlex.quote(sys.executable)
WRK_THREADS = 2
THROTTLE_OFF = "[throttle]\nenabled = false\n"


@dataclass(frozen=True)
class Load:
    """One kind of request: what is sent and the status every answer must have."""

    name: str
    body: bytes
    status: int

    def script(self) -> Path:
        stem = SCRATCH / f"proxy-{self.name.split()[0].strip(',')}"
        body = stem.with_suffix(".json")
        body.write_bytes(self.body)
        script = lua_script(body, unexpected=f"status ~= {self.status}")
        stem.with_suffix(".lua").write_text(script)
        return stem.with_suffix(".lua")


SHARE = Load("share, 1 recipient", body_of(1), 200)
REFUSAL = Load("refusal 13028", b'{"emails":[]}', 400)


@dataclass(frozen=True)
class Upstream:
    name: str
    command: str  # with {port}
    loads: tuple[Load, ...]


UPSTREAMS = (
    Upstream(
        "stand-in (matching)",
        f"{PYTHON} tests/pisano_standins.py matching --no-throttle --port {{port}}",
        (SHARE, REFUSAL),
    ),
    Upstream(
        "trivial upstream",
        f"{PYTHON} -m gunicorn -k gthread --threads {THREADS} -w 1 --log-level warning "
        "-b 127.0.0.1:{port} --chdir bench proxy:trivial_app",
        (SHARE,),
    ),
)


TRIVIAL_BODY = b'{"status":"ok"}'


def trivial_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The cheapest upstream there is: the body read, a fixed answer."""
    environ["wsgi.input"].read()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(TRIVIAL_BODY)))]
    start_response("200 OK", headers)
    return [TRIVIAL_BODY]


@dataclass
class Run:
    rate: float
    p50_ms: float
    p99_ms: float
    peak_rss_mib: float
    problem: str


def wrk(port: int, load: Load, seconds: float, connections: int) -> dict[str, int]:
    command = [
        *("wrk", "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{round(seconds)}s"),
        *("--timeout", "30s", "-s", str(load.script()), f"http://127.0.0.1:{port}"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            return dict(json.loads(line[6:]))
    raise RuntimeError(f"wrk gave no figures: {done.stdout[-300:]} {done.stderr[-300:]}")


def measure(pid: int, port: int, load: Load, seconds: float, connections: int) -> Run:
    """A 1 s warm-up, then the measured run with the tree of `pid` (the server) sampled."""
    wrk(port, load, 1, connections)
    with PeakSampler([pid]) as sampler:
        raw = wrk(port, load, seconds, connections)
    errors = raw["unexpected"] + raw["socket_errors"]
    problem = (
        f"VOID: {raw['unexpected']} answers not {load.status} (last {raw['bad_status']}), "
        f"{raw['socket_errors']} socket errors"
        if errors
        else ""
    )
    return Run(
        raw["requests"] / (raw["micros"] / 1e6),
        raw["p50_us"] / 1000,
        raw["p99_us"] / 1000,
        sampler.peak_rss,
        problem,
    )


def proxy_command(upstream_port: int) -> str:
    config = SCRATCH / "proxy-throttle-off.toml"
    config.write_text(THROTTLE_OFF)
    return (
        f"{PYTHON} -m mockserver.cli proxy --upstream http://127.0.0.1:{upstream_port} "
        f"--port {{port}} --config {shlex.quote(str(config))} --quiet"
    )


def runs_of(upstream: Upstream, args: argparse.Namespace) -> dict[str, tuple[list[Run], ...]]:
    """Each load of `upstream`, direct then through a proxy to it, alternately, `rounds` times:
    both servers stay up, so a direct run and the proxied run after it see the same machine."""
    runs: dict[str, tuple[list[Run], ...]] = {load.name: ([], []) for load in upstream.loads}
    with serving(upstream.command) as (server, port), serving(proxy_command(port)) as (proxy, at):
        for _ in range(args.rounds):
            for load in upstream.loads:
                direct, proxied = runs[load.name]
                direct.append(measure(server.pid, port, load, args.seconds, args.connections))
                proxied.append(measure(proxy.pid, at, load, args.seconds, args.connections))
    return runs


def median_run(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda run: run.rate)
    middle = ordered[len(ordered) // 2]
    problems = "; ".join(run.problem for run in runs if run.problem)
    return Run(middle.rate, middle.p50_ms, middle.p99_ms, middle.peak_rss_mib, problems)


HEADER = (
    f"{'upstream':<20} {'load':<19} {'direct req/s':>12} {'proxied req/s':>13} {'ratio':>6} "
    f"{'p50 ms d/p':>12} {'p99 ms d/p':>12} {'proxy RSS MiB':>13}"
)


def row(upstream: Upstream, load: Load, directs: list[Run], proxieds: list[Run]) -> str:
    """Median rates, and the median of each round's ratio (proxied over the direct run before)."""
    rounds = zip(directs, proxieds, strict=True)
    ratio = statistics.median(p.rate / d.rate if d.rate else 0.0 for d, p in rounds)
    direct, proxied = median_run(directs), median_run(proxieds)
    line = (
        f"{upstream.name:<20} {load.name:<19} {direct.rate:>12.0f} {proxied.rate:>13.0f} "
        f"{ratio:>5.2f}x {direct.p50_ms:>5.1f}/{proxied.p50_ms:<6.1f} "
        f"{direct.p99_ms:>5.1f}/{proxied.p99_ms:<6.1f} {proxied.peak_rss_mib:>13.0f}"
    )
    problems = "; ".join(p for p in (direct.problem, proxied.problem) if p)
    return f"{line}  {problems}" if problems else line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per measured run (4)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--rounds", type=int, default=3, help="median over this many (3)")
    args = parser.parse_args()
    check_tools()
    print(machine_note("before"))
    lines = [HEADER]
    for upstream in UPSTREAMS:
        runs = runs_of(upstream, args)
        for load in upstream.loads:
            direct, proxied = runs[load.name]
            lines.append(row(upstream, load, direct, proxied))
    print("\n".join(lines))
    print(machine_note("after"))
    print("target: a proxy keeping >= 0.50x of the stand-in's requests/s (issue 13)")


if __name__ == "__main__":
    main()
