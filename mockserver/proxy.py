"""`pisano-mock proxy` (SPEC 2.8): forward to a real Pisano, answer with its answer, hold the
emulator's answer to the same request beside it.

A plain WSGI app served like `serve` (serving.py, one worker). Per request of the emulated API:
the body is read (bounded by max_body_bytes, chunked de-chunked); the request goes upstream
unchanged (upstream.py, a kept-alive connection); while the upstream works on it, the shadow
emulator answers it (at arrival, on its real-time clock: a throttle that counts differently
upstream shows); then the upstream's answer goes back unchanged (status line, headers in order —
its `Server` and `Date` too, worker.py — body bytes). The pair is compared (drift.py), kept in a
bounded log for `/__mock/drift`, appended to the recording, and told on standard error.

The shadow does not see our own `X-Pisano-Mock-*` request headers: they instruct an emulator and
Pisano ignores them, so a forced entry would be drift of our making. They are forwarded unchanged.
The shadow delivers nothing (no senders run in the proxy: serving.py).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import orjson
from flask import Flask, Response, g, request

from . import access, drift
from .admin import AdminError, admin_json, render_admin_error
from .app import PlainHttpFlask
from .auth import token_from_header
from .bodies import read_body
from .catalogue import ERROR_CONTENT_TYPE, PisanoError, render_body
from .context import EXTENSION_KEY, Emulator
from .faults import SERVER_STOPPING
from .headers import (
    ADMIN_TOKEN,
    ANSWER_HOP_BY_HOP,
    RAW_HEAD_KEY,
    REASON,
    VERBATIM_KEY,
    ascii_header,
)
from .pairs import PAIR_LOG, Arrived, PairLog, pair_line
from .upstream import Exchange, Stop, Upstream, UpstreamFailure

UPSTREAM_SECONDS = 30.0  # connect, send and the whole answer; past it the client gets our 502
# RFC 9110 7.6.1: never forwarded. Host is the upstream's; Expect was the proxy's to answer.
# The admin token is the emulator's own secret: a third party (Pisano) never gets it.
REQUEST_HOP_BY_HOP = frozenset(
    {
        ADMIN_TOKEN.lower(),
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "expect",
    }
)


# -- upstream ---------------------------------------------------------------------------------
def forwarded(arrived: Arrived, upstream: Upstream) -> bytes:
    """The request as it goes upstream: the client's request line (path and raw query as sent),
    its header lines but hop-by-hop ones and Host (the upstream's), its body; a chunked body goes
    de-chunked, with its length."""
    dropped = REQUEST_HOP_BY_HOP | connection_named(arrived.headers)
    lines = [f"{arrived.method} {upstream.prefix}{arrived.target} HTTP/1.1"]
    lines.append(f"Host: {upstream.host_header}")
    lines += [f"{n}: {v}" for n, v in arrived.headers if n.lower() not in dropped]
    if arrived.chunked:
        lines.append(f"Content-Length: {len(arrived.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + arrived.body


def connection_named(headers: list[tuple[str, str]]) -> set[str]:
    """RFC 9110 7.6.1: the headers Connection names are hop-by-hop too (lowered): not forwarded,
    nor seen by the shadow (it must see what the upstream got)."""
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }


def environ_key(lowered: str) -> str:
    special = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
    return special.get(lowered) or "HTTP_" + lowered.upper().replace("-", "_")


# -- the request as it arrived ----------------------------------------------------------------
def arrived_request(environ: dict[str, Any], max_bytes: int) -> Arrived:
    """The request: its head as received (worker.py), its body read within `max_bytes`."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request_target(environ)
    if not target.startswith("/"):  # absolute form: only its path and query go on
        parts = urlsplit(target)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    path, _, query = target.partition("?")
    raw_head = environ.get(RAW_HEAD_KEY)
    headers = head_headers(raw_head) if raw_head else environ_headers(environ)
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    body = read_body(environ, max_bytes)
    added = trailers(environ) if chunked else []
    method, client = environ["REQUEST_METHOD"], environ.get("REMOTE_ADDR", "")
    return Arrived(
        method, target, path, query, headers + added, body, chunked, time.time(), client, added
    )


def trailers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """A chunked body's trailers (read with it): forwarded as header lines, as RFC 9110 6.5.2
    lets a recipient merge them, rather than lost. Their names as gunicorn keeps them (upper
    case); the fields it refuses in a trailer (Host, framing, Authorization...) never get here."""
    stream = environ.get("wsgi.input")
    reader = getattr(getattr(stream, "body", stream), "reader", None)  # worker.SlowBodyInput's
    return [(str(n), str(v)) for n, v in getattr(getattr(reader, "req", None), "trailers", [])]


def head_headers(raw_head: bytes) -> list[tuple[str, str]]:
    """Header lines as the client wrote them: names in their case, in order, repeats kept."""
    lines = raw_head.split(b"\n")[1:]
    pairs = (line.rstrip(b"\r").partition(b":") for line in lines if line.strip())
    return [(n.decode("latin-1"), v.strip(b" \t").decode("latin-1")) for n, _, v in pairs]


def environ_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """Without the head (a server other than ours): the headers WSGI kept, names re-cased."""
    named = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}
    headers = [(named[k], v) for k, v in environ.items() if k in named and v]
    headers += [
        (k[5:].replace("_", "-").title(), v) for k, v in environ.items() if k.startswith("HTTP_")
    ]
    return headers


