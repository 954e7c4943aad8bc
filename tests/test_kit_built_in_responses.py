"""The kit's check "built in responses arrive in the link" (issue 10): on hand-built observations
(oracles written out by hand), then end to end through `pisano-mock contract client`."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from contracts.checks import built_in_responses_arrive_in_the_link, judged_checks, link_responses
from contracts.expectations import DEFAULT_CUSTOMER_SCHEMA
from contracts.model import ContractFailure, Example, Observation
from mockserver.links import LinkMaker
from mockserver.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "fixtures" / "clients"
CHECK = "built in responses arrive in the link"
SENT = {"NPS": 9, "Channel": "web", "Satisfied": True}
# What SPEC 1.7 says the link carries for SENT, written out by hand: key order kept, `Channel`
# an option question.
CARRIED = '[{"question_key":"NPS","body":9},{"question_key":"Channel","option_key":"web"},{"question_key":"Satisfied","body":true}]'  # noqa: E501


def link(carried_json: str | None) -> str:
    base = "http://127.0.0.1:9/s/AAAAAAAAAAEKhvROQoxdIblnn5BWeFHf"
    if carried_json is None:
        return base
    encoded = base64.b64encode(carried_json.encode()).decode()
    return f"{base}?responses={encoded.replace('+', '%2B').replace('/', '%2F').replace('=', '%3D')}"


def entry(status: int, body: dict, code: int | None = None, entry_id: int = 1) -> dict:
    return {"id": entry_id, "status": status, "code": code, "body": body, "method": "POST"}


def observed(links: list[str | None], body: dict | None = None, status: int = 200) -> Observation:
    emails = [f"c{i}@example.com" for i in range(len(links))]
    sent = body if body is not None else {"emails": emails, "built_in_responses": SENT}
    sharings = [
        {"email": email, "link": link(carried)}
        for email, carried in zip(emails, links, strict=True)
    ]
    return Observation(0, [entry(status, sent)], sharings if status == 200 else [])


def example(n: int = 2) -> Example:
    return Example(
        "ordinary",
        [{"email": f"c{i}@example.com"} for i in range(n)],
        **{"built_in_responses": SENT},
    )


def test_responses_that_arrive_as_sent_hold():
    built_in_responses_arrive_in_the_link(example(), observed([CARRIED, CARRIED]))
    assert CHECK in judged_checks(example(), observed([CARRIED, CARRIED]))


@pytest.mark.parametrize(
    ("carried", "why"),
    [
        (CARRIED.replace('"body":9', '"body":"9"'), "a number as a string"),
        (CARRIED.replace('"body":true', '"body":1'), "a boolean as a number"),
        ('[{"question_key":"NPS","body":9},{"question_key":"Channel","option_key":"web"}]', "one"),
        (
            '[{"question_key":"Channel","option_key":"web"},{"question_key":"NPS","body":9},'
            '{"question_key":"Satisfied","body":true}]',
            "another order",
        ),
        (None, "no responses at all"),
    ],
)
def test_responses_changed_on_the_way_fail_with_expected_and_arrived(carried, why):
    with pytest.raises(ContractFailure) as failed:
        built_in_responses_arrive_in_the_link(example(), observed([CARRIED, carried]))
    assert failed.value.expected.startswith("c1@example.com's link: ")
    assert '"question_key": "NPS"' in failed.value.expected
    assert failed.value.received != failed.value.expected


def test_a_link_that_does_not_decode_fails_and_says_so():
    bad = {"email": "c0@example.com", "link": "http://x/s/t?responses=%%%"}
    observation = Observation(
        0, [entry(200, {"emails": ["c0@example.com"], **{"built_in_responses": SENT}})], [bad]
    )
    with pytest.raises(ContractFailure, match="do not decode"):
        built_in_responses_arrive_in_the_link(example(1), observation)


def test_a_request_refused_for_its_responses_fails_with_what_it_sent():
    body = {"emails": ["c0@example.com"], "built_in_responses": {"NPS": "9"}}
    observation = Observation(1, [entry(400, body, 13028)], [])
    with pytest.raises(ContractFailure) as failed:
        built_in_responses_arrive_in_the_link(example(1), observation)
    assert "request #1" in failed.value.expected
    assert '"body": "9"' in failed.value.received and "13028" in failed.value.received


# -- an integer is not a float here: the customer schema types NPS `integer`, and the emulator
# refuses 9.0 for it (13028), so a client turning 9 into 9.0 does not deliver the responses.


def test_an_integer_question_sent_as_a_float_fails_with_what_it_sent():
    body = {"emails": ["c0@example.com"], "built_in_responses": {**SENT, "NPS": 9.0}}
    observation = Observation(1, [entry(400, body, 13028)], [])
    with pytest.raises(ContractFailure) as failed:
        built_in_responses_arrive_in_the_link(example(1), observation)
    assert '"body": 9.0' in failed.value.received and "13028" in failed.value.received


def test_an_integer_question_carried_as_a_float_fails():
    with pytest.raises(ContractFailure):
        built_in_responses_arrive_in_the_link(
            example(1), observed([CARRIED.replace('"body":9', '"body":9.0')])
        )


def test_a_float_question_with_a_whole_value_may_arrive_as_an_integer():
    # JSON.stringify(4.0) is "4": a float question's whole value is the same number either way.
    sent = {"Score": 4.0}
    carried = '[{"question_key":"Score","body":4}]'
    body = {"emails": ["c0@example.com"], "built_in_responses": {"Score": 4}}
    observation = Observation(
        0, [entry(200, body)], [{"email": "c0@example.com", "link": link(carried)}]
    )
    built_in_responses_arrive_in_the_link(
        Example("ordinary", [{"email": "c0@example.com"}], built_in_responses=sent), observation
    )


def test_a_client_that_never_sends_them_is_not_judged():
    body = {"emails": ["c0@example.com", "c1@example.com"]}
    observation = observed([None, None], body=body)
    built_in_responses_arrive_in_the_link(example(), observation)  # no failure, and...
    assert CHECK not in judged_checks(example(), observation)  # ...reported as skipped


def test_a_server_without_links_is_not_judged():
    observation = observed([CARRIED])
    del observation.sharings[0]["link"]
    assert CHECK not in judged_checks(example(1), observation)


def test_the_kit_reads_what_the_emulator_writes():
    maker = LinkMaker("http://127.0.0.1:8080", b"k" * 32)
    written = maker.survey_link(
        7, {"Comment": "ş+/=?&", "Channel": 3, "Score": 0.1}, {"Channel": "option"}
    )
    assert link_responses(written) == [
        {"question_key": "Comment", "body": "ş+/=?&"},
        {"question_key": "Channel", "option_key": 3},
        {"question_key": "Score", "body": 0.1},
    ]


def test_the_kit_states_the_default_schema_again():
    acme = load_settings().fixture["accounts"]["acme"]["customer_schema"]
    assert acme == DEFAULT_CUSTOMER_SCHEMA


# -- end to end ---------------------------------------------------------------------------------

QUICK = ("--max-examples", "2", "--seed", "7", "--shrink-seconds", "5", "--scenario", "ordinary")


def contract_run(client: str, report: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mockserver.cli", "contract", "client", "--client-cmd"]
    return subprocess.run(
        [*command, client, *QUICK, "--junit-xml", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def verdicts(report: Path) -> dict[str, str]:
    suite = next(iter(JUnitXml.fromfile(str(report))))
    kinds = {Failure: "failed", Skipped: "skipped"}
    return {
        case.name: next((kinds[type(r)] for r in case.result if type(r) in kinds), "passed")
        for case in suite
    }


def test_a_client_sending_them_as_strings_fails_the_check(tmp_path):
    report = tmp_path / "report.xml"
    client = f"{sys.executable} {CLIENTS / 'broken' / 'built_in_responses_as_strings.py'}"
    run = contract_run(client, report)
    assert run.returncode == 1
    assert verdicts(report)[CHECK] == "failed"
    section = run.stdout.split(f"✗ {CHECK}")[1]
    assert "expected: request #" in section and "code 13028" in section


def test_a_client_that_never_sends_them_keeps_its_verdict_and_the_check_is_skipped(tmp_path):
    report = tmp_path / "report.xml"
    reference = CLIENTS / "python" / "reference_client.py"
    run = contract_run(
        f"env -u PISANO_BUILT_IN_RESPONSES_FILE {sys.executable} {reference}", report
    )
    assert run.returncode == 0, run.stdout
    found = verdicts(report)
    assert found[CHECK] == "skipped"
    assert set(found.values()) == {"passed", "skipped"}
    assert f"skip  {CHECK}" in run.stdout
