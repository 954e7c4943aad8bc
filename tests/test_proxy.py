"""`pisano-mock proxy` as a user runs it, against an upstream that answers canned raw bytes and
records exactly what arrived: the upstream's bytes come back unchanged, nothing is sent that the
client did not send, tokens are masked in the recording, an upstream that fails is our 502."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

START_LINE = re.compile(r"pisano-mock proxy (http://127\.0\.0\.1:\d+) -> (\S+)$")
FRAMING = {"connection", "keep-alive", "transfer-encoding"}
TOKEN = "secret-token-123456"
MAX_BODY = 1_000_000  # the shadow's max_body_bytes, which the proxy applies too


def raw_answer(status: str, headers: list[tuple[str, str]], body: bytes, chunked=False) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{n}: {v}" for n, v in headers)]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:7], body[7:])) + b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


HEADS = [
    ("Server", "Pisano-Front/1.0"),
    ("Date", "Tue, 01 Dec 2026 00:00:00 GMT"),
    ("Content-Type", "application/json; charset=utf-8"),
    ("Set-Cookie", "a=1"),
    ("Set-Cookie", "b=2"),
    ("x-lower-case", "kept as sent"),
]
OK_BODY = b'{"status":"ok","count":1}'
CATALOGUE_BODY = b'{"status":"bad_request","code":13030,"message":"Invalid authentication token"}'
ANSWERS = {
    "/ok": raw_answer("200 OK", HEADS, OK_BODY),
    "/refused": raw_answer("400 Bad Request", HEADS, CATALOGUE_BODY),
    "/throttled": raw_answer(
        "429 Too Many Requests",
        [("Content-Type", "text/plain"), ("Retry-After", "7")],
        b"Retry later\n",
    ),
    "/chunked": raw_answer("200 OK", HEADS, OK_BODY, chunked=True),
    "/large": raw_answer("200 OK", HEADS, b"x" * 3_000_000),
    "/odd-phrase": raw_answer("299 Quite Fine Thanks", HEADS, OK_BODY),
}
NO_FLOW = "/v1/email_campaigns/00000000-0000-4000-8000-000000013005/email_sharings"
SHARE = "/v1/email_campaigns/735c19a7-ee54-4b03-a84a-93dfe2a94a56/email_sharings"
ANSWERS[NO_FLOW] = ANSWERS["/throttled"]  # upstream refuses where the emulator would not


class RawUpstream:
    """An HTTP/1.1 server of canned raw answers, keeping every request's bytes as they arrived.
    `/cut` closes in the middle of an answer; `/silent` never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.arrived: list[bytes] = []
        self.stop = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        with conn:
            buffered = b""
            while True:
                request, buffered = read_request(conn, buffered)
                if request is None:
                    return
                self.arrived.append(request)
                method, target = request.split(b" ", 2)[:2]
                path = target.decode().split("?")[0]
                if path == "/silent":
                    self.stop.wait(10)
                    return
                answer = ANSWERS.get(path, ANSWERS["/ok"])
                if path == "/cut":
                    conn.sendall(ANSWERS["/large"][:5000])
                    return
                if method == b"HEAD":
                    answer = answer.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
                conn.sendall(answer)
                if path == "/then-close":  # as a server closing a kept-alive connection idle
                    return
                if re.search(rb"\r\nconnection: *close", request, re.IGNORECASE):
                    return


def read_request(conn: socket.socket, buffered: bytes) -> tuple[bytes | None, bytes]:
    """One request (head and Content-Length body) from the connection, and what follows it."""
    while b"\r\n\r\n" not in buffered:
        data = conn.recv(65536)
        if not data:
            return None, b""
        buffered += data
    head, _, rest = buffered.partition(b"\r\n\r\n")
    match = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
    length = int(match.group(1)) if match else 0
    while len(rest) < length:
        rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def exchange(base_url: str, raw: bytes) -> bytes:
    """Send raw request bytes, read the whole answer (the request asks the connection closed)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(raw)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def parsed(answer: bytes, head_only=False) -> tuple[bytes, list[tuple[str, str]], bytes]:
    """Status line, headers but framing ones, body (de-chunked)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines]
    if any(n.lower() == "transfer-encoding" for n, _ in headers):
        body = dechunked(body)
    kept = [(n, v) for n, v in headers if n.lower() not in FRAMING]
    return status.encode(), kept, b"" if head_only else body  # type: ignore[return-value]


