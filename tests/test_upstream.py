"""upstream.py: how the proxy reads an upstream's answer, as a table of raw answers."""

from __future__ import annotations

import contextlib
import io
import re
import socket
import threading
import time

import pytest

from mockserver.upstream import NothingArrived, Upstream, UpstreamFailure, read_answer

HEAD = b"HTTP/1.1 200 OK\r\nServer: s\r\nx-Case: v\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n"

READ = {
    "a Content-Length body": (
        HEAD + b"Content-Length: 5\r\n\r\nhelloNEXT",
        "GET",
        (200, "OK", b"hello", True),
    ),
    "a chunked body with trailers": (
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nT: 1\r\n\r\n",
        "GET",
        (200, "OK", b"hello", True),
    ),
    "a body up to the close": (HEAD + b"\r\nhello", "GET", (200, "OK", b"hello", False)),
    "HEAD with a Content-Length": (
        HEAD + b"Content-Length: 5\r\n\r\n",
        "HEAD",
        (200, "OK", b"", True),
    ),
    "204": (b"HTTP/1.1 204 No Content\r\n\r\n", "POST", (204, "No Content", b"", True)),
    "100 Continue first": (
        b"HTTP/1.1 100 Continue\r\n\r\n" + HEAD + b"Content-Length: 2\r\n\r\nok",
        "POST",
        (200, "OK", b"ok", True),
    ),
    "HTTP/1.0": (
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "GET",
        (200, "OK", b"ok", False),
    ),
    "Connection: close": (
        HEAD + b"Connection: close\r\nContent-Length: 2\r\n\r\nok",
        "GET",
        (200, "OK", b"ok", False),
    ),
    "a phrase of our own and bare LFs": (
        b"HTTP/1.1 299 Quite Fine\nContent-Length: 2\n\nok",
        "GET",
        (299, "Quite Fine", b"ok", True),
    ),
}


@pytest.mark.parametrize("case", READ)
def test_an_answer_is_read_as_sent(case):
    raw, method, (status, phrase, body, keep) = READ[case]
    answer = read_answer(io.BytesIO(raw), method)
    assert (answer.status, answer.reason_phrase, answer.body, answer.keep_alive) == (
        status,
        phrase,
        body,
        keep,
    )


def test_header_lines_keep_their_case_order_and_repeats():
    answer = read_answer(io.BytesIO(HEAD + b"Content-Length: 0\r\n\r\n"), "GET")
    assert answer.headers == [
        ("Server", "s"),
        ("x-Case", "v"),
        ("Set-Cookie", "a"),
        ("Set-Cookie", "b"),
        ("Content-Length", "0"),
    ]


def test_a_folded_line_is_one_value():
    answer = read_answer(io.BytesIO(b"HTTP/1.1 200 OK\r\nX: a\r\n  b\r\n\r\n"), "HEAD")
    assert answer.headers == [("X", "a b")]


FAILURES = {
    "nothing at all": (b"", NothingArrived, "before any answer"),
    "a body cut short": (HEAD + b"Content-Length: 9\r\n\r\nhello", UpstreamFailure, "5 of 9"),
    "a head cut short": (b"HTTP/1.1 200 OK\r\nServer: s", UpstreamFailure, "head was cut short"),
    "not HTTP": (b"SSH-2.0-OpenSSH\r\n", UpstreamFailure, "not an HTTP/1.x status line"),
    "a chunk cut short": (
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n9\r\nhel",
        UpstreamFailure,
        "cut short",
    ),
    "a lying length": (HEAD + b"Content-Length: -1\r\n\r\n", UpstreamFailure, "is not a length"),
    "a header line without a colon": (
        b"HTTP/1.1 200 OK\r\nnonsense\r\n\r\n",
        UpstreamFailure,
        "not a header line",
    ),
    "a control character in a value": (
        b"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n",
        UpstreamFailure,
        "not a header line",
    ),
    "a space in a name": (
        b"HTTP/1.1 200 OK\r\nX Y: a\r\n\r\n",
        UpstreamFailure,
        "not a header line",
    ),
    "a flood of headers": (
        b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 300 + b"\r\n",
        UpstreamFailure,
        "more than 256 header lines",
    ),
}


