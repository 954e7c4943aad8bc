"""Limits on what a request can hold (issue 8, items 3-7 and 12; issue 7 item 7).

Every limit counts the bytes actually received, Content-Length or chunked; nothing a request holds
can break a later read of the journal; reset returns to the configuration's fixtures.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.bodies import json_depth
from mockserver.forms import FormError, parse_form, split_key
from mockserver.settings import Bounds
from tests.conftest import AUTH, SHARINGS_PATH

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
WRONG_TOKEN = {"Authorization": "Token token=wrong"}


def chunked(data: bytes, size: int = 4096) -> Iterator[bytes]:
    """A body `requests` sends with Transfer-Encoding: chunked (a generator has no length)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def nested_json(depth: int) -> str:
    """`depth` lists, one in the other."""
    return "[" * depth + "]" * depth


def reason(response) -> str:
    return response.headers.get("X-Pisano-Mock-Reason", "")


def entry_bytes(entry) -> int:
    headers = sum(len(name) + len(value) for name, value in entry["headers"].items())
    return headers + len(str(entry["body"] or ""))


# -- 8.3: the journal's byte bound counts what it holds -------------------------------------------
def test_headers_count_against_the_journal_byte_bound(server_with):
    with server_with(bounds=Bounds(journal_max_bytes=200_000)) as (api, mock):
        big = {f"X-Big-{i}": "h" * 20_000 for i in range(3)}
        for _ in range(10):
            assert api.request("GET", "/nope", headers=big).status_code == 404
        entries = mock.requests()
        assert 1 <= len(entries) <= 3
        assert sum(entry_bytes(entry) for entry in entries) <= 200_000
        assert mock.call("GET", "/__mock/health")["requests_dropped"] == 10 - len(entries)


def test_a_chunked_body_is_charged_what_was_read(server_with):
    bounds = Bounds(journal_max_bytes=100_000, max_body_bytes=1_000_000)
    with server_with(bounds=bounds) as (api, mock):
        body = b'{"emails": ["' + b"a" * 60_000 + b'"]}'
        for _ in range(3):
            response = api.post(data=chunked(body), headers=WRONG_TOKEN)
            assert response.json()["code"] == 13001
        entries = mock.requests()
        assert len(entries) == 1
        assert entries[0]["body"] == {"emails": ["a" * 60_000]}


# -- 8.4: form keys nest at most max_form_depth, parsed in linear time -----------------------------
def test_form_keys_nested_deeper_than_the_bound_are_13000_naming_the_key(api):
    deepest_allowed = "emails[]=a@example.com&x" + "[a]" * 99
    response = api.post(data=deepest_allowed, headers=FORM)
    assert response.status_code == 200, reason(response)
    response = api.post(data=deepest_allowed + "[a]", headers=FORM)
    assert (response.status_code, response.json()["code"]) == (400, 13000)
    assert "max_form_depth" in reason(response) and "x[a][a]" in reason(response)


def test_a_key_with_300k_brackets_is_refused_not_parsed():
    with pytest.raises(FormError, match="max_form_depth"):
        parse_form("emails[]=a@example.com&x" + "[a]" * 300_000, max_depth=100)


def test_form_nesting_is_not_limited_by_python_recursion():
    params, _ = parse_form("x" + "[a]" * 5000 + "=v", max_depth=10_000)
    depth, node = 0, params
    while isinstance(node, dict):
        node, depth = node.get("x", node.get("a")), depth + 1
    assert (depth, node) == (5001, "v")


# -- attack 8, finding 1: a key's brackets are found in one pass, whatever they are ----------------
class ReadCounting(str):
    """A key that counts the characters its `find` calls pass over: the splitter reads a key only
    through `find`, so the count is the work done on the key's brackets (no clock involved)."""

    read = 0

    def find(self, sub, start=0, end=None):  # type: ignore[override]
        found = str.find(self, sub, start, len(self) if end is None else end)
        ReadCounting.read += (found + 1 if found >= 0 else len(self)) - start
        return found


