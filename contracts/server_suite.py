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
    sms_campaign_id: str | None = None  # SPEC 1.5's checks run when given
    link_channel_id: str | None = None  # SPEC 1.6's checks run when given
    absent: dict[str, str] = field(default_factory=dict)  # target's `what`: why it is not here

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

    def sms(self, body: bytes | dict[str, Any] | None, **kwargs: Any) -> Answer:
        """A request to the SMS endpoint (SPEC 1.5), of `campaign_id` or the SMS campaign."""
        campaign = _needed(self, SMS_TARGET)
        campaign = kwargs.pop("campaign_id", None) or campaign
        return self.post(body, path=f"/v1/sms_campaigns/{campaign}/sms_sharings", **kwargs)

    def link(self, body: bytes | dict[str, Any] | None, **kwargs: Any) -> Answer:
        """A request to the link endpoint (SPEC 1.6), of `channel` or the link channel."""
        channel = _needed(self, LINK_TARGET)
        channel = kwargs.pop("channel", None) or channel
        path = f"/external/v1/link_sharings/{channel}/generate_link"
        return self.post(body, path=path, **kwargs)

    def restore_clock(self) -> None:
        """On the emulator: the clock back at real time, running (the suite froze it)."""
        if self.admin is not None:
            self.admin.call("POST", "/__mock/clock", {"set": time.time(), "rate": 1})

    def fresh_window(self) -> None:
        """On the emulator: empty state and a frozen clock at the start of every tier's window."""
        if self.admin is not None:
            self.admin.reset()
            self.admin.call("POST", "/__mock/clock", {"set": ALIGNED})


@dataclass(frozen=True)
class Channel:
    """What SPEC 1.5's or 1.6's checks send to: an SMS campaign or a link channel."""

    attribute: str  # the Server field holding its id
    what: str
    option: str
    path: str  # the endpoint's path, "{}" for the id
    unknown_code: int  # the answer of a server that does not hold it
    valid_body: dict[str, Any]


SMS_TARGET = Channel(
    "sms_campaign_id",
    "SMS campaign",
    "--sms-campaign-id",
    "/v1/sms_campaigns/{}/sms_sharings",
    13002,
    {"phone_numbers": ["2025550143"]},  # a number reserved for fiction (see SMS_NUMBERS)
)
LINK_TARGET = Channel(
    "link_channel_id",
    "link channel",
    "--link-channel-id",
    "/external/v1/link_sharings/{}/generate_link",
    13035,
    {"customer": {"external_id": "pisano-mock-contract"}},
)


def _needed(server: Server, target: Channel) -> str:
    """The SMS campaign or link channel a check needs; skipped (not passed) without it."""
    if target.what in server.absent:
        raise CheckSkipped(server.absent[target.what])
    target_id: str | None = getattr(server, target.attribute)
    if target_id is None:
        raise CheckSkipped(f"no {target.what} to check: give {target.option}")
    return target_id


def find_absent_targets(server: Server) -> None:
    """On the emulator: an SMS campaign or link channel its config does not hold (a user's own
    [campaigns]) answers a valid body with 13002 / 13035; its checks are then skipped, naming
    why, not failed with a wrong fix (nor passed because the id was unknown). Live: not probed,
    a valid SMS body would send a text message."""
    if server.admin is None:
        return
    for target in (SMS_TARGET, LINK_TARGET):
        target_id = getattr(server, target.attribute)
        if target_id is None:
            continue
        answer = server.post(target.valid_body, path=target.path.format(target_id))
        if _is_entry(answer, target.unknown_code):
            server.absent[target.what] = (
                f"the {target.what} {target_id} is not on this emulator, a valid body is answered "
                f"{target.unknown_code}: give {target.option} of one it holds"
            )


def _recipients(*names: str) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"pisano-mock-contract+{run}-{name}@example.com" for name in names]


def _is_entry(answer: Answer, code: int) -> bool:
    """The answer is the catalogue entry of `code`, byte for byte."""
    expected = (_status_of(code), ERROR_CONTENT_TYPE, error_body(code))
    return (answer.status, answer.content_type, answer.body) == expected


