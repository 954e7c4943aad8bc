"""Providers (SPEC 1.7): how one message leaves, through the campaign's SMTP server or HTTP API.

`deliver(message, provider, timeout)` makes one attempt and raises `DeliveryError` naming the
cause when it fails; the caller (the senders) retries with backoff. One row per provider type in
`SENDS`. An attempt never holds a sender longer than `timeout`: a `Deadline` shuts the attempt's
socket when its time is up, so a server that trickles bytes (each read in time, the whole never)
is cut off like one that never answers. Secrets (an SMTP password, an Authorization-like header,
a URL's password) never appear in an error.
"""

from __future__ import annotations

import base64
import heapq
import http.client
import itertools
import json
import os
import re
import smtplib
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from .messages import Message, as_email
from .settings import CHANNEL_PROVIDERS

SMTP_PORT = 25
# The EHLO name: fixed, as socket.getfqdn() may wait on a DNS lookup before every attempt.
EHLO_NAME = "pisano-mock.test"
SHOWN_CHARS = 200  # of a server's answer, in an error
HIDDEN = "****"  # a secret as an error shows it (auth.MASK's spelling)
# A header whose name holds one of these carries a secret: its value is never shown.
SECRET_WORDS = ("auth", "token", "key", "secret", "password", "cookie", "signature", "session")
URL_SAFE = "/?=&%:@!$'()*+,;~[]"  # kept as they are in a request target; the rest escaped
# HTTP 4xx answers that may pass when tried again (RFC 9110: timeout; RFC 8470; RFC 6585).
HTTP_PASSING = (408, 425, 429)
USER_AGENT = "pisano-mock (SPEC 1.7 http provider)"


class DeliveryError(Exception):
    """One attempt failed; str(error) is the message's `last_error` (names the cause).

    `permanent`: trying again soon cannot help (a 5xx SMTP refusal, an HTTP 4xx, an address or a
    setting that cannot work), as an MTA gives up on a 5xx; else the cause may pass (a server
    down, slow, a 4xx SMTP answer, an HTTP 5xx)."""

    def __init__(self, cause: str, permanent: bool = False) -> None:
        super().__init__(cause)
        self.permanent = permanent


Send = Callable[[Message, Mapping[str, Any], float], None]


def deliver(message: Message, provider: Mapping[str, Any], timeout: float) -> None:
    """One delivery attempt of `message` through `provider` (a campaign's provider table)."""
    kind = provider.get("type", "outbox")
    send = SENDS.get(kind)
    if send is None:
        said = f"provider type {kind!r} is not one of {', '.join(SENDS)}"
        raise DeliveryError(said, permanent=True)
    if kind not in CHANNEL_PROVIDERS.get(message.channel, ()):  # the config refuses it first
        said = f"provider {kind!r} cannot carry channel {message.channel!r}"
        raise DeliveryError(said, permanent=True)
    send(message, provider, timeout)


def keep_captured(message: Message, provider: Mapping[str, Any], timeout: float) -> None:
    """`outbox`: the message is captured where it is; nothing leaves."""


# --- one attempt's time -------------------------------------------------------------------------


