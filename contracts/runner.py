"""How the kit drives a client: an emulator to talk to, one example at a time, any client.

Per example it resets the emulator, sets the clock and the faults, writes the customers file, runs
the client (a shell command or a Python callable) and reads back what the emulator recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from .admin_client import AdminClient
from .endpoints import ENDPOINTS
from .expectations import ALIGNED, DEFAULT_CAMPAIGN, DEFAULT_TOKEN
from .model import Example, KitError, Observation

CLOCK_WATCH_SECONDS = 0.005


@dataclass(frozen=True)
class Target:
    """Where the client is sent: what it gets in PISANO_BASE_URL, _API_TOKEN, _ENDPOINT and
    _CAMPAIGN_ID (for a link: _LINK_CHANNEL_ID)."""

    base_url: str
    token: str = DEFAULT_TOKEN
    campaign_id: str = DEFAULT_CAMPAIGN  # the campaign, or for a link the link channel
    admin_token: str | None = None  # the kit's own; the client under test is never given it
    endpoint: str = "email"


def on_endpoint(target: Target, endpoint: str) -> Target:
    """The same emulator, the client sent to `endpoint` with the default fixture's campaign or
    link channel for it (an email target keeps its campaign)."""
    if endpoint == target.endpoint:
        return target
    return replace(target, endpoint=endpoint, campaign_id=ENDPOINTS[endpoint].target_id)


class EmulatorProcess:
    """`pisano-mock serve --port 0` in a child process: the kit talks to it over HTTP only."""

    def __init__(self, process: subprocess.Popen[str], target: Target) -> None:
        self.process = process
        self.target = target

    @classmethod
    def start(cls, extra_args: tuple[str, ...] = ()) -> EmulatorProcess:
        # The kit's emulator takes admin calls from the kit only: a client under test that resets
        # it or scripts it (to hide a bad request, dodge a fault) is refused.
        admin_token = secrets.token_hex(24)  # hex: never read as an option, as "-x..." would be
        command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", *extra_args]
        process = subprocess.Popen(
            [*command, "--quiet", "--admin-token", admin_token], stdout=subprocess.PIPE, text=True
        )
        line = process.stdout.readline() if process.stdout else ""
        words = dict(w.split("=", 1) for w in line.split()[3:] if "=" in w)
        if not line.startswith("pisano-mock serving "):
            process.kill()
            raise KitError(f"the emulator did not start: {line!r}")
        target = Target(line.split()[2], words["token"], words["campaign"], admin_token)
        return cls(process, target)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ClientRun:
    exit_status: int | None
    stdout: str
    stderr: str
    seconds: float


class Client(Protocol):
    """Anything that delivers a customers file to Pisano and says how it went."""

    def run(
        self, target: Target, customers_file: Path, timeout: float, responses_file: Path | None
    ) -> ClientRun: ...


@dataclass(frozen=True)
class CommandClient:
    """A client in any language: COMMAND run through `sh -c` with the PISANO_* variables."""

    command: str

    def run(
        self,
        target: Target,
        customers_file: Path,
        timeout: float,
        responses_file: Path | None = None,
    ) -> ClientRun:
        env = {**os.environ, **client_environment(target, customers_file, responses_file)}
        began = time.perf_counter()
        process = subprocess.Popen(
            ["sh", "-c", self.command],
            env=env,
            text=True,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
            status: int | None = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            status = None
        return ClientRun(status, stdout, stderr, time.perf_counter() - began)


# The shell's "cannot execute" and "command not found": on the first example the kit could not
# run the client (SPEC 3's exit 2); once examples ran, a client exiting so is a failing client.
COULD_NOT_RUN = (126, 127)


def could_not_run(observation: Observation) -> KitError | None:
    """The kit's own error when the client command could not run at all, else None."""
    if observation.exit_status not in COULD_NOT_RUN:
        return None
    why = observation.stderr.strip()[-300:]
    return KitError(f"the client command could not run (exit {observation.exit_status}): {why}")


@dataclass(frozen=True)
class CallableClient:
    """A Python client: `deliver(base_url, token, campaign_id, customers) -> exit status`."""

    deliver: Callable[[str, str, str, list[dict[str, Any]]], int | None]

    def run(
        self,
        target: Target,
        customers_file: Path,
        timeout: float,
        responses_file: Path | None = None,  # a callable is given only the customers
    ) -> ClientRun:
        customers = json.loads(customers_file.read_text(encoding="utf-8"))
        began = time.perf_counter()
        try:
            status = self.deliver(target.base_url, target.token, target.campaign_id, customers)
            error = ""
        except Exception as exc:  # the client's failure is what the checks judge
            status, error = 1, f"{type(exc).__name__}: {exc}"
        return ClientRun(status or 0, "", error, time.perf_counter() - began)