def expect_entry(check: str, answer: Answer, code: int) -> None:
    expected = error_body(code)
    if not _is_entry(answer, code):
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


# -- SMS sharing (SPEC 1.5) ------------------------------------------------------------------------

# Numbers reserved for fiction (Ofcom's drama range, the US 555-01xx range), written as people
# write them: should a server not refuse a body that must be refused, nobody gets the SMS.
SMS_NUMBERS = ("+44 (7700) 900-123", "2025550143")
TWIN = "447700900123"  # SMS_NUMBERS[0] once normalised
STRANGER = "2025550144"


def _json_answer(check: str, answer: Answer) -> dict[str, Any]:
    """A 200 with a JSON object, parsed; else the check fails showing what came."""
    try:
        parsed = json.loads(answer.body) if answer.status == 200 else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not answer.content_type.startswith("application/json"):
        raise ContractFailure(
            check, "200 application/json, a JSON object", f"{answer.status} {answer.content_type} "
            f"{answer.body[:200].decode('utf-8', 'replace')}",
        )  # fmt: skip
    return parsed


def sms_accepts_a_valid_body(server: Server) -> None:
    """SPEC 1.5's 200: status, the campaign, the count, an id per number as sent. On the emulator
    only: live, it would send SMS messages."""
    if server.admin is None:
        raise CheckSkipped("live, a valid SMS body sends text messages: checked on an emulator")
    first, second = SMS_NUMBERS
    body = {
        "phone_numbers": [first, second],
        "custom_attributes": {first: {"name": "Ayşe", "email": _recipients("ayse")[0]}},
        "transactional_data": {second: {"Segment": "Gold", "Amount": 12.5}},
    }
    answer = _json_answer("sms: accepts a valid body", server.sms(body))
    sharings = answer.get("sharings")
    expected = {"status": "ok", "campaign_id": server.sms_campaign_id, "count": 2}
    shown = {k: answer.get(k) for k in expected}
    ids = list(sharings.values()) if isinstance(sharings, dict) else []
    well_formed = isinstance(sharings, dict) and list(sharings) == [first, second]
    if shown != expected or not well_formed or not _distinct_integers(ids):
        raise ContractFailure(
            "sms: accepts a valid body",
            f"{as_json(expected)} and sharings {{{as_json(first)}: id, {as_json(second)}: id}}",
            as_json(answer),
        )


def _distinct_integers(ids: list[Any]) -> bool:
    integers = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
    return len(set(integers)) == len(ids)


SMS_REFUSALS = [
    _refusal(
        "sms: unknown token is 13001",
        13001,
        lambda s: s.sms({"phone_numbers": [SMS_NUMBERS[1]]}, token="pisano-mock-contract-unknown"),
    ),
    _refusal(
        "sms: unknown campaign is 13002",
        13002,
        lambda s: s.sms({"phone_numbers": [SMS_NUMBERS[1]]}, campaign_id=str(uuid.uuid4())),
    ),
    _refusal(
        "sms: an email campaign is 13002",
        13002,
        lambda s: s.sms({"phone_numbers": [SMS_NUMBERS[1]]}, campaign_id=s.campaign_id),
    ),
    _refusal(
        "sms: the email endpoint with an SMS campaign is 13002",
        13002,
        lambda s: s.post({"emails": _recipients("a")}, campaign_id=_needed(s, SMS_TARGET)),
    ),
    _refusal(
        "sms: unknown campaign comes before the body (13002)",
        13002,
        lambda s: s.sms(b"{not json", campaign_id=str(uuid.uuid4())),
    ),
    _refusal("sms: body not JSON is 13000", 13000, lambda s: s.sms(b"{not json")),
    _refusal(
        "sms: phone_numbers absent is 13015", 13015, lambda s: s.sms({"custom_attributes": {}})
    ),
    _refusal("sms: phone_numbers empty is 13028", 13028, lambda s: s.sms({"phone_numbers": []})),
    _refusal(
        "sms: phone_numbers a string is 13028",
        13028,
        lambda s: s.sms({"phone_numbers": SMS_NUMBERS[1]}),
    ),
    _refusal(
        "sms: a number with letters is 13028",
        13028,
        lambda s: s.sms({"phone_numbers": ["555-CALL-NOW"]}),
    ),
    _refusal(
        "sms: a number of 30 digits is 13028", 13028, lambda s: s.sms({"phone_numbers": ["1" * 30]})
    ),
    _refusal(
        "sms: a number of 6 digits is 13028", 13028, lambda s: s.sms({"phone_numbers": ["123456"]})
    ),
    _refusal("sms: an empty number is 13028", 13028, lambda s: s.sms({"phone_numbers": [""]})),
    _refusal(
        "sms: attributes of a stranger are 13028",
        13028,
        lambda s: s.sms({"phone_numbers": [SMS_NUMBERS[1]], "custom_attributes": {STRANGER: {}}}),
    ),
    _refusal(
        "sms: the same number twice once normalised is 13017",
        13017,
        lambda s: s.sms({"phone_numbers": [SMS_NUMBERS[0], TWIN]}),
    ),
]