class Deadline:
    """One attempt's time. Sockets' own timeouts bound each read, not the whole: when the time is
    up, the attempt's sockets are shut, which ends any read in progress at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.ends_at = float("inf")  # set when the attempt starts
        self.connected = False
        self.over = False  # the attempt ended: nothing left to shut
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Deadline:
        self.ends_at = time.monotonic() + self.seconds
        WATCHDOG.watch(self, self.ends_at)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:  # the attempt is over, however it ended: nothing stays open
            self.over = True
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def watch(self, sock: socket.socket) -> socket.socket:
        """Shut `sock` when the time is up (at once if it is already)."""
        with self._lock:
            self.connected = True
            self._sockets.append(sock)
            if self.expired:
                shut(sock)
        return sock

    def expire(self) -> None:
        with self._lock:
            if self.over:
                return
            self.expired = True
            for sock in self._sockets:
                shut(sock)

    def ran_out(self, error: BaseException) -> bool:
        """Whether the time was up: also when a socket's own timeout (smtplib says it as "closed")
        came before the watchdog, late on a loaded machine."""
        return self.expired or isinstance(error, TimeoutError) or time.monotonic() >= self.ends_at

    def said(self) -> str:
        """What running out of time looked like: no connection, or no (whole) answer."""
        if self.connected:
            return f"no answer within {self.seconds:g} s"
        return f"connection timed out after {self.seconds:g} s"


class Watchdog:
    """One thread expiring every attempt's deadline when it is due. (A timer thread per attempt
    cost 0.26 ms to start and cancel: half of an HTTP POST on loopback; bench/providers.py.)
    The thread starts with the first deadline and ends after IDLE_SECONDS without one."""

    IDLE_SECONDS = 30.0

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Deadline]] = []  # a heap: the next one due first
        self._order = itertools.count()  # ties: never compare two Deadlines
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        # `serve` builds the app before gunicorn forks its workers: a worker starts afresh (the
        # parent's thread does not exist in it, nor its attempts).
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._due, self._changed, self._thread = [], threading.Condition(), None

    def watch(self, deadline: Deadline, at: float) -> None:
        with self._changed:
            heapq.heappush(self._due, (at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pisano-mock deadlines", daemon=True
                )
                self._thread.start()
            if self._due[0][2] is deadline:  # due before the one the thread waits for
                self._changed.notify()

    def _run(self) -> None:
        while (due := self._next_due()) is not None:
            due.expire()

    def _next_due(self) -> Deadline | None:
        """The next deadline whose time has come (its attempt may be over: expire() knows), or
        None when none came for IDLE_SECONDS (the thread ends)."""
        with self._changed:
            while True:
                if not self._due and not self._changed.wait(self.IDLE_SECONDS):
                    if not self._due:
                        self._thread = None
                        return None
                    continue
                at, _, deadline = self._due[0]
                if deadline.over:
                    heapq.heappop(self._due)  # ended in time: nothing to do
                elif at <= time.monotonic():
                    return heapq.heappop(self._due)[2]
                else:
                    self._changed.wait(at - time.monotonic())


WATCHDOG = Watchdog()


def shut(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed, or never connected: nothing left to end
        sock.shutdown(socket.SHUT_RDWR)


def connection_cause(error: BaseException, deadline: Deadline) -> str:
    """The cause of a failure to reach or hear a server."""
    if deadline.ran_out(error):
        return deadline.said()
    for kind, cause in CONNECTION_CAUSES:
        if isinstance(error, kind):
            return cause(error)
    return f"{type(error).__name__}: {error}"


CONNECTION_CAUSES: tuple[tuple[type[BaseException], Callable[[Any], str]], ...] = (
    (ConnectionRefusedError, lambda e: "connection refused"),
    (socket.gaierror, lambda e: f"host not found ({e.strerror})"),
    (ssl.SSLError, lambda e: f"TLS failed ({e.reason or e})"),
    (smtplib.SMTPServerDisconnected, lambda e: "connection closed by the server"),
    (http.client.RemoteDisconnected, lambda e: "connection closed without an answer"),
    (ConnectionError, lambda e: f"connection lost ({e.strerror or e})"),
    (OSError, lambda e: e.strerror or str(e) or type(e).__name__),
)


# --- secrets ------------------------------------------------------------------------------------


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret in it hidden (a server may echo what it was sent)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def server_text(raw: bytes | str) -> str:
    """A server's words, on one line, at most SHOWN_CHARS characters."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


# --- smtp ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    starttls: bool
    username: str | None
    password: str | None

    @classmethod
    def of(cls, provider: Mapping[str, Any]) -> SmtpServer:
        return cls(
            str(provider["host"]),
            int(provider.get("port", SMTP_PORT)),
            bool(provider.get("starttls", False)),
            provider.get("username"),
            provider.get("password"),
        )

    @property
    def where(self) -> str:
        return f"smtp {self.host}:{self.port}"


class WatchedSMTP(smtplib.SMTP):
    """smtplib's client whose sockets the attempt's deadline can shut (plain, then TLS)."""

    def __init__(self, server: SmtpServer, deadline: Deadline) -> None:
        self.deadline = deadline  # before connecting: _get_socket needs it
        super().__init__(server.host, server.port, EHLO_NAME, timeout=deadline.seconds)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's own hook for the socket (SMTP_SSL and LMTP override it too); not in typeshed.
        made = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        return self.deadline.watch(made)

    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        answer = super().starttls(*args, **kwargs)
        if self.sock is not None:  # the TLS socket: the plain one it replaced is detached
            self.deadline.watch(self.sock)
        return answer


