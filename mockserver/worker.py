"""The gunicorn worker `serve` runs (SPEC 2.5): gthread, hardened against slow and idle clients.

gunicorn's ThreadWorker hands a new connection to a thread, which waits up to 5 s for its first
bytes and then reads its head for as long as the client trickles it: 16 slow clients hold all 16
threads. Here the main poller does all the waiting, without a thread:

- a connection's first bytes and its whole request head (request line and headers) are read in the
  poller, non-blocking, within HEAD_SECONDS; so are bytes a client pipelined behind an answered
  request, and bytes left after a short Content-Length: a thread never waits on a head;
- a body up to BODY_BUFFER_BYTES is read in the poller too, within BODY_SECONDS of its head's end,
  so only a whole small request takes a thread; a larger body (or one after 100 Continue) is read
  in the thread by the same deadline; a body that misses it is refused by the app, saying what
  arrived (SlowBodyInput);
- an answer is written by its thread within WRITE_SECONDS: a client that stops reading an answer
  larger than the socket buffers holds that thread that long (not yet moved to the poller);
- at the connection bound the connection idle longest (nothing sent yet, or kept alive between
  requests) is closed to admit the new one, never one with a request in progress; running out of
  descriptors on accept does the same, or pauses accepting, never crashes or spins the worker;
- a request gunicorn cannot parse (head limits included) is answered with the catalogue's 13000
  body, `X-Pisano-Mock-Reason` naming the rule, never gunicorn's HTML page.

It relies on gunicorn 27's ThreadWorker internals (pending_conns, keepalived_conns, nr_conns),
hence the pin in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import re
import selectors
import socket
import threading
import time
from collections import deque
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any

from gunicorn import util
from gunicorn.http.body import LengthReader
from gunicorn.http.errors import (
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
)
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

from . import access_log
from .catalogue import ERROR_CONTENT_TYPE, render_body
from .faults import end_delays
from .headers import RAW_HEAD_KEY, REASON, VERBATIM_KEY, ascii_header

THREADS = 16
IDLE_SECONDS = 5  # a new connection's wait for its first byte; keep-alive between requests
HEAD_SECONDS = 5.0  # from a head's first byte to its end
BODY_SECONDS = 15.0  # once the head is in, to read the body
WRITE_SECONDS = 15.0  # to send an answer to a client that reads it slowly
STOP_LINGER_SECONDS = 0.5  # SIGTERM: idle connections stay this long for a request already sent
ACCEPT_PAUSE_SECONDS = 0.5  # out of descriptors with nothing idle to close: stop accepting a while

MAX_REQUEST_LINE = 8190  # bytes, as gunicorn's own maximum (and nginx's 8 KiB buffers)
MAX_HEADER_FIELDS = 100
MAX_FIELD_BYTES = 8190
MAX_HEAD_BYTES = 64 * 1024  # all header lines together
_HEAD_CAP = MAX_REQUEST_LINE + MAX_HEAD_BYTES + 4  # past this the parser refuses: stop buffering
_HEAD_READ = 16 * 1024
# A body this size or less is read in the poller before a thread takes its request, so clients
# trickling small bodies hold no thread. The everyday request is under 1 KiB, a few hundred
# recipients a few tens of KiB; past this (a 5,000-recipient body is 1.6 MB) the thread reads the
# rest within BODY_SECONDS, so the poller never holds more than this per connection.
BODY_BUFFER_BYTES = 64 * 1024
_CONTENT_LENGTH = re.compile(rb"\ncontent-length:([^\r\n]*)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\ntransfer-encoding:[^\n]*chunked", re.IGNORECASE)
_EXPECT = re.compile(rb"\nexpect:", re.IGNORECASE)  # the client waits for 100 Continue
GO, LENGTH, CHUNKED = "go", "length", "chunked"  # how a body is awaited in the poller
_CHUNK_LINE_MAX = 1024  # a chunk-size line longer than this is the parser's to refuse
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n", b"\n\r\n")  # bare LFs end it too: the parser refuses those
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_NOTHING_TO_ACCEPT = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED, errno.EINTR)

# gunicorn's messages for its three header limits → what our reason says.
HEADER_LIMITS = {
    "limit request headers fields": f"headers: more than {MAX_HEADER_FIELDS} fields",
    "limit request headers fields size": f"headers: a field over {MAX_FIELD_BYTES} bytes",
    "max buffer headers": f"headers: over {MAX_HEAD_BYTES} bytes in all",
}


class ClientTooSlow(ConnectionResetError):
    """A read or write past its deadline. A reset to gunicorn, which then drops the connection
    quietly; a body read by the app turns it into a 13000 refusal (bodies.py)."""

    def __init__(self, what: str) -> None:
        super().__init__(errno.ECONNRESET, f"{what}: the client was too slow")

    def __str__(self) -> str:  # said in a refusal's reason: no "[Errno 104]"
        return str(self.strerror)


class SlowBodyInput:
    """A request body read in a thread (`wsgi.input`). When its deadline strikes in the middle
    of a read, gunicorn's readers keep what did arrive and raise: that is given to the app first,
    then ClientTooSlow, so the refusal says how much came (bodies.read_body). Chunked bytes are
    held still framed: there only the error is passed on."""

    def __init__(self, body: Any, unreader: Any) -> None:
        self.body, self.unreader = body, unreader

    def read(self, size: int | None = -1) -> bytes:
        try:
            return bytes(self.body.read(size))
        except ClientTooSlow:
            if not isinstance(self.body.reader, LengthReader):
                raise
            stranded = self.body.buf.getvalue() + self.unreader.take_buffered()
            if not stranded:
                raise
            size = len(stranded) if size is None or size < 0 else size
            self.body.buf = io.BytesIO(stranded[size:])
            self.body.buf.seek(0, io.SEEK_END)
            return bytes(stranded[:size])

    def __getattr__(self, name: str) -> Any:  # readline, iteration: gunicorn's own
        return getattr(self.body, name)


class DeadlineUnreader(SocketUnreader):
    """Socket reads bounded by one deadline per request: a trickling client cannot hold a thread
    past it. Between reads the socket keeps WRITE_SECONDS, which bounds writing the answer."""

    deadline = float("inf")

    def chunk(self, size_hint: int | None = None) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ClientTooSlow("reading the request")
        self.sock.settimeout(remaining)
        try:
            return bytes(super().chunk(size_hint))
        except TimeoutError:
            raise ClientTooSlow("reading the request") from None
        finally:
            self.sock.settimeout(WRITE_SECONDS)


class BoundedRequest(Request):
    def parse(self, unreader: Any) -> Any:
        self.max_buffer_headers = MAX_HEAD_BYTES  # gunicorn's own total is fields × field size
        return super().parse(unreader)


class BoundedParser(RequestParser):
    mesg_class = BoundedRequest

    def __init__(self, cfg: Any, sock: socket.socket, client: Any) -> None:
        super().__init__(cfg, sock, client)
        self.unreader = DeadlineUnreader(sock)


class Connection(TConn):
    """A client connection: the request read so far in the poller, until a thread takes it."""

    initialized: bool

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.received = bytearray()
        self.head_end = -1  # where the head ends in `received`, once it has
        self.framing: tuple[str, int] = (GO, 0)  # how its body is awaited (framing())
        self.chunks_at = 0  # in `received`: the first chunk of a chunked body not yet whole
        self.raw_head: bytes | None = None  # the request head being answered (start_request)
        self.body_deadline: float | None = None  # from the head's end, in the poller or a thread

    def body_in(self) -> bool:
        """Whether the body is in, or is not the poller's to wait for."""
        kind, length = self.framing
        arrived = len(self.received) - self.head_end
        if kind == CHUNKED and arrived < BODY_BUFFER_BYTES:
            done, self.chunks_at = chunked_scan(self.received, self.chunks_at)
            return done
        return kind != LENGTH or arrived >= length

    def start_request(self, cfg: Any) -> None:
        """In the thread: a parser bounded by deadlines, fed what the poller read."""
        if not self.initialized:  # plain HTTP/1.1 only: no TLS, no HTTP/2 to negotiate
            self.initialized = True
            self.parser = BoundedParser(cfg, self.sock, self.client)
        self.sock.setblocking(True)
        deadline = self.body_deadline or time.monotonic() + BODY_SECONDS
        self.parser.unreader.deadline = deadline
        if self.received:
            self.parser.unreader.unread(bytes(self.received))
        # The head as the client wrote it (names in their case, repeats): what a proxy forwards.
        self.raw_head = bytes(self.received[: self.head_end]) if self.head_end >= 0 else None
        self.received, self.head_end, self.body_deadline = bytearray(), -1, None

    def close(self, graceful: bool = False) -> None:
        if self.sock.fileno() >= 0:  # a thread may have closed it already (close_in_thread)
            super().close(graceful)

    def close_in_thread(self) -> None:
        # gunicorn lingers up to 2 s draining a closed connection in the MAIN loop; here the
        # thread that answered pays for it, and the poller never stalls.
        util.close_graceful(self.sock)