def dechunked(body: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out, body = out + body[:size], body[size + 2 :]


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    server = RawUpstream()
    yield server
    server.stop.set()
    server.listener.close()


def start_proxy(upstream_url: str, *flags: str) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "mockserver.cli", "proxy", "--port", "0", "--quiet"]
    command += ["--upstream", upstream_url, *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline().rstrip("\n")  # type: ignore[union-attr]
    match = START_LINE.match(line)
    assert match, line
    assert match.group(2) == upstream_url
    return process, match.group(1)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("recording")


@pytest.fixture(scope="module")
def proxy(upstream, recording, tmp_path_factory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("config") / "shadow.toml"
    config.write_text(f"[bounds]\nmax_body_bytes = {MAX_BODY}\n")
    process, base_url = start_proxy(
        upstream.url, "--record", str(recording), "--upstream-timeout", "1", "--config", str(config)
    )
    yield base_url
    process.terminate()
    assert process.wait(timeout=15) == 0  # SIGTERM: graceful, like serve


def get(path: str, method="GET", extra=b"") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode() + extra + b"\r\n"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ok"),
        ("POST", "/refused"),
        ("POST", "/throttled"),
        ("HEAD", "/ok"),
        ("GET", "/chunked"),
        ("GET", "/large"),
        ("GET", "/odd-phrase"),
    ],
)
def test_the_upstreams_answer_comes_back_unchanged(upstream, proxy, method, path):
    direct = exchange(upstream.url, get(path, method))
    through = exchange(proxy, get(path, method))
    assert parsed(through, method == "HEAD") == parsed(direct, method == "HEAD")


def test_the_upstreams_server_and_date_win_with_no_duplicates(proxy):
    _, headers, _ = parsed(exchange(proxy, get("/ok")))
    names = [n.lower() for n, _ in headers]
    assert (names.count("server"), names.count("date")) == (1, 1)
    assert ("Server", "Pisano-Front/1.0") in headers


def test_nothing_is_sent_that_the_client_did_not_send(upstream, proxy):
    sent_headers = (
        b"X-Odd-Case: one\r\nx-odd-case: two\r\n"
        + f'Authorization: Token token="{TOKEN}"\r\n'.encode()
        + b"X-Pisano-Mock-Error: 13000\r\nContent-Type: application/json\r\n"
    )
    raw = (
        b"POST /v1/x?a=1&b=%20&a=2 HTTP/1.1\r\nHost: proxy.example\r\n"
        b"Connection: close, X-Hop\r\nX-Hop: dropped\r\nKeep-Alive: timeout=5\r\n"
        + sent_headers
        + b'Content-Length: 9\r\n\r\n{"a": 1}\n'
    )
    upstream.arrived.clear()
    exchange(proxy, raw)
    (arrived,) = upstream.arrived
    host = upstream.url.removeprefix("http://")
    assert arrived == (
        b"POST /v1/x?a=1&b=%20&a=2 HTTP/1.1\r\n"
        + f"Host: {host}\r\n".encode()
        + sent_headers
        + b'Content-Length: 9\r\n\r\n{"a": 1}\n'
    )


def test_a_chunked_request_goes_upstream_de_chunked(upstream, proxy):
    raw = (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
    )
    upstream.arrived.clear()
    exchange(proxy, raw)
    (arrived,) = upstream.arrived
    assert arrived.endswith(b"\r\nContent-Length: 7\r\n\r\nabcdefg")
    assert b"chunked" not in arrived.lower()


