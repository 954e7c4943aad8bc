"""The kit's command line as a user meets it: skipped checks said so, several scenarios after one
flag, a complete --help, a clear word when nothing listens, the plugin's rerun hint."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from junitparser import JUnitXml, Skipped

ROOT = Path(__file__).resolve().parents[1]
PYTHON_REFERENCE = f"{sys.executable} {ROOT / 'fixtures/clients/python/reference_client.py'}"

# Written out here, not read from the kit: the names a user sees in reports and --help.
CHECK_NAMES = [
    "client finishes in time",
    "every customer delivered",
    "no customer delivered twice",
    "fields arrive intact",
    "attributes keyed by the right email",
    "no request over 5000 recipients",
    "requests are well formed",
    "backs off after 429",
    "non retryable errors not retried",
    "transient errors retried",
    "exit status zero when every customer arrived",
]
SCENARIO_NAMES = [
    "ordinary",
    "empty",
    "above 5000",
    "throttle tiers",
    "scripted 429",
    "transient 5xx",
    "dropped before",
    "dropped after",
    "refused for good",
]


def kit(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mockserver.cli", "contract", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_checks_with_nothing_to_judge_are_skipped_not_passed(tmp_path):
    report = tmp_path / "contract.xml"
    run = kit(
        *("client", "--client-cmd", PYTHON_REFERENCE, "--max-examples", "0"),
        *("--scenario", "ordinary", "--junit-xml", str(report)),
    )
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    # One ordinary example of three customers, served without a fault: no 429, no error, no
    # list above 5000 ever happened, so these four checks did not run.
    not_run = {
        "no request over 5000 recipients",
        "backs off after 429",
        "non retryable errors not retried",
        "transient errors retried",
    }
    lines = run.stdout.splitlines()
    for name in CHECK_NAMES:
        mark = "skip" if name in not_run else "ok  "
        assert any(line.startswith(f"  {mark}  {name}") for line in lines), (name, run.stdout)
    suite = next(iter(JUnitXml.fromfile(str(report))))
    skipped = {case.name for case in suite if any(isinstance(r, Skipped) for r in case.result)}
    assert skipped == not_run
    assert suite.skipped == 4


def test_several_scenarios_after_one_flag():
    run = kit(
        *("client", "--client-cmd", PYTHON_REFERENCE, "--max-examples", "0"),
        *("--scenario", "ordinary", "empty", "--scenario", "dropped before"),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    played = [line[6:].split()[0] for line in run.stderr.splitlines() if line.startswith("[")]
    assert played == ["ordinary", "empty", "dropped"]


def test_client_help_names_every_check_scenario_and_option():
    run = kit("client", "--help")
    text = " ".join(run.stdout.split())  # argparse wraps lines
    for name in CHECK_NAMES + [f"'{s}'" for s in SCENARIO_NAMES]:
        assert name in text, name
    for option in (
        "--client-cmd",
        "--max-examples",
        "--seed",
        "--junit-xml",
        "--timeout",
        "--shrink-seconds",
        "--scenario",
        "skipped",
        "--endpoint",
        "PISANO_ENDPOINT",
        "PISANO_LINK_CHANNEL_ID",
        "/v1/sms_campaigns/<id>/sms_sharings",
        "/external/v1/link_sharings/<channel>/generate_link",
        "phone_number always there",
    ):
        assert option in text, option


def test_server_help_names_its_options():
    text = " ".join(kit("server", "--help").stdout.split())
    for option in (
        "--base-url",
        "--token",
        "--campaign-id",
        "--sms-campaign-id",
        "--link-channel-id",
        "--live",
        "--pace",
        "--junit-xml",
        "example.com",
        "skipped",
        "429",
    ):
        assert option in text, option


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the socket is


@pytest.mark.parametrize("live", [False, True])
def test_server_suite_against_a_closed_port_says_nothing_listens(live):
    url = f"http://127.0.0.1:{closed_port()}"
    run = kit(
        "server",
        "--base-url",
        url,
        "--token",
        "t",
        "--campaign-id",
        "c",
        *(["--live"] if live else []),
        timeout=60,
    )
    assert run.returncode == 2
    assert f"nothing listens at {url}" in run.stderr
    assert "--live" not in run.stderr


class NotPisano(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_server_suite_against_another_server_suggests_live():
    with ThreadingHTTPServer(("127.0.0.1", 0), NotPisano) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{other.server_address[1]}"
        run = kit("server", "--base-url", url, "--token", "t", "--campaign-id", "c", timeout=60)
        other.shutdown()
    assert run.returncode == 2
    assert "no emulator admin API" in run.stderr and "--live" in run.stderr


def test_the_plugin_says_how_to_rerun_with_its_own_setting(pisano_contract):
    def forgets_everyone(base_url, token, campaign_id, customers):
        return 0

    with pytest.raises(pytest.fail.Exception) as failed:
        pisano_contract(forgets_everyone, max_examples=0, seed=5, scenarios=("ordinary",))
    assert "rerun this run with seed=5" in str(failed.value)
    assert "--seed" not in str(failed.value)


CLIENT = ("client", "--client-cmd", "true")
SERVER = ("server", "--token", "t", "--campaign-id", "c")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((*CLIENT, "--timeout", "-1"), "--timeout"),
        ((*CLIENT, "--shrink-seconds", "-5"), "--shrink-seconds"),
        (("client", "--client-cmd", " "), "--client-cmd"),
        ((*CLIENT, "--junit-xml", "/nonexistent/dir/r.xml"), "--junit-xml"),
        ((*SERVER, "--base-url", "not-a-url"), "--base-url"),
        ((*SERVER, "--base-url", "http://127.0.0.1:1", "--live", "--pace", "-1"), "--pace"),
        ((*SERVER, "--base-url", "http://127.0.0.1:1", "--junit-xml", "/nonexistent/r"), "--junit"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else value,
)
def test_a_bad_argument_is_one_line_naming_it_before_anything_runs(args, named):
    # Before: --junit-xml into a missing folder ran every example, then a traceback; --pace -1
    # sent a request, then a traceback; --shrink-seconds -5 and an empty command were taken.
    run = kit(*args, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    [line] = run.stderr.splitlines()
    assert named in line


def test_the_server_suite_gives_the_emulators_clock_back_running(live):
    # Before: the suite left the clock frozen at its last window, so the emulator stayed
    # throttled for whatever used it next (a --live run, a client).
    _api, mock = live
    run = kit(
        "server",
        "--base-url",
        mock.base_url,
        "--token",
        "test-token",
        "--campaign-id",
        "735c19a7-ee54-4b03-a84a-93dfe2a94a56",
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    clock = mock.call("GET", "/__mock/clock")
    assert clock["rate"] == 1
    assert abs(clock["now"] - time.time()) < 60


def test_the_server_suite_reaches_an_emulator_with_an_admin_token():
    # An emulator started with --admin-token (a CI service container, the Docker image) looked like
    # "another server" to `contract server`: exit 2 suggesting --live, and no way to pass the token.
    from dataclasses import replace

    from conftest import running

    from mockserver.settings import load_settings

    settings = load_settings()
    token = "kit-admin-token-for-this-test"
    guarded = settings.with_changes(access=replace(settings.access, admin_token=token))
    with running(guarded) as (_api, mock):
        given = ("--base-url", mock.base_url, "--token", "test-token")
        given += ("--campaign-id", "735c19a7-ee54-4b03-a84a-93dfe2a94a56")
        refused = kit("server", *given, timeout=60)
        assert refused.returncode == 2
        assert "--admin-token" in refused.stderr and "401" in refused.stderr
        run = kit("server", *given, "--admin-token", token, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_client_exiting_127_after_examples_ran_is_judged_not_a_kit_error(tmp_path):
    # Exit 127 (126) is "command not found" (cannot execute) only on the first example; a client
    # that ran and then exits 127 on a larger file fails, its verdicts reported (exit 1, not 2).
    client = tmp_path / "exit127.sh"
    client.write_text(
        f"n=$({sys.executable} -c 'import json, os; "
        'print(len(json.load(open(os.environ["PISANO_CUSTOMERS_FILE"]))))\')\n'
        '[ "$n" -gt 3 ] && { echo "xargs: argument list too long" >&2; exit 127; }\n'
        f"exec {PYTHON_REFERENCE}\n"
    )
    run = kit(
        *("client", "--client-cmd", f"sh {client}", "--max-examples", "0"),
        *("--scenario", "ordinary", "above 5000"),
    )
    assert run.returncode == 1, run.stdout + run.stderr[-2000:]
    assert "could not run" not in run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("  FAIL  every customer delivered") for line in lines), run.stdout
    assert "client exit status: 127" in run.stdout
    assert "argument list too long" in run.stdout


def test_a_client_command_not_found_on_the_first_example_is_a_kit_error():
    run = kit("client", "--client-cmd", "pisano-mock-no-such-command", "--max-examples", "0")
    assert run.returncode == 2, run.stdout + run.stderr[-2000:]
    assert "could not run (exit 127)" in run.stderr
