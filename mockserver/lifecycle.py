"""What happens around every request to the emulated API: the journal and SPEC 1.4 rows 1-2.

Admin paths (`/__mock/`, `/openapi.json`) are neither journaled nor throttled (SPEC 2.2).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Request, Response, g, request

from .auth import mask_headers, token_from_header, token_id
from .bodies import BodyUnread, hold_body, read_body
from .catalogue import PisanoError
from .context import Emulator, current_emulator
from .gate import drop_connection, guard, rate_limit_headers
from .headers import REASON, REQUEST_ID, WARNING, ascii_header
from .metrics import UNMATCHED, Sample, route_template

ADMIN_PREFIXES = ("/__mock/", "/openapi.json")
RAW_PATH_KEY = "pisano_mock.raw_path"
ENTRY_OVERHEAD = 1200  # bytes an entry costs whatever it holds: its dicts, strings (measured)


def is_admin_path(path: str) -> bool:
    return path.startswith(ADMIN_PREFIXES) or path == "/__mock"


SURVEY_PREFIX = ("/s/", "/l/")  # survey pages, short links (api/survey.py): a browser


def is_survey_path(path: str) -> bool:
    return path.startswith(SURVEY_PREFIX)


def begin_request() -> Response | None:
    """Open the journal entry, then SPEC 1.4 rows 1-4: unknown routes, forced entries, faults,
    throttle. A response returned here replaces the endpoint's."""
    req = request._get_current_object()  # type: ignore[attr-defined]  # once: each proxy use costs
    if is_admin_path(req.path):
        if req.routing_exception is not None:
            raise PisanoError(13002, f"no admin route for {req.method} {req.path}")
        return None
    if is_survey_path(req.path):
        return None  # neither journaled nor throttled; an unknown path still answers 13002
    emulator = current_emulator()
    open_entry(emulator, req)
    if req.routing_exception is not None:
        raise PisanoError(13002, f"no route for {req.method} {raw_path(req.environ, req.path)}")
    return guard(emulator)


def open_entry(emulator: Emulator, req: Request) -> None:
    """Open the request's journal entry; finish_request closes it with the answer."""
    state = g._get_current_object()  # type: ignore[attr-defined]
    state.started = time.perf_counter()
    state.warnings = []
    state.journal = {}
    entry = _new_entry(emulator, req)
    nbytes = ENTRY_OVERHEAD + len(entry["path"]) + _headers_bytes(entry["headers"])
    begun = emulator.store.begin_request(entry, nbytes, emulator.clock)
    # One instant per request, read as the entry opens: the journal's, the throttle's (unless
    # it counts at its own), the sharings' `accepted_at` (SPEC 1.3).
    state.entry_bytes, state.request_id, state.now = nbytes, begun.id, begun.now
    state.faults_held = begun.faults


def finish_request(response: Response) -> Response:
    """Close the journal entry with the answer, and label the answer with its request id."""
    state = g._get_current_object()  # type: ignore[attr-defined]  # once: each proxy use costs
    request_id = state.get("request_id")
    if request_id is None:
        return response
    warnings = state.warnings
    headers = response.headers
    headers[REQUEST_ID] = str(request_id)
    if warnings:
        headers[WARNING] = ascii_header("; ".join(warnings))
    updates: dict[str, Any] = {
        "status": response.status_code,
        "warnings": warnings,
        **state.journal,
    }
    reason = updates.get("reason")
    if reason and REASON not in headers:  # the throttle's or a fault's (SPEC 2.3)
        headers[REASON] = ascii_header(reason)
    emulator = current_emulator()
    raw = _body_if_read(state, emulator)
    if isinstance(state.body_error, BodyUnread):
        headers["Connection"] = "close"  # the rest of the body is still on the wire
    held = updates["body"] = hold_body(raw, updates.get("body"))
    verdict = state.get("throttle_verdict")
    if verdict is not None and emulator.settings.throttle.profile == "rich":
        headers.update(rate_limit_headers(verdict, emulator.clock))
    dropped = state.get("drop_connection")
    if dropped == "before":
        updates["status"] = None  # no answer was ever made
    said = sum(map(len, warnings)) + len(updates.get("reason") or "")
    held_bytes = len(held.data) if held is not None else 0
    emulator.store.finish_request(request_id, updates, state.entry_bytes + held_bytes + said)
    emulator.metrics.record(_metrics_sample(updates, state))
    if dropped:
        drop_connection()  # last: a client that sees the close finds the journal and metrics done
    return response


