"""upstream.py: how the proxy reads an upstream's answer, as a table of raw answers."""

from __future__ import annotations

import io

import pytest

from mockserver.upstream import NothingArrived, UpstreamFailure, read_answer

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
