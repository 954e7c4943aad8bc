"""The pairs a proxy holds (SPEC 2.8): each request as it arrived, the two answers compared, kept
in a bounded log for `/__mock/drift`, appended to the recording, told on standard error."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from . import drift
from .auth import mask_token
from .bounded import BoundedLog
from .recording import (
    Recorder,
    encoded_body,
    mask_json,
    mask_text,
    masked_fields,
    masked_header,
    masked_request_body,
    secrets_of,
)

PAIR_OVERHEAD = 400  # bytes a kept pair costs besides its differences (dicts, strings)


@dataclass
class Arrived:
    """A request as the client sent it: what goes upstream and to the shadow."""

    method: str
    target: str  # path and raw query, as sent
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool
    time: float
    client: str = ""  # the caller's address: the shadow's throttle key may be by IP
    trailers: list[tuple[str, str]] = field(default_factory=list)  # also last in `headers`


class PairLog:
    """The pairs held for `/__mock/drift` (bounded like the journal: the oldest dropped, counted),
    and the recording when there is one."""

    def __init__(self, max_items: int, max_bytes: int, recorder: Recorder | None) -> None:
        self.log: BoundedLog[dict[str, Any]] = BoundedLog(max_items, max_bytes)
        self.recorder = recorder
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.masked_headers: tuple[str, ...] = ()
        self.write_failed = False  # the recording could not be written (said once)
        self.not_recorded = 0  # pairs the disk refused, all told (health says it)
        self._missing: list[int] = []  # ids refused since the last line written (the marker's)

    def add(
        self, arrived: Arrived, upstream: dict[str, Any], emulator: dict[str, Any]
    ) -> tuple[int, list[dict[str, Any]]]:
        """Compare, keep and record one pair; its id and its differences."""
        secrets = secrets_of(arrived.headers, arrived.query, arrived.body, self.masked_headers)
        # Masked before the comparison: an excerpt cut from an echoed token must not show its part.
        upstream, emulator = masked_answer(upstream, secrets), masked_answer(emulator, secrets)
        verdict = drift.compare(upstream, emulator)
        pair_id = next(self._ids)
        kept = {
            "id": pair_id,
            "rule": drift.rule_of(arrived.method, arrived.path, emulator),
            "verdict": mask_json(verdict, secrets) if verdict else "same",
        }
        nbytes = PAIR_OVERHEAD + len(orjson.dumps(kept["verdict"])) if verdict else PAIR_OVERHEAD
        with self._lock:
            self.log.append([kept], nbytes)
        if self.recorder is not None:
            self.write(record(pair_id, arrived, upstream, emulator, kept["verdict"], secrets))
        return pair_id, verdict

    def write(self, line: dict[str, Any]) -> None:
        """Append to the recording; a disk that refuses (full, gone) is said once on standard
        error and the pairs are still compared and kept: the client's answer never waits on it."""
        assert self.recorder is not None
        with self._write_lock:
            try:
                if self._missing:  # writing works again: first say which pairs are not there
                    self.recorder.write(not_recorded_marker(self._missing))
                    self._missing = []
                self.recorder.write(line)
            except OSError as error:
                self.not_recorded += 1
                self._missing.append(line["id"])
                self.said_once(error)

    def said_once(self, error: OSError) -> None:
        assert self.recorder is not None
        if not self.write_failed:
            self.write_failed = True
            logging.getLogger("pisano_mock").error(
                "pisano-mock proxy: cannot write %s: %s", self.recorder.path, error
            )

    def summary(self, since: int = 0, limit: int | None = None) -> dict[str, Any]:
        with self._lock:
            kept = [pair for _, pair in self.log.items_since(0)]
            dropped = self.log.dropped
        summary = drift.summarise(kept, dropped)
        shown = [d for d in summary["differences"] if d["request_id"] > since]
        summary["differences"] = shown[:limit] if limit is not None else shown
        summary["more"] = limit is not None and len(shown) > limit
        return summary

    def clear(self) -> None:
        with self._lock:
            self.log.clear()


def not_recorded_marker(ids: list[int]) -> dict[str, Any]:
    """The line that says, where the gap is, which pairs the disk refused (recording.py skips it
    when reading pairs: `not_recorded` comes first)."""
    return {"not_recorded": len(ids), "first_id": min(ids), "last_id": max(ids)}


def record(
    pair_id: int,
    arrived: Arrived,
    upstream: dict[str, Any],
    emulator: dict[str, Any],
    verdict: Any,
    secrets: list[str],
) -> dict[str, Any]:
    """One line of the recording, tokens masked everywhere (SPEC 2.6's rule)."""
    request_side = {
        "method": arrived.method,
        "path": mask_text(arrived.path, secrets),
        "query": mask_text(masked_fields(arrived.query), secrets),
        "headers": recorded_headers(arrived.headers, secrets),
        **masked_body(arrived.body, secrets, masked_request_body),
    }
    emulator_extra = {key: emulator.get(key) for key in ("code", "reason", "throttle")}
    return {
        "id": pair_id,
        "time": arrived.time,
        "request": request_side,
        "upstream": answer_side(upstream, secrets),
        "emulator": {**answer_side(emulator, secrets), **mask_json(emulator_extra, secrets)},
        "verdict": verdict,
    }


def answer_side(answer: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    side = {
        "status": answer["status"],
        "reason_phrase": answer["reason_phrase"],
        "headers": recorded_headers(answer["headers"], secrets),
        **masked_body(answer["body"], secrets),
    }
    if "error" in answer:
        side["error"] = answer["error"]
    return side


def recorded_headers(headers: Iterable[tuple[str, str]], secrets: list[str]) -> list[list[str]]:
    return [[name, masked_header(name, value, secrets)] for name, value in headers]


def masked_body(
    body: bytes, secrets: list[str], fields: Callable[[str], str] = str
) -> dict[str, str]:
    encoded = encoded_body(body)
    if "body" in encoded:
        encoded["body"] = mask_text(fields(encoded["body"]), secrets)
    return encoded


def masked_answer(answer: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    """An answer with the request's secrets masked in its body (a copy: the client gets the
    upstream's bytes unchanged)."""
    body = answer["body"]
    if not secrets or not body:
        return answer
    masked = body
    for secret in secrets:
        raw = secret.encode("utf-8", "surrogatepass")
        if raw in masked:
            masked = masked.replace(raw, mask_token(secret).encode("utf-8", "surrogatepass"))
    return answer if masked is body else {**answer, "body": masked}


PAIR_LOG = logging.getLogger("pisano_mock.proxy")
PAIR_LOG.propagate = False  # only the handler the CLI adds (without --quiet)


def pair_line(
    arrived: Arrived,
    upstream: dict[str, Any],
    emulator: dict[str, Any],
    pair_id: int,
    verdict: list[dict[str, Any]],
) -> str:
    """One line per pair on standard error: what each side answered, and the verdict."""
    when = datetime.fromtimestamp(arrived.time, UTC).isoformat(timespec="milliseconds")
    took = (time.time() - arrived.time) * 1000
    return (
        f"{when.replace('+00:00', 'Z')} {arrived.method} {arrived.path} "
        f"upstream={upstream['status']} emulator={emulator['status']} "
        f"{verdict_word(verdict)} {took:.1f}ms pair={pair_id}"
    )


def verdict_word(verdict: list[dict[str, Any]]) -> str:
    """`same`, `no-upstream-answer` (the proxy's own 502: not compared), or `differs:` and what."""
    if not verdict:
        return "same"
    if drift.is_unanswered(verdict):
        return "no-upstream-answer"
    return "differs:" + ",".join(d["what"] for d in verdict)
