"""`pisano-mock serve` on gunicorn, embedded (SPEC 2.5): never Werkzeug's development server.

The CLI binds the listening socket itself (so `--port 0` works and "cannot listen" is its one-line
error) and builds the app itself (so a ConfigError, e.g. Redis unreachable, is one too); gunicorn
gets both. The app is built once, before the workers fork: the memory store is used by one worker
only (settings.check_workers), and redis-py opens new connections in a forked process (its pool
resets on a pid change).
"""

from __future__ import annotations

import os
import resource
import signal
import socket
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.sock import TCP6Socket, TCPSocket

from .context import EXTENSION_KEY
from .worker import (
    IDLE_SECONDS,
    MAX_FIELD_BYTES,
    MAX_HEADER_FIELDS,
    MAX_REQUEST_LINE,
    THREADS,
    PisanoWorker,
)

BACKLOG = 2048
GRACE_SECONDS = 8  # SIGTERM: in-flight requests are answered within this (SPEC 2.5: at most 10 s)
FD_MARGIN = 64  # descriptors a worker needs besides its clients: listener, pipes, logs, Redis
_UNLIMITED_FDS = 65536  # the bound when RLIMIT_NOFILE says unlimited


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); OSError when it cannot be had."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=BACKLOG)


def base_url(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_stops_held: list[int] = []


def hold_stop_signals() -> None:
    """From the start line until gunicorn's arbiter installs its own handlers, a SIGTERM or SIGINT
    is remembered, then given to the arbiter once it is ready (a graceful stop, exit 0), instead of
    killing the process with the default action."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, lambda signum, _frame: _stops_held.append(signum))


def _replay_held_stops(_arbiter: Arbiter) -> None:
    for signum in _stops_held:
        os.kill(os.getpid(), signum)


def connection_bound() -> int:
    """Connections one worker keeps at once: under its descriptor limit, with a margin."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = _UNLIMITED_FDS
    return max(soft - FD_MARGIN, 2 * THREADS)


def gunicorn_options(workers: int) -> dict[str, Any]:
    return {
        "workers": workers,
        "worker_class": PisanoWorker,
        "threads": THREADS,
        "worker_connections": connection_bound(),
        "keepalive": IDLE_SECONDS,
        "graceful_timeout": GRACE_SECONDS,
        "limit_request_line": MAX_REQUEST_LINE,
        "limit_request_fields": MAX_HEADER_FIELDS,
        "limit_request_field_size": MAX_FIELD_BYTES,
        "loglevel": "error",  # our access log (access_log.py) says what each request did
        "errorlog": "-",
        "accesslog": None,
        "preload_app": True,
        "control_socket_disable": True,  # no ~/.gunicorn/gunicorn.ctl
        "proc_name": "pisano-mock",
        "when_ready": _replay_held_stops,
        "post_worker_init": _start_senders,
    }


def _start_senders(worker: Any) -> None:
    """Each worker delivers (SPEC 1.7), from its start: what other workers queued, or what a
    restart left in flight. Never in the process that forks: a thread holding a Redis
    connection's lock at the fork would leave the child deadlocked."""
    emulator = worker.app.load().extensions.get(EXTENSION_KEY)  # app: our EmbeddedServer
    if emulator is None:  # the proxy: its shadow emulator delivers nothing
        return
    emulator.postman.start()
    emulator.scheduler.start()  # each worker's ticker: the mark lets one of them run a due time


class EmbeddedServer(BaseApplication):  # type: ignore[misc]
    """gunicorn's arbiter serving `app` on `listener` with `workers` PisanoWorker processes."""

    def __init__(self, app: Any, listener: socket.socket, workers: int) -> None:
        self.application = app
        self.listener = listener
        self.options = gunicorn_options(workers)
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        return self.application

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT; exits the process (status 0 on a graceful stop)."""
        arbiter = Arbiter(self)
        kind = TCP6Socket if self.listener.family == socket.AF_INET6 else TCPSocket
        address = self.listener.getsockname()[:2]
        arbiter.LISTENERS = [kind(address, self.cfg, arbiter.log, fd=self.listener.detach())]
        arbiter.run()


def serve(app: Any, listener: socket.socket, workers: int = 1) -> None:
    EmbeddedServer(app, listener, workers).run()
