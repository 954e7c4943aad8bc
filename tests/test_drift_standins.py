"""Issue 13's acceptance: `pisano-mock proxy` in front of a Pisano stand-in that differs from the
emulator in one way names that difference and nothing else; in front of the matching stand-in,
every pair is the same.

Per stand-in (tests/pisano_standins.py, each in its own process, started once for this module): a
proxy (`pisano-mock proxy --upstream <stand-in> --record DIR --port 0`, a subprocess) and one fixed
traffic script sent through it — accepted shares on email, SMS and link, each refusal row the
script can trigger, a missing token, and a burst on a token of its own past the first throttle tier.
Every request carries `X-Drift-Step: <label>` (forwarded and recorded like any client header), so
each difference is traced back to the step that caused it through the recording. Then `/__mock/
drift`, `pisano-mock drift report DIR --json` and its text (exit 1 / 0) must agree and name exactly
the expected differences.

Time: the stand-in and the shadow both count on the wall clock in epoch-aligned windows, and the
throttle key of the burst is used by nothing else. The burst does not rely on fitting 21 requests
in 5 s: it goes on until 21 requests were sent and answered wholly inside one window of the first
tier (so both sides counted them there), at most BURST_CAP; then both must have refused (tier 1
can refuse, tier 2 not: 40 requests through tier 1 take two windows of it, within tier 2's 40).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.pisano_standins import STANDINS, StandInProcess

CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
NO_FLOW = "00000000-0000-4000-8000-000000013005"
OTHERS = "00000000-0000-4000-8000-000000013013"
SMS = "00000000-0000-4000-8000-000000000501"
LINK = "00000000-0000-4000-8000-000000000701"
EMAIL_PATH = f"/v1/email_campaigns/{CAMPAIGN}/email_sharings"
SMS_PATH = f"/v1/sms_campaigns/{SMS}/sms_sharings"
LINK_PATH = f"/external/v1/link_sharings/{LINK}/generate_link"
UNKNOWN = "11111111-2222-4333-8444-555555555555"
TIER_ONE = (20, 5.0)  # SPEC 1.3: requests, seconds
BURST_CAP = 80
STEP = "X-Drift-Step"


def token(value: str | None) -> dict[str, str]:
    return {} if value is None else {"Authorization": f"Token token={value}"}


@dataclass(frozen=True)
class Step:
    label: str
    path: str
    body: bytes | dict
    auth: str | None = "test-token"
    headers: tuple[tuple[str, str], ...] = ()  # over the JSON Content-Type and the auth header


# Every row the script can trigger, on the test token; fewer than 20 requests on it, so the first
# tier never refuses them (the burst has its own token).
ADA = "ada@example.com"
FORM = ("Content-Type", "application/x-www-form-urlencoded")
BEARER = ("Authorization", "Bearer test-token")
SCRIPT = (
    Step("email 200", EMAIL_PATH, {"emails": [ADA], "custom_attributes": {ADA: {"name": "Ada"}}}),
    Step("sms 200", SMS_PATH, {"phone_numbers": ["2025550143"]}),
    Step("link 200", LINK_PATH, {"customer": {"email": "bob@example.com"}, "options": True}),
    Step("email form 200", EMAIL_PATH, b"emails[]=cy%40example.com", headers=(FORM,)),
    Step("email bearer 200", EMAIL_PATH, {"emails": ["di@example.com"]}, headers=(BEARER,)),
    Step("13002 no route", "/v1/no_such_thing", {"emails": ["a@example.com"]}),
    Step("13030 missing token", EMAIL_PATH, {"emails": ["a@example.com"]}, auth=None),
    Step("13001 unknown token", EMAIL_PATH, {"emails": ["a@example.com"]}, auth="nope-token"),
    Step("13011 inactive user", EMAIL_PATH, {"emails": ["a@example.com"]}, "inactive-user-token"),
    Step("13036 locked", EMAIL_PATH, {"emails": ["a@example.com"]}, auth="locked-account-token"),
    Step("13002 campaign", EMAIL_PATH.replace(CAMPAIGN, UNKNOWN), {"emails": ["a@example.com"]}),
    Step("13013 other account", EMAIL_PATH.replace(CAMPAIGN, OTHERS), {"emails": ["a@x.com"]}),
    Step("13005 no flow", EMAIL_PATH.replace(CAMPAIGN, NO_FLOW), {"emails": ["a@example.com"]}),
    Step("13000 email", EMAIL_PATH, b"{not json"),
    Step("13015 emails absent", EMAIL_PATH, {"custom_attributes": {}}),
    Step("13028 address", EMAIL_PATH, {"emails": ["not-an-address"]}),
    Step("13017 duplicate", EMAIL_PATH, {"emails": ["a@example.com", "A@example.com"]}),
    Step("13000 sms", SMS_PATH, b"{not json"),
    Step("13028 sms number", SMS_PATH, {"phone_numbers": ["123"]}),
    Step("13002 sms email campaign", SMS_PATH.replace(SMS, CAMPAIGN), {"phone_numbers": ["1"]}),
    Step("13000 link", LINK_PATH, b"{not json"),
    Step("13035 link channel", LINK_PATH.replace(LINK, UNKNOWN), {"customer": {"email": "a@x.co"}}),
    Step("13038 identity", LINK_PATH, {"customer": {"Tier": "Gold"}}),
)
BURST = Step("burst", EMAIL_PATH, {"emails": []}, auth="pisano-mock-drift-burst")


@dataclass(frozen=True)
class Expected:
    """What the report must name for a stand-in: labels of the steps that differ, with `what`s,
    and the words its text must hold."""

    differences: dict[str, set[str]]
    words: tuple[str, ...] = ()


EXPECTED = {
    "matching": Expected({}, ("every pair is the same",)),
    "respelled": Expected(
        {"13000 email": {"body"}, "13000 sms": {"body"}, "13000 link": {"body"}},
        (
            "13000 An error occured (row 10) on POST /v1/email_campaigns/<id>/email_sharings",
            '\\"An error occured\\"}" → "...:\\"An error occurred\\"}"',
        ),
    ),
    "missing-token-401": Expected(
        {"13030 missing token": {"status", "code", "body"}},
        (
            "13030 Invalid authentication token (row 5) on POST /v1/email_campaigns/<id>/"
            "email_sharings: 1 of 1 pairs differ — status 400 → 401, code 13030 → 13001",
        ),
    ),
    "no-throttle": Expected(
        {"burst": {"throttle"}},
        ("429 throttle tier 20/5 seconds", "the emulator refused with tier 20/5 seconds"),
    ),
    "json-429": Expected(
        {"burst": {"content_type", "body"}},
        (
            "429 throttle tier 20/5 seconds",
            'body "Retry later\\n" → "{\\"status\\":\\"too_many_requests',
        ),
    ),
    "renamed-200": Expected(
        {"email 200": {"body"}, "email form 200": {"body"}, "email bearer 200": {"body"}},
        ("200 on POST /v1/email_campaigns/<id>/email_sharings", ": $.sharings: ", "$.sharing_ids"),
    ),
}


@dataclass
class Outcome:
    """What one stand-in's run left: the proxy's summary, the recording, what was sent."""

    drift: dict
    recording: Path
    sent: Counter[str] = field(default_factory=Counter)
    refused_in_burst: list[int] = field(default_factory=list)


def proxy_process(upstream: str, record: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "mockserver.cli", "proxy", "--upstream", upstream]
    command += ["--record", str(record), "--port", "0", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline() if process.stdout else ""
    assert line.startswith("pisano-mock proxy http://127.0.0.1:"), line
    assert line.rstrip("\n").endswith(f" -> {upstream}"), line
    return process, line.split()[2]


def send(session: requests.Session, base_url: str, step: Step) -> requests.Response:
    body = step.body if isinstance(step.body, bytes) else json.dumps(step.body).encode()
    headers = {"Content-Type": "application/json", STEP: step.label, **token(step.auth)}
    headers.update(step.headers)
    return session.post(base_url + step.path, data=body, headers=headers, timeout=30)


def burst(session: requests.Session, base_url: str, outcome: Outcome) -> None:
    """Until 21 requests fell wholly inside one first-tier window (see the module's docstring)."""
    limit, period = TIER_ONE
    inside: Counter[int] = Counter()
    for _ in range(BURST_CAP):
        began = time.time()
        status = send(session, base_url, BURST).status_code
        ended = time.time()
        outcome.sent[BURST.label] += 1
        if status == 429:
            outcome.refused_in_burst.append(outcome.sent[BURST.label])
        if int(began // period) == int(ended // period):
            inside[int(began // period)] += 1
            if inside[int(began // period)] > limit:
                return
    pytest.fail(f"{BURST_CAP} requests never put {limit + 1} in one {period:g} s window")


def run_script(base_url: str, outcome: Outcome) -> None:
    with requests.Session() as session:
        for step in SCRIPT:
            send(session, base_url, step)
            outcome.sent[step.label] += 1
        burst(session, base_url, outcome)


@pytest.fixture(scope="module", params=sorted(STANDINS))
def outcome(request, tmp_path_factory) -> Iterator[tuple[str, Outcome]]:
    name = request.param
    record = tmp_path_factory.mktemp(f"drift-{name}")
    with StandInProcess.start(name) as standin:
        process, base_url = proxy_process(standin.base_url, record)
        try:
            result = Outcome({}, record)
            run_script(base_url, result)
            result.drift = requests.get(base_url + "/__mock/drift", timeout=30).json()
        finally:
            process.terminate()
            process.wait(timeout=15)
    yield name, result


def recorded_pairs(recording: Path) -> list[dict]:
    lines = (recording / "pairs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def step_of(pair: dict) -> str:
    return next(
        value for name, value in pair["request"]["headers"] if name.lower() == "x-drift-step"
    )


def found_differences(summary: dict, recording: Path) -> dict[str, set[str]]:
    """{step label: the `what`s named for it} from a summary, traced through the recording."""
    steps = {pair["id"]: step_of(pair) for pair in recorded_pairs(recording)}
    found: dict[str, set[str]] = {}
    for difference in summary["differences"]:
        found.setdefault(steps[difference["request_id"]], set()).add(difference["what"])
    return found


def drift_report(recording: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mockserver.cli", "drift", "report", str(recording), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_proxy_names_exactly_the_stand_ins_difference(outcome):
    name, result = outcome
    assert result.drift["pairs"] == sum(result.sent.values())
    assert found_differences(result.drift, result.recording) == EXPECTED[name].differences
    differing = {d["request_id"] for d in result.drift["differences"]}
    assert result.drift["same"] == result.drift["pairs"] - len(differing)


def test_the_recording_says_what_the_proxy_said(outcome):
    name, result = outcome
    report = drift_report(result.recording, "--json")
    assert report.returncode == (1 if EXPECTED[name].differences else 0), report.stderr
    summary = json.loads(report.stdout)
    assert found_differences(summary, result.recording) == EXPECTED[name].differences
    assert summary["differences"] == result.drift["differences"]
    assert (summary["pairs"], summary["same"]) == (result.drift["pairs"], result.drift["same"])
    assert summary["rules"] == result.drift["rules"]


def test_the_text_report_names_the_rule_and_the_tier(outcome):
    name, result = outcome
    report = drift_report(result.recording)
    assert report.returncode == (1 if EXPECTED[name].differences else 0), report.stderr
    for words in EXPECTED[name].words:
        assert words in report.stdout, report.stdout
    if not EXPECTED[name].differences:
        assert report.stdout.strip() == f"every pair is the same ({result.drift['pairs']} pairs)"


def test_the_burst_met_the_first_tier_on_the_side_that_throttles(outcome):
    # Not a test of the proxy: of the script, which must have crossed the tier for the
    # "no throttle" and "JSON 429" stand-ins to be told apart from the matching one.
    name, result = outcome
    if name == "no-throttle":
        assert result.refused_in_burst == []
    else:
        assert result.refused_in_burst and result.refused_in_burst[0] >= TIER_ONE[0] + 1
