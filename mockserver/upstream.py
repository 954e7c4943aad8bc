"""The proxy's HTTP/1.1 client to the real Pisano: kept-alive connections, bytes as they are.

Not `http.client`: it sends a request's head and body in two writes (a second loopback delivery,
and Nagle's wait on a kept-alive connection), parses headers through the email package, and
re-cases nothing we need. Here a request is one write of bytes we built from the client's own
header lines, and an answer is read as status line, header lines (names as sent, in order,
repeats kept) and body (Content-Length, chunked de-chunked, or up to the close).
"""

from __future__ import annotations

import io
import queue
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

MAX_LINE = 64 * 1024  # a status or header line longer than this is no answer we can pass on
MAX_HEADERS = 256
REUSE_SECONDS = 4.0  # an idle connection older than this is not reused: servers close them
# (the emulator after 5 s); a request sent on one being closed would be lost or sent twice.
WAIT_SLICE_SECONDS = 0.25  # a wait for the upstream looks this often whether the server stops
STOP_ANSWER_SECONDS = 5.0  # after SIGTERM, within serving's 8 s grace: answered, recorded
NO_BODY_STATUSES = frozenset({204, 304})
MAX_ANSWER_BYTES = 256 << 20  # an answer body over this is no Pisano answer: a 502, not our memory
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2: a header's name
STATUS = re.compile(r"[1-5][0-9][0-9]")  # 100-599: what our server can pass on (RFC 9110 15)
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # never in a header's value


class UpstreamFailure(Exception):
    """No whole answer: unreachable, too slow, or closed mid-answer."""


class NothingArrived(UpstreamFailure):
    """The connection closed before any byte of an answer. Whether the upstream acted on the
    request is unknown: only a GET or HEAD is sent again (RFC 9110 9.2.2)."""


class NothingSent(UpstreamFailure):
    """Not one byte of the request was written: it may go on another connection, whatever it is."""


RETRIED_METHODS = frozenset({"GET", "HEAD"})  # safe to send twice; a POST never is (SPEC 2.8)


@dataclass
class Answer:
    status: int
    reason_phrase: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool


class Stop:
    """The server is stopping (SIGTERM): every answer still awaited gets a deadline within the
    grace period, so that its client gets our 502 and the pair is recorded before the exit."""

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self.stopping = stopping or threading.Event()
        self.at: float | None = None

    def capped(self, deadline: float) -> float:
        if self.at is None and self.stopping.is_set():
            self.at = time.monotonic() + STOP_ANSWER_SECONDS
        return deadline if self.at is None else min(deadline, self.at)


class SocketReader(io.RawIOBase):
    """The socket's bytes under one deadline for a whole answer (not per read: an upstream that
    drips a byte a second must not hold the client for ever); without a deadline, a peek that
    never waits (whether an idle connection has been closed or holds stray bytes)."""

    def __init__(self, sock: socket.socket, stop: Stop) -> None:
        self.sock, self.stop = sock, stop
        self.deadline: float | None = None
        self.eof = False
        self.timeout: float | None = None  # the socket's, set only when it changes (a syscall)

    def readable(self) -> bool:
        return True

    def wait(self, timeout: float) -> None:
        if timeout != self.timeout:
            self.sock.settimeout(timeout)
            self.timeout = timeout

    def readinto(self, buffer: Any) -> int | None:
        while True:
            try:
                return self.received(buffer)
            except TimeoutError:
                if self.deadline is None or time.monotonic() >= self.deadline:
                    raise  # else a slice of the wait is over: is the server stopping?

    def received(self, buffer: Any) -> int | None:
        """One read: in slices of WAIT_SLICE_SECONDS (the deadline is kept within one slice)."""
        if self.deadline is None:
            self.wait(0.0)
        else:
            self.deadline = self.stop.capped(self.deadline)
            remaining(self.deadline)
            self.wait(WAIT_SLICE_SECONDS)
        try:
            count = self.sock.recv_into(buffer)
        except (BlockingIOError, ssl.SSLWantReadError):
            return None
        self.eof = self.eof or count == 0
        return count


def remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class Connection:
    """One connection to the upstream, answering one request at a time."""

    def __init__(self, sock: socket.socket, stop: Stop) -> None:
        self.sock = sock
        self.raw = SocketReader(sock, stop)
        self.reader: IO[bytes] = io.BufferedReader(self.raw, 64 * 1024)
        self.idle_since = time.monotonic()
        self.reused = False  # taken from the pool (set there)
        self.send_cut: OSError | None = None  # the request was cut: an early answer may be read

    def send(self, request: bytes, deadline: float) -> None:
        """Write the whole request; NothingSent when not one byte of it was written."""
        view, written = memoryview(request), 0
        self.raw.wait(WAIT_SLICE_SECONDS)
        try:
            while written < len(view):
                remaining(deadline)  # TimeoutError past it
                try:
                    written += self.sock.send(view[written:])
                except TimeoutError:
                    continue  # a slice of the wait: the deadline is looked at above
        except OSError as error:
            if written == 0:
                raise NothingSent(f"{type(error).__name__}: {error}") from None
            self.send_cut = error  # the upstream may have answered before reading it all

    def receive(self, method: str, deadline: float, timeout: float) -> Answer:
        self.raw.deadline = deadline
        try:
            answer = read_answer(self.reader, method)
        except TimeoutError:
            if self.raw.stop.at is not None:
                raise UpstreamFailure("no whole answer before the proxy stopped") from None
            raise UpstreamFailure(f"no whole answer within {timeout:g} s") from None
        except NothingArrived:
            if self.send_cut is not None:
                raise UpstreamFailure(self.cut_reason()) from None
            raise
        except OSError as error:
            raise UpstreamFailure(self.cut_reason(error)) from None
        finally:
            self.raw.deadline = None
        answer.keep_alive = answer.keep_alive and self.send_cut is None
        self.idle_since = time.monotonic()
        return answer

    def cut_reason(self, error: OSError | None = None) -> str:
        error = error or self.send_cut
        return f"{type(error).__name__}: {error}"

    def still_open(self) -> bool:
        """Idle and reusable: not closed by the server, no stray bytes (the end of an answer
        that lied about its length) that would be read as the next answer's."""
        try:
            return not self.reader.peek(1) and not self.raw.eof  # type: ignore[attr-defined]
        except OSError:
            return False

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def read_answer(reader: IO[bytes], method: str) -> Answer:
    while True:  # 1xx interim answers (100 Continue) are the server's to us: skipped
        version, status, phrase = status_line(reader)
        headers = header_lines(reader)
        if not 100 <= status < 200 or status == 101:
            break
    framed_by_length = lengths_agree(headers)
    body, delimited = read_body(reader, method, status, headers)
    if is_chunked(headers) and framed_by_length:
        # RFC 9112 6.3: chunked wins; its Content-Length is not passed on, nor the connection kept.
        headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
        delimited = False
    keep = delimited and version != "HTTP/1.0" and not says_close(headers)
    return Answer(status, phrase, headers, body, keep)


def lengths_agree(headers: list[tuple[str, str]]) -> bool:
    """Whether the answer has a Content-Length; UpstreamFailure when they differ (RFC 9112 6.3:
    no framing we could trust, for this answer or the next on the connection)."""
    values = {
        part.strip()
        for name, value in headers
        if name.lower() == "content-length"
        for part in value.split(",")
    }
    if len(values) > 1:
        raise UpstreamFailure(f"Content-Length headers that differ: {sorted(values)!r}"[:120])
    return bool(values)


def is_chunked(headers: list[tuple[str, str]]) -> bool:
    encoding = header_value(headers, "transfer-encoding")
    return encoding is not None and "chunked" in encoding.lower()


def status_line(reader: IO[bytes]) -> tuple[str, int, str]:
    try:
        line = reader.readline(MAX_LINE + 1)
    except ConnectionResetError:
        line = b""
    if not line:
        raise NothingArrived("the connection closed before any answer")
    text = line.decode("latin-1").rstrip("\r\n")
    version, _, rest = text.partition(" ")
    code, _, phrase = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not STATUS.fullmatch(code):
        raise UpstreamFailure(f"not an HTTP/1.x status line: {text[:80]!r}")
    return version, int(code), phrase


