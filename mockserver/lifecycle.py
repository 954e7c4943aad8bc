"""What happens around every request to the emulated API: the journal and SPEC 1.4 rows 1-2.

Admin paths (`/__mock/`, `/openapi.json`) are neither journaled nor throttled (SPEC 2.2).
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, g, request
from werkzeug.exceptions import HTTPException

from .auth import mask_headers
from .catalogue import PisanoError
from .context import Emulator, current_emulator
from .gate import drop_connection, guard, rate_limit_headers
from .headers import REQUEST_ID, WARNING, ascii_header

ADMIN_PREFIXES = ("/__mock/", "/openapi.json")
RAW_PATH_KEY = "pisano_mock.raw_path"


def is_admin_path(path: str) -> bool:
    return path.startswith(ADMIN_PREFIXES) or path == "/__mock"


def begin_request() -> Response | None:
    """Open the journal entry, then SPEC 1.4 rows 1-4: unknown routes, forced entries, faults,
    throttle. A response returned here replaces the endpoint's."""
    if is_admin_path(request.path):
        if request.routing_exception is not None:
            raise PisanoError(13002, f"no admin route for {request.method} {request.path}")
        return None
    emulator = current_emulator()
    g.now = emulator.clock.now()  # one instant per request: the journal's and the throttle's
    g.warnings = []
    g.journal = {}
    g.request_id = emulator.store.begin_request(_new_entry(emulator), request.content_length or 0)
    if request.routing_exception is not None:
        raise PisanoError(13002, f"no route for {request.method} {_raw_path()}")
    return guard(emulator, g.now)


def finish_request(response: Response) -> Response:
    """Close the journal entry with the answer, and label the answer with its request id."""
    request_id = g.get("request_id")
    if request_id is None:
        return response
    warnings = g.get("warnings", [])
    response.headers[REQUEST_ID] = str(request_id)
    if warnings:
        response.headers[WARNING] = ascii_header("; ".join(warnings))
    updates: dict[str, Any] = {"status": response.status_code, "warnings": warnings, **g.journal}
    if "body" not in updates:
        updates["body"] = _body_for_journal()
    emulator = current_emulator()
    verdict = g.get("throttle_verdict")
    if verdict is not None and emulator.settings.throttle.profile == "rich":
        response.headers.update(rate_limit_headers(verdict, emulator.clock))
    dropped = g.get("drop_connection")
    if dropped:
        if dropped == "before":
            updates["status"] = None  # no answer was ever made
        drop_connection()
    emulator.store.finish_request(request_id, updates)
    return response


def record_refusal(error: PisanoError) -> None:
    if g.get("request_id") is not None:
        g.journal.update(code=error.code, reason=error.reason)


def _new_entry(emulator: Emulator) -> dict[str, Any]:
    forms = emulator.settings.fidelity.auth_forms
    headers = mask_headers(request.headers.items(), forms, emulator.settings.access.mask_headers)
    return {
        "id": None,
        "time": g.now,
        "method": request.method,
        "path": _raw_path(),
        "headers": headers,
        "body": None,
        "status": None,
        "code": None,
        "reason": None,
        "warnings": [],
        "fault": None,
        "throttle": None,
    }


def _raw_path() -> str:
    # The request line as sent: Werkzeug's PATH_INFO already lost a leading "//".
    environ = request.environ
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    return uri.split("?", 1)[0] if uri else environ.get(RAW_PATH_KEY, request.path)


def _body_for_journal() -> Any:
    try:
        raw = request.get_data(cache=True)
    except HTTPException:  # too large, or the client went away: the reason says so already
        return None
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")
