"""The client suite: the reference clients pass; each broken client fails on the check that names
its defect, and on no other; the CLI's exit statuses, help and JUnit report."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from contracts.checks import CHECKS, check_name
from contracts.client_suite import ALL_CHECK_NAMES, run_client_suite
from contracts.runner import CommandClient, EmulatorProcess

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "fixtures" / "clients"
PYTHON_REFERENCE = f"{sys.executable} {CLIENTS / 'python' / 'reference_client.py'}"
NODE_REFERENCE = f"node {CLIENTS / 'node' / 'reference_client.mjs'}"

# Every check of the kit, and a broken client (fixtures/clients/broken/) that trips exactly it:
# client -> (the check it must fail, extra arguments for its run).
QUICK = ("--max-examples", "2", "--seed", "7", "--shrink-seconds", "5")
BROKEN: dict[str, tuple[str, tuple[str, ...]]] = {
    "hangs": (
        "client finishes in time",
        ("--timeout", "1", "--max-examples", "0", "--scenario", "ordinary", "empty"),
    ),
    "does_nothing": ("every customer delivered", QUICK),
    "drops_last_customer": ("every customer delivered", QUICK),
    "resends_first_customer": ("no customer delivered twice", QUICK),
    "numbers_as_strings": ("fields arrive intact", QUICK),
    "shifts_attributes": ("attributes keyed by the right email", QUICK),
    "one_request_for_all": ("no request over 5000 recipients", QUICK),
    "text_plain_body": ("requests are well formed", QUICK),
    "retries_429_at_once": ("backs off after 429", QUICK),
    "retries_everything": ("non retryable errors not retried", QUICK),
    "gives_up_on_5xx": ("transient errors retried", QUICK),
    "exits_1_on_success": ("exit status zero when every customer arrived", QUICK),
    "drops_a_built_in_response": ("built in responses arrive in the link", QUICK),
    "built_in_integers_as_floats": ("built in responses arrive in the link", QUICK),
    "misspells_built_in_responses": ("requests are well formed", QUICK),
}

# A broken client that also trips a second check, rightly: it exits 0 with a customer missing,
# and SPEC 3 says exit status zero *exactly* when every customer arrived.
EXIT_STATUS = "exit status zero when every customer arrived"
ALSO_FAILS = {"drops_last_customer": (EXIT_STATUS,)}


def contract_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mockserver.cli", "contract", "client", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def emulator():
    with EmulatorProcess.start() as process:
        yield process


def test_every_check_is_covered_by_a_broken_client():
    # A new check in contracts/checks.py without a broken client that trips it fails here.
    assert {check for check, _args in BROKEN.values()} == {check_name(c) for c in CHECKS}


def failed_cases(report: Path) -> set[str]:
    suite = next(iter(JUnitXml.fromfile(str(report))))
    return {case.name for case in suite if any(isinstance(r, Failure) for r in case.result)}


@pytest.fixture(scope="module")
def broken_runs(tmp_path_factory) -> dict[str, tuple[int, set[str]]]:
    """Every broken client through the CLI, a few at a time (they mostly sleep in back-offs)."""
    reports = tmp_path_factory.mktemp("broken")

    def run(client: str) -> tuple[str, tuple[int, set[str]]]:
        report = reports / f"{client}.xml"
        command = f"{sys.executable} {CLIENTS / 'broken' / (client + '.py')}"
        args = BROKEN[client][1]
        done = contract_cli("--client-cmd", command, *args, "--junit-xml", str(report))
        if not report.exists():  # the kit itself broke: show why in the failing assertion
            return client, (done.returncode, {f"no report: {done.stderr[-1500:]}"})
        return client, (done.returncode, failed_cases(report))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, BROKEN))


def test_a_client_cannot_wipe_its_bad_request_off_the_record(tmp_path):
    # Before: the kit's emulator took admin calls from anyone on loopback, so a client could send
    # a bad request, `POST /__mock/reset`, then deliver properly, and pass every check.
    report = tmp_path / "report.xml"
    client = f"{sys.executable} {CLIENTS / 'broken' / 'resets_to_hide_a_bad_request.py'}"
    run = contract_cli("--client-cmd", client, *QUICK, "--junit-xml", str(report))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "requests are well formed" in failed_cases(report)


@pytest.mark.parametrize("client", BROKEN)
def test_broken_client_fails_exactly_its_check(broken_runs, client):
    check = BROKEN[client][0]
    exit_status, failed = broken_runs[client]
    assert (exit_status, failed) == (1, {check, *ALSO_FAILS.get(client, ())})


# -- the SMS and link endpoints (SPEC 1.5, 1.6, 3: --endpoint) ---------------------------------

# Checks that cannot apply to an endpoint: reported skipped there, never passed.
NOT_APPLICABLE = {
    "sms": set(),
    "link": {"attributes keyed by the right email", "no request over 5000 recipients"},
}


def _only(*scenarios: str) -> tuple[str, ...]:
    return ("--max-examples", "0", "--scenario", *scenarios)


# (endpoint, broken client) -> (the check it must fail, extra arguments): one scenario each, the
# one that shows the defect, so that the runs stay short.
BROKEN_ON_ENDPOINTS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    (endpoint, client): (check, args)
    for endpoint in ("sms", "link")
    for client, (check, args) in {
        "hangs": ("client finishes in time", ("--timeout", "1", *_only("ordinary"))),
        "does_nothing": ("every customer delivered", _only("ordinary")),
        "resends_first_customer": ("no customer delivered twice", _only("ordinary")),
        "numbers_as_strings": ("fields arrive intact", _only("ordinary")),
        "shifts_attributes": ("attributes keyed by the right email", _only("ordinary")),
        "one_request_for_all": ("no request over 5000 recipients", _only("above 5000")),
        "posts_to_the_email_path": ("requests are well formed", _only("ordinary")),
        "retries_429_at_once": ("backs off after 429", _only("throttle tiers")),
        "retries_everything": ("non retryable errors not retried", _only("refused for good")),
        "gives_up_on_5xx": ("transient errors retried", _only("transient 5xx")),
        "exits_1_on_success": ("exit status zero when every customer arrived", _only("ordinary")),
        "drops_a_built_in_response": ("built in responses arrive in the link", _only("ordinary")),
        # Defects of one endpoint only:
        **{
            "sms": {
                "normalises_numbers_not_their_keys": ("every customer delivered", _only("ordinary"))
            },
            "link": {
                "sends_the_customer_as_a_list": ("every customer delivered", _only("ordinary"))
            },
        }[endpoint],
    }.items()
    if check not in NOT_APPLICABLE[endpoint]
}


@pytest.mark.parametrize("endpoint", ["sms", "link"])
def test_every_check_that_applies_is_covered_by_a_broken_client_on_each_endpoint(endpoint):
    covered = {check for (on, _), (check, _args) in BROKEN_ON_ENDPOINTS.items() if on == endpoint}
    assert covered == {check_name(c) for c in CHECKS} - NOT_APPLICABLE[endpoint]


REFERENCES = {"python": PYTHON_REFERENCE, "node": NODE_REFERENCE}
REFERENCE_RUNS = [(language, endpoint) for language in REFERENCES for endpoint in ("sms", "link")]


@pytest.fixture(scope="module")
def endpoint_runs(tmp_path_factory) -> dict[tuple[str, str], tuple[int, Path, str]]:
    """Every broken client of BROKEN_ON_ENDPOINTS, and both reference clients on both new
    endpoints (every scenario's fixed example), side by side: they mostly sleep in back-offs.
    Keyed (endpoint, broken client) and (language, endpoint): exit status, JUnit report, output."""
    reports = tmp_path_factory.mktemp("endpoints")

    def broken(key: tuple[str, str]) -> tuple[str, tuple[str, ...]]:
        endpoint, client = key
        command = f"{sys.executable} {CLIENTS / 'broken' / (client + '.py')}"
        return command, ("--endpoint", endpoint, *BROKEN_ON_ENDPOINTS[key][1])

    def reference(key: tuple[str, str]) -> tuple[str, tuple[str, ...]]:
        language, endpoint = key
        return REFERENCES[language], ("--endpoint", endpoint, "--max-examples", "0")

    jobs = {
        **dict.fromkeys(REFERENCE_RUNS, reference),
        **dict.fromkeys(BROKEN_ON_ENDPOINTS, broken),
    }

    def run(key: tuple[str, str]) -> tuple[tuple[str, str], tuple[int, Path, str]]:
        command, args = jobs[key](key)
        report = reports / ("-".join(key) + ".xml")
        done = contract_cli("--client-cmd", command, *args, "--junit-xml", str(report))
        return key, (done.returncode, report, done.stdout + done.stderr[-1500:])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(run, jobs))


@pytest.mark.parametrize("key", BROKEN_ON_ENDPOINTS, ids="-".join)
def test_broken_client_fails_exactly_its_check_on_each_endpoint(endpoint_runs, key):
    exit_status, report, output = endpoint_runs[key]
    failed = failed_cases(report) if report.exists() else {f"no report: {output}"}
    assert (exit_status, failed) == (1, {BROKEN_ON_ENDPOINTS[key][0]})


@pytest.mark.parametrize("endpoint", ["sms", "link"])
@pytest.mark.parametrize("language", REFERENCES)
def test_reference_clients_pass_on_each_endpoint_and_skip_what_cannot_apply(
    endpoint_runs, language, endpoint
):
    exit_status, report, output = endpoint_runs[language, endpoint]
    assert exit_status == 0, output
    suite = next(iter(JUnitXml.fromfile(str(report))))
    skipped = {case.name for case in suite if any(isinstance(r, Skipped) for r in case.result)}
    failed = {case.name for case in suite if any(isinstance(r, Failure) for r in case.result)}
    assert (failed, skipped) == (set(), NOT_APPLICABLE[endpoint])
    assert f"on the {endpoint} endpoint" in output


def test_no_scenario_for_the_endpoint_is_the_kit_unable_to_run():
    run = contract_cli(
        "--client-cmd", "true", "--endpoint", "link", "--scenario", "above 5000", timeout=120
    )
    assert run.returncode == 2
    assert "applies to the link endpoint" in run.stderr


@pytest.mark.parametrize("command", [PYTHON_REFERENCE, NODE_REFERENCE], ids=["python", "node"])
def test_reference_clients_pass_with_a_junit_report(tmp_path, command):
    report = tmp_path / "contract.xml"
    run = contract_cli(
        "--client-cmd", command, "--max-examples", "6", "--seed", "3", "--junit-xml", str(report)
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "FAIL" not in run.stdout and "skip" not in run.stdout
    suite = next(iter(JUnitXml.fromfile(str(report))))
    cases = list(suite)
    assert sorted(case.name for case in cases) == sorted(ALL_CHECK_NAMES)
    assert all(case.is_passed for case in cases)


def test_a_failing_run_exits_1_with_the_smallest_example_and_junit_failure(tmp_path):
    report = tmp_path / "contract.xml"
    command = f"{sys.executable} {CLIENTS / 'broken' / 'drops_last_customer.py'}"
    run = contract_cli(
        "--client-cmd",
        command,
        "--max-examples",
        "3",
        "--seed",
        "1",
        "--scenario",
        "ordinary",
        "--shrink-seconds",
        "5",
        "--junit-xml",
        str(report),
    )
    assert run.returncode == 1
    assert "✗ every customer delivered" in run.stdout
    assert "expected:" in run.stdout and "arrived:" in run.stdout and "journal:" in run.stdout
    assert "rerun this run with --seed 1" in run.stdout
    suite = next(iter(JUnitXml.fromfile(str(report))))
    failed = {case.name for case in suite if any(isinstance(r, Failure) for r in case.result)}
    assert failed == {"every customer delivered", EXIT_STATUS}


def test_progress_is_shown_while_it_runs():
    run = contract_cli(
        "--client-cmd", PYTHON_REFERENCE, "--max-examples", "0", "--scenario", "ordinary"
    )
    assert run.returncode == 0
    assert "[  1] ordinary" in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--client-cmd", "pisano-no-such-client-command"),
        ("--max-examples", "3"),
        ("--client-cmd", "true", "--timeout", "0"),
        ("--client-cmd", "true", "--scenario", "no such scenario"),
    ],
)
def test_the_kit_exits_2_when_it_cannot_run(args):
    assert contract_cli(*args, timeout=120).returncode == 2


def test_help_explains_the_kit():
    run = contract_cli("--help")
    for text in (
        "PISANO_BASE_URL",
        "PISANO_API_TOKEN",
        "PISANO_CAMPAIGN_ID",
        "PISANO_CUSTOMERS_FILE",
        "Exit status",
        "smallest",
        "--junit-xml",
        "--timeout",
        "--seed",
    ):
        assert text in run.stdout


def test_a_python_callable_through_the_pytest_plugin(pisano_contract):
    sys.path.insert(0, str(CLIENTS / "python"))
    import reference_client

    result = pisano_contract(reference_client.deliver_all, max_examples=3)
    assert result.passed and len(result.played) >= 13


def test_a_broken_callable_fails_the_test_with_the_report(pisano_contract):
    def forgets_everyone(base_url, token, campaign_id, customers):
        return 0

    with pytest.raises(pytest.fail.Exception, match="every customer delivered"):
        pisano_contract(forgets_everyone, max_examples=0, scenarios=("ordinary",))


def test_shrinking_stops_when_its_budget_is_spent(emulator):
    command = f"{sys.executable} {CLIENTS / 'broken' / 'drops_last_customer.py'}"
    result = run_client_suite(
        emulator.target,
        CommandClient(command),
        max_examples=5,
        seed_value=2,
        shrink_seconds=0,
        scenarios=("ordinary",),
        progress=None,
    )
    assert result.budget_spent
    assert result.failed_checks == {"every customer delivered", EXIT_STATUS}
    assert len([p for p in result.played if p.shrinking]) <= 1