def test_a_body_over_max_body_bytes_is_13000_and_not_forwarded(upstream, proxy):
    upstream.arrived.clear()
    answer = requests.post(f"{proxy}/v1/x", data=b"x" * (MAX_BODY + 1), timeout=20)
    assert answer.status_code == 413
    assert answer.json()["code"] == 13000
    assert upstream.arrived == []


@pytest.mark.parametrize(("path", "why"), [("/cut", "cut short"), ("/silent", "within 1 s")])
def test_an_upstream_that_fails_is_our_502(proxy, path, why):
    answer = requests.get(f"{proxy}{path}", timeout=20)
    assert answer.status_code == 502
    assert answer.json()["status"] == "bad_gateway"
    assert answer.json()["reason"].startswith("pisano-mock proxy: no answer from ")
    assert why in answer.json()["reason"]


def test_an_unreachable_upstream_is_our_502():
    closed = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    process, base_url = start_proxy(url)
    try:
        answer = requests.get(f"{base_url}/v1/x", timeout=20)
        assert answer.status_code == 502
        assert "ConnectionRefusedError" in answer.json()["reason"]
        drift = requests.get(f"{base_url}/__mock/drift", timeout=10).json()
        assert (drift["pairs"], drift["no_upstream_answer"]) == (1, 1)  # counted apart
        assert drift["differences"] == []  # our own 502 is not Pisano's drift
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_health_says_proxy_and_reset_empties_the_pairs(upstream):
    process, base_url = start_proxy(upstream.url)
    try:
        health = requests.get(f"{base_url}/__mock/health", timeout=10).json()
        assert (health["status"], health["mode"], health["upstream"]) == (
            "ok",
            "proxy",
            upstream.url,
        )
        assert health["not_recorded"] == 0  # pairs a full disk refused (test_drift_recording)
        requests.get(f"{base_url}/ok", timeout=10)
        assert requests.get(f"{base_url}/__mock/drift", timeout=10).json()["pairs"] == 1
        reset = requests.post(f"{base_url}/__mock/reset", timeout=10)
        assert reset.json() == {"status": "ok"}
        assert requests.get(f"{base_url}/__mock/drift", timeout=10).json()["pairs"] == 0
        unknown = requests.get(f"{base_url}/__mock/requests", timeout=10)
        assert unknown.status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_admin_token_guards_the_proxys_admin_api(upstream):
    process, base_url = start_proxy(upstream.url, "--admin-token", "admin-secret-1")
    try:
        assert requests.get(f"{base_url}/__mock/drift", timeout=10).status_code == 401
        auth = {"Authorization": "Bearer admin-secret-1"}
        assert requests.get(f"{base_url}/__mock/drift", headers=auth, timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_recording_masks_tokens_everywhere(proxy, recording):
    requests.post(
        f"{proxy}/v1/x?token={TOKEN}",
        data={"api_key": TOKEN, "emails": "a@example.com"},
        headers={"Authorization": f"Bearer {TOKEN}", "Cookie": "session=abcdefghijkl"},
        timeout=10,
    )
    text = (recording / "pairs.jsonl").read_text()
    assert TOKEN not in text
    assert "abcdefghijkl" not in text
    last = json.loads(text.splitlines()[-1])
    request = last["request"]
    assert request["query"] == "token=sec****456"
    assert ["Authorization", "Bearer sec****456"] in request["headers"]
    assert "api_key=sec****456" in request["body"]
    assert set(last) == {"id", "time", "request", "upstream", "emulator", "verdict"}


def test_each_pair_is_recorded_with_both_answers_and_the_verdict(proxy, recording):
    requests.get(f"{proxy}/large", timeout=10)
    last = json.loads((recording / "pairs.jsonl").read_text().splitlines()[-1])
    assert last["upstream"]["status"] == 200
    assert last["upstream"]["body"] == "x" * 3_000_000
    assert last["emulator"]["status"] == 404
    assert last["emulator"]["code"] == 13002
    assert [d["what"] for d in last["verdict"]] == ["status", "code", "body"]
    report = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "drift", "report", str(recording), "--json"],
        capture_output=True,
        text=True,
    )
    assert report.returncode == 1
    summary = json.loads(report.stdout)
    assert last["id"] in {d["request_id"] for d in summary["differences"]}


