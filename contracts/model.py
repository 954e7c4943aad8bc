"""The kit's nouns: an example (customers and how the server behaves), what was observed, and the
one failure type every check raises."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


def as_json(value: Any) -> str:
    """A value as a report shows it: JSON, since the client may be written in any language."""
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class ServerBehaviour:
    """What the emulator does to the client during one example."""

    faults: tuple[dict[str, Any], ...] = ()
    preload_tiers: int = 0  # exhaust this many throttle tiers before the client starts
    clock_rate: float = 50.0  # the emulator's clock runs this many times faster than real time
    window_offset: float = 0.0  # seconds into a tier-1 window when the client starts

    @property
    def fault_kinds(self) -> set[str]:
        kinds = set()
        for fault in self.faults:
            if "error" in fault:
                kinds.add("error")
            elif "status" in fault:
                kinds.add("status")
            elif "drop" in fault:
                kinds.add(f"drop_{fault['drop']}")
        return kinds

    @property
    def drops_after(self) -> bool:
        return "drop_after" in self.fault_kinds


@dataclass(frozen=True)
class Example:
    scenario: str
    customers: list[dict[str, Any]]
    server: ServerBehaviour = field(default_factory=ServerBehaviour)
    # Handed to the client in PISANO_BUILT_IN_RESPONSES_FILE; a client that sends them must get
    # them into every customer's survey link (SPEC 1.7).
    built_in_responses: dict[str, Any] = field(default_factory=dict)
    endpoint: str = "email"  # which endpoint the client is asked to call (contracts.endpoints)

    def describe(self, limit: int = 3) -> str:
        """The example in JSON notation (the client may be written in any language)."""
        shown = ", ".join(as_json(c) for c in self.customers[:limit])
        more = f", … ({len(self.customers)} customers)" if len(self.customers) > limit else ""
        server = []
        if self.server.faults:
            server.append(f"faults {as_json(list(self.server.faults))}")
        if self.server.preload_tiers:
            server.append(f"throttle: {self.server.preload_tiers} tier(s) exhausted before start")
        where = "" if self.endpoint == "email" else f" ({self.endpoint})"
        # Always shown, `{}` too: the client is always handed them, and `{}` is why a link
        # must carry no responses.
        responses = f"built_in_responses {as_json(self.built_in_responses)}"
        behaviour = "; ".join(server) or "the server behaves"
        return (
            f"scenario {self.scenario}{where}: customers [{shown}{more}]; {behaviour}; {responses}"
        )


@dataclass
class Observation:
    """What one run of the client left behind."""

    exit_status: int | None  # None: timed out
    requests: list[dict[str, Any]]  # the journal entries of the client's requests
    sharings: list[dict[str, Any]]
    stdout: str = ""
    stderr: str = ""
    client_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    # Why the emulator's record is partial (then see checks.NEEDS_THE_WHOLE_RECORD).
    incomplete: str | None = None

    def journal_excerpt(self, limit: int = 12) -> str:
        lines = []
        for entry in self.requests[:limit]:
            count = _recipient_count(entry.get("body"))
            what = entry.get("reason") or ""
            answer = "dropped" if entry["status"] is None else entry["status"]
            lines.append(
                f"  #{entry['id']} {entry['method']} {entry['path']} → {answer} "
                f"code={as_json(entry['code'])} recipients={count} {what}".rstrip()
            )
        if len(self.requests) > limit:
            lines.append(f"  … {len(self.requests) - limit} more")
        return "\n".join(lines) or "  (no request reached the emulator)"


def _recipient_count(body: Any) -> int | str:
    """How many customers a request body names, whichever endpoint it went to."""
    if not isinstance(body, dict):
        return "?"
    listed = body.get("emails", body.get("phone_numbers"))
    if isinstance(listed, list):
        return len(listed)
    return 1 if isinstance(body.get("customer"), dict) else "?"


def exit_words(status: int | None) -> str:
    """A client's exit status as a report says it: a killed client has none."""
    return "killed at the timeout" if status is None else f"exit status {status}"


class ContractFailure(AssertionError):
    """A check that did not hold: which check, what was expected, what arrived."""

    def __init__(self, check: str, expected: str, received: str) -> None:
        super().__init__(f"{check}: expected {expected}; received {received}")
        self.check = check
        self.expected = expected
        self.received = received


class KitError(RuntimeError):
    """The kit itself could not run (exit status 2): bad arguments, command not found."""
