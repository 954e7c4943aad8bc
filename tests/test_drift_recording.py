"""recording.py and the proxy's record(): tokens masked everywhere (SPEC 2.6), bodies kept
exactly (UTF-8 as text, other bytes as base64), a recording read back as written."""

from __future__ import annotations

import json

import pytest

from mockserver.pairs import Arrived, PairLog, record
from mockserver.recording import (
    Recorder,
    decoded_body,
    encoded_body,
    read_recording,
    secrets_of,
)

TOKEN = "abcdef0123456789"
MASKED = "abc****789"


@pytest.mark.parametrize(
    "header",
    [
        ("Authorization", f'Token token="{TOKEN}"'),
        ("Authorization", f"Token token={TOKEN}"),
        ("Authorization", f"Token token= {TOKEN}"),
        ("Authorization", f"Bearer {TOKEN}"),
        ("Authorization", TOKEN),
        ("authorization", f"bearer {TOKEN}"),
        ("Proxy-Authorization", f"Basic {TOKEN}"),
        ("Cookie", TOKEN),
        ("X-Api-Key", TOKEN),
        ("X-Pisano-Mock-Admin-Token", TOKEN),
    ],
)
def test_a_secret_in_any_header_form_is_found(header):
    assert secrets_of([header], "", b"") == [TOKEN]


def test_secrets_in_the_query_and_a_form_body_are_found():
    found = secrets_of([], f"access_token={TOKEN}&page=2", b"api_key=zyxwvutsrq&emails=a")
    assert found == [TOKEN, "zyxwvutsrq"]


def test_a_json_body_is_not_read_as_a_form():
    assert secrets_of([], "", b'{"token=": "x"}') == []


def arrived(headers, query="", body=b"") -> Arrived:
    return Arrived("POST", "/v1/x", "/v1/x", query, headers, body, False, 1.0)


def side(status: int, body: bytes, headers=()) -> dict:
    return {"status": status, "reason_phrase": "X", "headers": list(headers), "body": body}


def test_a_record_masks_the_token_everywhere_it_appears():
    request = arrived(
        [("Authorization", f"Bearer {TOKEN}"), ("X-Echo", TOKEN)],
        f"token={TOKEN}",
        f"token={TOKEN}&emails=a@example.com".encode(),
    )
    upstream = side(401, f'{{"echo":"{TOKEN}"}}'.encode(), [("X-Seen", TOKEN)])
    emulator = {**side(400, b"{}"), "code": 13030, "reason": f"token {TOKEN}", "throttle": None}
    secrets = secrets_of(request.headers, request.query, request.body)
    line = json.dumps(record(1, request, upstream, emulator, "same", secrets))
    assert TOKEN not in line
    assert line.count(MASKED) == 7


def test_bodies_are_text_when_utf8_and_base64_otherwise():
    assert encoded_body("é".encode()) == {"body": "é"}
    assert decoded_body(encoded_body(b"\xff\xfe\x00")) == b"\xff\xfe\x00"
    assert "body_base64" in encoded_body(b"\xff")


def test_pairs_kept_and_recorded_read_back_as_a_summary(tmp_path):
    pairs = PairLog(2, 1 << 20, Recorder(str(tmp_path)))
    ok = side(200, b'{"status":"ok"}', [("Content-Type", "application/json")])
    other = side(200, b'{"status":"no"}', [("Content-Type", "application/json")])
    for upstream in (ok, other, other):
        pairs.add(arrived([]), upstream, {**ok, "code": None, "reason": None, "throttle": None})
    summary = pairs.summary()
    assert (summary["pairs"], summary["same"], summary["dropped"]) == (2, 0, 1)  # bounded: 2
    assert [d["request_id"] for d in pairs.summary(since=2)["differences"]] == [3]
    records = read_recording(str(tmp_path))
    assert [r["id"] for r in records] == [1, 2, 3]  # the recording keeps every pair
    assert records[0]["verdict"] == "same"
    assert records[1]["verdict"][0]["what"] == "body"


