"""Real servers on 127.0.0.1 for the providers' tests (SPEC 1.7): an SMTP server (aiosmtpd), an
HTTP receiver (http.server), a port where nothing listens, one that never answers, one that
trickles. Each records what it received, for the tests to assert on."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
HANG_SECONDS = 30  # a hanging server gives up after this long: longer than any test waits


def free_port() -> int:
    """A port nothing listens on (bound then let go): connecting to it is refused."""
    with closing(socket.socket()) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# --- SMTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One SMTP transaction as the server saw it."""

    mail_from: str
    rcpt_tos: list[str]
    email: EmailMessage
    tls: bool
    login: str | None  # who authenticated, when someone did
    mechanism: str | None

    def part(self, subtype: str) -> str:
        found = self.email.get_body(preferencelist=(subtype,))
        assert found is not None, f"no text/{subtype} part"
        return str(found.get_content())


@dataclass
class Recorder:
    """aiosmtpd's handler: keeps every message; refuses the recipients and data it is told to."""

    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address → "550 ..." answer
    refuse_data: str | None = None
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_data is not None:
            return self.refuse_data
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        email = message_from_bytes(content, policy=policy.default)
        assert isinstance(email, EmailMessage)
        data = session.auth_data
        login = data.login.decode() if isinstance(data, LoginPassword) else None
        mechanism = getattr(session, "mechanism", None)
        tls = session.ssl is not None
        kept = Received(
            str(envelope.mail_from), list(envelope.rcpt_tos), email, tls, login, mechanism
        )
        self.received.append(kept)
        return "250 Message accepted for delivery"


class TricklingAfterTls(Recorder):
    """Answers EHLO over TLS one `250-` line at a time, never finishing: cut off only if the
    client watches the TLS socket that replaced the plain one."""

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, said: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if session.ssl is not None:
            for _ in range(int(HANG_SECONDS / 0.05)):
                await server.push("250-still thinking")
                await asyncio.sleep(0.05)
        return said


@dataclass
class Credentials:
    """An authenticator accepting one login and password; a refusal may echo what it was sent."""

    login: str
    password: str
    echo_on_refusal: bool = False

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        session.mechanism = mechanism  # type: ignore[attr-defined]  # for Received
        given = (data.login.decode(), data.password.decode())
        if given == (self.login, self.password):
            return AuthResult(success=True, auth_data=data)
        said = f" (you sent {given[1]})" if self.echo_on_refusal else ""
        message = f"535 5.7.8 Authentication credentials invalid{said}"
        return AuthResult(success=False, handled=False, message=message)


@contextmanager
def smtp_server(
    recorder: Recorder | None = None, port: int = 0, **options: Any
) -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1 (`options` go to aiosmtpd's SMTP: tls_context,
    require_starttls, authenticator, auth_require_tls, auth_exclude_mechanism, enable_SMTPUTF8)."""
    recorder = recorder or Recorder()
    # server_hostname: its EHLO name, given (by default socket.getfqdn(), maybe a DNS lookup).
    port = port or free_port()
    controller = Controller(
        recorder, hostname=HOST, port=port, server_hostname="smtp.test", **options
    )
    controller.start()
    try:
        yield SmtpServer(controller.port, recorder)
    finally:
        controller.stop()


@dataclass(frozen=True)
class SmtpServer:
    port: int
    recorder: Recorder

    @property
    def received(self) -> list[Received]:
        return self.recorder.received

    def provider(self, **more: Any) -> dict[str, Any]:
        return {"type": "smtp", "host": HOST, "port": self.port, **more}


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1: `context` serves it, `path` makes a client trust
    it (SSL_CERT_FILE)."""

    context: ssl.SSLContext
    path: Path


def self_signed(directory: Path) -> Certificate:
    """A certificate made here (openssl), valid for a day, for 127.0.0.1 and localhost."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return Certificate(context, cert)


# --- servers that fail to answer -----------------------------------------------------------------


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with closing(socket.socket()) as listener:
        listener.bind((HOST, 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@contextmanager
def trickling_server(
    first: bytes, drip: bytes, every: float = 0.05, tls: ssl.SSLContext | None = None
) -> Iterator[int]:
    """A port whose server answers `first`, then `drip` every `every` seconds, never finishing:
    each read comes in time, the whole answer never does. With `tls`, over TLS."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(8)
    listener.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=drip_into, args=(connection,), daemon=True).start()

    def drip_into(connection: socket.socket) -> None:
        with closing(connection):
            try:
                if tls is not None:
                    connection.settimeout(5)
                    connection = tls.wrap_socket(connection, server_side=True)
                connection.sendall(first)
                while not stop.wait(every):
                    connection.sendall(drip)
            except OSError:  # the client gave up: what it should do
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()


# --- HTTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver(ThreadingHTTPServer):
    """Records every POST; answers by path: /ok 200, /created 201, /empty 204, /fail 500 (with
    `fail_body`), /moved 302 to /ok, /hang never, /status/NNN that status."""

    daemon_threads = True
    fail_body = b"upstream exploded"

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        super().__init__((HOST, port), ReceiverHandler)
        self.posts: list[Post] = []
        self.stopping = threading.Event()
        self.scheme = "http" if tls is None else "https"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing after its answer (one POST per connection) is no error of the test's.
        if not isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError):
            super().handle_error(request, client_address)


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.posts.append(Post(self.path, dict(self.headers), self.rfile.read(length)))
        path = self.path.split("?")[0]
        if path.startswith("/status/"):  # /status/429: that status, nothing else
            self.reply(int(path.removeprefix("/status/")))
            return
        ANSWERS.get(path, ANSWERS["/ok"])(self)

    def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def hang(self) -> None:
        self.server.stopping.wait(HANG_SECONDS)


ANSWERS = {
    "/ok": lambda h: h.reply(200, b'{"queued": true}'),
    "/created": lambda h: h.reply(201),
    "/empty": lambda h: h.reply(204),
    "/fail": lambda h: h.reply(500, h.server.fail_body),
    "/moved": lambda h: h.reply(302, Location=f"{h.server.base_url}/ok"),
    "/hang": lambda h: h.hang(),
}


@contextmanager
def http_receiver(port: int = 0, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    receiver = Receiver(port, tls)
    thread = threading.Thread(target=receiver.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stopping.set()
        receiver.shutdown()
        receiver.server_close()
        thread.join(5)