def test_a_kept_alive_connection_the_upstream_closed_is_replaced_not_lost(upstream, proxy):
    upstream.arrived.clear()
    statuses = [requests.get(f"{proxy}/then-close", timeout=10).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(upstream.arrived) == 3  # each sent once: none lost, none twice


def pair_line_on_stderr(upstream_url: str, path: str) -> str:
    """The line a proxy without --quiet writes on standard error for one GET of `path`."""
    command = [sys.executable, "-m", "mockserver.cli", "proxy", "--port", "0"]
    command += ["--upstream", upstream_url]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            base_url = START_LINE.match(process.stdout.readline().rstrip("\n")).group(1)
            requests.get(f"{base_url}{path}", timeout=20)
            return process.stderr.readline()
        finally:
            process.terminate()


def test_each_pair_is_one_line_on_standard_error_without_quiet(upstream):
    line = pair_line_on_stderr(upstream.url, "/refused?x=1")
    assert re.fullmatch(
        r"\S+Z GET /refused upstream=400 emulator=404 differs:status,code,body \S+ms pair=1\n",
        line,
    ), line


def test_a_pair_without_an_upstream_answer_says_so_on_standard_error():
    closed = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    line = pair_line_on_stderr(url, "/v1/x")
    assert re.fullmatch(
        r"\S+Z GET /v1/x upstream=502 emulator=404 no-upstream-answer \S+ms pair=1\n", line
    ), line


def test_one_side_429_is_a_throttle_difference_naming_the_tier_or_the_counts(upstream, tmp_path):
    config = tmp_path / "shadow.toml"
    config.write_text('[throttle]\ntiers = "1/3600 seconds; 5/7200 seconds"\n')
    process, base_url = start_proxy(upstream.url, "--config", str(config))
    try:
        auth = {"Authorization": "Token token=test-token"}
        emails = {"emails": ["a@example.com"]}
        assert requests.post(f"{base_url}{NO_FLOW}", json=emails, headers=auth).status_code == 429
        assert requests.post(f"{base_url}{SHARE}", json=emails, headers=auth).status_code == 200
        drift = requests.get(f"{base_url}/__mock/drift", timeout=10).json()
    finally:
        process.terminate()
        process.wait(timeout=15)
    only_upstream, only_emulator = drift["differences"]
    assert only_upstream["what"] == only_emulator["what"] == "throttle"
    assert only_upstream["upstream"] == {"status": 429, "retry_after": "7"}
    assert only_upstream["emulator"] == {
        "status": 404,
        "counts": {"1/3600 seconds": 1, "5/7200 seconds": 1},
    }
    assert only_emulator["emulator"] == {"status": 429, "tier": "1/3600 seconds"}
    assert only_emulator["upstream"] == 200
    rules = [rule["rule"] for rule in drift["rules"]]
    assert (
        rules[1]
        == "429 throttle tier 1/3600 seconds on POST /v1/email_campaigns/<id>/email_sharings"
    )


def test_the_shadow_does_not_see_our_own_headers(upstream, proxy):
    forced = {"X-Pisano-Mock-Error": "13017"}
    answer = requests.post(f"{proxy}{SHARE}", json={"emails": ["a@example.com"]}, headers=forced)
    assert answer.status_code == 200  # upstream's answer
    drift = requests.get(f"{proxy}/__mock/drift?limit=1000", timeout=10).json()
    code = [d for d in drift["differences"] if d["what"] == "code"][-1]
    assert code["emulator"] == 13030  # no token: not the 13017 the header would force
    assert upstream.arrived[-1].count(b"X-Pisano-Mock-Error: 13017\r\n") == 1  # forwarded


def test_concurrent_requests_each_get_their_own_answer(upstream, proxy):
    from concurrent.futures import ThreadPoolExecutor

    upstream.arrived.clear()
    paths = ["/ok", "/refused", "/odd-phrase", "/chunked"] * 10

    def fetch(path: str) -> tuple[str, bytes]:
        return path, parsed(exchange(proxy, get(path)))[2]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(fetch, paths))
    expected = {"/ok": OK_BODY, "/refused": CATALOGUE_BODY, "/odd-phrase": OK_BODY}
    assert all(body == expected.get(path, OK_BODY) for path, body in results)
    assert len(upstream.arrived) == len(paths)


