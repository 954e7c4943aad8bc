"""`pisano-mock serve` as a user runs it: a real process, the start-up line, a request, --help."""

from __future__ import annotations

import re
import subprocess
import sys

import requests

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


def test_serve_with_a_bad_config_exits_2(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[tokens.t]\naccount = "nobody"\ncolour = 1\n')
    result = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "colour" in result.stderr


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
