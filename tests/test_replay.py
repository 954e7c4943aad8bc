"""`serve --replay DIR`: recorded upstream answers given back byte for byte, in recorded order, the
rest answered as usual; a recording that is absent or corrupt is one line and exit 2."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mockserver.app import create_app
from mockserver.cli import main
from mockserver.recording import RecordingError
from mockserver.replay import Replayer
from mockserver.settings import load_settings

PATH = "/v1/email_campaigns/735c19a7-ee54-4b03-a84a-93dfe2a94a56/email_sharings"
BODY = '{"emails":["a@example.com"]}'
HEADERS = [
    ["Server", "Pisano-Front/1.0"],
    ["Date", "Tue, 01 Dec 2026 00:00:00 GMT"],
    ["Connection", "keep-alive"],
    ["Content-Type", "application/json; charset=utf-8"],
    ["Set-Cookie", "a=1"],
    ["Set-Cookie", "b=2"],
]
START_LINE = re.compile(r"pisano-mock serving (http://127\.0\.0\.1:\d+) ")


def pair(pair_id: int, body: str, answer: dict, method="POST", path=PATH) -> dict:
    return {
        "id": pair_id,
        "time": 1.0,
        "request": {"method": method, "path": path, "query": "", "headers": [], "body": body},
        "upstream": {"status": 201, "reason_phrase": "Made It", "headers": HEADERS, **answer},
        "emulator": {"status": 200, "reason_phrase": "OK", "headers": [], "body": ""},
        "verdict": "same",
    }


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    pairs = [
        pair(
            1,
            BODY,
            {"body": '{"first":1}', "headers": [*HEADERS, ["X-Pisano-Mock-Reason", "theirs"]]},
        ),
        pair(2, BODY, {"body": '{"second":2}'}),
        pair(3, "other", {"body_base64": base64.b64encode(b"\xff\x00binary").decode()}),
        pair(4, "", {"body": "admin"}, "GET", "/__mock/health"),
    ]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return tmp_path


@pytest.fixture
def client(recording):
    return create_app(load_settings(), Replayer(str(recording))).test_client()


def post(client, body: str):
    return client.post(PATH, data=body, headers={"Content-Type": "application/json"})


def test_a_recorded_request_gets_the_recorded_answers_in_order_then_the_last(client):
    bodies = [post(client, BODY).data for _ in range(3)]
    assert bodies == [b'{"first":1}', b'{"second":2}', b'{"second":2}']


def test_the_recorded_status_phrase_headers_and_bytes_come_back(client):
    answer = post(client, "other")
    assert answer.status == "201 Made It"
    assert answer.data == b"\xff\x00binary"
    assert answer.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert "Connection" not in answer.headers  # hop-by-hop: not replayed


def test_a_replayed_answer_is_journaled_as_replayed(client, recording):
    answer = post(client, BODY)
    request_id = answer.headers["X-Pisano-Mock-Request-Id"]
    (entry,) = client.get("/__mock/requests").json["requests"]
    assert str(entry["id"]) == request_id
    assert entry["reason"] == f"replayed: {recording} pair 1"
    assert answer.headers["X-Pisano-Mock-Reason"] == entry["reason"]
    assert entry["status"] == 201


def test_other_requests_are_answered_as_usual(client):
    answer = post(client, '{"emails":["b@example.com"]}')
    assert (answer.status_code, answer.json["code"]) == (400, 13030)  # no token: rules apply
    assert client.get("/__mock/health").json["status"] == "ok"  # admin routes never replayed


def line_within(stream, seconds: float) -> str:
    """The stream's next line, or "" when none comes in time (a test fails, never hangs)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return lines[0] if lines else ""


