"""The inspector's reading of the journal (SPEC 2.7): filters, and the answer each entry got.

The journal keeps status, code and reason, not the answer's bytes: a refusal's body is the
catalogue's (rebuilt exactly), the throttle's and a fault's are fixed texts; a 200's body is not
kept, and the entry says where its sharings are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ..auth import token_id
from ..catalogue import CATALOGUE, ERROR_CONTENT_TYPE, render_body

Entry = dict[str, Any]
Keep = Callable[[Entry], bool]
TEXT = "text/plain"
RETRY_LATER = "Retry later\n"  # Rack::Attack's body (SPEC 1.3)


def is_open(entry: Entry) -> bool:
    """Still being answered: no status yet (a `drop: before` fault never gets one, and says so)."""
    return entry.get("status") is None and entry.get("fault") is None


def status_filter(wanted: str) -> Keep:
    """`429` exactly, or a class: `4xx`."""
    if wanted.endswith("xx"):
        return lambda entry: str(entry.get("status") or "").startswith(wanted[0])
    return lambda entry: str(entry.get("status")) == wanted


def text_filter(wanted: str) -> Keep:
    """An address, or part of one, anywhere in the body (case-insensitive): the body's JSON text
    holds every recipient whatever the endpoint (emails, customer, CSV rows)."""
    folded = wanted.lower()
    return lambda entry: folded in orjson.dumps(entry.get("body")).decode().lower()


def journal_filters(query: dict[str, Any], secret: bytes) -> list[Keep]:
    """One test per filter given; an entry is shown when it passes all of them. The token is
    compared as the journal keeps it, a keyed hash: the filter never shows it (auth.token_id)."""
    keeps: list[Keep] = []
    if query["status"]:
        keeps.append(status_filter(query["status"]))
    if query["code"] is not None:
        keeps.append(lambda entry: entry.get("code") == query["code"])
    if query["email"]:
        keeps.append(text_filter(query["email"]))
    if query["token"]:
        wanted = token_id(query["token"], secret)
        keeps.append(lambda entry: entry.get("token_id") == wanted)
    return keeps


def passes(entry: Entry, keeps: list[Keep]) -> bool:
    return all(keep(entry) for keep in keeps)


def answer(entry: Entry) -> dict[str, Any]:
    """What the emulator answered, as far as the journal tells: the first row that applies."""
    for applies, describe in ANSWERS:
        if applies(entry):
            return describe(entry)
    return said(entry, None, None, "the answer's body is not kept")


def said(entry: Entry, content_type: str | None, body: str | None, note: str) -> dict[str, Any]:
    return {"status": entry.get("status"), "content_type": content_type, "body": body, "note": note}


def refusal(entry: Entry) -> dict[str, Any]:
    body = render_body(entry["code"]).decode()
    return said(entry, ERROR_CONTENT_TYPE, body, "the catalogue's entry, byte for byte")


def throttled(entry: Entry) -> dict[str, Any]:
    note = "Rack::Attack's answer (the rich profile answers JSON and RateLimit headers)"
    return said(entry, TEXT, RETRY_LATER, note)


def scripted(entry: Entry) -> dict[str, Any]:
    return said(entry, TEXT, None, f"a scripted status ({entry.get('reason')})")


def dropped(entry: Entry) -> dict[str, Any]:
    return said(entry, None, None, "no answer: the connection was closed (a fault)")


def accepted(entry: Entry) -> dict[str, Any]:
    note = f"accepted; the body is not kept: its sharings are those of request {entry['id']}"
    return said(entry, "application/json; charset=utf-8", None, note)


def in_flight(entry: Entry) -> dict[str, Any]:
    return said(entry, None, None, "not answered yet")


# (applies to the entry, describes its answer), in order: the first that applies.
ANSWERS: tuple[tuple[Keep, Callable[[Entry], dict[str, Any]]], ...] = (
    (lambda e: e.get("code") in CATALOGUE, refusal),
    (lambda e: e.get("status") == 429 and e.get("throttle") is not None, throttled),
    (lambda e: e.get("status") is None and e.get("fault") is not None, dropped),
    (lambda e: e.get("status") is None, in_flight),
    (lambda e: e.get("fault") is not None and e.get("status") != 200, scripted),
    (lambda e: e.get("status") == 200, accepted),
)


SUMMARY_KEYS = ("id", "time", "method", "path", "status", "code", "trigger")
SUMMARY_REASON = 300  # characters of the reason a row shows; the detail has it whole


def summary(entry: Entry) -> Entry:
    """An entry as a row of the list shows it: no headers nor body."""
    shown = {key: entry.get(key) for key in SUMMARY_KEYS}
    reason = entry.get("reason")
    shown["reason"] = reason[:SUMMARY_REASON] if isinstance(reason, str) else None
    shown["warnings"] = len(entry.get("warnings") or ())
    shown["open"] = is_open(entry)
    return shown


def with_answer(entry: Entry) -> Entry:
    return {**entry, "answer": answer(entry), "open": is_open(entry)}
