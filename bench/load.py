"""The load harness the benchmark tables share: start a server, load it with wrk, measure it.

    python bench/load.py --cmd 'pisano-mock serve --no-throttle --quiet --port {port}' \
        [--recipients 2] [--seconds 10] [--connections 16] [--starts 5]

A server is a command line with `{port}` in it (a free loopback port is filled in). The load is
wrk, 2 threads, N keep-alive connections, D seconds, POSTing one fixed body with the test token; a
Lua `response` hook counts every answer outside 2xx (the figures are void unless it is 0). While
the load runs, the resident memory of the server's whole process tree (master and workers, read
from /proc) is sampled; its peak is reported. Start-up is the time from spawning the command to
the first answer of `/__mock/health`, the median of several starts.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import kib, process_tree  # sibling scripts, not a package
from throughput import PATH, body_of

ROOT = Path(__file__).resolve().parents[1]
HEALTH = "/__mock/health"
WRK_THREADS = 2
RSS_SAMPLE_SECONDS = 0.1
SCRATCH = Path(tempfile.mkdtemp(prefix="pisano-bench-"))  # bodies, scripts, server logs
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)

# The per-thread counters are globals of each thread's Lua state; `done` sums them over threads.
# `%(unexpected)s` is the Lua test of an answer's status that counts it as unexpected.
ANY_NON_2XX = "status < 200 or status > 299"
LUA = """
wrk.method = "POST"
wrk.path = %(path)s
wrk.headers["Authorization"] = "Token token=test-token"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(%(body)s, "rb"))
wrk.body = file:read("*a")
file:close()

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) unexpected = 0; last_bad = 0 end
function response(status, headers, body)
  if %(unexpected)s then unexpected = unexpected + 1; last_bad = status end