def send_smtp(message: Message, provider: Mapping[str, Any], timeout: float) -> None:
    """One SMTP transaction: connect, EHLO, STARTTLS and AUTH when configured, one message."""
    server = SmtpServer.of(provider)
    check_addresses(message)
    email = email_of(message)
    with Deadline(timeout) as deadline:
        try:
            transaction(server, message, email, deadline)
        except (smtplib.SMTPException, OSError, DeliveryError) as error:
            cause = masked(smtp_cause(error, server, deadline), secrets_of(server))
            raise DeliveryError(cause, smtp_permanent(error, deadline)) from None


def check_addresses(message: Message) -> None:
    """What SMTP cannot carry whatever the server: line breaks in an address (before connecting)."""
    for role, address in (("from", message.sender), ("to", message.to)):
        if re.search(r"[\r\n\0]", address):
            said = f"smtp: {role} address {address!r} holds a line break"
            raise DeliveryError(said, permanent=True)


def email_of(message: Message) -> EmailMessage:
    try:
        return as_email(message)
    except ValueError as error:  # a header value with a line break, an unparseable address
        said = f"smtp: the message cannot be written as an email: {error}"
        raise DeliveryError(said, permanent=True) from None


def transaction(
    server: SmtpServer, message: Message, email: EmailMessage, deadline: Deadline
) -> None:
    sender = envelope_address(message.sender)
    smtp = WatchedSMTP(server, deadline)  # connected, greeted (the host is STARTTLS's SNI)
    try:
        smtp.ehlo_or_helo_if_needed()
        if server.starttls:
            start_tls(smtp, server)
        if server.username is not None:
            log_in(smtp, server)
        check_utf8(smtp, server, (sender, message.to))
        smtp.send_message(email, from_addr=sender, to_addrs=[message.to])
        quit_quietly(smtp)
    finally:
        smtp.close()


def start_tls(smtp: smtplib.SMTP, server: SmtpServer) -> None:
    if not smtp.has_extn("starttls"):
        said = f"{server.where}: STARTTLS is not offered by the server"
        raise DeliveryError(said, permanent=True)
    with failing_as(f"{server.where}: STARTTLS refused"):
        smtp.starttls(context=unverified_tls())
    smtp.ehlo()  # the features said before TLS no longer hold (RFC 3207)


def unverified_tls() -> ssl.SSLContext:
    # Encrypted, not verified, as smtplib's own default: SMTP catchers (Mailpit, ...) and test
    # servers present self-signed certificates.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def log_in(smtp: smtplib.SMTP, server: SmtpServer) -> None:
    if not smtp.has_extn("auth"):
        hint = "" if server.starttls else " (before STARTTLS: set starttls = true?)"
        raise DeliveryError(f"{server.where}: the server offers no AUTH{hint}", permanent=True)
    with failing_as(f"{server.where}: authentication refused"):
        smtp.login(server.username or "", server.password or "")


def envelope_address(sender: str) -> str:
    """`Surveys <surveys@x.test>` → `surveys@x.test`: a display name is the header's, not SMTP's."""
    return parseaddr(sender)[1] or sender


def check_utf8(smtp: smtplib.SMTP, server: SmtpServer, addresses: Iterable[str]) -> None:
    for address in addresses:
        if not address.isascii() and not smtp.has_extn("smtputf8"):
            said = (
                f"{server.where}: {address!r} is not ASCII and the server does not offer SMTPUTF8"
            )
            raise DeliveryError(said, permanent=True)


def quit_quietly(smtp: smtplib.SMTP) -> None:
    with suppress(smtplib.SMTPException, OSError):  # the message was accepted before QUIT
        smtp.quit()


@contextmanager
def failing_as(prefix: str) -> Iterator[None]:
    """A server's refusal during one step, said as `prefix: code text`."""
    try:
        yield
    except smtplib.SMTPResponseException as error:
        said = f"{prefix}: {error.smtp_code} {server_text(error.smtp_error)}"
        raise DeliveryError(said, permanent=error.smtp_code >= 500) from None
    except smtplib.SMTPNotSupportedError as error:
        raise DeliveryError(f"{prefix}: {error}", permanent=True) from None
    except smtplib.SMTPException as error:
        if type(error) is smtplib.SMTPException:  # "No suitable authentication method found."
            raise DeliveryError(f"{prefix}: {error}", permanent=True) from None
        raise