def request_target(environ: dict[str, Any]) -> str:
    query = environ.get("QUERY_STRING", "")
    return environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")


# -- the shadow -------------------------------------------------------------------------------
class Shadow:
    """The emulator answering the same request in this process, never to the client."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.emulator: Emulator = app.extensions[EXTENSION_KEY]
        app.after_request(keep_journal)  # runs before lifecycle.finish_request (reverse order)

    def answer(self, environ: dict[str, Any], arrived: Arrived) -> dict[str, Any]:
        said: dict[str, Any] = {}

        def start(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            said["status"], said["headers"] = status, headers

        shadow_environ = self.environ(environ, arrived)
        chunks = self.app(shadow_environ, start)  # type: ignore[arg-type]
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        journal = shadow_environ.get(JOURNAL_KEY) or {}
        return self.described(said["status"], said["headers"], body, journal)

    def environ(self, environ: dict[str, Any], arrived: Arrived) -> dict[str, Any]:
        """The request again, its body in memory; without our own headers (module docstring),
        without those its Connection header names (not forwarded either), and without the
        client's socket (a shadow's fault must never close it)."""
        hop = {environ_key(name) for name in connection_named(arrived.headers)}
        mine = {
            k: v
            for k, v in environ.items()
            if not k.startswith(("HTTP_X_PISANO_MOCK_", "HTTP_TRANSFER_ENCODING"))
            and k not in ("gunicorn.socket", "werkzeug.socket")
            and k not in hop
        }
        mine.update(trailer_keys(arrived))
        mine["wsgi.input"] = io.BytesIO(arrived.body)
        mine["wsgi.input_terminated"] = False
        mine["CONTENT_LENGTH"] = str(len(arrived.body))
        return mine

    def described(
        self, status: str, headers: list[tuple[str, str]], body: bytes, journal: dict[str, Any]
    ) -> dict[str, Any]:
        code_text, _, phrase = status.partition(" ")
        answer = {"status": int(code_text), "reason_phrase": phrase, "headers": headers}
        answer["body"] = body
        answer["code"] = journal.get("code") or drift.json_code(answer)
        answer["reason"] = journal.get("reason") or drift.header(headers, REASON)
        answer["throttle"] = journal.get("throttle")
        return answer

    def counts(self, arrived: Arrived) -> dict[str, int]:
        """The emulator's counts per tier for this request's key, now (when only upstream
        refused: how far the emulator was from refusing)."""
        throttle = self.emulator.throttle
        header = drift.header(arrived.headers, "Authorization")
        token = token_from_header(header, self.emulator.settings.fidelity.auth_forms) or header
        key = throttle.bucket(token, arrived.client)
        rows = throttle.snapshot(self.emulator.clock.now())
        return {str(row["tier"]): int(row["count"]) for row in rows if row["key"] == key}  # type: ignore[call-overload]


def trailer_keys(arrived: Arrived) -> dict[str, str]:
    """The trailers forwarded as header lines, as the shadow's environ keys: it sees them too."""
    return {environ_key(name.lower()): value for name, value in arrived.trailers}


JOURNAL_KEY = "pisano_mock.shadow_journal"


def keep_journal(response: Response) -> Response:
    """after_request on the shadow: what its journal entry says of the answer (code, reason,
    throttle), kept in the environ for the proxy; read back from the store it costs a scan."""
    journal = g.get("journal")
    if journal is not None:
        request.environ[JOURNAL_KEY] = journal
    return response


