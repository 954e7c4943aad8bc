"""`serve --replay DIR`: the answers a real Pisano gave, offline (SPEC 2.8, issue 13).

A request of the emulated API whose method, path (without the query) and body bytes match pairs
of a drift recording is answered with the recorded upstream answer — status and reason phrase,
headers but hop-by-hop ones (its `Server` and `Date` too), body bytes — and journaled as replayed,
the reason naming the recording and the pair. A key recorded several times answers in recorded
order, then repeats the last. It comes before SPEC 1.4 rows 1-4 (what Pisano answered is the
answer, throttle or not); everything else is answered as usual. Admin routes are never replayed.

A recorded body is kept with its tokens masked: a request carrying a token in its body (a form
field named like one) matches only a request with the masked value.
"""

from __future__ import annotations

import binascii
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Response, g, request

from . import drift, lifecycle
from .catalogue import PisanoError
from .context import current_emulator
from .headers import ANSWER_HOP_BY_HOP, REASON, VERBATIM_KEY, ascii_header
from .recording import PAIRS_FILE, RecordingError, decoded_body, read_recording

NOT_REPLAYED = ANSWER_HOP_BY_HOP | {"content-length"}  # the body's real length is sent instead


@dataclass(frozen=True)
class Recorded:
    pair_id: int
    status: str  # "200 OK": code and reason phrase
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def response(self) -> Response:
        answer = Response(self.body, status=self.status)
        answer.headers.clear()
        for name, value in self.headers:
            answer.headers.add(name, value)
        return answer


Key = tuple[str, str, bytes]


class Replayer:
    """The recorded answers of one recording, by request key, each key's in recorded order."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._answers: dict[Key, list[Recorded]] = {}
        self._served: dict[Key, int] = {}
        self._lock = threading.Lock()
        for record in read_pairs(directory):  # RecordingError: the CLI's one line, exit 2
            self._answers.setdefault(key_of(record["request"]), []).append(recorded(record))

    def __len__(self) -> int:
        return sum(map(len, self._answers.values()))

    def next_answer(self, key: Key) -> Recorded | None:
        answers = self._answers.get(key)
        if not answers:
            return None
        with self._lock:
            served = self._served.get(key, 0)
            self._served[key] = served + 1
        return answers[min(served, len(answers) - 1)]

    def answer(self) -> Response | None:
        """before_request (app.py), before rows 1-4: the recorded answer, journaled; or None."""
        req = request._get_current_object()  # type: ignore[attr-defined]
        if lifecycle.is_admin_path(req.path) or lifecycle.is_survey_path(req.path):
            return None
        try:
            body = lifecycle.request_body()
        except PisanoError:
            return None  # a body refused as too large: the usual answer says why
        found = self.next_answer((req.method, lifecycle.raw_path(req.environ, req.path), body))
        if found is None:
            return None
        lifecycle.open_entry(current_emulator(), req)
        code = drift.json_code({"body": found.body})
        reason = f"replayed: {self.directory} pair {found.pair_id}"
        g.journal.update(code=code, reason=reason)
        g.replayed_pair = found.pair_id  # the access log marks the line (access_log.py)
        req.environ[VERBATIM_KEY] = True
        answer = found.response()
        answer.headers[REASON] = ascii_header(reason)  # ours, over an upstream emulator's own
        return answer


def replay_line(replayer: Replayer) -> str:
    """`serve --replay`'s second line on standard output: what is replayed, from where."""
    n = len(replayer)
    pairs = "1 recorded pair" if n == 1 else f"{n} recorded pairs"
    return (
        f"pisano-mock replaying {pairs} from {replayer.directory} "
        "(matched by method, path and body bytes; the token is not compared)"
    )


def key_of(side: dict[str, Any]) -> Key:
    return (side["method"], str(side["path"]).split("?", 1)[0], decoded_body(side))


def recorded(record: dict[str, Any]) -> Recorded:
    upstream = record["upstream"]
    headers = tuple(
        (str(name), str(value))
        for name, value in upstream["headers"]
        if str(name).lower() not in NOT_REPLAYED
    )
    status = f"{int(upstream['status'])} {upstream.get('reason_phrase') or ''}".rstrip()
    return Recorded(int(record["id"]), status, headers, decoded_body(upstream))


# -- a recording read for replay or a report: every field used checked, so that a hand-edited or
# damaged recording is one line and exit 2, never a traceback ----------------------------------
def read_pairs(directory: str) -> list[dict[str, Any]]:
    """The pairs of a recording, each checked; RecordingError naming the first that is odd."""
    records = read_recording(directory)
    for number, record in enumerate(records, 1):
        why = next((why for check, why in PAIR_CHECKS if not passes(check, record)), None)
        if why is not None:
            where = Path(directory) / PAIRS_FILE
            raise RecordingError(f"{where}: record {number} is not a recorded pair ({why})")
    return records


def passes(check: Callable[[dict[str, Any]], bool], record: dict[str, Any]) -> bool:
    try:
        return check(record)
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
        return False


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_status(value: Any) -> bool:
    return is_int(value) and 100 <= value <= 999


def are_headers(headers: Any) -> bool:
    entries = headers if isinstance(headers, list) else [None]
    return all(
        isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e) for e in entries
    )


def is_verdict(verdict: Any) -> bool:
    if verdict == "same":
        return True
    return isinstance(verdict, list) and all(
        isinstance(d, dict) and isinstance(d.get("what"), str) for d in verdict
    )


def decodes(side: dict[str, Any]) -> bool:
    decoded_body(side)  # binascii.Error: not base64
    return True


PAIR_CHECKS: tuple[tuple[Callable[[dict[str, Any]], bool], str], ...] = (
    (lambda r: is_int(r["id"]), "id is not an integer"),
    (lambda r: isinstance(r["request"]["method"], str), "request.method is not a string"),
    (lambda r: isinstance(r["request"]["path"], str), "request.path is not a string"),
    (
        lambda r: are_headers(r["request"].get("headers", [])),
        "a request header is not [name, value]",
    ),
    (lambda r: decodes(r["request"]), "request body is not text or base64"),
    (lambda r: is_status(r["upstream"]["status"]), "upstream.status is not an HTTP status"),
    (lambda r: are_headers(r["upstream"]["headers"]), "an upstream header is not [name, value]"),
    (lambda r: decodes(r["upstream"]), "upstream body is not text or base64"),
    (lambda r: is_status(r["emulator"]["status"]), "emulator.status is not an HTTP status"),
    (lambda r: is_verdict(r["verdict"]), "verdict is neither 'same' nor a list of differences"),
)