class PisanoWorker(ThreadWorker):
    """gunicorn's gthread worker with the waiting moved to the poller (module docstring)."""

    wsgi: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = self.cfg.worker_connections
        self.worker_connections = 2**62  # gunicorn's loop never stops accepting: accept() does
        self.reading_heads: deque[Connection] = deque()  # timeouts: first byte + HEAD_SECONDS
        self.reading_bodies: deque[Connection] = deque()  # timeouts: head's end + BODY_SECONDS
        self.accept_resumes_at = 0.0

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: a graceful stop. Delays under way end now, so that the requests they hold are
        answered within the grace period (SPEC 2.5), then gunicorn's own stop."""
        end_delays()
        super().handle_exit(sig, frame)

    # -- accepting ------------------------------------------------------------------------------
    def accept(self, listener: Any) -> bool:
        """Take one connection from the backlog, if there is one and room for it."""
        if self.nr_conns >= self.max_connections and not self.evict_idlest():
            self.pause_accepting(0.0)  # every connection has a request in progress
            return False
        try:
            client, address = listener.accept()
        except OSError as error:
            self.accept_failed(error)
            return False
        self.nr_conns += 1
        # gunicorn writes the head and the body apart: on a kept-alive connection Nagle's
        # algorithm held the body for the client's delayed ACK, 40 ms a request (22 req/s).
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(self.cfg, client, address, listener.getsockname())
        conn.timeout = time.monotonic() + IDLE_SECONDS
        self.pending_conns.append(conn)
        self.poller.register(client, selectors.EVENT_READ, partial(self.read_request, conn))
        return True

    def accept_failed(self, error: OSError) -> None:
        if error.errno in _NOTHING_TO_ACCEPT:
            return
        if error.errno not in _OUT_OF_DESCRIPTORS:
            raise error
        if not self.evict_idlest():
            self.pause_accepting(ACCEPT_PAUSE_SECONDS)

    def pause_accepting(self, seconds: float) -> None:
        # gunicorn's loop asks set_accept_enabled(True) on each turn; may_accept() answers it.
        self.accept_resumes_at = time.monotonic() + seconds
        super().set_accept_enabled(False)

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self.may_accept())

    def may_accept(self) -> bool:
        if time.monotonic() < self.accept_resumes_at:
            return False
        return self.nr_conns < self.max_connections or bool(self.idle_queue())

    def idle_queue(self) -> deque[Any] | None:
        """The queue whose first connection has been idle longest: both are in timeout order,
        and a timeout is the moment idleness began plus IDLE_SECONDS in both."""
        queues = [q for q in (self.pending_conns, self.keepalived_conns) if q]
        return min(queues, key=lambda q: q[0].timeout) if queues else None

    def evict_idlest(self) -> bool:
        queue = self.idle_queue()
        if queue is None:
            return False
        self.forget(queue[0], queue)
        return True

    def forget(self, conn: Any, queue: deque[Any]) -> None:
        queue.remove(conn)
        self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    # -- reading a request in the poller --------------------------------------------------------
    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        self.read_request(conn, client)  # a kept-alive connection's next request

    def read_request(self, conn: Connection, _: Any = None) -> None:
        queue = self.queue_of(conn)
        try:
            data = conn.sock.recv(_HEAD_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client closed: a thread answers a whole head with what arrived
            if conn.head_end >= 0:
                self.hand_over(conn, queue)
            else:
                self.forget(conn, queue)
            return
        if not conn.received:  # its first bytes: the head's deadline starts now
            queue = self.move(conn, queue, self.reading_heads, HEAD_SECONDS)
        conn.received += data
        self.advance(conn, queue, len(data))

    def advance(self, conn: Connection, queue: deque[Any], new: int) -> None:
        """Hand the request to a thread once it is whole (or is the parser's to refuse)."""
        if conn.head_end < 0:
            conn.head_end = head_end(conn.received, len(conn.received) - new)
            if conn.head_end < 0:
                if len(conn.received) > _HEAD_CAP:
                    self.hand_over(conn, queue)  # past every limit: the parser refuses it
                return
            if header_bytes(conn.received, conn.head_end) > MAX_HEAD_BYTES:
                self.refuse(conn, queue, 431, HEADER_LIMITS["max buffer headers"])
                return
            conn.framing = framing(bytes(conn.received[: conn.head_end]))
            conn.chunks_at = conn.head_end
            queue = self.move(conn, queue, self.reading_bodies, BODY_SECONDS)
            conn.body_deadline = conn.timeout
        if conn.body_in():
            self.hand_over(conn, queue)

    def move(self, conn: Connection, old: deque[Any], new: deque[Any], seconds: float) -> Any:
        old.remove(conn)
        conn.timeout = time.monotonic() + seconds
        new.append(conn)
        return new

    def hand_over(self, conn: Connection, queue: deque[Any]) -> None:
        queue.remove(conn)
        self.poller.unregister(conn.sock)
        conn.data_ready = True
        self.enqueue_req(conn)

    def refuse(self, conn: Connection, queue: deque[Any], status: int, reason: str) -> None:
        with contextlib.suppress(OSError):  # best effort: the client may be gone
            conn.sock.send(refusal(status, reason))
        if conn.head_end >= 0:  # a request, which the access log tells of
            log_refusal(request_line(conn.received), status)
        self.forget(conn, queue)

    def queue_of(self, conn: Connection) -> deque[Any]:
        if conn.head_end >= 0:
            return self.reading_bodies
        if conn.received:
            return self.reading_heads
        return self.pending_conns if not conn.initialized else self.keepalived_conns

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.reading_heads and self.reading_heads[0].timeout <= now:
            late = f"request head not complete within {HEAD_SECONDS:g} s"
            self.refuse(self.reading_heads[0], self.reading_heads, 408, late)
        while self.reading_bodies and self.reading_bodies[0].timeout <= now:
            # Past its deadline: a thread takes it at once, and the app refuses it (13000) saying
            # what arrived, as for a body read in a thread (SlowBodyInput, bodies.read_body).
            self.hand_over(self.reading_bodies[0], self.reading_bodies)

    def finish_request(self, conn: Any, fs: Any) -> None:
        """Bytes the client sent behind the request just answered (pipelined, or left after a
        short Content-Length) go back to the poller like a new request's: gunicorn gave them to
        a thread, which then waited on the rest of the head."""
        if fs.cancelled() or fs.exception() or fs.result() is not True or not self.alive:
            super().finish_request(conn, fs)
            return
        leftover = conn.parser.unreader.take_buffered()
        if not leftover:
            super().finish_request(conn, fs)
            return
        conn.sock.setblocking(False)
        conn.received = bytearray(leftover)
        conn.timeout = time.monotonic() + HEAD_SECONDS
        self.reading_heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.read_request, conn))
        self.advance(conn, self.reading_heads, len(leftover))

    def _cap_keepalive(self, deadline: float) -> None:
        # Called once, when the worker stops. What the backlog holds is taken (a request sent on
        # it within the linger is answered), then the listeners close, so a connection opened
        # after SIGTERM is refused instead of reset from a backlog nobody accepts from.
        deadline = min(deadline, time.monotonic() + STOP_LINGER_SECONDS)  # gunicorn's: 2 s
        super()._cap_keepalive(deadline)
        for listener in self.sockets:
            while self.accept(listener):
                pass
            listener.close()
        for queue in (self.pending_conns, self.reading_heads, self.reading_bodies):
            for conn in queue:
                conn.timeout = min(conn.timeout, deadline)

    # -- in a thread ----------------------------------------------------------------------------
    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = partial(self.call_app, self.wsgi)
        self.current = threading.local()  # the gunicorn request each thread is serving

    def call_app(self, app: Any, environ: dict[str, Any], start_response: Any) -> Any:
        """The app as Werkzeug would call it, on two points where gunicorn differs:

        - gunicorn marks every body "terminated"; Werkzeug only a chunked one. bodies.read_body
          then refuses an announced Content-Length over max_body_bytes at once (413) instead of
          waiting for that many bytes; gunicorn never reads past Content-Length anyway.
        - gunicorn drops the app's `Connection: close` (a hop-by-hop header) and keeps the
          connection: the app says it when a body is left unread, so the connection must close.
        """
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            environ["wsgi.input_terminated"] = False
        request = self.current.request
        environ["wsgi.input"] = SlowBodyInput(environ["wsgi.input"], request.unreader)
        environ[RAW_HEAD_KEY] = self.current.raw_head

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            if any(n.lower() == "connection" and v.lower() == "close" for n, v in headers):
                request.force_close()
            started = start_response(status, headers, *exc_info)
            if environ.get(VERBATIM_KEY):
                keep_server_and_date(start_response.__self__, headers)
            return started

        return app(environ, start)

    def handle(self, conn: Connection) -> Any:
        conn.start_request(self.cfg)
        keep_alive = super().handle(conn)
        if keep_alive is False:
            conn.close_in_thread()
        return keep_alive

    def handle_request(self, req: Any, conn: Any) -> bool:
        conn.sock.settimeout(WRITE_SECONDS)  # body reads set their own (DeadlineUnreader)
        self.current.request = req
        self.current.raw_head = conn.raw_head
        try:
            return bool(super().handle_request(req, conn))
        except TimeoutError:  # sendall past WRITE_SECONDS: the client does not read its answer
            raise ClientTooSlow("writing the answer") from None

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status, reason = refusal_of(exc)
        if status == 400 and not is_client_error(exc):
            self.log.exception("Error handling request")
        with contextlib.suppress(OSError):  # the client is gone or not reading its answer
            client.sendall(refusal(status, reason))
        log_refusal(req, status)