def _metrics_sample(updates: dict[str, Any], state: Any) -> Sample:
    """What this request adds to the metrics: its answer as journaled, and how long it took."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    rule = req.url_rule
    return Sample(
        endpoint=route_template(rule.rule) if rule is not None else UNMATCHED,
        method=req.method,
        status=updates["status"],
        code=updates.get("code"),
        seconds=time.perf_counter() - state.started,
        throttled_tier=(updates.get("throttle") or {}).get("tier"),
        recipients=state.get("recipients_accepted", 0),
        fault_kind=(updates.get("fault") or {}).get("kind"),
    )


def request_body() -> bytes:
    """The body, read once from the stream within max_body_bytes; a refusal is raised each call."""
    return _body(g._get_current_object(), current_emulator())  # type: ignore[attr-defined]


def _body(state: Any, emulator: Emulator) -> bytes:
    if "body" not in state:
        state.body, state.body_error = b"", None
        try:
            environ = request.environ
            state.body = read_body(environ, emulator.settings.bounds.max_body_bytes)
        except PisanoError as error:
            state.body_error = error
    if state.body_error is not None:
        raise state.body_error
    return state.body  # type: ignore[no-any-return]


def _body_if_read(state: Any, emulator: Emulator) -> bytes:
    # The journal shows every body, even one no view looked at; a refused one is kept as nothing.
    try:
        return _body(state, emulator)
    except PisanoError:
        return b""


def record_refusal(error: PisanoError) -> None:
    if g.get("request_id") is not None:
        g.journal.update(code=error.code, reason=error.reason)


def _new_entry(emulator: Emulator, req: Request) -> dict[str, Any]:
    forms = emulator.settings.fidelity.auth_forms
    headers = mask_headers(req.headers.items(), forms, emulator.settings.access.mask_headers)
    path = raw_path(req.environ, req.path)
    return journal_entry(req.method, path, headers, token_id=_token_id(emulator, req, forms))


def _token_id(emulator: Emulator, req: Request, forms: tuple[str, ...]) -> str | None:
    """What the throttle counts by (gate.py): the token, else the header as sent; kept only as
    a keyed hash, for the inspector's token filter (SPEC 2.7)."""
    sent = req.headers.get("Authorization")
    if not sent:
        return None
    return token_id(token_from_header(sent, forms) or sent, emulator.store.link_secret())


def journal_entry(method: str, path: str, headers: dict[str, str], **more: Any) -> dict[str, Any]:
    """A journal entry as it opens: the one shape of every entry (an API call, a CSV upload, a
    workflow run: `more` says which), completed when the answer is known."""
    return {
        "id": None,
        "time": None,  # the store stamps it with the clock's reading
        "method": method,
        "path": path,
        "headers": headers,
        "body": None,
        "status": None,
        "code": None,
        "reason": None,
        "warnings": [],
        "fault": None,
        "throttle": None,
        **more,
    }


def raw_path(environ: dict[str, Any], path: str) -> str:
    """The path as the client sent it: Werkzeug's PATH_INFO already lost a leading `//`."""
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    return uri.split("?", 1)[0] if uri else environ.get(RAW_PATH_KEY, path)


def _headers_bytes(headers: dict[str, str]) -> int:
    return sum(len(name) + len(value) for name, value in headers.items())