@pytest.mark.parametrize(
    "key",
    [
        "x" + "[" * 200_000,  # attack 8: each `[` used to rescan to the end, 14 s for 80 000
        "x" + "[" * 400_000,
        "x" + "[a" * 200_000,
        "x[a]" + "[" * 200_000 + "]",
        "x[" + "]" * 200_000,
        "x" + "][" * 200_000,  # refused at the 100th subkey
    ],
)
def test_splitting_a_key_reads_each_character_at_most_once(key):
    ReadCounting.read = 0
    with contextlib.suppress(FormError):
        split_key(ReadCounting(key), max_depth=100)
    # 0 would mean the key was not read through `find`, and the count would say nothing.
    assert 0 < ReadCounting.read <= len(key)


def old_split(name: str, max_depth: int) -> list[str]:
    """The oracle: the former splitter (a regex, quadratic on unclosed brackets), at small sizes."""
    head, bracket, _ = name.partition("[")
    if not head or not bracket:
        return [head] if head else []
    subkeys = [m.group(1) for m in re.finditer(r"\[([^\]]*)\]", name[len(head) :])][:max_depth]
    if len(subkeys) >= max_depth:
        raise FormError("too deep")
    return [head, *subkeys]


@given(st.text(alphabet="[]a", max_size=30), st.integers(1, 6))
def test_key_splitting_keeps_its_meaning_on_any_brackets(name, max_depth):
    try:
        expected: list[str] | str = old_split(name, max_depth)
    except FormError:
        expected = "too deep"
    try:
        got: list[str] | str = split_key(name, max_depth)
    except FormError:
        got = "too deep"
    assert got == expected


# -- 8.5: JSON depth is bounded at the door; the journal is always readable ------------------------
def depth_of(value) -> int:
    """The oracle: nesting counted on the parsed value (recursion is fine at test sizes)."""
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