# -- link generation (SPEC 1.6) --------------------------------------------------------------------


def _link_answer(server: Server, options: Any, keys: list[str]) -> None:
    check = "link: generates a link"
    body: dict[str, Any] = {
        "customer": {"email": _recipients("ada")[0], "name": "Ada", "Tier": "Gold"},
        "transactional_data": {"Segment": "Gold"},
    }
    if options is not None:
        body["options"] = options
    answer = _json_answer(check, server.link(body))
    links_ok = all(isinstance(answer.get(k), str) and answer[k] for k in keys[1:])
    if list(answer) != keys or answer.get("status") != "ok" or not links_ok:
        raise ContractFailure(
            check,
            f"options {as_json(options)}: an object of {as_json(keys)}, status ok, links as text",
            as_json(answer),
        )


def link_generates_a_link(server: Server) -> None:
    """SPEC 1.6's 200: the link; a short link as well when `options` is true or "true"."""
    _link_answer(server, None, ["status", "link"])
    for options in (True, "true"):
        _link_answer(server, options, ["status", "link", "short_link"])


def _on_the_default_schema(server: Server) -> None:
    if server.admin is None:
        raise CheckSkipped("needs the emulator's default customer schema (NPS an integer)")


def _wrongly_typed_response(server: Server) -> Answer:
    _on_the_default_schema(server)
    body = {"customer": {"external_id": "x"}, "built_in_responses": {"NPS": "nine"}}
    return server.link(body)


CUSTOMER = {"external_id": "pisano-mock-contract"}
LINK_REFUSALS = [
    _refusal(
        "link: unknown token is 13001",
        13001,
        lambda s: s.link({"customer": CUSTOMER}, token="pisano-mock-contract-unknown"),
    ),
    _refusal(
        "link: missing authorization is 13030",
        13030,
        lambda s: s.link({"customer": CUSTOMER}, token=""),
    ),
    _refusal(
        "link: unknown link channel is 13035",
        13035,
        lambda s: s.link({"customer": CUSTOMER}, channel=str(uuid.uuid4())),
    ),
    _refusal(
        "link: unknown channel comes before the body (13035)",
        13035,
        lambda s: s.link(b"{not json", channel=str(uuid.uuid4())),
    ),
    _refusal("link: body not JSON is 13000", 13000, lambda s: s.link(b"{not json")),
    _refusal("link: customer absent is 13015", 13015, lambda s: s.link({"transactional_data": {}})),
    _refusal(
        "link: customer absent comes before a wrong type (13015)",
        13015,
        lambda s: s.link({"built_in_responses": {"NPS": "nine"}}),
    ),
    _refusal("link: customer a list is 13038", 13038, lambda s: s.link({"customer": [CUSTOMER]})),
    _refusal("link: customer a string is 13038", 13038, lambda s: s.link({"customer": "x"})),
    _refusal(
        "link: customer without an identity key is 13038",
        13038,
        lambda s: s.link({"customer": {"Tier": "Gold"}}),
    ),
    _refusal(
        "link: a built_in_responses value of the wrong type is 13028",
        13028,
        _wrongly_typed_response,
    ),
]


