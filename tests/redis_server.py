"""A real `redis-server` for the shared-state tests (issue 9): never a fake.

One server per test session on a free loopback port, with no persistence; each test that asks for
`redis_url` gets an emptied database. Without `redis-server` on the machine the tests skip and say
how to get it, except under `CI=true`, where they fail: CI must run them (`.ci/run` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

HINT = "redis-server not found: install it (Debian: apt-get install redis-server) to run this test"
START_SECONDS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_binary() -> str:
    """The path of redis-server, or a skip (a failure under CI=true) saying how to get it."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(HINT + " (CI=true: these tests must run)")
        pytest.skip(HINT)
    return binary


@contextmanager
def running_redis(port: int | None = None) -> Iterator[str]:
    """A redis-server of this test's own on `port` (a free one when None), stopped at the end:
    `redis://127.0.0.1:PORT`."""
    binary, port = redis_binary(), port or free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
                "--maxclients",
                "4000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_SECONDS
            while not _answers_ping(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """`redis://127.0.0.1:PORT`: a redis-server this test session started and will stop."""
    with running_redis() as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """`redis://127.0.0.1:PORT/0`, emptied for this test."""
    port = int(redis_server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        assert sock.recv(16).startswith(b"+OK")
    return f"{redis_server}/0"
