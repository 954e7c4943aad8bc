"""`pisano-mock serve` as production serves it (SPEC 2.5, issue 9): each test starts a real process.

Keep-alive, idle and slow clients, graceful SIGTERM, header limits with the catalogue body,
workers, and `drop` faults on gunicorn's socket. Timeouts here are how long a client waits for an
answer, never assertions on speed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from gunicorn.http.body import Body, LengthReader

from mockserver.app import create_app
from mockserver.bodies import BodyUnread, read_body
from mockserver.catalogue import ERROR_CONTENT_TYPE, render_body
from mockserver.server import LiveServer
from mockserver.worker import (
    HEAD_SECONDS,
    MAX_HEADER_FIELDS,
    MAX_REQUEST_LINE,
    WRITE_SECONDS,
    ClientTooSlow,
    DeadlineUnreader,
    SlowBodyInput,
)
from tests.redis_server import free_port

START_LINE = re.compile(r"pisano-mock serving http://([\d.]+):(\d+) token=\S+ campaign=(\S+)$")
CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
SHARINGS = f"/v1/email_campaigns/{CAMPAIGN}/email_sharings"
AUTH = {"Authorization": "Token token=test-token", "Content-Type": "application/json"}
FD_LIMIT = 1024


@dataclass
class Served:
    process: subprocess.Popen[str]
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self, timeout: float = 5) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)


def start(*flags: str, preexec: Callable[[], None] | None = None) -> Served:
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", "--quiet", *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, preexec_fn=preexec)
    assert process.stdout is not None
    line = process.stdout.readline().rstrip("\n")
    match = START_LINE.match(line)
    if not match:
        process.kill()
        pytest.fail(f"no start line: {line!r}")
    return Served(process, match.group(1), int(match.group(2)))


@contextmanager
def serving(*flags: str, preexec: Callable[[], None] | None = None) -> Iterator[Served]:
    served = start(*flags, preexec=preexec)
    try:
        yield served
    finally:
        if served.process.poll() is None:
            served.process.kill()
        served.process.wait(timeout=10)


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    with serving("--no-throttle") as served:
        yield served


# -- keep-alive -----------------------------------------------------------------------------------
def test_two_requests_over_one_connection_both_succeed_on_the_same_socket(server):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    answers = []
    sockets = []
    for emails in (["a@example.com"], ["b@example.com"]):
        connection.request("POST", SHARINGS, json.dumps({"emails": emails}), AUTH)
        response = connection.getresponse()
        answers.append((response.status, response.getheader("Connection"), response.read()))
        sockets.append(connection.sock)
    connection.close()
    assert [status for status, _, _ in answers] == [200, 200]
    assert all(kept != "close" for _, kept, _ in answers)
    assert sockets[0] is not None and sockets[0] is sockets[1]  # http.client reopens a closed one


# -- idle and slow clients ------------------------------------------------------------------------
def limit_descriptors() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, hard))


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    """This test process may open 1,100+ sockets (the server stays at FD_LIMIT)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}: cannot open enough sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_idle(served: Served, count: int) -> list[socket.socket]:
    return [served.connect() for _ in range(count)]


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def test_health_answers_beside_1100_idle_connections_under_a_1024_descriptor_limit(
    many_descriptors,
):
    with serving(preexec=limit_descriptors) as served:
        idle = open_idle(served, 1100)
        try:
            response = requests.get(f"{served.url}/__mock/health", timeout=3)
            assert response.status_code == 200
            assert response.json()["status"] == "ok"
        finally:
            close_all(idle)