def one_throttle_for_email_sms_and_link(server: Server) -> None:
    """SPEC 1.2/1.3: one bucket per token for "Email & SMS & Link": 20 requests spread over the
    three endpoints fill the first tier's window; the 21st, on any of them, is refused."""
    if server.admin is None:
        raise CheckSkipped("needs the emulator's clock (live, the first tier is checked by email)")
    _needed(server, SMS_TARGET)
    _needed(server, LINK_TARGET)
    senders = (server.post, server.sms, server.link)
    statuses = [senders[i % 3]({}).status for i in range(20)]
    refused = [senders[i]({}) for i in range(3)]
    if 429 in statuses or any(a.status != 429 for a in refused):
        raise ContractFailure(
            "one throttle for email, SMS and link",
            "20 requests across the three endpoints let through, then 429 on each",
            f"statuses {statuses}, then {[a.status for a in refused]}",
        )
    for answer in refused:
        _refused_as_pisano(answer)


def _named(check: Callable[[Server], None], name: str) -> Callable[[Server], None]:
    check.check_name = name  # type: ignore[attr-defined]
    return check


_named(sms_accepts_a_valid_body, "sms: accepts a valid body")
_named(link_generates_a_link, "link: generates a link")
_named(one_throttle_for_email_sms_and_link, "one throttle for email, SMS and link")

SERVER_CHECKS: list[Callable[[Server], None]] = [
    accepts_a_valid_body,
    *REFUSALS,
    sms_accepts_a_valid_body,
    *SMS_REFUSALS,
    link_generates_a_link,
    *LINK_REFUSALS,
    one_throttle_for_email_sms_and_link,
    throttle_tiers_hold,  # last: live, its burst leaves the token throttled for a while
]


SERVER_FIXES = {
    "accepts a valid body": "Accept the documented body; store each recipient's custom_attributes "
    "and transactional_data as sent.",
    "throttle tiers hold": "Refuse the 21st request of a 5 s window (41st of 25 s, ...) with 429 "
    'text/plain "Retry later\\n".',
    "sms: accepts a valid body": 'Answer 200 {"status":"ok","campaign_id":C,"count":n,'
    '"sharings":{"<number as sent>": id, ...}}.',
    "link: generates a link": 'Answer 200 {"status":"ok","link":...}, with "short_link" when '
    'options is true or "true".',
    "one throttle for email, SMS and link": "Count email, SMS and link requests of one token in "
    "one throttle bucket.",
}
REFUSAL_FIX = "Answer this case with its catalogue entry byte for byte: status, Content-Type, body."


def server_fix(name: str) -> str:
    """How to fix a server failing the named check, in one line."""
    return SERVER_FIXES.get(name, REFUSAL_FIX)


def server_check_name(check: Callable[[Server], None]) -> str:
    return getattr(check, "check_name", check.__name__.replace("_", " "))


def run_server_suite(
    server: Server, progress: Callable[[ServerOutcome], None] | None = None
) -> list[ServerOutcome]:
    """Each check in turn (in a fresh throttle window on the emulator): held, failed or skipped,
    each told to `progress` as it ends (a live run paces itself: minutes). An emulator's clock is
    given back running at real time, so it serves on unthrottled."""
    try:
        return _run_checks(server, progress or (lambda _: None))
    finally:
        server.restore_clock()


def _run_checks(server: Server, progress: Callable[[ServerOutcome], None]) -> list[ServerOutcome]:
    outcomes: list[ServerOutcome] = []
    server.fresh_window()
    find_absent_targets(server)
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
        progress(outcomes[-1])
    return outcomes