TRICKY_TEXT = st.text(alphabet='[]{}"\\ab\n', max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.integers(-(2**63), 2**63 - 1) | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_json_depth_measured_on_the_text_agrees_with_the_parsed_value(value):
    assert json_depth(orjson.dumps(value)) == depth_of(value)


def test_json_deeper_than_the_bound_is_13000_with_the_reason(api):
    body = '{"emails": ["a@example.com"], "custom_attributes": {"a@example.com": {"x": %s}}}'
    response = api.post(data=body % nested_json(61))  # 3 + 61 = 64 levels: allowed
    assert response.status_code == 200, reason(response)
    response = api.post(data=body % nested_json(62))
    assert (response.status_code, response.json()["code"]) == (400, 13000)
    assert "max_json_depth" in reason(response)


@pytest.mark.parametrize("depth", [65, 254, 255, 300, 5000, 200_000])
def test_hostile_json_never_breaks_a_read_of_the_journal(api, pisano_mock, depth):
    api.post(data=nested_json(depth))
    api.post(data=nested_json(depth), headers=WRONG_TOKEN)
    api.request("POST", "/nope", data=nested_json(depth))
    entries = pisano_mock.requests()
    assert len(entries) == 3
    assert all(entry["body"] is not None for entry in entries)


def test_a_configured_depth_past_what_json_can_return_is_capped(server_with):
    with server_with(bounds=Bounds(max_json_depth=1000)) as (api, mock):
        body = '{"emails": ["a@example.com"], "custom_attributes": {"a@example.com": {"x": %s}}}'
        response = api.post(data=body % nested_json(400))
        assert response.json()["code"] == 13000
        assert mock.sharings() == [] and len(mock.requests()) == 1


# -- 8.6: a lying Content-Length is charged what arrived -------------------------------------------
def send_raw(base_url: str, head: bytes, body: bytes) -> bytes:
    """Send `head` and `body`, close our side, and return whatever the server answered."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(("claimed", "status"), [(900_000, 400), (1_000_000_000, 413)])
def test_a_lying_content_length_does_not_wipe_the_journal(server_with, claimed, status):
    bounds = Bounds(journal_max_bytes=100_000, max_body_bytes=1_000_000)
    with server_with(bounds=bounds) as (api, mock):
        for _ in range(3):
            assert api.post({"emails": ["a@example.com"]}).status_code == 200
        head = (
            f"POST {SHARINGS_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}"
            f"\r\nContent-Type: application/json\r\nContent-Length: {claimed}\r\n\r\n"
        ).encode()
        answer = send_raw(api.base_url, head, b'{"emails": [')
        assert b'"code":13000' in answer
        entries = mock.requests()
        assert [entry["status"] for entry in entries] == [200, 200, 200, status]
        assert mock.call("GET", "/__mock/health")["requests_dropped"] == 0


# -- 8.7: over max_body_bytes is 413, never truncated ----------------------------------------------
@pytest.mark.parametrize("send_chunked", [True, False])
@pytest.mark.parametrize("as_form", [True, False])
def test_a_body_over_the_bound_is_413_chunked_or_not(server_with, send_chunked, as_form):
    with server_with(bounds=Bounds(max_body_bytes=1000)) as (api, mock):
        emails = [f"r{i:03}@example.com" for i in range(200)]
        if as_form:
            text, headers = "&".join(f"emails[]={e}" for e in emails), FORM
        else:
            text, headers = '{"emails": ["' + '", "'.join(emails) + '"]}', {}
        fits = text[: text.rindex("&" if as_form else '", "', 0, 1000)] + ("" if as_form else '"]}')
        over = fits + ("&emails[]=z@example.com" if as_form else "")
        if not as_form:
            over = fits[:-2] + ', "z@example.com"]}'
        assert len(fits) <= 1000 < len(over)
        for text_sent, status in ((over, 413), (fits, 200)):
            data = text_sent.encode()
            response = api.post(data=chunked(data, 300) if send_chunked else data, headers=headers)
            assert response.status_code == status, reason(response)
            if status == 413:
                assert response.json()["code"] == 13000
                assert "max_body_bytes" in reason(response)
        [sent] = [entry for entry in mock.requests() if entry["status"] == 200]
        assert len(mock.sharings()) == len(sent["body"]["emails"]) == fits.count("@")


# -- 8.12: reset restores the fixtures the emulator started with -----------------------------------
def test_reset_restores_the_configured_fixtures(api, pisano_mock):
    pisano_mock.add_fixtures(
        {"accounts": {"acme": {"locked": True}}, "tokens": {"extra": {"account": "acme"}}}
    )
    assert api.post({"emails": ["a@example.com"]}).json()["code"] == 13036
    pisano_mock.reset()
    assert api.post({"emails": ["a@example.com"]}).status_code == 200
    other = {"Authorization": "Token token=extra"}
    assert api.post({"emails": ["a@example.com"]}, headers=other).json()["code"] == 13001


# -- 7.7: the most common first mistake gets a hint ------------------------------------------------
def test_json_sent_as_a_form_says_how_to_send_it(api):
    response = api.post(data='{"emails": ["a@example.com"]}', headers=FORM)
    assert response.json()["code"] == 13015
    assert reason(response).startswith("emails: required field is absent; ")
    assert "application/x-www-form-urlencoded but looks like JSON" in reason(response)
    assert "send Content-Type: application/json" in reason(response)


def test_json_sent_as_text_plain_is_read_as_json_with_a_warning(api, pisano_mock):
    response = api.post(
        data='{"emails": ["a@example.com"]}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200
    assert (
        "Content-Type: text/plain; the body was read as JSON"
        in response.headers["X-Pisano-Mock-Warning"]
    )


def test_a_form_sent_as_json_says_how_to_send_it(api):
    response = api.post(data="emails[]=a@example.com")
    assert response.json()["code"] == 13000
    assert "looks like a form: send Content-Type: application/x-www-form-urlencoded" in reason(
        response
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_admin_body_over_the_bound_is_413_too(server_with, chunked):
    # Admin errors are ours (not catalogue entries): the admin API's 413 with its reason.
    with server_with(bounds=Bounds(max_body_bytes=1000)) as (api, _):
        body = orjson.dumps({"accounts": {f"a{i}": {} for i in range(200)}})
        data = iter([body[:500], body[500:]]) if chunked else body
        response = api.request(
            "POST", "/__mock/fixtures", data=data, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json() == {
            "status": "payload_too_large",
            "reason": "body: larger than max_body_bytes",
        }
        assert api.request("GET", "/__mock/health").json()["status"] == "ok"


# -- attack 8, findings 9 and 13: framing headers; a broken chunked body says what happened --------
VALID_BODY = b'{"emails": ["a@example.com"]}'


def framed(body: bytes) -> bytes:
    """`body` as one chunk and the last chunk, as Transfer-Encoding: chunked frames it."""
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def answer_to(api, headers: str, body: bytes) -> tuple[int, str, bytes]:
    """Status, head and body of the answer to a raw POST with `headers` (CRLF-separated lines)."""
    head = (
        f"POST {SHARINGS_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}"
        f"\r\nContent-Type: application/json\r\n{headers}\r\n\r\n"
    ).encode()
    answer = send_raw(api.base_url, head, body)
    answer_head, _, answer_body = answer.partition(b"\r\n\r\n")
    return int(answer.split(b" ", 2)[1]), answer_head.decode("latin-1"), answer_body


@pytest.mark.parametrize("length", [len(framed(VALID_BODY)), 5, 0])
def test_transfer_encoding_chunked_overrides_content_length(api, pisano_mock, length):
    headers = f"Transfer-Encoding: chunked\r\nContent-Length: {length}"
    status, head, _ = answer_to(api, headers, framed(VALID_BODY))
    assert status == 200, head
    assert [sharing["email"] for sharing in pisano_mock.sharings()] == ["a@example.com"]


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ("Transfer-Encoding: gzip, chunked", "Transfer-Encoding 'gzip, chunked'"),
        ("Transfer-Encoding: gzip\r\nContent-Length: 29", "Transfer-Encoding 'gzip'"),
        ("Content-Length: -1", "Content-Length '-1'"),
        ("Content-Length: 29x", "Content-Length '29x'"),
        ("Content-Length: +29", "Content-Length '+29'"),
    ],
)
def test_framing_we_cannot_read_is_13000_saying_so_and_closes(api, pisano_mock, headers, said):
    body = framed(VALID_BODY) if "chunked" in headers else VALID_BODY
    status, head, answer_body = answer_to(api, headers, body)
    assert (status, orjson.loads(answer_body)["code"]) == (400, 13000)
    assert said in head and "Connection: close" in head
    assert pisano_mock.sharings() == []


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'1d\r\n{"emails": ["a@ex', "ended early or broken"),  # the client stopped mid-chunk
        (b'{"emails": ["a@example.com"]}\n', "ended early or broken"),  # not chunked at all
        (framed(VALID_BODY)[:-5], "ended early or broken"),  # no last chunk
    ],
)
def test_a_broken_chunked_body_says_so_not_zero_length(api, pisano_mock, body, said):
    status, head, answer_body = answer_to(api, "Transfer-Encoding: chunked", body)
    assert (status, orjson.loads(answer_body)["code"]) == (400, 13000)
    assert said in head and "zero-length" not in head and "Connection: close" in head
    assert pisano_mock.sharings() == []


def test_a_json_key_given_twice_keeps_the_last_and_says_so(api, pisano_mock):
    # Ruby's JSON keeps the last value of a repeated key, so Pisano would: say what was lost.
    body = '{"emails": ["b@example.com", "c@example.com"], "emails": ["a@example.com"]}'
    response = api.post(data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, reason(response)
    assert [sharing["email"] for sharing in pisano_mock.sharings()] == ["a@example.com"]
    warning = response.headers["X-Pisano-Mock-Warning"]
    assert "emails: given 2 times in the JSON object, only the last kept" in warning
    assert pisano_mock.requests()[-1]["warnings"] == [warning]


def test_a_key_name_repeated_inside_values_is_no_warning(api):
    body = {"emails": ["a@example.com"], "custom_attributes": {"a@example.com": {"emails": "x"}}}
    response = api.post(body)
    assert response.status_code == 200, reason(response)
    assert "X-Pisano-Mock-Warning" not in response.headers