RESPONSES_VARIABLE = "PISANO_BUILT_IN_RESPONSES_FILE"


def client_environment(
    target: Target, customers_file: Path, responses_file: Path | None = None
) -> dict[str, str]:
    env = {
        "PISANO_BASE_URL": target.base_url,
        "PISANO_API_TOKEN": target.token,
        "PISANO_ENDPOINT": target.endpoint,
        ENDPOINTS[target.endpoint].id_variable: target.campaign_id,
        "PISANO_CUSTOMERS_FILE": str(customers_file),
    }
    if responses_file is not None:
        env[RESPONSES_VARIABLE] = str(responses_file)
    return env


class ExampleRunner:
    """Runs one example at a time against one emulator."""

    def __init__(self, target: Target, client: Client, timeout: float) -> None:
        self.target = target
        self.client = client
        self.timeout = timeout
        self.admin = AdminClient(target.base_url, admin_token=target.admin_token)
        self.workdir = Path(tempfile.mkdtemp(prefix="pisano-contract-"))

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def run(self, example: Example) -> Observation:
        start_id = self._prepare(example)
        customers_file = self.workdir / "customers.json"
        customers_file.write_text(
            json.dumps(example.customers, ensure_ascii=False), encoding="utf-8"
        )
        responses_file = self.workdir / "built_in_responses.json"
        responses_file.write_text(
            json.dumps(example.built_in_responses, ensure_ascii=False), encoding="utf-8"
        )
        with self._clock_starter(example, start_id):
            run = self.client.run(self.target, customers_file, self.timeout, responses_file)
        return Observation(
            exit_status=run.exit_status,
            requests=self.admin.requests(since=start_id),
            sharings=self.admin.sharings(),
            stdout=run.stdout,
            stderr=run.stderr,
            client_seconds=run.seconds,
            incomplete=self._dropped(),
        )

    def _dropped(self) -> str | None:
        """Why the record of this example is incomplete: the emulator's memory bounds dropped
        requests or sharings since the reset (then no check can judge it)."""
        counts = self.admin.call("GET", "/__mock/health")
        dropped = {k: counts.get(k, 0) for k in ("requests_dropped", "sharings_dropped")}
        if not any(dropped.values()):
            return None
        return "the emulator's memory bounds dropped " + ", ".join(
            f"{n} {k.replace('_dropped', '')}" for k, n in dropped.items() if n
        )

    def _prepare(self, example: Example) -> int:
        """Reset, freeze the clock on a window boundary, preload the throttle, script the faults,
        then let the clock run; returns the last journal id before the client starts."""
        server = example.server
        self.admin.reset()
        self.admin.set_clock(ALIGNED + server.window_offset)
        for tier in range(server.preload_tiers):
            if tier:
                self.admin.advance_clock(5)
            self._exhaust_tier_one()
        for fault in server.faults:
            self.admin.add_fault(**fault)
        if not server.preload_tiers:
            self.admin.advance_clock(0, rate=server.clock_rate)
        return max((entry["id"] for entry in self.admin.requests()), default=0)

    @contextlib.contextmanager
    def _clock_starter(self, example: Example, start_id: int) -> Iterator[None]:
        """With the throttle preloaded, the clock stays frozen until the client's first request
        arrives, then runs at the example's rate: however long the client takes to start, its
        first request meets the exhausted window."""
        if not example.server.preload_tiers:
            yield
            return
        stop = threading.Event()

        def start_on_first_request() -> None:
            while not stop.is_set():
                if self.admin.call("GET", f"/__mock/requests?since={start_id}&limit=1")["requests"]:
                    self.admin.advance_clock(0, rate=example.server.clock_rate)
                    return
                stop.wait(CLOCK_WATCH_SECONDS)

        watcher = threading.Thread(target=start_on_first_request, daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()

    def _exhaust_tier_one(self) -> None:
        # Requests without a body are counted by the throttle (it comes before validation) and
        # deliver nothing: 20 of them use up tier 1's window, 40 across two windows tier 2's.
        path = ENDPOINTS[self.target.endpoint].path_of(self.target.campaign_id)
        url = f"{self.target.base_url}{path}"
        headers = {
            "Authorization": f"Token token={self.target.token}",
            "Content-Type": "application/json",
        }
        for _ in range(20):
            request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
            try:
                urllib.request.urlopen(request, timeout=10).close()
            except urllib.error.HTTPError as refusal:
                refusal.close()
