"""`pisano-mock serve` as a user runs it: a real process, the start-up line, a request, --help."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import requests

from mockserver import cli
from mockserver.cli import build_parser, main

START_LINE = re.compile(
    r"pisano-mock serving (http://127\.0\.0\.1:\d+) token=(\S+) campaign=(\S+)$"
)


def test_serve_prints_the_start_line_and_answers():
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", "--no-throttle"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            line = process.stdout.readline().rstrip("\n")
            match = START_LINE.match(line)
            assert match, line
            base_url, token, campaign = match.groups()
            assert (token, campaign) == ("test-token", "735c19a7-ee54-4b03-a84a-93dfe2a94a56")
            response = requests.post(
                f"{base_url}/v1/email_campaigns/{campaign}/email_sharings",
                json={"emails": ["a@example.com"]},
                headers={"Authorization": f"Token token={token}"},
                timeout=10,
            )
            assert response.status_code == 200
        finally:
            process.terminate()


def test_help_lists_every_serve_option():
    result = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "serve", "--help"], capture_output=True, text=True
    )
    for option in ("--host", "--port", "--config", "--no-throttle", "--time-scale"):
        assert option in result.stdout


def serve(*flags: str) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    match = START_LINE.match(process.stdout.readline().rstrip("\n"))
    assert match
    return process, match.group(1)


def test_no_throttle_flag_removes_the_throttle():
    process, base_url = serve("--no-throttle")
    try:
        requests.post(f"{base_url}/__mock/clock", json={"set": 1_000_000_000}, timeout=10)
        url = f"{base_url}/v1/email_campaigns/735c19a7-ee54-4b03-a84a-93dfe2a94a56/email_sharings"
        auth = {"Authorization": "Token token=test-token"}
        statuses = {
            requests.post(
                url, json={"emails": [f"r{i}@example.com"]}, headers=auth, timeout=10
            ).status_code
            for i in range(30)
        }
        assert statuses == {200}
    finally:
        process.terminate()


def test_time_scale_flag_starts_the_clock_fast_and_reset_keeps_it():
    process, base_url = serve("--time-scale", "100")
    try:
        assert requests.get(f"{base_url}/__mock/clock", timeout=10).json()["rate"] == 100
        requests.post(f"{base_url}/__mock/clock", json={"set": 0}, timeout=10)
        requests.post(f"{base_url}/__mock/reset", timeout=10)
        assert requests.get(f"{base_url}/__mock/clock", timeout=10).json()["rate"] == 100
    finally:
        process.terminate()


README_THROTTLE_SNIPPET = """
[throttle]
enabled = true
profile = "rack_attack"
tiers = "20/5 seconds; 40/25 seconds; 80/125 seconds; 160/625 seconds"
key = "token"