# -- the app ----------------------------------------------------------------------------------
class Proxy:
    """The WSGI app: `/__mock/` is the proxy's admin API, everything else is forwarded."""

    def __init__(self, upstream: Upstream, shadow: Flask, pairs: PairLog) -> None:
        self.upstream = upstream
        upstream.stop = Stop(SERVER_STOPPING)  # SIGTERM: answers awaited end within the grace
        self.shadow = Shadow(shadow)
        self.pairs = pairs
        emulator = self.shadow.emulator
        pairs.masked_headers = tuple(emulator.settings.access.mask_headers)
        self.max_body_bytes = emulator.settings.bounds.max_body_bytes
        self.admin = admin_app(self, emulator)
        self.extensions: dict[str, Any] = {}  # serving.py: no senders (the shadow delivers nothing)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/__mock" or path.startswith("/__mock/"):
            return self.admin(environ, start_response)  # type: ignore[no-any-return]
        return self.forward(environ, start_response)

    def forward(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            arrived = arrived_request(environ, self.max_body_bytes)
        except PisanoError as error:  # a body over max_body_bytes, or cut short: never forwarded
            return refuse(error, start_response)
        try:
            exchange: Exchange | UpstreamFailure = self.upstream.begin(
                arrived.method, forwarded(arrived, self.upstream)
            )
        except UpstreamFailure as failure:
            exchange = failure
        # At arrival, on its real-time clock, while the upstream works on the request.
        emulator = self.shadow_answer(environ, arrived)
        upstream = self.upstream_answer(exchange)
        if upstream["status"] == 429 and emulator["status"] != 429 and not upstream.get("error"):
            emulator["throttle"] = {"counts": self.shadow.counts(arrived)}
        pair_id, verdict = self.pairs.add(arrived, upstream, emulator)
        if PAIR_LOG.isEnabledFor(logging.INFO):
            PAIR_LOG.info("%s", pair_line(arrived, upstream, emulator, pair_id, verdict))
        environ[VERBATIM_KEY] = True
        headers = [(n, v) for n, v in upstream["headers"] if n.lower() not in ANSWER_HOP_BY_HOP]
        start_response(f"{upstream['status']} {upstream['reason_phrase']}", headers)
        return [upstream["body"]]

    def shadow_answer(self, environ: dict[str, Any], arrived: Arrived) -> dict[str, Any]:
        """The shadow's answer; a failure of ours there never costs the client its answer."""
        try:
            return self.shadow.answer(environ, arrived)
        except Exception as error:  # the emulator turns its own errors into 13000: this is ours
            logging.getLogger("pisano_mock").exception("pisano-mock proxy: the shadow failed")
            reason = f"the shadow emulator failed: {type(error).__name__}: {error}"
            return {
                "status": 0,
                "reason_phrase": "",
                "headers": [],
                "body": b"",
                "code": None,
                "reason": reason,
                "throttle": None,
            }

    def upstream_answer(self, exchange: Exchange | UpstreamFailure) -> dict[str, Any]:
        try:
            if isinstance(exchange, UpstreamFailure):
                raise exchange
            answer = exchange.answer()
        except UpstreamFailure as failure:
            return bad_gateway(self.upstream.url, str(failure))
        return {
            "status": answer.status,
            "reason_phrase": answer.reason_phrase,
            "headers": answer.headers,
            "body": answer.body,
        }


def bad_gateway(url: str, why: str) -> dict[str, Any]:
    """Our answer when upstream gave none: 502, in the admin API's voice (it is not Pisano's)."""
    reason = f"pisano-mock proxy: no answer from {url}: {why}"
    body = orjson.dumps({"status": "bad_gateway", "reason": reason})
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        (REASON, ascii_header(reason)),
    ]
    return {
        "status": 502,
        "reason_phrase": "Bad Gateway",
        "headers": headers,
        "body": body,
        "error": reason,
    }


def refuse(error: PisanoError, start_response: Callable[..., Any]) -> list[bytes]:
    body = render_body(error.code)
    status = getattr(error, "http_status", error.entry.http_status)
    headers = [
        ("Content-Type", ERROR_CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        (REASON, ascii_header(error.reason)),
        ("Connection", "close"),  # the rest of the body may still be on the wire
    ]
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [body]


def admin_app(proxy: Proxy, emulator: Emulator) -> Flask:
    """The proxy's admin API: health, drift, reset, under the same access rules as `serve`'s."""
    app = PlainHttpFlask(__name__)
    app.extensions[EXTENSION_KEY] = emulator  # access.guard_admin reads its settings
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.before_request(access.guard_admin)
    app.register_error_handler(AdminError, render_admin_error)

    @app.get("/__mock/health")
    def health() -> Response:
        summary = proxy.pairs.summary(limit=0)
        return admin_json(
            {
                "status": "ok",
                "mode": "proxy",
                "upstream": proxy.upstream.url,
                "pairs": summary["pairs"],
                "same": summary["same"],
                "dropped": summary["dropped"],
                "recording": str(proxy.pairs.recorder.path) if proxy.pairs.recorder else None,
                "not_recorded": proxy.pairs.not_recorded,  # pairs the disk refused (full, gone)
            }
        )

    @app.get("/__mock/drift")
    def drift_summary() -> Response:
        since, limit = page_arguments()
        return admin_json(proxy.pairs.summary(since, limit))

    @app.post("/__mock/reset")
    def reset() -> Response:
        proxy.pairs.clear()
        emulator.reset()
        return admin_json({"status": "ok"})

    return app


DRIFT_LIMIT, DRIFT_MAX_LIMIT = 100, 1000


def page_arguments() -> tuple[int, int]:
    """`since` (a pair id) and `limit` of the differences listed, as the journal's page."""
    try:
        since = int(request.args.get("since", "0"))
        limit = int(request.args.get("limit", str(DRIFT_LIMIT)))
    except ValueError:
        raise AdminError(400, "since, limit: integers expected") from None
    if since < 0 or not 0 <= limit <= DRIFT_MAX_LIMIT:
        raise AdminError(400, f"since >= 0 and limit 0 to {DRIFT_MAX_LIMIT} expected")
    return since, limit