_FRAMING = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"})


def keep_server_and_date(response: Any, headers: list[tuple[str, str]]) -> None:
    """The proxy's answer keeps the upstream's `Server` and `Date`, in their place: gunicorn
    drops an app's (it takes them for hop-by-hop) and writes its own before all others."""
    response.headers = [(n, v.strip(" \t")) for n, v in headers if n.lower() not in _FRAMING]
    own = type(response).default_headers
    response.default_headers = lambda: [
        line for line in own(response) if not line.startswith(("Server:", "Date:"))
    ]


# -- what the poller reads ------------------------------------------------------------------------
def head_end(received: bytes | bytearray, new_from: int = 0) -> int:
    """Where the head ends in `received` (past its blank line), -1 while it has not; bytes
    before `new_from` were searched already (an end may straddle two reads)."""
    start = max(new_from - 3, 0)
    ends = [at + len(end) for end in _HEAD_ENDS if (at := received.find(end, start)) >= 0]
    return min(ends, default=-1)


def header_bytes(received: bytes | bytearray, end: int) -> int:
    """The header lines' bytes (request line excluded) of a head ending at `end`."""
    return end - received.find(b"\n") - 1


def framing(head: bytes) -> tuple[str, int]:
    """How the poller awaits a body: GO, it does not (none, too large, a 100 Continue expected,
    framing the parser will refuse); (LENGTH, n) bytes; CHUNKED, up to its last chunk."""
    if _EXPECT.search(head):
        return GO, 0
    if _CHUNKED.search(head):
        return CHUNKED, 0
    length = content_length(head)
    if length is None or length > BODY_BUFFER_BYTES:
        return GO, 0
    return LENGTH, length