[[throttle.overrides]]
cidr = "10.0.0.0/8"
tiers = "100/5 seconds"
"""


def test_a_config_of_settings_only_still_serves_the_default_fixture(tmp_path):
    config = tmp_path / "throttle.toml"
    config.write_text(README_THROTTLE_SNIPPET)
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0"]
    with subprocess.Popen(
        [*command, "--config", str(config)], stdout=subprocess.PIPE, text=True
    ) as p:
        try:
            match = START_LINE.match(p.stdout.readline().rstrip("\n"))
        finally:
            p.terminate()
    assert match
    assert match.group(2, 3) == ("test-token", "735c19a7-ee54-4b03-a84a-93dfe2a94a56")


def run_serve(capsys, monkeypatch, *flags: str) -> tuple[int, str]:
    """`main` in this process (quicker than a subprocess): a refusal must return before serving."""

    def served_instead(*_: object) -> None:
        pytest.fail("serve started instead of refusing")

    monkeypatch.setattr(cli, "serve", served_instead)
    status = main(["serve", "--port", "0", *flags])  # a later --port wins
    return status, capsys.readouterr().err


CONFIG_ERRORS = [
    ('[throttle]\ntiers = "20 per 5s"\n', "throttle.tiers"),
    ('[tokens.abc]\naccount = "nobody"\n', "tokens.abc.account"),
    ('[[throttle.overrides]]\ncidr = "10.0.0.300/8"\n', "throttle.overrides[0].cidr"),
    ('[throttle]\ncolour = "red"\n', "throttle.colour"),
    ("[accounts.initech]\n", "tokens.test-token.account"),
]


@pytest.mark.parametrize(("text", "key"), CONFIG_ERRORS)
def test_a_config_error_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, text, key):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    status, stderr = run_serve(capsys, monkeypatch, "--config", str(config))
    assert status == 2
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"pisano-mock: {config}: {key}: "), stderr


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[tokens.t]\naccount = "nobody"\ncolour = 1\n', "colour"),
        ('[throttle]\ntiers = "20 per 5s"\n', "throttle.tiers"),
    ],
)
def test_a_config_error_in_a_real_process_has_no_traceback(tmp_path, text, named):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [result.stderr.rstrip("\n")]
    assert named in result.stderr


@pytest.mark.parametrize("scale", ["-3", "nan", "inf"])
def test_a_time_scale_the_admin_api_would_refuse_is_one_line_and_exit_2(capsys, monkeypatch, scale):
    status, stderr = run_serve(capsys, monkeypatch, "--time-scale", scale)
    assert status == 2
    assert stderr.count("\n") == 1 and stderr.startswith("pisano-mock: --time-scale"), stderr


def test_version_comes_from_the_package_metadata():
    result = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout == f"pisano-mock {version('pisano-mock')}\n"


def test_every_serve_option_has_help_text():
    parser = build_parser()
    [subcommands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    serve_parser = subcommands.choices["serve"]
    options = [a for a in serve_parser._actions if a.option_strings]
    names = {name for action in options for name in action.option_strings}
    assert {"--quiet", "--log-format", "--admin-token", "--allowed-host"} <= names
    for action in options:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
    help_text = serve_parser.format_help()
    for action in options:
        assert action.option_strings[-1] in help_text


def test_make_serve_takes_a_port_and_other_flags():
    result = subprocess.run(
        ["make", "-n", "serve", "PORT=9000", "ARGS=--quiet --time-scale 2"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[1],
    )
    [command] = [line for line in result.stdout.splitlines() if "pisano-mock serve" in line]
    assert command.endswith("pisano-mock serve --host 127.0.0.1 --port 9000 --quiet --time-scale 2")


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_a_port_outside_0_to_65535_is_one_line_and_exit_2(capsys, monkeypatch, port):
    # Before: 99999 silently served on 99999 % 65536, and -1 was a traceback.
    status, stderr = run_serve(capsys, monkeypatch, "--port", port)
    assert status == 2
    assert stderr == f"pisano-mock: --port: {port} is not a port; expected 0 to 65535\n"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10"])
def test_a_non_loopback_host_without_an_admin_token_refuses_to_start(capsys, monkeypatch, host):
    # SPEC 2.6: `--host 0.0.0.0` used to open the admin API to everyone who could reach it.
    monkeypatch.delenv("PISANO_MOCK_ADMIN_TOKEN", raising=False)
    status, stderr = run_serve(capsys, monkeypatch, "--host", host, "--port", "0")
    assert status == 2
    assert stderr.count("\n") == 1 and "--admin-token" in stderr and "--insecure-admin" in stderr


@pytest.mark.parametrize(
    "flags", [("--insecure-admin",), ("--admin-token", "a-long-admin-token")], ids=str
)
def test_a_non_loopback_host_starts_with_an_admin_token_or_insecure_admin(flags):
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--host", "0.0.0.0", "--port", "0"]
    with subprocess.Popen([*command, *flags, "--quiet"], stdout=subprocess.PIPE, text=True) as run:
        try:
            assert run.stdout.readline().startswith("pisano-mock serving http://0.0.0.0:")
        finally:
            run.terminate()


def test_serve_starts_without_loading_the_plugged_in_commands():
    # `contract` imports hypothesis and the kit: start to first answer went from 1.06 s to 0.24 s.
    script = (
        "import sys, mockserver.cli as cli\n"
        "cli.serve = lambda *args: None\n"
        "cli.main(['serve', '--port', '0', '--quiet'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('contracts')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.splitlines()[-1] == "[]", result.stdout + result.stderr
    assert (
        "contract"
        in subprocess.run(
            [sys.executable, "-m", "mockserver.cli", "--help"], capture_output=True, text=True
        ).stdout
    )


@pytest.mark.parametrize("workers", ["65", "10000"])
def test_more_workers_than_the_bound_is_one_line_and_exit_2(capsys, monkeypatch, workers):
    # `--workers 10000 --storage redis://...` forked 10,000 workers: a fork storm on the host.
    storage = "redis://127.0.0.1:1/0"  # never reached: refused before the store is opened
    status, stderr = run_serve(capsys, monkeypatch, "--workers", workers, "--storage", storage)
    assert status == 2
    assert stderr == f"pisano-mock: --workers: {workers}: expected 1 to 64\n"


@pytest.mark.parametrize("token", [" ", "\t", "  \n"])
def test_a_blank_admin_token_is_no_admin_token(capsys, monkeypatch, token):
    # A whitespace-only PISANO_MOCK_ADMIN_TOKEN opened 0.0.0.0 with a token anyone can send.
    monkeypatch.setenv("PISANO_MOCK_ADMIN_TOKEN", token)
    status, stderr = run_serve(capsys, monkeypatch, "--host", "0.0.0.0", "--port", "0")
    assert status == 2 and "--admin-token" in stderr
