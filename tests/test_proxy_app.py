"""The proxy's WSGI app in this process (Werkzeug's test client, no gunicorn): the headers WSGI
kept are forwarded when the raw head is not there, and a failure of the shadow never costs the
client the upstream's answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_proxy import OK_BODY, RawUpstream
from werkzeug.test import Client

from mockserver.app import create_app
from mockserver.pairs import PairLog
from mockserver.proxy import Proxy
from mockserver.upstream import Upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    server = RawUpstream()
    yield server
    server.stop.set()
    server.listener.close()


@pytest.fixture
def proxy(upstream) -> Proxy:
    return Proxy(Upstream(upstream.url, 5), create_app(), PairLog(100, 1 << 20, None))


def test_without_the_raw_head_the_headers_wsgi_kept_are_forwarded(upstream, proxy):
    upstream.arrived.clear()
    answer = Client(proxy).post("/ok?q=1", data=b"abc", headers={"X-Thing": "v"})
    assert answer.status_code == 200
    (arrived,) = upstream.arrived
    assert arrived.startswith(b"POST /ok?q=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nX-Thing: v\r\n" in arrived
    assert b"\r\nContent-Length: 3\r\n" in arrived
    assert arrived.endswith(b"\r\n\r\nabc")


def test_a_failing_shadow_never_costs_the_client_the_upstreams_answer(proxy):
    def broken(*_):
        raise RuntimeError("boom")

    proxy.shadow.app = broken  # type: ignore[assignment]
    answer = Client(proxy).get("/ok")
    assert (answer.status_code, answer.data) == (200, OK_BODY)
    (difference, *_) = proxy.pairs.summary()["differences"]
    assert difference["what"] == "status"
    assert difference["emulator"] == 0