def header_lines(reader: IO[bytes]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for _ in range(MAX_HEADERS + 1):
        line = reader.readline(MAX_LINE + 1)
        if not line.endswith(b"\n"):
            raise UpstreamFailure("the answer's head was cut short or a line is too long")
        if line in (b"\r\n", b"\n"):
            return headers
        text = line.decode("latin-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and headers:  # an obsolete folded line: one value
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {text.strip()}")
            continue
        name, colon, value = text.partition(":")
        value = value.strip(" \t")
        if not colon or not TOKEN.fullmatch(name) or CONTROL.search(value):
            # What our server could not send on (gunicorn refuses it): no answer we can pass on.
            raise UpstreamFailure(f"not a header line: {text[:80]!r}")
        headers.append((name, value))
    raise UpstreamFailure(f"more than {MAX_HEADERS} header lines")


def read_body(
    reader: IO[bytes], method: str, status: int, headers: list[tuple[str, str]]
) -> tuple[bytes, bool]:
    """The body, and whether its end was known without the connection closing."""
    if method == "HEAD" or status in NO_BODY_STATUSES:
        return b"", True
    if is_chunked(headers):
        return dechunked(reader), True
    length = header_value(headers, "content-length")
    if length is not None:
        length = length.split(",")[0].strip()  # "5, 5": the same length repeated (agreed above)
        if not length.isdigit():
            raise UpstreamFailure(f"Content-Length: {length[:40]!r} is not a length")
        return exactly(reader, bounded(int(length))), True
    body = reader.read(MAX_ANSWER_BYTES + 1)  # delimited by the close
    return body[: bounded(len(body))], False


def bounded(size: int, held: int = 0) -> int:
    if held + size > MAX_ANSWER_BYTES:
        raise UpstreamFailure(f"the answer's body is over {MAX_ANSWER_BYTES} bytes")
    return size


def exactly(reader: IO[bytes], size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise UpstreamFailure(f"the answer was cut short ({len(data)} of {size} body bytes)")
    return data


def dechunked(reader: IO[bytes]) -> bytes:
    chunks: list[bytes] = []
    held = 0
    while True:
        line = reader.readline(MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise UpstreamFailure("the chunked answer was cut short or broken") from None
        if size == 0:
            header_lines(reader)  # trailers: dropped (a proxy may)
            return b"".join(chunks)
        chunks.append(exactly(reader, bounded(size, held)))
        held += size
        if reader.readline(3) not in (b"\r\n", b"\n"):
            raise UpstreamFailure("the chunked answer was cut short or broken")


def header_value(headers: list[tuple[str, str]], lowered: str) -> str | None:
    return next((value for name, value in headers if name.lower() == lowered), None)


def says_close(headers: list[tuple[str, str]]) -> bool:
    value = header_value(headers, "connection")
    return value is not None and "close" in value.lower()


class Exchange:
    """A request sent upstream, its answer still to read, all under one deadline."""

    def __init__(
        self, upstream: Upstream, conn: Connection, method: str, request: bytes, deadline: float
    ) -> None:
        self.upstream, self.conn, self.method = upstream, conn, method
        self.request, self.deadline = request, deadline
        self.reused = conn.reused

    def answer(self) -> Answer:
        timeout = self.upstream.timeout
        try:
            answer = self.conn.receive(self.method, self.deadline, timeout)
        except NothingArrived:
            self.conn.close()
            if not (self.reused and self.method in RETRIED_METHODS):
                raise UpstreamFailure(never_twice(self.method)) from None
        except UpstreamFailure:
            self.conn.close()
            raise
        else:
            return self.upstream.settle(self.conn, answer)
        # A kept-alive GET or HEAD that got nothing: once more, on a new connection.
        self.conn = self.upstream.sent_on_new(self.request, self.deadline)
        self.reused = False
        return self.answer()


def never_twice(method: str) -> str:
    said = "the connection closed before any answer"
    return said if method in RETRIED_METHODS else f"{said} (a {method} is never sent twice)"


class Upstream:
    """The real Pisano at `url`, over a pool of kept-alive connections (LIFO: the warmest)."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--upstream: {url!r} is not an http:// or https:// URL")
        if "@" in parts.netloc:  # never echoed: it holds a password
            raise ValueError(
                "--upstream: credentials in the URL are not sent; give none there "
                "(the client's own Authorization goes upstream unchanged)"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.prefix = parts.path.rstrip("/")
        self.host_header = parts.netloc
        self.address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()
        self.stop = Stop()  # the proxy gives it the server's stopping event

    def begin(self, method: str, request: bytes) -> Exchange:
        """Send `request` (the bytes of a whole HTTP/1.1 request); its answer is read by the
        exchange's `answer()`, so that other work can run while the upstream works on it. One
        deadline, `timeout` from now, covers connecting, sending and the whole answer."""
        deadline = time.monotonic() + self.timeout
        conn = self._idle_connection()
        if conn is not None:
            try:
                conn.send(request, deadline)
                return Exchange(self, conn, method, request, deadline)
            except NothingSent:
                conn.close()  # closed under us before one byte went: on a new one, whatever it is
            except UpstreamFailure:
                conn.close()
                raise
        return Exchange(self, self.sent_on_new(request, deadline), method, request, deadline)

    def sent_on_new(self, request: bytes, deadline: float) -> Connection:
        conn = self._connect(deadline)
        try:
            conn.send(request, deadline)
        except UpstreamFailure:
            conn.close()
            raise
        return conn

    def settle(self, conn: Connection, answer: Answer) -> Answer:
        if answer.keep_alive:
            self._idle.put(conn)
        else:
            conn.close()
        return answer

    def _idle_connection(self) -> Connection | None:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return None
            if time.monotonic() - conn.idle_since < REUSE_SECONDS and conn.still_open():
                conn.reused = True
                return conn
            conn.close()

    def _connect(self, deadline: float) -> Connection:
        try:
            sock = socket.create_connection(self.address, timeout=remaining(deadline))
        except TimeoutError:
            raise UpstreamFailure(f"no connection within {self.timeout:g} s") from None
        except OSError as error:
            raise UpstreamFailure(f"{type(error).__name__}: {error}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_hostname=self.address[0])
            except (OSError, ssl.SSLError) as error:
                sock.close()
                raise UpstreamFailure(f"TLS: {error}") from None
        return Connection(sock, self.stop)