@pytest.mark.parametrize("case", FAILURES)
def test_an_answer_that_cannot_be_passed_on_is_a_failure_saying_why(case):
    raw, kind, said = FAILURES[case]
    with pytest.raises(kind) as raised:
        read_answer(io.BytesIO(raw), "GET")
    assert said in str(raised.value)


@pytest.mark.parametrize(
    "raw",
    [
        HEAD + b"Content-Length: 300000000\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n10000001\r\n",
    ],
)
def test_an_answer_over_the_bound_is_a_failure_before_it_is_read(raw):
    with pytest.raises(UpstreamFailure, match="body is over"):
        read_answer(io.BytesIO(raw + b"x" * 1000), "GET")


# -- against a raw-socket upstream: what is sent, on which connection --------------------------
class Scripted:
    """An upstream on raw sockets: each connection runs `script(conn, seen)`, where `seen` logs
    every request it read (so a request sent twice shows twice)."""

    def __init__(self, script) -> None:
        self.script = script
        self.seen: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.acceptor = threading.Thread(target=self.serve, daemon=True)
        self.acceptor.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.run, args=(conn,), daemon=True).start()

    def run(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # a peer gone is the test's point, not a failure
            self.script(conn, self)

    def read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = (
            int(re.search(rb"Content-Length: (\d+)", head).group(1)) if b"Length" in head else 0
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.seen.append(head + b"\r\n\r\n" + body)
        return head

    def close(self) -> None:
        """Wake the accepting thread before the close: else it may accept on the descriptor
        number once another test's listener has it, and answer that test's requests."""
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.acceptor.join(5)
        self.listener.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def request(method: str, name: str) -> bytes:
    return f"{method} /{name} HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody".encode()


def answered_then_dropped(conn, up) -> None:
    """The first request answered, the second read and then the connection closed unanswered:
    a worker that acted on it and died, or a balancer that dropped it after forwarding."""
    up.read_request(conn)
    conn.sendall(OK)
    if up.read_request(conn) and up.connections == 1:
        return
    conn.sendall(OK)


@pytest.fixture
def scripted():
    made: list[Scripted] = []

    def make(script) -> Scripted:
        made.append(Scripted(script))
        return made[-1]

    yield make
    for up in made:
        up.close()


def exchange(upstream: Upstream, method: str, name: str) -> bytes:
    return upstream.begin(method, request(method, name)).answer().body


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_request_that_may_have_been_acted_on_is_never_sent_twice(scripted, method):
    up = scripted(answered_then_dropped)
    upstream = Upstream(up.url, 5)
    assert exchange(upstream, method, "first") == b"ok"
    with pytest.raises(UpstreamFailure, match="never sent twice"):
        exchange(upstream, method, "second")
    assert sum(b"/second " in seen for seen in up.seen) == 1


def test_a_get_that_got_nothing_on_a_kept_alive_connection_is_sent_once_more(scripted):
    up = scripted(answered_then_dropped)
    upstream = Upstream(up.url, 5)
    assert exchange(upstream, "GET", "first") == b"ok"
    assert exchange(upstream, "GET", "second") == b"ok"
    assert up.connections == 2


def test_a_pooled_connection_the_upstream_closed_is_not_used(scripted):
    closed = threading.Event()

    def answer_then_close(conn, up) -> None:
        up.read_request(conn)
        conn.sendall(OK)
        conn.close()
        closed.set()

    up = scripted(answer_then_close)
    upstream = Upstream(up.url, 5)
    assert exchange(upstream, "POST", "first") == b"ok"
    assert closed.wait(5)
    assert exchange(upstream, "POST", "second") == b"ok"  # not our 502: it went on a new one
    assert [b"/second " in seen for seen in up.seen] == [False, True]


BAD_FRAMING = {
    "bytes after the Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
    "a body on a 204": b"HTTP/1.1 204 No Content\r\n\r\nok",
    "a body on a 304": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\nok",
}


@pytest.mark.parametrize("case", BAD_FRAMING)
def test_an_answer_that_lied_about_its_end_never_poisons_the_next_request(scripted, case):
    def lie_first(conn, up) -> None:
        up.read_request(conn)
        conn.sendall(BAD_FRAMING[case] if up.connections == 1 else OK)
        while up.read_request(conn):
            conn.sendall(OK)

    up = scripted(lie_first)
    upstream = Upstream(up.url, 5)
    upstream.begin("GET", request("GET", "first")).answer()
    time.sleep(0.05)  # not a throttle: the stray bytes reach our socket (loopback, one write)
    assert exchange(upstream, "GET", "second") == b"ok"
    assert up.connections == 2


def test_an_answer_after_a_head_with_a_body_is_not_read_from_its_bytes(scripted):
    def head_with_body(conn, up) -> None:
        up.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nxx" if up.connections == 1 else OK
        )
        while up.read_request(conn):
            conn.sendall(OK)

    up = scripted(head_with_body)
    upstream = Upstream(up.url, 5)
    assert upstream.begin("HEAD", request("HEAD", "first")).answer().body == b""
    time.sleep(0.05)
    assert exchange(upstream, "GET", "second") == b"ok"
    assert up.connections == 2


FRAMING_FAILURES = {
    "two Content-Lengths that differ": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nhello",
        "Content-Length headers that differ",
    ),
    "a list of lengths that differ": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 5\r\n\r\nhello",
        "Content-Length headers that differ",
    ),
    "a status under 100": (b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n", "status line"),
    "a status over 599": (b"HTTP/1.1 600 High\r\nContent-Length: 0\r\n\r\n", "status line"),
}


