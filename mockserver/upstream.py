"""The proxy's HTTP/1.1 client to the real Pisano: kept-alive connections, bytes as they are.

Not `http.client`: it sends a request's head and body in two writes (a second loopback delivery,
and Nagle's wait on a kept-alive connection), parses headers through the email package, and
re-cases nothing we need. Here a request is one write of bytes we built from the client's own
header lines, and an answer is read as status line, header lines (names as sent, in order,
repeats kept) and body (Content-Length, chunked de-chunked, or up to the close).
"""

from __future__ import annotations

import queue
import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

MAX_LINE = 64 * 1024  # a status or header line longer than this is no answer we can pass on
MAX_HEADERS = 256
REUSE_SECONDS = 4.0  # an idle connection older than this is not reused: servers close them
# (the emulator after 5 s); a request sent on one being closed would be lost or sent twice.
NO_BODY_STATUSES = frozenset({204, 304})
MAX_ANSWER_BYTES = 256 << 20  # an answer body over this is no Pisano answer: a 502, not our memory
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2: a header's name
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # never in a header's value


class UpstreamFailure(Exception):
    """No whole answer: unreachable, too slow, or closed mid-answer."""


class NothingArrived(UpstreamFailure):
    """The connection closed before any byte of an answer: a kept-alive connection the server
    had closed, which is worth one more try on a new one."""


@dataclass
class Answer:
    status: int
    reason_phrase: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool


class Connection:
    """One connection to the upstream, answering one request at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: IO[bytes] = sock.makefile("rb")
        self.idle_since = time.monotonic()

    def send(self, request: bytes, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(request)
        except OSError as error:  # a kept-alive connection the server closed, most likely
            raise NothingArrived(f"{type(error).__name__}: {error}") from None

    def receive(self, method: str, timeout: float) -> Answer:
        try:
            answer = read_answer(self.reader, method)
        except TimeoutError:
            raise UpstreamFailure(f"no answer within {timeout:g} s") from None
        except OSError as error:
            raise UpstreamFailure(f"{type(error).__name__}: {error}") from None
        self.idle_since = time.monotonic()
        return answer

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def read_answer(reader: IO[bytes], method: str) -> Answer:
    while True:  # 1xx interim answers (100 Continue) are the server's to us: skipped
        version, status, phrase = status_line(reader)
        headers = header_lines(reader)
        if not 100 <= status < 200 or status == 101:
            break
    body, delimited = read_body(reader, method, status, headers)
    keep = delimited and version != "HTTP/1.0" and not says_close(headers)
    return Answer(status, phrase, headers, body, keep)


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
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
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
    encoding = header_value(headers, "transfer-encoding")
    if encoding is not None and "chunked" in encoding.lower():
        return dechunked(reader), True
    length = header_value(headers, "content-length")
    if length is not None:
        if not length.strip().isdigit():
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
    """A request sent upstream, its answer still to read."""

    def __init__(
        self, upstream: Upstream, conn: Connection, method: str, request: bytes, reused: bool
    ) -> None:
        self.upstream, self.conn, self.method = upstream, conn, method
        self.request, self.reused = request, reused

    def answer(self) -> Answer:
        timeout = self.upstream.timeout
        try:
            return self.upstream.settle(self.conn, self.conn.receive(self.method, timeout))
        except NothingArrived:
            self.conn.close()
            if not self.reused:
                raise
        except UpstreamFailure:
            self.conn.close()
            raise
        # A kept-alive connection the server had closed answered nothing: once more, on a new one.
        self.conn, self.reused = self.upstream.sent_on_new(self.request), False
        return self.answer()


class Upstream:
    """The real Pisano at `url`, over a pool of kept-alive connections (LIFO: the warmest)."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--upstream: {url!r} is not an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.prefix = parts.path.rstrip("/")
        self.host_header = parts.netloc.rpartition("@")[2]
        self.address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()

    def begin(self, method: str, request: bytes) -> Exchange:
        """Send `request` (the bytes of a whole HTTP/1.1 request); its answer is read by the
        exchange's `answer()`, so that other work can run while the upstream works on it."""
        conn = self._idle_connection()
        if conn is not None:
            try:
                conn.send(request, self.timeout)
                return Exchange(self, conn, method, request, reused=True)
            except NothingArrived:
                conn.close()  # it was closed under us: on a new one
        return Exchange(self, self.sent_on_new(request), method, request, reused=False)

    def sent_on_new(self, request: bytes) -> Connection:
        conn = self._connect()
        try:
            conn.send(request, self.timeout)
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
            if time.monotonic() - conn.idle_since < REUSE_SECONDS:
                return conn
            conn.close()

    def _connect(self) -> Connection:
        try:
            sock = socket.create_connection(self.address, timeout=self.timeout)
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
        return Connection(sock)
