"""One access-log line per request, admin requests included (SPEC 2.5), through `logging`.

Silent unless `configure` gave the logger a handler (the CLI does, for `serve`): an app a test
starts in-process logs nothing. The line is written when Flask has the answer, before the bytes
go out, so a client that got its answer can read the line already.

    2026-11-30T12:00:00.123Z POST /v1/email_campaigns/…/email_sharings 400 code=13028 2.4ms
        token=tes****ken request=7                                        (one line; "-" = none)
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from flask import Flask, Response, g, request
from flask.signals import request_finished, request_started

from .auth import mask_token, token_from_header
from .context import current_emulator
from .headers import REQUEST_ID

LOGGER = logging.getLogger("pisano_mock.access")
LOGGER.propagate = False  # never through the root logger: only the handler `configure` adds
FORMATS = ("text", "json")
_CODE_BODY_LIMIT = 512  # a catalogue body is ~100 bytes; never parse a large answer for its code


def init_app(app: Flask) -> None:
    """Time every request of `app` from its start, and log it when the answer is ready."""
    request_started.connect(_start, app, weak=False)
    request_finished.connect(_finish, app, weak=False)


def configure(stream: IO[str], log_format: str = "text") -> logging.Handler:
    """Send one line per request to `stream`, as text or as one JSON object per line."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    return handler


def _start(_: Flask, **__: Any) -> None:
    g.access_started = time.monotonic()


def _finish(_: Flask, response: Response, **__: Any) -> None:
    if not LOGGER.isEnabledFor(logging.INFO):
        return
    started = g.get("access_started", time.monotonic())
    access = _fields(response, time.monotonic() - started)
    # makeRecord + handle, not LOGGER.info: info() walks the stack for the caller's file and line,
    # which a request line never shows, and that walk was most of the log's cost per request.
    record = LOGGER.makeRecord(LOGGER.name, logging.INFO, "", 0, "request", (), None)
    record.__dict__["access"] = access
    LOGGER.handle(record)


def _fields(response: Response, seconds: float) -> dict[str, Any]:
    request_id = response.headers.get(REQUEST_ID)
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "method": request.method,
        "path": _path(),
        "status": _status(response),
        "code": _code(response),
        "duration_ms": round(seconds * 1000, 1),
        "token": _masked_token(),
        "request_id": int(request_id) if request_id else None,
    } | ({"replayed": f"pair {g.replayed_pair}"} if "replayed_pair" in g else {})


def _status(response: Response) -> int | None:
    # `drop: before` closes the connection unanswered: no status, as in the journal.
    return None if g.get("drop_connection") == "before" else response.status_code


def _path() -> str:
    # As sent: `/v1//email_campaigns/...` is what an integrator needs to see (SPEC 1.1).
    uri = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    return uri.split("?", 1)[0] if uri else request.path


def _code(response: Response) -> int | None:
    """The catalogue code of a refusal, read from its body: the bytes SPEC 1.4 fixes."""
    if response.status_code < 400 or response.mimetype != "application/json":
        return None
    if response.is_streamed or (response.content_length or 0) > _CODE_BODY_LIMIT:
        return None
    try:
        code = orjson.loads(response.get_data()).get("code")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _masked_token() -> str | None:
    header = request.headers.get("Authorization")
    if not header:
        return None
    forms = current_emulator().settings.fidelity.auth_forms
    return mask_token(token_from_header(header, forms) or header)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        a = _access(record)
        return (
            f"{a['time']} {a['method']} {a['path']} {_dash(a['status'])} code={_dash(a['code'])} "
            f"{a['duration_ms']:.1f}ms token={_dash(a['token'])} request={_dash(a['request_id'])}"
        ) + (f" replayed={a['replayed']}" if "replayed" in a else "")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_access(record), ensure_ascii=True)


def _access(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = record.__dict__["access"]  # set through `extra` by _finish
    return fields


def _dash(value: object) -> str:
    return "-" if value is None else str(value)
