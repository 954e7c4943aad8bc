"""A light in-process server for tests and the pytest plugin: threaded Werkzeug, kept alive.

`pisano-mock serve` runs on gunicorn (serving.py); this one stays light, but keeps connections
alive as Pisano's servers do. Werkzeug's handler closes every connection (it cannot tell where an
unread body ends): here a connection is kept when its request body was read to its end.
"""

from __future__ import annotations

import io
import socket
import threading
from dataclasses import replace
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

from .context import EXTENSION_KEY
from .settings import Links

IDLE_SECONDS = 30  # a kept-alive connection's thread ends after this long without a request


NO_BODY = object()  # the request announced no body
UNPARSED = object()  # no request was parsed (http.server refusing one): close


class QuietHandler(WSGIRequestHandler):
    # HTTP/1.1 keeps connections alive, as Pisano's own servers do; the journal replaces the log.
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    body: Any = UNPARSED
    connection_said: list[str]  # this answer's Connection values, set per request

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # http.server writes the head and the body apart: on a kept-alive connection Nagle's
        # algorithm held the body for the client's delayed ACK, 40 ms a request (22 req/s).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        self.body, self.connection_said = UNPARSED, []
        if isinstance(self.rfile, NoDrain):
            self.rfile = self.rfile.stream
        super().handle_one_request()

    def handle_expect_100(self) -> bool:
        return True  # Werkzeug's run_wsgi sends the one "100 Continue"; http.server sent another

    def make_environ(self) -> Any:
        environ = super().make_environ()
        length = environ.get("CONTENT_LENGTH") or ""
        if not environ.get("wsgi.input_terminated") and length.isdigit():
            environ["wsgi.input"] = LimitedStream(environ["wsgi.input"], int(length))
        framed = length or environ.get("wsgi.input_terminated")
        self.body = environ["wsgi.input"] if framed else NO_BODY
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection":
            self.connection_said.append(value.lower())  # decided in end_headers
        else:
            super().send_header(keyword, value)

    def end_headers(self) -> None:
        # Werkzeug always adds "Connection: close", last; anything before it is the app's.
        app_closes = "close" in self.connection_said[:-1]
        if app_closes or self.close_connection or not self.body_read():
            super().send_header("Connection", "close")
        else:  # kept alive: the next request must not be drained as leftovers (NoDrain)
            self.rfile = NoDrain(self.rfile)
        super().end_headers()

    def body_read(self) -> bool:
        """Whether the next bytes on the connection are the next request's."""
        if self.body is NO_BODY:
            return True
        if isinstance(self.body, LimitedStream):
            return self.body.is_exhausted
        return getattr(self.body, "_done", False) is True  # chunked: DechunkedInput at its end


class NoDrain(io.BufferedIOBase):
    """The connection's input after an answer that keeps it alive. Werkzeug then "drains" the
    socket, which would swallow the client's next request: here that read finds nothing."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream

    def read(self, size: int | None = -1) -> bytes:
        return b""


class LiveServer:
    """An emulator on a real socket, in a background thread: `with LiveServer(app) as server:`."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        serve_links_at(app, self.base_url)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LiveServer:
        self._thread.start()
        self.app.extensions[EXTENSION_KEY].postman.start()  # what a restart left (SPEC 1.7)
        self.app.extensions[EXTENSION_KEY].scheduler.start()  # a running clock passes due times
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.app.extensions[EXTENSION_KEY].postman.stop()  # no sender outlives its server
        self.app.extensions[EXTENSION_KEY].scheduler.stop()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# A wildcard address is where the server listens, not where a browser can go (`serve --host
# 0.0.0.0`, as in the container): a survey link names this machine instead.
WILDCARD_HOSTS = {"//0.0.0.0:": "//localhost:", "//[::]:": "//localhost:"}


def browsable(url: str) -> str:
    for wildcard, name in WILDCARD_HOSTS.items():
        url = url.replace(wildcard, name, 1)
    return url


def serve_links_at(app: Flask, url: str) -> None:
    """Survey links point where the app is served (SPEC 1.7), unless `[links] public_url` says
    otherwise: only the server knows its URL, after the app is built (`--port 0`)."""
    emulator = app.extensions[EXTENSION_KEY]
    if emulator.settings.links.public_url:
        return
    url = emulator.store.public_url(browsable(url))  # replicas on one Redis: the first's
    emulator.settings = emulator.settings.with_changes(links=Links(public_url=url))
    emulator.links = replace(emulator.links, public_url=url.rstrip("/"))
    emulator.postman.links = emulator.links  # its messages carry the same links