def content_length(head: bytes) -> int | None:
    """Content-Length as a number (0 when absent), None when it is not digits only."""
    match = _CONTENT_LENGTH.search(head)
    if match is None:
        return 0
    value = match.group(1).strip(b" \t")
    return int(value) if value.isdigit() else None


def chunked_scan(received: bytes | bytearray, at: int) -> tuple[bool, int]:
    """Whether a chunked body's last chunk and trailers are all in (or its framing is the
    parser's to refuse), scanning from the chunk at `at`; and where the first chunk not yet
    whole starts, for the next scan."""
    while True:
        line_end = received.find(b"\r\n", at)
        if line_end < 0:
            return len(received) - at > _CHUNK_LINE_MAX, at
        size = chunk_size(bytes(received[at:line_end]))
        if size is None:
            return True, at
        if size == 0:
            return received.find(b"\r\n\r\n", line_end) >= 0, at
        if line_end + size + 4 > len(received):
            return False, at
        at = line_end + size + 4


def chunk_size(line: bytes) -> int | None:
    digits = line.split(b";", 1)[0].strip(b" \t")
    if not digits or any(c not in b"0123456789abcdefABCDEF" for c in digits):
        return None
    return int(digits, 16)


def request_line(received: bytes | bytearray) -> Any:
    """Method and path of a head the poller refused, for its access-log line."""
    words = bytes(received[: received.find(b"\n")]).decode("latin-1").split(" ")
    path = words[1].split("?", 1)[0] if len(words) > 1 else None
    return SimpleNamespace(method=words[0], path=path)