def closed_by_server(sock: socket.socket, by: float) -> bool:
    """Whether the server ended the connection by `by` (monotonic): end of stream or reset, after
    any last answer."""
    sock.settimeout(max(by - time.monotonic(), 0.01))
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def test_a_slowloris_on_200_connections_neither_slows_a_request_nor_outlives_the_deadline(
    server,
):
    slow = [server.connect() for _ in range(200)]
    by = time.monotonic() + HEAD_SECONDS + 3
    head = f"POST {SHARINGS} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode() + b"a" * 10_000
    stop = threading.Event()

    def trickle() -> None:  # one byte per connection, round after round, until stopped
        for byte in head:
            for sock in slow:
                with suppress(OSError):
                    sock.send(bytes([byte]))
            if stop.wait(0.2):
                return

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        stop.wait(1)  # they have all started their heads
        response = requests.post(
            f"{server.url}{SHARINGS}", json={"emails": ["c@example.com"]}, headers=AUTH, timeout=2
        )
        assert response.status_code == 200
        ended = [closed_by_server(sock, by) for sock in slow]
        assert all(ended), f"{ended.count(False)} of 200 still open after {HEAD_SECONDS} s"
    finally:
        stop.set()
        trickler.join()
        close_all(slow)


@contextmanager
def trickling(socks: list[socket.socket]) -> Iterator[None]:
    """One byte to each socket every 0.2 s while the block runs (a slow client's pace)."""
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.2):
            for sock in socks:
                with suppress(OSError):
                    sock.send(b"a")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        yield
    finally:
        stop.set()
        trickler.join()


def health_beside(served: Served, slow_start: bytes, count: int = 40) -> int:
    """/__mock/health's status while `count` connections sent `slow_start` and trickle on."""
    slow = [served.connect() for _ in range(count)]
    try:
        for sock in slow:
            sock.sendall(slow_start)
        with trickling(slow):
            threading.Event().wait(0.5)  # the server has read what they sent
            return requests.get(f"{served.url}/__mock/health", timeout=2).status_code
    finally:
        close_all(slow)


def test_a_pipelined_partial_head_holds_no_thread(server):
    # After the first answer the second head is already buffered, not on the socket: it went to a
    # thread, which waited on the rest of the head; 16 such connections held every thread.
    answered_then_partial = request_with() + b"GET /__mock/health HTTP/1.1\r\nX-Slow: "
    assert health_beside(server, answered_then_partial) == 200


def test_bytes_left_after_a_short_content_length_hold_no_thread(server):
    # The first 10 bytes are answered (13000, not JSON) and the connection kept: the other 18
    # are the start of a next head.
    body = b'{"emails": ["h@example.com"]}'
    short = (
        f"POST {SHARINGS} HTTP/1.1\r\nHost: x\r\nAuthorization: Token token=test-token\r\n"
        "Content-Type: application/json\r\nContent-Length: 10\r\n\r\n"
    )
    assert health_beside(server, short.encode() + body) == 200


