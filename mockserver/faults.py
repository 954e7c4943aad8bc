"""Scripted faults (SPEC 2.2): what to do to the next matching requests instead of answering them.

A fault matches when every key of its `match` holds (absent keys match anything); it fires
`times` times (every time when absent), then is spent.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .catalogue import CATALOGUE

FAULT_KINDS = ("error", "status", "delay_ms", "drop")


class MatchSchema(Schema):
    class Meta:
        unknown = RAISE

    path = fields.String(metadata={"description": "A path prefix, e.g. /v1/email_campaigns"})
    token = fields.String()
    campaign_id = fields.String()


class FaultSchema(Schema):
    """`POST /__mock/faults`: a match, `times`, and exactly one of the fault kinds."""

    class Meta:
        unknown = RAISE

    match = fields.Nested(MatchSchema, load_default=dict)
    times = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))
    error = fields.Integer(validate=validate.OneOf(sorted(CATALOGUE)))
    status = fields.Integer(validate=validate.Range(min=100, max=599))
    retry_after = fields.Integer(validate=validate.Range(min=0))
    delay_ms = fields.Integer(validate=validate.Range(min=0, max=600_000))
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
        shown = {k: v for k, v in asdict(self).items() if v is not None}
        shown["remaining"] = None if self.times is None else self.times - self.fired
        return shown


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> Fault:
        """Add a fault from a payload already loaded by FaultSchema."""
        with self._lock:
            fault = Fault(id=next(self._ids), **spec)
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
        with self._lock:
            self._faults.clear()
