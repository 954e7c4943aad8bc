"""Scripted faults (SPEC 2.2): what to do to the next matching requests instead of answering them.

A fault matches when every key of its `match` holds (absent keys match anything); it fires
`times` times (every time when absent), then is spent.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from .catalogue import CATALOGUE
from .schemas import JsonInteger

FAULT_KINDS = ("error", "status", "delay_ms", "drop")

# SPEC 2.6: what a fault may ask for, so that nothing stored can break the API or hold a thread.
STATUS_RANGE = validate.Range(min=200, max=599)
MAX_RETRY_AFTER = 1_000_000  # seconds (11.6 days)
MAX_DELAY_MS = 60_000
MAX_TIMES = 1_000_000_000
DELAY_POLL_SECONDS = 0.05  # how often a delay under way looks whether the server is stopping

# Set when the server stops gracefully (SIGTERM): delays under way end at once, so that the
# requests they hold are answered within the grace period (SPEC 2.5).
SERVER_STOPPING = threading.Event()


def end_delays() -> None:
    """The server is stopping: every delay under way, and any to come, ends now."""
    SERVER_STOPPING.set()


def delay(cleared: threading.Event, seconds: float) -> None:
    """Sleep `seconds`, unless the fault is cleared (or the emulator reset) or the server stops."""
    deadline = time.monotonic() + seconds
    while not SERVER_STOPPING.is_set():
        left = deadline - time.monotonic()
        if left <= 0 or cleared.wait(min(left, DELAY_POLL_SECONDS)):
            return


class MatchSchema(Schema):
    class Meta:
        unknown = RAISE

    path = fields.String(metadata={"description": "A path prefix, e.g. /v1/email_campaigns"})
    token = fields.String()
    campaign_id = fields.String()


class FaultSchema(Schema):
    """`POST /__mock/faults`: a match, `times`, and exactly one of `error`, `status`, `delay_ms`,
    `drop`; `retry_after` only with `status` (rules JSON Schema does not state: README)."""

    class Meta:
        unknown = RAISE

    match = fields.Nested(MatchSchema, load_default=dict)
    times = JsonInteger(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=MAX_TIMES)
    )
    error = JsonInteger(validate=validate.OneOf(sorted(CATALOGUE)))
    status = JsonInteger(validate=STATUS_RANGE)
    retry_after = JsonInteger(validate=validate.Range(min=0, max=MAX_RETRY_AFTER))
    delay_ms = JsonInteger(validate=validate.Range(min=0, max=MAX_DELAY_MS))
    drop = fields.String(validate=validate.OneOf(["before", "after"]))

    @validates_schema
    def one_kind(self, data: dict[str, Any], **_: Any) -> None:
        kinds = [kind for kind in FAULT_KINDS if kind in data]
        if len(kinds) != 1:
            raise ValidationError(
                f"give exactly one of {', '.join(FAULT_KINDS)} (got {kinds or 'none'})"
            )
        if "retry_after" in data and "status" not in data:
            raise ValidationError("retry_after goes with status")


# What JSON Schema can say of the rules `one_kind` checks: the OpenAPI document carries it.
FAULT_RULES: dict[str, Any] = {
    "oneOf": [{"required": [kind]} for kind in FAULT_KINDS],
    "anyOf": [{"not": {"required": ["retry_after"]}}, {"required": ["status"]}],
}


class FaultStateSchema(FaultSchema):
    """A fault as `GET /__mock/faults` and `POST` show it: what was given, plus its progress."""

    class Meta:
        unknown = INCLUDE

    id = fields.Integer()
    fired = fields.Integer()
    remaining = fields.Integer(allow_none=True, metadata={"description": "null: fires every time"})


@dataclass
class Fault:
    id: int
    match: dict[str, str]
    times: int | None
    error: int | None = None
    status: int | None = None
    retry_after: int | None = None
    delay_ms: int | None = None
    drop: str | None = None
    fired: int = field(default=0)
    # Set when faults are cleared or the emulator reset: a delay under way ends early.
    cleared: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return next(kind for kind in FAULT_KINDS if getattr(self, kind) is not None)

    def matches(self, path: str, token: str | None, campaign_id: str | None) -> bool:
        wanted = self.match
        return (
            path.startswith(wanted.get("path", ""))
            and wanted.get("token", token) == token
            and wanted.get("campaign_id", campaign_id) == campaign_id
        )

    def describe(self) -> dict[str, Any]:
        shown = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "cleared" and getattr(self, f.name) is not None
        }
        shown["remaining"] = None if self.times is None else self.times - self.fired
        return shown


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._cleared = threading.Event()  # shared by the faults added since the last clear

    def add(self, spec: dict[str, Any]) -> Fault:
        """Add a fault from a payload already loaded by FaultSchema."""
        with self._lock:
            fault = Fault(id=next(self._ids), **spec, cleared=self._cleared)
            self._faults.append(fault)
            return fault

    def take(self, path: str, token: str | None, campaign_id: str | None) -> Fault | None:
        """The first live fault matching this request, used up by one."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, token, campaign_id):
                    fault.fired += 1
                    if fault.times is not None and fault.fired >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def clear(self) -> None:
        """Remove every fault; delays under way, spent faults' included, end now."""
        with self._lock:
            self._faults.clear()
            self._cleared.set()
            self._cleared = threading.Event()