end
function done(summary, latency, requests)
  local bad, status = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("unexpected")
    if thread:get("last_bad") ~= 0 then status = thread:get("last_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "micros": %%d, "p50_us": %%d, "p99_us": %%d, "unexpected": %%d, '
    .. '"bad_status": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    bad, status, e.connect + e.read + e.write + e.timeout))
end
"""


class StartFailed(RuntimeError):
    """The server command exited or never answered; the message is its last words."""


@dataclass
class Figures:
    """One load: requests/s, latency percentiles, what went wrong, peak memory of the tree."""

    rate: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    bad_status: int
    socket_errors: int
    peak_rss_mib: float
    peak_pss_mib: float

    @property
    def clean(self) -> bool:
        return self.non2xx == 0 and self.socket_errors == 0

    def problem(self) -> str:
        """Empty when clean, else what makes the figure void."""
        if self.clean:
            return ""
        return f"{self.non2xx} non-2xx (last {self.bad_status}), {self.socket_errors} socket errors"


# --- bodies -------------------------------------------------------------------------------


def wrk_script(recipients: int) -> Path:
    """The Lua script POSTing a body of `recipients` (written once per size, in SCRATCH)."""
    script = SCRATCH / f"post-{recipients}.lua"
    if not script.exists():
        body = SCRATCH / f"body-{recipients}.json"
        body.write_bytes(body_of(recipients))
        script.write_text(lua_script(body))
    return script


def lua_script(body: Path, unexpected: str = ANY_NON_2XX) -> str:
    """wrk's script POSTing the file `body` to the sharing path, counting unexpected answers."""
    return LUA % {"path": json.dumps(PATH), "body": json.dumps(str(body)), "unexpected": unexpected}


# --- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tree_memory_mib(roots: list[int]) -> tuple[float, float]:
    """RSS and PSS of the roots and all their descendants, summed, in MiB. Summed RSS counts pages
    the workers share with their master once per process (worst case); PSS shares them out."""
    pids = [pid for root in roots for pid in process_tree(root)]
    rss = sum(kib(pid, "status", "VmRSS:") for pid in pids)
    pss = sum(kib(pid, "smaps_rollup", "Pss:") for pid in pids)
    return rss / 1024, pss / 1024


class PeakSampler:
    """Samples process trees' memory in a thread while a `with` block runs; peaks in MiB."""

    def __init__(self, roots: list[int]) -> None:
        self.roots, self.peak_rss, self.peak_pss = roots, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = tree_memory_mib(self.roots)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._stop.wait(RSS_SAMPLE_SECONDS)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def answers(port: int, path: str = HEALTH, timeout: float = 1.0) -> int | None:
    """The status of GET `path`, or None while nothing answers on `port`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def spawn(
    command: str, port: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    argv = [part.replace("{port}", str(port)) for part in shlex.split(command)]
    with log.open("wb") as out:  # a new session: the whole tree can be stopped, even if orphaned
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def last_words(log: Path) -> str:
    """Why a server gave up: its own one-line refusal, or the error under a server's traceback
    (gunicorn ends with "Worker failed to boot", which names no cause), else its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for prefix in ("pisano-mock:", "mockserver.settings.ConfigError:"):
        named = [line for line in lines if line.startswith(prefix)]
        if named:
            return named[-1]
    return lines[-1] if lines else ""


def wait_answering(process: subprocess.Popen, port: int, log: Path, limit: float) -> float:
    """Seconds until any HTTP answer on `port` (health's status need not be 200: the bare app)."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        if process.poll() is not None:
            raise StartFailed(last_words(log) or f"exited {process.returncode}")
        if answers(port, timeout=0.5) is not None:
            return time.perf_counter() - began
        time.sleep(0.005)
    raise StartFailed(f"no answer within {limit:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (graceful), then SIGKILL to the session it leads, so no worker outlives it."""
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def serving(
    command: str, env: dict[str, str] | None = None, limit: float = 90.0
) -> Iterator[tuple[subprocess.Popen, int]]:
    """A running server and its port; StartFailed when it does not come up."""
    port = free_port()
    log = SCRATCH / f"server-{port}.log"
    process = spawn(command, port, log, env)
    try:
        wait_answering(process, port, log, limit)
        yield process, port
    finally:
        stop(process)


def start_seconds(command: str, starts: int, env: dict[str, str] | None = None) -> float:
    """Median seconds from spawning to the first 200 of /__mock/health, over `starts` starts."""
    taken = []
    for _ in range(starts):
        port = free_port()
        log = SCRATCH / f"start-{port}.log"
        process = spawn(command, port, log, env)
        began = time.perf_counter()
        try:
            wait_answering(process, port, log, 60.0)
            taken.append(time.perf_counter() - began)
        finally:
            stop(process)
    return statistics.median(taken)


# --- load ---------------------------------------------------------------------------------


def wrk(port: int, recipients: int, seconds: float, connections: int) -> dict[str, int]:
    command = [
        *(
            "wrk",
            "-t",
            str(WRK_THREADS),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
        ),
        *("--timeout", "30s", "-s", str(wrk_script(recipients)), f"http://127.0.0.1:{port}"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in run.stdout.splitlines():
        if line.startswith("BENCH "):
            return dict(json.loads(line[6:]))
    raise RuntimeError(f"wrk gave no figures: {run.stdout[-300:]} {run.stderr[-300:]}")


def load(
    process: subprocess.Popen,
    port: int,
    recipients: int,
    seconds: float,
    connections: int,
    warmup: float = 2.0,
    also: tuple[int, ...] = (),
) -> Figures:
    """A warm-up run, then the measured run with the RSS of the server's tree (and of the trees
    of the `also` pids: its Redis) sampled throughout."""
    if warmup > 0:
        wrk(port, recipients, warmup, connections)
    with PeakSampler([process.pid, *also]) as sampler:
        raw = wrk(port, recipients, seconds, connections)
    return Figures(
        rate=raw["requests"] / (raw["micros"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        non2xx=raw["unexpected"],
        bad_status=raw["bad_status"],
        socket_errors=raw["socket_errors"],
        peak_rss_mib=sampler.peak_rss,
        peak_pss_mib=sampler.peak_pss,
    )


def machine_note(when: str) -> str:
    """Cores and load average: a run on a busy machine gives indicative figures only."""
    one, five, _ = os.getloadavg()
    return f"{when}: {os.cpu_count()} cores, load average {one:.1f} (1 min), {five:.1f} (5 min)"


def check_tools() -> None:
    """wrk is a system package, not a Python one: say how to get it instead of a traceback."""
    if subprocess.run(["which", "wrk"], capture_output=True, check=False).returncode != 0:
        sys.exit("bench: wrk is not installed (Debian: apt-get install wrk)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cmd", required=True, help="the server command, with {port}")
    parser.add_argument("--recipients", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--starts", type=int, default=0, help="also time this many starts")
    args = parser.parse_args()
    check_tools()
    with serving(args.cmd) as (process, port):
        figures = load(process, port, args.recipients, args.seconds, args.connections)
    print(figures, "" if figures.clean else f"VOID: {figures.problem()}")
    if args.starts:
        print(f"start to first answer: {start_seconds(args.cmd, args.starts):.3f} s (median)")


if __name__ == "__main__":
    main()