def is_client_error(exc: BaseException) -> bool:
    return isinstance(exc, ParseException) and not isinstance(
        exc, InvalidResponseHeader | InvalidResponseHeaderName
    )


def refusal_of(exc: BaseException) -> tuple[int, str]:
    """HTTP status and reason for a request gunicorn refused before the app saw it."""
    if isinstance(exc, LimitRequestLine):
        return 414, f"request line: over {MAX_REQUEST_LINE} bytes"
    if isinstance(exc, LimitRequestHeaders):
        return 431, HEADER_LIMITS.get(str(exc), f"headers: {exc}")
    if is_client_error(exc):
        return 400, f"request unparseable: {exc}"
    # Never a 500 (STYLE): a failure of ours is Pisano's generic 13000, and logged.
    return 400, f"emulator error: {type(exc).__name__}: {exc}"


def refusal(status: int, reason: str) -> bytes:
    """A whole HTTP answer with the 13000 catalogue body; the connection closes after it."""
    body = render_body(13000)
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        f"Content-Type: {ERROR_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{REASON}: {ascii_header(reason)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def log_refusal(req: Any, status: int) -> None:
    """The access-log line (SPEC 2.5) of a request refused before the app saw it."""
    if not access_log.LOGGER.isEnabledFor(logging.INFO):
        return
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record = access_log.LOGGER.makeRecord(
        access_log.LOGGER.name, logging.INFO, "", 0, "request", (), None
    )
    record.__dict__["access"] = {
        "time": now,
        "method": getattr(req, "method", None) or "-",
        "path": getattr(req, "path", None) or "-",
        "status": status,
        "code": 13000,
        "duration_ms": 0.0,
        "token": None,
        "request_id": None,
    }
    access_log.LOGGER.handle(record)
