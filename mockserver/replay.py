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

import threading
from dataclasses import dataclass
from typing import Any

from flask import Response, g, request

from . import drift, lifecycle
from .catalogue import PisanoError
from .context import current_emulator
from .headers import ANSWER_HOP_BY_HOP, REASON, VERBATIM_KEY, ascii_header
from .recording import decoded_body, read_recording


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
        for record in read_recording(directory):  # RecordingError: the CLI's one line, exit 2
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
        found = self.next_answer((req.method, raw_path(req.environ, req.path), body))
        if found is None:
            return None
        lifecycle.open_entry(current_emulator(), req)
        code = drift.json_code({"body": found.body})
        reason = f"replayed: {self.directory} pair {found.pair_id}"
        g.journal.update(code=code, reason=reason)
        req.environ[VERBATIM_KEY] = True
        answer = found.response()
        answer.headers[REASON] = ascii_header(reason)  # ours, over an upstream emulator's own
        return answer

    def reset(self) -> None:
        with self._lock:
            self._served.clear()


def raw_path(environ: dict[str, Any], path: str) -> str:
    """The path as the client sent it (before `//` and a trailing `/` are normalised)."""
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    return uri.split("?", 1)[0] if uri else environ.get(lifecycle.RAW_PATH_KEY, path)


def key_of(side: dict[str, Any]) -> Key:
    return (side["method"], str(side["path"]).split("?", 1)[0], decoded_body(side))


def recorded(record: dict[str, Any]) -> Recorded:
    upstream = record["upstream"]
    headers = tuple(
        (str(name), str(value))
        for name, value in upstream["headers"]
        if str(name).lower() not in ANSWER_HOP_BY_HOP
    )
    status = f"{int(upstream['status'])} {upstream.get('reason_phrase') or ''}".rstrip()
    return Recorded(int(record["id"]), status, headers, decoded_body(upstream))