def test_credentials_in_upstream_are_refused_at_start_in_one_line_never_shown():
    command = [sys.executable, "-m", "mockserver.cli", "proxy", "--port", "0"]
    command += ["--upstream", "http://apiuser:supersecretpw@127.0.0.1:9"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "credentials" in done.stderr
    assert "supersecretpw" not in done.stderr + done.stdout


def test_the_shadow_does_not_see_what_connection_names_as_the_upstream_does_not(upstream, proxy):
    headers = {"Authorization": f"Token token={TOKEN}", "Connection": "keep-alive, Authorization"}
    requests.post(f"{proxy}{SHARE}", json={"emails": ["a@example.com"]}, headers=headers)
    assert b"Authorization" not in upstream.arrived[-1]
    drift = requests.get(f"{proxy}/__mock/drift?limit=1000", timeout=10).json()
    code = [d for d in drift["differences"] if d["what"] == "code"][-1]
    assert code["emulator"] == 13030  # no token, as upstream got none (with it: 13001)


def test_a_directory_another_proxy_records_is_refused_at_start(upstream, proxy, recording):
    command = [sys.executable, "-m", "mockserver.cli", "proxy", "--port", "0"]
    command += ["--upstream", upstream.url, "--record", str(recording)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "being recorded by another pisano-mock proxy" in done.stderr


def test_sigterm_with_an_answer_awaited_is_our_502_recorded_within_the_grace(upstream, tmp_path):
    process, base_url = start_proxy(
        upstream.url, "--record", str(tmp_path), "--upstream-timeout", "60"
    )
    before = len(upstream.arrived)
    answered: list[bytes] = []
    client = threading.Thread(target=lambda: answered.append(exchange(base_url, get("/silent"))))
    client.start()
    for _ in range(200):  # until the upstream holds the request (it never answers)
        if len(upstream.arrived) > before:
            break
        threading.Event().wait(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    client.join(timeout=15)
    assert answered and answered[0].startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"before the proxy stopped" in answered[0]
    pair = json.loads((tmp_path / "pairs.jsonl").read_text().splitlines()[-1])
    assert (pair["request"]["path"], pair["upstream"]["status"]) == ("/silent", 502)


def test_a_chunked_requests_trailers_go_upstream_as_header_lines(upstream, proxy):
    raw = (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nabcd\r\n0\r\nX-Trail: t1\r\n\r\n"
    )
    upstream.arrived.clear()
    exchange(proxy, raw)
    (arrived,) = upstream.arrived
    assert arrived.endswith(b"\r\nX-TRAIL: t1\r\nContent-Length: 4\r\n\r\nabcd")  # gunicorn's case


def test_the_proxys_admin_token_never_goes_upstream(upstream, proxy):
    # The emulator's own secret means nothing to Pisano and must not reach a third party; the
    # proxy sends nothing the client did not send, and this it leaves out.
    secret = {"X-Pisano-Mock-Admin-Token": "admin-secret-value"}
    requests.post(f"{proxy}{SHARE}", json={"emails": ["a@example.com"]}, headers=secret)
    assert b"admin-secret-value" not in upstream.arrived[-1]
