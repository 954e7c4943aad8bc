"""One access-log line per request on standard error (SPEC 2.5), from a real `serve` process."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import requests

from mockserver.app import create_app

START_LINE = re.compile(
    r"pisano-mock serving (http://127\.0\.0\.1:\d+) token=(\S+) campaign=(\S+)$"
)
# The documented text line: TIME METHOD PATH STATUS code=CODE DURATIONms token=MASKED request=ID
TEXT_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<method>[A-Z]+) (?P<path>\S+) "
    r"(?P<status>\d{3}|-) code=(?P<code>\d+|-) (?P<duration>\d+\.\d)ms token=(?P<token>\S+) "
    r"request=(?P<request>\d+|-)$"
)
JSON_KEYS = {"time", "method", "path", "status", "code", "duration_ms", "token", "request_id"}
CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
TOKEN = "test-token"


class Served:
    """A `serve` process whose standard error is read line by line in a thread (never blocking)."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process, self.base_url = process, base_url
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self._lines.put(line.rstrip("\n"))

    def next_lines(self, n: int) -> list[str]:
        return [self._lines.get(timeout=10) for _ in range(n)]

    def stop(self) -> list[str]:
        """Stop the server; the lines it had not been asked for."""
        self.process.terminate()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        return list(self._lines.queue)


@contextmanager
def serving(*flags: str) -> Iterator[Served]:
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", *flags]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    match = START_LINE.match(process.stdout.readline().rstrip("\n"))
    served = Served(process, match.group(1) if match else "")
    try:
        assert match, served.stop()
        yield served
    finally:
        if process.poll() is None:
            served.stop()


def two_requests(base_url: str) -> list[requests.Response]:
    refused = requests.post(
        f"{base_url}/v1/email_campaigns/{CAMPAIGN}/email_sharings",
        json={"emails": "not a list"},
        headers={"Authorization": f"Token token={TOKEN}"},
        timeout=10,
    )
    health = requests.get(f"{base_url}/__mock/health", timeout=10)
    return [refused, health]


def test_each_request_gets_one_text_line_on_standard_error():
    with serving() as served:
        refused, _ = two_requests(served.base_url)
        lines = served.next_lines(2)
    first, second = (TEXT_LINE.match(line) for line in lines)
    assert first and second, lines
    assert first["method"] == "POST"
    assert first["path"] == f"/v1/email_campaigns/{CAMPAIGN}/email_sharings"
    assert (first["status"], first["code"]) == ("400", "13028")
    assert first["request"] == refused.headers["X-Pisano-Mock-Request-Id"]
    assert first["token"] != TOKEN and first["token"][:3] == TOKEN[:3]
    assert (second["method"], second["path"], second["status"]) == ("GET", "/__mock/health", "200")
    assert (second["code"], second["token"], second["request"]) == ("-", "-", "-")


def test_quiet_logs_nothing():
    with serving("--quiet") as served:
        two_requests(served.base_url)
        assert served.stop() == []


def test_json_format_gives_one_object_per_line_with_the_documented_keys():
    with serving("--log-format", "json") as served:
        refused, _ = two_requests(served.base_url)
        first, second = (json.loads(line) for line in served.next_lines(2))
    assert set(first) == set(second) == JSON_KEYS
    assert (first["status"], first["code"], first["method"]) == (400, 13028, "POST")
    assert first["request_id"] == int(refused.headers["X-Pisano-Mock-Request-Id"])
    assert first["token"] != TOKEN and first["token"][:3] == TOKEN[:3]
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert (second["status"], second["code"], second["token"]) == (200, None, None)


def test_exactly_one_line_per_request_and_the_token_never_in_clear():
    with serving() as served:
        two_requests(served.base_url)
        two_requests(served.base_url)
        text_lines = served.next_lines(4)
        rest = served.stop()
    assert rest == []  # Werkzeug's own request log adds nothing
    assert not any(TOKEN in line for line in text_lines)
    with serving("--log-format", "json") as served:
        two_requests(served.base_url)
        lines = served.next_lines(2)
    assert not any(TOKEN in line for line in lines)


def test_the_duration_includes_a_scripted_delay():
    with serving() as served:
        url = served.base_url
        requests.post(f"{url}/__mock/faults", json={"delay_ms": 300, "times": 1}, timeout=10)
        requests.post(
            f"{url}/v1/email_campaigns/{CAMPAIGN}/email_sharings",
            json={"emails": ["a@example.com"]},
            headers={"Authorization": f"Token token={TOKEN}"},
            timeout=10,
        )
        line = TEXT_LINE.match(served.next_lines(2)[1])
    assert line and line["status"] == "200"
    assert float(line["duration"]) >= 300


def test_an_app_not_configured_by_the_cli_logs_nothing(capfd):
    client = create_app().test_client()
    client.get("/__mock/health")
    client.post(f"/v1/email_campaigns/{CAMPAIGN}/email_sharings", json={"emails": []})
    assert capfd.readouterr().err == ""


def test_a_connection_dropped_before_processing_is_logged_without_a_status():
    # The journal says `status: null` for `drop: before` (no answer was ever made); the log too.
    with serving("--log-format", "json") as served:
        url = served.base_url
        requests.post(f"{url}/__mock/faults", json={"drop": "before", "times": 1}, timeout=10)
        with suppress(requests.ConnectionError):
            requests.post(
                f"{url}/v1/email_campaigns/{CAMPAIGN}/email_sharings",
                json={"emails": ["a@example.com"]},
                headers={"Authorization": f"Token token={TOKEN}"},
                timeout=10,
            )
        dropped = json.loads(served.next_lines(2)[1])
    assert (dropped["method"], dropped["status"]) == ("POST", None)