def test_a_recording_the_disk_refuses_is_said_once_and_pairs_still_kept(tmp_path, caplog):
    (tmp_path / "pairs.jsonl").symlink_to("/dev/full")  # every write: no space left
    pairs = PairLog(10, 1 << 20, Recorder(str(tmp_path)))
    ok = side(200, b"{}")
    for _ in range(2):
        pairs.add(arrived([]), ok, {**ok, "code": None, "reason": None, "throttle": None})
    assert pairs.summary()["pairs"] == 2
    said = [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(said) == 1


CLEAR = {  # request (query, body) -> what must not be in the recording, and what must
    "a percent-encoded query value": (
        "access_token=abcd%2Befgh1234%3D&k=1",
        b"",
        ["abcd%2Befgh", "abcd+efgh"],
        "access_token=abc****%3D&k=1",
    ),
    "a percent-encoded form value": (
        "",
        b"emails[]=a&auth_token=formsec%2B1",
        ["formsec"],
        "emails[]=a&auth_token=for****2B1",
    ),
    "a short query secret": ("api_key=abc&k=1", b"", ["abc"], "api_key=****&k=1"),
    "a short form secret": ("", b"password=hi&emails=a", ["=hi"], "password=****&emails=a"),
    "a JSON field named like a secret": (
        "",
        b'{"emails":["a"],"custom_attributes":{"api_secret":"jsonbodysecret99"}}',
        ["jsonbodysecret99"],
        '"api_secret":"jso****t99"',
    ),
    "a short JSON secret": ("", b'{"api_token" : "x1", "a": "x1"}', ['"x1",'], '"a": "x1"'),
}


@pytest.mark.parametrize("case", CLEAR)
def test_a_secret_field_is_masked_whatever_its_length_or_encoding(case):
    query, body, never, shown = CLEAR[case]
    request = arrived([], query, body)
    secrets = secrets_of(request.headers, request.query, request.body)
    emulator = {**side(400, b"{}"), "code": None, "reason": None, "throttle": None}
    line = record(1, request, side(200, b"{}"), emulator, "same", secrets)["request"]
    text = line["query"] + line.get("body", "")
    assert not [clear for clear in never if clear in text]
    assert shown in text


def test_a_token_the_upstream_echoes_is_masked_before_an_excerpt_is_cut(tmp_path):
    token = "ECHOSECRET0123456789abcdef"
    request = arrived([("Authorization", f"Token token={token}")])
    pairs = PairLog(10, 1 << 20, Recorder(str(tmp_path)))
    echoed = b'{"a":"' + b"p" * 186 + token.encode() + b'"}'  # cut by the 200-byte excerpt
    emulator = {**side(200, b'{"a":"' + b"q" * 186 + b'"}'), "code": None, "reason": None}
    pairs.add(request, side(200, echoed), {**emulator, "throttle": None})
    shown = json.dumps(pairs.summary()) + (tmp_path / "pairs.jsonl").read_text()
    assert "ECHOS" not in shown


def test_a_directory_being_recorded_is_refused_to_a_second_recorder(tmp_path):
    first = Recorder(str(tmp_path))
    with pytest.raises(OSError, match="another pisano-mock proxy"):
        Recorder(str(tmp_path))
    first.close()
    Recorder(str(tmp_path)).close()  # free again once the first is closed


class FullDisk:
    """A stream that refuses the first `refusals` writes (no space left), then takes them."""

    def __init__(self, stream, refusals: int) -> None:
        self.stream, self.refusals = stream, refusals

    def write(self, data: bytes) -> int:
        if self.refusals > 0:
            self.refusals -= 1
            raise OSError(28, "No space left on device")
        return self.stream.write(data)

    def flush(self) -> None:
        self.stream.flush()


def test_pairs_the_disk_refused_are_counted_and_marked_where_they_are_missing(tmp_path):
    pairs = PairLog(10, 1 << 20, Recorder(str(tmp_path)))
    ok = side(200, b"{}")
    emulator = {**ok, "code": None, "reason": None, "throttle": None}
    pairs.add(arrived([]), ok, emulator)
    pairs.recorder._stream = FullDisk(pairs.recorder._stream, 2)
    for _ in range(3):
        pairs.add(arrived([]), ok, emulator)
    assert pairs.not_recorded == 2
    lines = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert lines[1] == {"not_recorded": 2, "first_id": 2, "last_id": 3}
    assert [r["id"] for r in read_recording(str(tmp_path))] == [1, 4]