def test_a_slow_small_body_holds_no_thread(server):
    head = (
        f"POST {SHARINGS} HTTP/1.1\r\nHost: x\r\nAuthorization: Token token=test-token\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    assert health_beside(server, head.encode()) == 200


def test_a_slow_small_chunked_body_holds_no_thread(server):
    head = f"POST {SHARINGS} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n{{"
    assert health_beside(server, head.encode()) == 200


# -- SIGTERM --------------------------------------------------------------------------------------
def wait_for_journal_entry(served: Served) -> None:
    deadline = time.monotonic() + 5
    while not requests.get(f"{served.url}/__mock/requests", timeout=5).json()["requests"]:
        assert time.monotonic() < deadline, "the delayed request never arrived"


def test_a_request_in_flight_at_sigterm_is_answered_and_the_server_exits_0():
    with serving() as served:
        fault = {"match": {"path": "/v1/"}, "times": 1, "delay_ms": 1000}
        requests.post(f"{served.url}/__mock/faults", json=fault, timeout=5).raise_for_status()
        answers: list[int] = []

        def in_flight() -> None:
            response = requests.post(
                f"{served.url}{SHARINGS}",
                json={"emails": ["d@example.com"]},
                headers=AUTH,
                timeout=10,
            )
            answers.append(response.status_code)

        client = threading.Thread(target=in_flight)
        client.start()
        wait_for_journal_entry(served)  # the request is in the emulator, inside its delay
        served.process.send_signal(signal.SIGTERM)
        late = after_sigterm(served)
        client.join()
        assert answers == [200]
        assert served.process.wait(timeout=10) == 0
        assert late in ("refused", 200)


def test_a_request_held_by_a_long_delay_at_sigterm_is_answered_within_the_grace():
    # A 60 s `delay_ms` at SIGTERM: the worker was killed at the 8 s grace and the request never
    # answered, while the master exited 0. A graceful stop now ends the delay.
    with serving() as served:
        fault = {"match": {"path": "/v1/"}, "times": 1, "delay_ms": 60000}
        requests.post(f"{served.url}/__mock/faults", json=fault, timeout=5).raise_for_status()
        answers: list[int] = []

        def in_flight() -> None:
            response = requests.post(
                f"{served.url}{SHARINGS}",
                json={"emails": ["e@example.com"]},
                headers=AUTH,
                timeout=30,
            )
            answers.append(response.status_code)

        client = threading.Thread(target=in_flight)
        client.start()
        wait_for_journal_entry(served)
        served.process.send_signal(signal.SIGTERM)
        client.join(timeout=15)
        assert answers == [200]
        assert served.process.wait(timeout=10) == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_asked_for_right_after_the_start_line_is_graceful(stop):
    # A tool that reads the start line and gives up at once got 143 (-15): the signal came before
    # gunicorn had installed its handlers.
    served = start()
    served.process.send_signal(stop)
    assert served.process.wait(timeout=15) == 0


def after_sigterm(served: Served) -> str | int:
    """A connection opened after SIGTERM: refused, or answered."""
    try:
        return requests.get(f"{served.url}/__mock/health", timeout=5).status_code
    except requests.ConnectionError as error:
        assert isinstance(error.__context__, ConnectionRefusedError) or "refused" in str(error)
        return "refused"


# -- header limits --------------------------------------------------------------------------------
def raw_exchange(served: Served, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with served.connect() as sock:
        with suppress(ConnectionResetError, BrokenPipeError):  # refused before all was sent
            sock.sendall(data)
        received = b""
        with suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


def request_with(line_path: str = "/__mock/health", headers: list[str] | None = None) -> bytes:
    lines = [f"GET {line_path} HTTP/1.1", "Host: localhost", *(headers or []), "", ""]
    return "\r\n".join(lines).encode()


HEAD_LIMITS = [
    ("request line", request_with("/" + "a" * MAX_REQUEST_LINE), 414, "request line: over"),
    ("one field", request_with(headers=["X-Big: " + "b" * 9000]), 431, "a field over"),
    (
        "field count",
        request_with(headers=[f"X-N{i}: n" for i in range(MAX_HEADER_FIELDS + 1)]),
        431,
        f"more than {MAX_HEADER_FIELDS} fields",
    ),
    (
        "total bytes",
        request_with(headers=[f"X-T{i}: " + "t" * 4000 for i in range(50)]),
        431,
        "bytes in all",
    ),
    (
        "total bytes in the first read",  # 80 KB: the head ends within the poller's first buffer
        request_with(headers=[f"X-F{i}: " + "f" * 8000 for i in range(10)]),
        431,
        "bytes in all",
    ),
    ("unparseable", b"NOT HTTP AT ALL\r\n\r\n", 400, "request unparseable"),
]


@pytest.mark.parametrize(
    ("data", "status", "reason"), [row[1:] for row in HEAD_LIMITS], ids=[r[0] for r in HEAD_LIMITS]
)
def test_a_request_over_a_head_limit_gets_the_catalogue_body(server, data, status, reason):
    answered, headers, body = raw_exchange(server, data)
    assert answered == status
    assert body == render_body(13000)
    assert headers["Content-Type"] == ERROR_CONTENT_TYPE
    assert reason in headers["X-Pisano-Mock-Reason"]
    assert headers["Connection"] == "close"
    assert requests.get(f"{server.url}/__mock/health", timeout=5).status_code == 200


# -- workers and storage --------------------------------------------------------------------------
def run_refused(*flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def test_two_workers_on_memory_storage_exit_2_saying_why():
    result = run_refused("--workers", "2", "--storage", "memory://")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "redis://" in result.stderr, result.stderr


def test_a_storage_that_cannot_be_opened_is_one_line_and_exit_2():
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    result = run_refused("--storage", unreachable)
    assert result.returncode == 2
    assert result.stderr.startswith("pisano-mock: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def wait_for_workers(served: Served, count: int) -> list[int]:
    deadline = time.monotonic() + 10
    while len(children(served.process.pid)) < count:
        assert time.monotonic() < deadline, children(served.process.pid)
        time.sleep(0.05)  # polling the process table, not waiting on the throttle
    return children(served.process.pid)


def test_two_workers_on_redis_storage_both_run(redis_url):
    with serving("--workers", "2", "--storage", redis_url) as served:
        wait_for_workers(served, 2)
        statuses = {requests.get(f"{served.url}/__mock/health", timeout=5).status_code}
        assert statuses == {200}


# -- drop faults ----------------------------------------------------------------------------------
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_drop_fault_closes_the_connection_under_serve(server, when):
    requests.post(f"{server.url}/__mock/reset", timeout=5)
    fault = {"match": {"path": "/v1/"}, "times": 1, "drop": when}
    requests.post(f"{server.url}/__mock/faults", json=fault, timeout=5).raise_for_status()
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{server.url}{SHARINGS}", json={"emails": ["e@example.com"]}, headers=AUTH, timeout=5
        )
    sharings = requests.get(f"{server.url}/__mock/sharings", timeout=5).json()["sharings"]
    assert [s["email"] for s in sharings] == ([] if when == "before" else ["e@example.com"])
    again = requests.post(
        f"{server.url}{SHARINGS}", json={"emails": ["f@example.com"]}, headers=AUTH, timeout=5
    )
    assert again.status_code == 200  # the fault fired once, the server serves on


def test_the_start_line_comes_from_the_socket_the_cli_bound():
    with serving() as served:
        assert served.port != 0
        assert requests.get(f"{served.url}/__mock/health", timeout=5).status_code == 200


def test_port_in_use_is_one_line_and_exit_2():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_refused("--port", str(port))
    assert result.returncode == 2
    assert result.stderr.startswith(f"pisano-mock: cannot listen on 127.0.0.1:{port}: ")


# -- LiveServer, the light in-process server (tests, the pytest plugin) ---------------------------
@pytest.fixture(scope="module")
def live() -> Iterator[Served]:
    with LiveServer(create_app()) as running:
        yield Served(None, running.host, running.port)  # type: ignore[arg-type]


def answers_on(sock: socket.socket, count: int) -> list[bytes]:
    """`count` whole answers (heads with a Content-Length) read from one connection."""
    sock.settimeout(5)
    data, answers = b"", []
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: (\d+)", head)
        if sep and head.startswith(b"HTTP/1.1 100 "):
            answers.append(head + sep)
            data = rest
        elif sep and length and len(rest) >= int(length.group(1)):
            end = int(length.group(1))
            answers.append(head + sep + rest[:end])
            data = rest[end:]
        else:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return answers


@pytest.fixture(params=["serve", "LiveServer"])
def either(request) -> Served:
    """Both servers: `serve` (gunicorn) and LiveServer (Werkzeug, in this process)."""
    return request.getfixturevalue("server" if request.param == "serve" else "live")


def test_live_server_keeps_the_connection_alive(live):
    test_two_requests_over_one_connection_both_succeed_on_the_same_socket(live)


def test_one_100_continue_then_the_next_request_on_the_same_connection(either):
    live = either
    body = json.dumps({"emails": ["g@example.com"]}).encode()
    head = (
        f"POST {SHARINGS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Token token=test-token\r\n"
        f"Content-Type: application/json\r\nExpect: 100-continue\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with live.connect() as sock:
        sock.sendall(head.encode())
        [interim] = answers_on(sock, 1)
        sock.sendall(body + request_with())  # then a second request on the same connection
        final, health = answers_on(sock, 2)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final.startswith(b"HTTP/1.1 200 ") and health.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("length", [str(10**12), "-1"])
def test_connection_close_is_said_once_and_done(either, length):
    live = either
    head = f"POST {SHARINGS} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
    with live.connect() as sock:
        sock.sendall(head.encode() + b'{"emails": []}')
        [answer] = answers_on(sock, 1)
        assert sock.recv(1) == b""  # closed: where the body ends is unknown
    assert answer.startswith(b"HTTP/1.1 400 ")  # 13030 (no token) comes before the body
    assert answer.lower().count(b"\r\nconnection:") == 1


def test_an_unread_body_is_never_read_as_the_next_request(either):
    live = either
    unread = b'{"x": "GET /__mock/health HTTP/1.1"}'
    first = f"POST /__mock/nowhere HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(unread)}"
    first += "\r\n\r\n"
    with live.connect() as sock:
        sock.sendall(first.encode() + unread + request_with())
        answers = answers_on(sock, 2)
    assert answers[0].startswith(b"HTTP/1.1 404 ")
    if b"\r\nconnection: close" not in answers[0].lower():
        assert answers[1].startswith(b"HTTP/1.1 200 ")
        assert b'"status":"ok"' in answers[1]


# -- descriptors run out, deadlines ---------------------------------------------------------------
def few_descriptors() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (40, hard)
    )  # under the worker's bound of 32 + its own


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_on_accept_neither_crashes_nor_spins_the_worker():
    with serving(preexec=few_descriptors) as served:
        [worker] = wait_for_workers(served, 1)
        idle = open_idle(served, 60)  # accept() meets EMFILE before the connection bound
        try:
            assert requests.get(f"{served.url}/__mock/health", timeout=3).status_code == 200
            assert children(served.process.pid) == [worker]  # not a new one: it never crashed
            before = cpu_seconds(worker)
            threading.Event().wait(1)  # a spinning worker would burn this whole second
            assert cpu_seconds(worker) - before < 0.5
            assert served.process.poll() is None
        finally:
            close_all(idle)


def test_a_read_past_the_request_deadline_ends_the_request():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        unreader = DeadlineUnreader(ours)
        unreader.deadline = time.monotonic() + 0.2
        theirs.sendall(b"partial")
        assert unreader.chunk() == b"partial"
        with pytest.raises(ClientTooSlow):
            unreader.chunk()  # nothing more comes: the deadline passes
        assert ours.gettimeout() == WRITE_SECONDS  # what bounds writing the answer


def test_a_large_body_past_its_deadline_in_a_thread_says_what_arrived_and_why():
    # Over BODY_BUFFER_BYTES a thread reads the body: the deadline struck inside gunicorn's
    # readers, which kept the 28 bytes, and the reason said "0 of the 100000" and not why.
    ours, theirs = socket.socketpair()
    with ours, theirs:
        unreader = DeadlineUnreader(ours)
        unreader.deadline = time.monotonic() + 0.2
        body = SlowBodyInput(Body(LengthReader(unreader, 100_000)), unreader)
        theirs.sendall(b"x" * 28)
        with pytest.raises(BodyUnread) as refused:
            read_body({"wsgi.input": body, "CONTENT_LENGTH": "100000"}, max_bytes=1_000_000)
    assert refused.value.reason == (
        "body: 28 of the 100000 bytes Content-Length announced arrived"
        " (reading the request: the client was too slow)"
    )
