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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .admin_client import AdminClient
from .checks import arrived_fields, differences, fields_of
from .expectations import (
    ALIGNED,
    CATALOGUE_CHECKED,
    ERROR_CONTENT_TYPE,
    THROTTLED_BODY,
    error_body,
)
from .model import ContractFailure, as_json

LIVE_PACE_SECONDS = 4.0  # 160 requests per 625 s is one per 3.9 s: never throttled by tier 4
TIER_ONE = (20, 5)  # requests, seconds: SPEC 1.3's first tier, the one --live can check safely
# Bodies the server refuses whatever happens (13028: no recipient at all): a burst of them reaches
# nobody, whether or not the throttle lets them through.
BURST_BODY: dict[str, Any] = {"emails": []}
BURST_CAP = 61  # three windows' worth: past it, tier 2 (40 per 25 s) refuses on any Pisano
CLOCK_MARGIN = 0.25  # s; a request this close to a window's edge may be in either (clock skew)
BURST_ROOM = 1.0  # s of a window a burst wants ahead of it, margin apart, before it starts


class CheckSkipped(Exception):
    """A check that could not run here: reported as skipped, never as passed."""


@dataclass
class ServerOutcome:
    name: str
    failure: ContractFailure | None = None
    skipped: str | None = None  # why it did not run


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
    clock: Callable[[], float] = time.time  # wall clock: Pisano's windows are epoch-aligned
    sleep: Callable[[float], None] = time.sleep

    def post(
        self,
        body: bytes | dict[str, Any] | None,
        *,
        token: str | None = None,
        campaign_id: str | None = None,
        path: str | None = None,
        paced: bool = True,
    ) -> Answer:
        if paced and self.pace and self.sent:
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

    def restore_clock(self) -> None:
        """On the emulator: the clock back at real time, running (the suite froze it)."""
        if self.admin is not None:
            self.admin.call("POST", "/__mock/clock", {"set": time.time(), "rate": 1})

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
            f"{answer.status} {answer.content_type} {answer.body[:200].decode('utf-8', 'replace')}",
        )


def _status_of(code: int) -> int:
    return CATALOGUE_CHECKED[code][0]


# -- the checks: one per rule, named as the deviation a user would look for ---------------------


def accepts_a_valid_body(server: Server) -> None:
    emails = _recipients("ada", "bob")
    sent = {
        emails[0]: fields_of({"name": "Ada", "external_id": "1"}, None),
        emails[1]: fields_of({}, {"Segment": "Gold", "Amount": 12.5, "Vip": True, "Note": None}),
    }
    body: dict[str, Any] = {
        "emails": emails,
        "custom_attributes": {emails[0]: sent[emails[0]]["custom_attributes"]},
        "transactional_data": {emails[1]: sent[emails[1]]["transactional_data"]},
    }
    answer = server.post(body)
    if answer.status != 200:
        raise ContractFailure(
            "accepts a valid body",
            "200",
            f"{answer.status} {answer.body[:200].decode('utf-8', 'replace')}",
        )
    if server.admin is not None:
        _recorded_as_sent(sent, {s["email"]: s for s in server.admin.sharings()})