def test_served_replay_gives_back_the_recorded_bytes(recording):
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0"]
    with subprocess.Popen(
        [*command, "--replay", str(recording)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            match = START_LINE.match(process.stdout.readline())  # type: ignore[union-attr]
            assert match
            said = line_within(process.stdout, 10)
            assert said.startswith(f"pisano-mock replaying 4 recorded pairs from {recording} ")
            host, port = match.group(1).removeprefix("http://").split(":")
            raw = (
                f"POST {PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n{BODY}"
            )
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(raw.encode())
                answer = b"".join(iter(lambda: sock.recv(65536), b""))
            log_line = line_within(process.stderr, 10)
        finally:
            process.terminate()
    assert log_line.rstrip().endswith(" replayed=pair 1"), log_line
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 201 Made It"
    kept = [line for line in lines[1:] if not line.startswith(("Connection", "X-Pisano-Mock"))]
    expected = [f"{n}: {v}" for n, v in HEADERS if n != "Connection"]
    assert kept == [*expected, "Content-Length: 11"]
    assert body == b'{"first":1}'


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read"),
        ("not json\n{}\n", "line 1 is not a recorded pair"),
        ('{"id": 1, "verdict": "same"}\n', "line 1 is not a recorded pair"),
    ],
)
def test_an_absent_or_corrupt_recording_is_one_line_and_exit_2(tmp_path, capsys, content, said):
    if content is not None:
        (tmp_path / "pairs.jsonl").write_text(content)
    assert main(["serve", "--port", "0", "--replay", str(tmp_path)]) == 2
    assert main(["drift", "report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert all(line.startswith("pisano-mock: ") and said in line for line in err)


def test_a_last_line_cut_short_by_a_crash_is_left_out(recording, capsys):
    with (recording / "pairs.jsonl").open("a") as stream:
        stream.write('{"id": 5, "time": 1.0, "requ')
    assert main(["drift", "report", str(recording)]) == 0
    assert capsys.readouterr().out == "every pair is the same (4 pairs)\n"


def unanswered(pair_id: int) -> dict:
    record = pair(pair_id, BODY, {"status": 502, "body": '{"status":"bad_gateway"}'})
    record["upstream"]["error"] = "pisano-mock proxy: no answer from http://x: timed out"
    record["verdict"] = [
        {"what": "no upstream answer", "upstream": "timed out", "emulator": 200, "text": "no"}
    ]
    return record


def test_unanswered_pairs_alone_do_not_make_the_report_exit_1(recording, capsys):
    with (recording / "pairs.jsonl").open("a") as stream:
        stream.write(json.dumps(unanswered(5)) + "\n")
    assert main(["drift", "report", str(recording)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "every compared pair is the same (4 pairs)",
        "1 pair had no upstream answer: not compared",
    ]
    assert main(["drift", "report", "--json", str(recording)]) == 0
    assert json.loads(capsys.readouterr().out)["no_upstream_answer"] == 1


def edited(change) -> dict:
    record = pair(1, BODY, {"body": "{}"})
    change(record)
    return record


ODD = {
    "request body not base64": lambda r: r["request"].update(body_base64="%%%", body=None),
    "upstream status not an integer": lambda r: r["upstream"].update(status="abc"),
    "id not an integer": lambda r: r.update(id="seven"),
    "a header entry of one item": lambda r: r["upstream"].update(headers=[["only-one"]]),
    "a verdict of objects without what": lambda r: r.update(verdict=[{"x": 1}]),
    "a verdict of strings": lambda r: r.update(verdict=["a"]),
    "a status out of range": lambda r: r["upstream"].update(status=1000),
}


@pytest.mark.parametrize("odd", ODD)
def test_an_odd_recording_is_one_line_and_exit_2_never_a_traceback(tmp_path, capsys, odd):
    (tmp_path / "pairs.jsonl").write_text(json.dumps(edited(ODD[odd])) + "\n")
    with pytest.raises(RecordingError, match="not a recorded pair"):  # serve: one line, exit 2
        Replayer(str(tmp_path))
    assert main(["drift", "report", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("pisano-mock: ") and "not a recorded pair" in line


def test_a_recorded_content_length_is_not_trusted(tmp_path):
    headers = [["Content-Length", "3"], ["Content-Type", "application/json"]]
    record = pair(1, BODY, {"body": '{"status":"ok","long":true}', "headers": headers})
    (tmp_path / "pairs.jsonl").write_text(json.dumps(record) + "\n")
    answer = post(create_app(load_settings(), Replayer(str(tmp_path))).test_client(), BODY)
    assert answer.data == b'{"status":"ok","long":true}'
    assert answer.headers.getlist("Content-Length") == [str(len(answer.data))]


def test_the_report_shows_the_recorded_reason_of_the_emulator(tmp_path, capsys):
    record = pair(1, BODY, {"status": 401, "body": '{"code":13001}'})
    record["emulator"]["reason"] = "emails: required field is absent"
    record["verdict"] = [{"what": "status", "upstream": 401, "emulator": 200, "text": "s"}]
    (tmp_path / "pairs.jsonl").write_text(json.dumps(record) + "\n")
    assert main(["drift", "report", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "    the emulator's reason: emails: required field is absent" in out
