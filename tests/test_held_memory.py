"""What the journal and the sharings hold (issue 9): bytes, not parsed bodies, charged what they
cost; and read back, the same answers as when they held the parsed bodies."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from mockserver.app import create_app
from mockserver.bodies import RETURNABLE_DEPTH, BodyLimits, hold_body, journal_body, parse_params
from mockserver.context import EXTENSION_KEY
from mockserver.settings import Bounds, load_settings
from mockserver.state import SharingBatch
from tests.conftest import AUTH, SHARINGS_PATH

FORM = "application/x-www-form-urlencoded"
RECIPIENTS = 500
DEEP = b"[" * (RETURNABLE_DEPTH + 5) + b"]" * (RETURNABLE_DEPTH + 5)
EMAILS = [f"customer.{i}+survey@example.com" for i in range(RECIPIENTS)]
BIG = {
    "emails": EMAILS,
    "custom_attributes": {e: {"name": f"Müşteri {i}", "n": i} for i, e in enumerate(EMAILS)},
    "transactional_data": {e: {"Amount": 149.9, "When": "2026-11-27"} for e in EMAILS[::2]},
}

# (Content-Type, body, Authorization): each journaled as before, whether a view parsed it or not.
SENT: list[tuple[str, bytes, str]] = [
    ("application/json", orjson.dumps(BIG), AUTH["Authorization"]),
    ("application/json", b' {"emails" : ["a@x.io"], "n": 1e300, "big": 123456789012345678901}', ""),
    ("application/json", b'{"emails": ["a@x.io"], "emails": ["b@x.io"], "s": "\\u00e9\\n"}', ""),
    (FORM, b"emails[]=a%40x.io&emails[]=b%40x.io&custom_attributes[a%40x.io][k]=v", ""),
    ("text/plain", b'{"emails": ["c@x.io"]}', ""),
    ("application/json", b"not json at all", ""),
    ("application/json", b"\xff\xfe broken utf-8", ""),
    ("application/json", DEEP, ""),
    ("application/json", b"", ""),
    ("application/json", b'["an", "array"]', "Token token=nobody"),
]


def old_journal_body(content_type: str, raw: bytes) -> Any:
    """What the journal held before issue 9: the params when row 10 parsed them, else the body
    as `journal_body` read it."""
    try:
        return parse_params(raw, content_type, True, BodyLimits.of(Bounds())).data
    except Exception:
        return journal_body(raw)


@pytest.fixture
def sent(api) -> Iterator[list[tuple[str, bytes, str]]]:
    for content_type, raw, authorization in SENT:
        headers = {
            "Content-Type": content_type,
            "Authorization": authorization or AUTH["Authorization"],
        }
        api.request("POST", SHARINGS_PATH, data=raw, headers=headers)
    yield SENT


def test_the_journal_answers_byte_for_byte_as_when_it_held_parsed_bodies(api, pisano_mock, sent):
    answer = api.request("GET", "/__mock/requests?limit=100")
    page = orjson.loads(answer.content)
    assert [entry["status"] for entry in page["requests"]][:2] == [200, 200]  # bodies were used
    for entry, (content_type, raw, authorization) in zip(page["requests"], sent, strict=True):
        parsed = authorization != "Token token=nobody"  # refused before row 10 otherwise
        entry["body"] = old_journal_body(content_type, raw) if parsed else journal_body(raw)
    assert answer.content == orjson.dumps(page)


def test_a_body_is_held_as_bytes_and_shown_parsed():
    raw = orjson.dumps(BIG)
    held = hold_body(raw, orjson.loads(raw))
    assert held is not None and isinstance(held.data, bytes) and held.shown() == BIG
    assert hold_body(b"") is None and hold_body(b"x").shown() == "x"  # type: ignore[union-attr]


# -- what holding costs ---------------------------------------------------------------------------


def deep_size(root: Any) -> int:
    """Bytes of `root` and every object it reaches (each counted once), classes and modules
    aside: what holding it costs."""
    seen: set[int] = set()
    total, stack = 0, [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type | type(sys)):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        stack.extend(_referents(item))
    return total


def _referents(item: Any) -> list[Any]:
    return [ref for ref in gc.get_referents(item) if not callable(ref)]


def test_a_sharing_batch_costs_what_the_bounds_are_charged():
    request = orjson.loads(orjson.dumps(BIG))  # as a view has it: parsed, then let go
    batch = SharingBatch.of("c", 1, 0.0, request["emails"], request)
    del request
    assert deep_size(batch) <= batch.nbytes * 1.1


def posted(body: dict[str, Any], times: int) -> Any:
    """The store of an app (throttle off) after `body` was accepted `times` times."""
    settings = load_settings()
    app = create_app(settings.with_changes(throttle=replace(settings.throttle, enabled=False)))
    headers = {**AUTH, "Content-Type": "application/json"}
    for _ in range(times):
        answer = app.test_client().post(SHARINGS_PATH, data=orjson.dumps(body), headers=headers)
        assert answer.status_code == 200
    return app.extensions[EXTENSION_KEY].store


@pytest.mark.parametrize(("body", "times"), [(BIG, 1), ({"emails": ["a@x.io", "b@x.io"]}, 100)])
def test_the_journal_and_sharings_cost_what_their_bounds_are_charged(body, times):
    store = posted(body, times)
    for log in (store._journal, store._sharings):
        assert deep_size(log._batches) <= log.nbytes * 1.2