def smtp_cause(error: BaseException, server: SmtpServer, deadline: Deadline) -> str:
    if isinstance(error, DeliveryError):
        return str(error)
    if not deadline.expired:  # a refusal is the server's answer (its error is an OSError too)
        for kind, cause in SMTP_REFUSALS:
            if isinstance(error, kind):
                return cause(error)
    return f"{server.where}: {connection_cause(error, deadline)}"


def smtp_permanent(error: BaseException, deadline: Deadline) -> bool:
    """A 5xx answer is the server's last word (RFC 5321 4.2.1); a 4xx or no answer may pass."""
    if isinstance(error, DeliveryError):
        return error.permanent
    if deadline.expired:
        return False
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500


def refused_recipients(error: smtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(
        f"smtp: {code} <{to}> refused: {server_text(text)}"
        for to, (code, text) in error.recipients.items()
    )


SMTP_REFUSALS: tuple[tuple[type[BaseException], Callable[[Any], str]], ...] = (
    (smtplib.SMTPRecipientsRefused, refused_recipients),
    (
        smtplib.SMTPSenderRefused,
        lambda e: f"smtp: {e.smtp_code} sender <{e.sender}> refused: {server_text(e.smtp_error)}",
    ),
    (
        smtplib.SMTPConnectError,
        lambda e: f"smtp: {e.smtp_code} greeting refused: {server_text(e.smtp_error)}",
    ),
    (
        smtplib.SMTPDataError,
        lambda e: f"smtp: {e.smtp_code} message refused: {server_text(e.smtp_error)}",
    ),
    (
        smtplib.SMTPResponseException,
        lambda e: f"smtp: {e.smtp_code} {server_text(e.smtp_error)}",
    ),
)


def secrets_of(server: SmtpServer) -> list[str]:
    return [server.password] if server.password else []


# --- http ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpTarget:
    url: str
    scheme: str
    host: str
    port: int | None
    target: str  # path and query, as the request line carries them
    username: str | None
    password: str | None

    @classmethod
    def of(cls, url: str) -> HttpTarget:
        parts = urllib.parse.urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        target = urllib.parse.quote(target, safe=URL_SAFE)  # a space, a non-ASCII letter
        user, password = parts.username, parts.password
        return cls(url, parts.scheme, parts.hostname or "", parts.port, target, user, password)

    def basic_auth(self) -> dict[str, str]:
        """`user:password@` in the URL is sent as Basic auth, as curl and browsers send it."""
        if self.username is None:
            return {}
        pair = f"{unquote(self.username)}:{unquote(self.password or '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}

    @property
    def shown(self) -> str:
        """The URL as an error shows it: its password and secret-looking query values hidden."""
        parts = urllib.parse.urlsplit(self.url)
        netloc = parts.netloc
        if parts.password:
            netloc = netloc.replace(f":{parts.password}@", f":{HIDDEN}@", 1)
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        secret = [value for name, value in pairs if value and is_secret_name(name)]
        return masked(parts._replace(netloc=netloc).geturl(), secret)


# The JSON of one POST per channel (SPEC 1.7), keys in this order: an SMS has no subject nor HTML,
# and says its channel (a provider serving both channels tells them apart by it).
PAYLOAD_KEYS = {
    "email": (
        "to", "from", "subject", "text", "html", "link", "campaign_id", "sharing_id",
        "custom_attributes", "transactional_data",
    ),
    "sms": (
        "to", "from", "text", "link", "campaign_id", "sharing_id", "custom_attributes",
        "transactional_data", "channel",
    ),
}  # fmt: skip


def payload(message: Message) -> dict[str, Any]:
    """The JSON of one POST (SPEC 1.7): the message's keys its channel posts."""
    fields = {
        **message.shown(),
        "custom_attributes": message.custom_attributes,
        "transactional_data": message.transactional_data,
    }
    return {key: fields[key] for key in PAYLOAD_KEYS[message.channel]}


def post_http(message: Message, provider: Mapping[str, Any], timeout: float) -> None:
    """One POST of the message's JSON; any 2xx is sent, anything else names what came back."""
    target = HttpTarget.of(str(provider["url"]))
    given = dict(provider.get("headers") or {})
    headers = {**target.basic_auth(), **request_headers(given)}  # a header given wins
    secrets = [v for n, v in given.items() if is_secret_name(n)] + [target.password or ""]
    body = json.dumps(payload(message), ensure_ascii=False).encode("utf-8")
    with Deadline(timeout) as deadline:
        try:
            status, reason, said = exchange(target, headers, body, deadline)
        except (OSError, http.client.HTTPException) as error:
            cause = connection_cause(error, deadline)
            raise DeliveryError(masked(f"http: {cause} from {target.shown}", secrets)) from None
    if not 200 <= status < 300:
        cause = masked(f"http: {status} {reason} from {target.shown}{said}", secrets)
        raise DeliveryError(cause, permanent=300 <= status < 500 and status not in HTTP_PASSING)


def request_headers(given: Mapping[str, str]) -> dict[str, str]:
    """The campaign's headers (checked: an error must not echo a value) with our Content-Type."""
    for name, value in given.items():
        check_header(name, value)
    kept = {n: v for n, v in given.items() if n.lower() not in ("content-type", "content-length")}
    return {"User-Agent": USER_AGENT, **kept, "Content-Type": "application/json"}


def check_header(name: str, value: str) -> None:
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        said = f"http: header name {name!r} is not a valid HTTP header name"
        raise DeliveryError(said, permanent=True)
    if re.search(r"[\r\n\0]", value) or not is_latin1(value):
        said = f"http: header {name!r}: its value holds a line break or a character beyond Latin-1"
        raise DeliveryError(said, permanent=True)


def is_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def exchange(
    target: HttpTarget, headers: Mapping[str, str], body: bytes, deadline: Deadline
) -> tuple[int, str, str]:
    """(status, reason, ": what the body began with" or "" for a 2xx) of one POST."""
    connection = connection_to(target, deadline)
    try:
        connection.request("POST", target.target, body=body, headers=dict(headers))
        response = connection.getresponse()
        if deadline.expired:  # the head ended by the deadline's shutdown, not by the server
            raise TimeoutError
        reason = response.reason or reason_phrase(response.status)
        return response.status, reason, what_came_back(response)
    finally:
        connection.close()


class Watched(http.client.HTTPConnection):
    """http.client's connection whose sockets the attempt's deadline can shut: the plain one as
    soon as it is connected (an https handshake included), then the TLS one that replaces it."""

    def __init__(self, host: str, port: int | None, deadline: Deadline) -> None:
        super().__init__(host, port, timeout=deadline.seconds)
        self.deadline = deadline
        # http.client's hook for making the socket (its own tests replace it too)
        self._create_connection = self.watched_socket

    def watched_socket(self, *args: Any, **kwargs: Any) -> socket.socket:
        return self.deadline.watch(socket.create_connection(*args, **kwargs))

    def connect(self) -> None:
        super().connect()
        if self.sock is not None:
            self.deadline.watch(self.sock)


class WatchedHTTPS(Watched, http.client.HTTPSConnection):
    pass


def connection_to(target: HttpTarget, deadline: Deadline) -> http.client.HTTPConnection:
    if target.scheme not in CONNECTIONS:
        said = f"http: {target.shown}: the scheme must be http or https"
        raise DeliveryError(said, permanent=True)
    return CONNECTIONS[target.scheme](target.host, target.port, deadline)


CONNECTIONS: dict[str, type[Watched]] = {"http": Watched, "https": WatchedHTTPS}


def reason_phrase(status: int) -> str:
    with suppress(ValueError):
        return HTTPStatus(status).phrase
    return "(no reason given)"


def what_came_back(response: http.client.HTTPResponse) -> str:
    """Nothing for a 2xx; where a redirect pointed (not followed); else the body's first words."""
    if 200 <= response.status < 300:
        return ""
    if 300 <= response.status < 400:
        location = response.getheader("Location") or "nowhere"
        return f": a redirect to {location}, not followed (give the final URL)"
    words = server_text(response.read(SHOWN_CHARS * 4))
    return f": {words}" if words else ""


SENDS: dict[str, Send] = {"outbox": keep_captured, "smtp": send_smtp, "http": post_http}
