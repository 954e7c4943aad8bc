"""The server suite (`pisano-mock contract server`): does a server behave as SPEC 1.1, 1.3 and 1.4
say? Against this emulator it uses the admin API (reset, clock) and checks what was recorded;
against a real Pisano (`--live`) it paces itself within the throttle and mails only reserved
example domains, so no real person receives a survey."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .admin_client import AdminClient
from .expectations import (
    ALIGNED,
    CATALOGUE_CHECKED,
    ERROR_CONTENT_TYPE,
    THROTTLED_BODY,
    error_body,
)
from .model import ContractFailure

LIVE_PACE_SECONDS = 4.0  # 160 requests per 625 s is one per 3.9 s: never throttled by tier 4


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes


@dataclass
class Server:
    base_url: str
    token: str
    campaign_id: str
    admin: AdminClient | None
    pace: float = 0.0
    sent: int = field(default=0)

    def post(
        self,
        body: bytes | dict[str, Any] | None,
        *,
        token: str | None = None,
        campaign_id: str | None = None,
        path: str | None = None,
    ) -> Answer:
        if self.pace and self.sent:
            time.sleep(self.pace)
        self.sent += 1
        path = path or f"/v1/email_campaigns/{campaign_id or self.campaign_id}/email_sharings"
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token != "":
            headers["Authorization"] = f"Token token={token or self.token}"
        request = urllib.request.Request(
            self.base_url + path, data=data or b"", headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Answer(
                    response.status, response.headers.get("Content-Type", ""), response.read()
                )
        except urllib.error.HTTPError as refusal:
            return Answer(refusal.code, refusal.headers.get("Content-Type", ""), refusal.read())

    def fresh_window(self) -> None:
        """On the emulator: empty state and a frozen clock at the start of every tier's window."""
        if self.admin is not None:
            self.admin.reset()
            self.admin.call("POST", "/__mock/clock", {"set": ALIGNED})


def _recipients(*names: str) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"pisano-mock-contract+{run}-{name}@example.com" for name in names]


def expect_entry(check: str, answer: Answer, code: int) -> None:
    expected = error_body(code)
    if (answer.status, answer.content_type, answer.body) != (
        _status_of(code),
        ERROR_CONTENT_TYPE,
        expected,
    ):
        raise ContractFailure(
            check,
            f"{_status_of(code)} {ERROR_CONTENT_TYPE} {expected.decode()}",
            f"{answer.status} {answer.content_type} {answer.body[:200].decode(errors='replace')}",
        )


def _status_of(code: int) -> int:
    return CATALOGUE_CHECKED[code][0]


# -- the checks: one per rule, named as the deviation a user would look for ---------------------


def accepts_a_valid_body(server: Server) -> None:
    emails = _recipients("ada", "bob")
    body: dict[str, Any] = {
        "emails": emails,
        "custom_attributes": {emails[0]: {"name": "Ada", "external_id": "1"}},
        "transactional_data": {emails[1]: {"Segment": "Gold", "Amount": 12.5}},
    }
    answer = server.post(body)
    if answer.status != 200:
        raise ContractFailure(
            "accepts a valid body", "200", f"{answer.status} {answer.body[:200]!r}"
        )
    if server.admin is not None:
        recorded = {s["email"]: s for s in server.admin.sharings()}
        if (
            set(recorded) != set(emails)
            or recorded[emails[1]]["transactional_data"] != body["transactional_data"][emails[1]]
        ):
            raise ContractFailure(
                "accepts a valid body",
                f"sharings for {emails} with their data",
                f"{list(recorded.values())[:2]}",
            )


def _refusal(name: str, code: int, send: Callable[[Server], Answer]) -> Callable[[Server], None]:
    def check(server: Server) -> None:
        expect_entry(name, send(server), code)

    check.__name__ = name.replace(" ", "_")
    check.check_name = name  # type: ignore[attr-defined]
    return check


REFUSALS = [
    _refusal(
        "unknown path is 13002",
        13002,
        lambda s: s.post({"emails": _recipients("a")}, path="/v1/no_such_thing"),
    ),
    _refusal(
        "missing authorization is 13030",
        13030,
        lambda s: s.post({"emails": _recipients("a")}, token=""),
    ),
    _refusal(
        "unknown token is 13001",
        13001,
        lambda s: s.post({"emails": _recipients("a")}, token="pisano-mock-contract-unknown"),
    ),
    _refusal(
        "unknown campaign is 13002",
        13002,
        lambda s: s.post({"emails": _recipients("a")}, campaign_id=str(uuid.uuid4())),
    ),
    _refusal("body not JSON is 13000", 13000, lambda s: s.post(b"{not json")),
    _refusal("emails absent is 13015", 13015, lambda s: s.post({"custom_attributes": {}})),
    _refusal("emails empty is 13028", 13028, lambda s: s.post({"emails": []})),
    _refusal(
        "an invalid address is 13028", 13028, lambda s: s.post({"emails": ["not-an-address"]})
    ),
    _refusal(
        "attributes of a stranger are 13028",
        13028,
        lambda s: s.post(
            {"emails": _recipients("a"), "custom_attributes": {_recipients("b")[0]: {}}}
        ),
    ),
    _refusal("a duplicate is 13017", 13017, lambda s: s.post({"emails": [*_recipients("a") * 2]})),
]


def throttle_tiers_hold(server: Server) -> None:
    """SPEC 1.3 on the emulator's clock: 20 in 5 s, then 40 in 25 s, refused as Rack::Attack."""
    if server.admin is None:
        return  # live, the tiers would take ten minutes to see; the suite paces itself instead
    for window, expected_ok in ((0, 20), (5, 20), (10, 0)):
        server.admin.call("POST", "/__mock/clock", {"set": ALIGNED + window})
        statuses = [server.post({}).status for _ in range(21)]
        let_through = sum(status != 429 for status in statuses)
        if let_through != expected_ok:
            raise ContractFailure(
                "throttle tiers hold",
                f"{expected_ok} let through in the window at +{window} s (20/5 s, 40/25 s)",
                f"{let_through} let through",
            )
    refused = server.post({})
    if (refused.status, refused.content_type, refused.body) != (429, "text/plain", THROTTLED_BODY):
        raise ContractFailure(
            "throttle tiers hold",
            "429 text/plain 'Retry later\\n'",
            f"{refused.status} {refused.content_type} {refused.body!r}",
        )


SERVER_CHECKS: list[Callable[[Server], None]] = [
    accepts_a_valid_body,
    *REFUSALS,
    throttle_tiers_hold,
]


def server_check_name(check: Callable[[Server], None]) -> str:
    return getattr(check, "check_name", check.__name__.replace("_", " "))


def run_server_suite(server: Server) -> list[tuple[str, ContractFailure | None]]:
    """Each check in turn (in a fresh throttle window on the emulator); (name, failure or None)."""
    outcomes: list[tuple[str, ContractFailure | None]] = []
    for check in SERVER_CHECKS:
        server.fresh_window()
        try:
            check(server)
            outcomes.append((server_check_name(check), None))
        except ContractFailure as failure:
            failure.check = server_check_name(check)
            outcomes.append((failure.check, failure))
    return outcomes