@pytest.mark.parametrize("case", FRAMING_FAILURES)
def test_an_answer_that_cannot_be_framed_is_a_failure(case):
    raw, said = FRAMING_FAILURES[case]
    with pytest.raises(UpstreamFailure, match=said):
        read_answer(io.BytesIO(raw), "GET")


def test_the_same_length_twice_is_one_length():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"
    assert read_answer(io.BytesIO(raw), "GET").body == b"ok"


def test_chunked_wins_over_a_content_length_which_is_not_passed_on():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw = head + b"2\r\nok\r\n0\r\n\r\n"
    answer = read_answer(io.BytesIO(raw), "GET")
    assert (answer.body, answer.keep_alive) == (b"ok", False)
    assert [n for n, _ in answer.headers] == ["Transfer-Encoding"]


def test_one_deadline_covers_the_whole_answer_not_each_read(scripted):
    def drip(conn, up) -> None:
        up.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(40):  # 2 s in all, each byte well within the 0.5 s
            conn.sendall(b"x")
            time.sleep(0.05)

    up = scripted(drip)
    with pytest.raises(UpstreamFailure, match=r"no whole answer within 0\.5 s"):
        exchange(Upstream(up.url, 0.5), "GET", "drip")


def test_an_early_answer_to_a_large_body_is_passed_on(scripted):
    def early(conn, up) -> None:
        conn.recv(1024)  # the head only: refused before the body is read
        conn.sendall(
            b"HTTP/1.1 413 Too Large\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly"
        )
        conn.shutdown(socket.SHUT_WR)
        time.sleep(0.5)  # the rest of the body is not read; then the close resets

    up = scripted(early)
    big = b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 20000000\r\n\r\n" + b"x" * 20_000_000
    answer = Upstream(up.url, 5).begin("POST", big).answer()
    assert (answer.status, answer.body) == (413, b"early")


def test_credentials_in_the_upstream_url_are_refused_without_echoing_them():
    with pytest.raises(ValueError) as raised:
        Upstream("http://apiuser:supersecretpw@127.0.0.1:1", 1)
    assert "supersecretpw" not in str(raised.value) and "credentials" in str(raised.value)