def _recorded_as_sent(sent: dict[str, Any], recorded: dict[str, Any]) -> None:
    """Each recipient's sharing holds what was sent for it, field by field."""
    if set(recorded) != set(sent):
        raise ContractFailure(
            "accepts a valid body",
            f"sharings for {as_json(sorted(sent))}",
            as_json(sorted(recorded)),
        )
    for email, fields in sent.items():
        expected, arrived = differences(fields, arrived_fields(recorded[email]))
        if expected or arrived:
            raise ContractFailure(
                "accepts a valid body", f"{email}: {as_json(expected)}", as_json(arrived)
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
    """SPEC 1.3: 20 in 5 s, then 40 in 25 s, refused as Rack::Attack does. On the emulator every
    tier is stepped through on its clock; live, only the first tier (see first_tier_holds)."""
    if server.admin is None:
        first_tier_holds(server)
        return
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
    _refused_as_pisano(server.post({}))


def _refused_as_pisano(answer: Answer) -> None:
    if (answer.status, answer.content_type, answer.body) != (429, "text/plain", THROTTLED_BODY):
        raise ContractFailure(
            "throttle tiers hold",
            '429 text/plain "Retry later\\n"',
            f"{answer.status} {answer.content_type} {_text(answer.body)}",
        )


def _text(body: bytes) -> str:
    return as_json(body.decode("utf-8", "replace"))


def _start_clear_of_an_edge(server: Server) -> None:
    """Wait, if need be, for a window with BURST_ROOM ahead: a fast burst begun within a margin of
    an edge would otherwise be over before any of its requests counted (a false skip)."""
    period = TIER_ONE[1]
    into = server.clock() % period
    if CLOCK_MARGIN <= into <= period - CLOCK_MARGIN - BURST_ROOM:
        return
    server.sleep((CLOCK_MARGIN - into) % period)


def _window_of(when: float) -> int | None:
    """The first tier's window a request sent at `when` falls in, unless it is so close to an edge
    that a small clock skew could put it in the next (then it is not counted at all)."""
    period = TIER_ONE[1]
    window = int(when // period)
    into = when - window * period
    return window if CLOCK_MARGIN <= into <= period - CLOCK_MARGIN else None


def first_tier_holds(server: Server) -> None:
    """Live: a burst, unpaced, of bodies refused anyway must meet Pisano's 429 by the 21st request
    of a 5 s window (windows by the wall clock, epoch-aligned as Rack::Attack's)."""
    limit, period = TIER_ONE
    counts: Counter[int] = Counter()
    _start_clear_of_an_edge(server)
    for _ in range(BURST_CAP):
        window = _window_of(server.clock())
        answer = server.post(BURST_BODY, paced=False)
        if answer.status == 429:
            _refused_as_pisano(answer)
            return
        if window is not None:
            counts[window] += 1
            if counts[window] > limit:
                raise ContractFailure(
                    "throttle tiers hold",
                    f"429 by the {limit + 1}st request of a {period} s window",
                    f"{counts[window]} requests let through in one {period} s window "
                    f"(the last answered {answer.status})",
                )
    raise CheckSkipped(
        f"a burst of {BURST_CAP} requests never put {limit + 1} in one {period} s window "
        "(too slow a connection to check the throttle)"
    )


SERVER_CHECKS: list[Callable[[Server], None]] = [
    accepts_a_valid_body,
    *REFUSALS,
    throttle_tiers_hold,
]


SERVER_FIXES = {
    "accepts a valid body": "Accept the documented body; store each recipient's custom_attributes "
    "and transactional_data as sent.",
    "throttle tiers hold": "Refuse the 21st request of a 5 s window (41st of 25 s, ...) with 429 "
    'text/plain "Retry later\\n".',
}
REFUSAL_FIX = "Answer this case with its catalogue entry byte for byte: status, Content-Type, body."


def server_fix(name: str) -> str:
    """How to fix a server failing the named check, in one line."""
    return SERVER_FIXES.get(name, REFUSAL_FIX)


def server_check_name(check: Callable[[Server], None]) -> str:
    return getattr(check, "check_name", check.__name__.replace("_", " "))


def run_server_suite(server: Server) -> list[ServerOutcome]:
    """Each check in turn (in a fresh throttle window on the emulator): held, failed or skipped.
    An emulator's clock is given back running at real time, so it serves on unthrottled."""
    try:
        return _run_checks(server)
    finally:
        server.restore_clock()


def _run_checks(server: Server) -> list[ServerOutcome]:
    outcomes: list[ServerOutcome] = []
    for check in SERVER_CHECKS:
        server.fresh_window()
        name = server_check_name(check)
        try:
            check(server)
            outcomes.append(ServerOutcome(name))
        except ContractFailure as failure:
            failure.check = name
            outcomes.append(ServerOutcome(name, failure=failure))
        except CheckSkipped as skipped:
            outcomes.append(ServerOutcome(name, skipped=str(skipped)))
    return outcomes
