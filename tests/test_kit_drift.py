"""`contract server --live --drift DIR` (issue 13): one command checks a real environment through
`pisano-mock proxy` and writes the drift recording; and the server suite never drives a proxy's
admin API as an emulator's. The "real environment" is a Pisano stand-in
(tests/pisano_standins.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from contracts.drift_run import shadow_config
from mockserver.settings import load_settings
from tests.pisano_standins import StandInProcess

CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
TOKEN = "test-token"
PACE = "0.02"  # the live suite's pause between requests, shortened: a stand-in of our own


@pytest.fixture(scope="module")
def matching_once() -> Iterator[StandInProcess]:
    with StandInProcess.start("matching") as standin:
        yield standin


@pytest.fixture
def matching(matching_once) -> StandInProcess:
    """The matching stand-in as a fresh environment: a proxy's shadow starts with no throttle
    counts, and an environment still counting an earlier test's requests refuses sooner (drift,
    and true: see the README on starting a recording)."""
    requests.post(matching_once.base_url + "/__mock/reset", timeout=10).raise_for_status()
    return matching_once


@pytest.fixture(scope="module")
def renamed() -> Iterator[StandInProcess]:
    with StandInProcess.start("renamed-200") as standin:
        yield standin


def contract_server(base_url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mockserver.cli", "contract", "server", "--base-url", base_url]
    command += ["--token", TOKEN, "--campaign-id", CAMPAIGN, "--pace", PACE, *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def recorded(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "pairs.jsonl").read_text().splitlines()]


def drift_part(stdout: str) -> str:
    """What follows the suite's report: the drift summary."""
    assert "\ndrift, recorded in " in stdout, stdout
    return stdout.split("\ndrift, recorded in ", 1)[1]


def test_a_matching_environment_passes_and_every_pair_is_the_same(matching, tmp_path):
    record = tmp_path / "drift"
    run = contract_server(matching.base_url, "--live", "--drift", str(record))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "checks held" in run.stdout and "FAIL" not in run.stdout
    pairs = recorded(record)
    assert len(pairs) >= 12  # the email checks and the burst, every one of them a pair
    assert all(pair["verdict"] == "same" for pair in pairs)
    assert f"every pair is the same ({len(pairs)} pairs)" in drift_part(run.stdout)
    assert TOKEN not in (record / "pairs.jsonl").read_text()  # masked (SPEC 2.6)


def test_drift_is_reported_not_judged_the_suite_passing_keeps_exit_status_zero(renamed, tmp_path):
    # The live suite does not look inside a 200 body: it passes. The drift summary names the
    # renamed key on the email endpoint, and nothing else.
    record = tmp_path / "drift"
    run = contract_server(renamed.base_url, "--live", "--drift", str(record))
    assert run.returncode == 0, run.stdout + run.stderr
    summary = drift_part(run.stdout)
    assert "1 of " in summary and "pairs differ" in summary, summary
    assert "200 on POST /v1/email_campaigns/<id>/email_sharings: 1 of 1 pairs differ" in summary
    assert "pair 1: $.sharings: " in summary and "$.sharing_ids" in summary, summary
    differing = [pair for pair in recorded(record) if pair["verdict"] != "same"]
    assert [[d["what"] for d in pair["verdict"]] for pair in differing] == [["body"]]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--drift", "{dir}"), "--drift: needs --live"),
        (("--live", "--drift", "{file}"), "is not a directory"),
        (("--live", "--drift", "{recorded}"), "already holds a recording"),
    ],
    ids=["without --live", "a file", "a recording already"],
)
def test_drift_refuses_what_it_cannot_do_before_sending_anything(matching, tmp_path, flags, says):
    (tmp_path / "file").write_text("x")
    (tmp_path / "recorded").mkdir()
    (tmp_path / "recorded" / "pairs.jsonl").write_text('{"id": 1}\n')
    places = {"{dir}": "new", "{file}": "file", "{recorded}": "recorded"}
    flags = tuple(str(tmp_path / places[f]) if f in places else f for f in flags)
    run = contract_server(matching.base_url, *flags)
    assert run.returncode == 2, run.stdout + run.stderr
    assert says in run.stderr and run.stdout == ""
    assert not (tmp_path / "new").exists()


@pytest.fixture
def proxy(matching, tmp_path) -> Iterator[str]:
    command = [sys.executable, "-m", "mockserver.cli", "proxy", "--upstream", matching.base_url]
    command += ["--port", "0", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline() if process.stdout else ""
    try:
        assert line.startswith("pisano-mock proxy http://"), line
        yield line.split()[2]
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_a_proxy_is_never_checked_as_an_emulator(proxy):
    run = contract_server(proxy)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "is a pisano-mock proxy to http://127.0.0.1:" in run.stderr and "--live" in run.stderr
    assert requests.get(proxy + "/__mock/drift", timeout=10).json()["pairs"] == 0


def test_a_proxy_is_checked_live_its_admin_api_left_alone(proxy):
    run = contract_server(proxy, "--live")
    assert run.returncode == 0, run.stdout + run.stderr
    drift = requests.get(proxy + "/__mock/drift", timeout=10).json()
    # Nothing reset its pairs: every request of the suite is there, each the same.
    assert drift["pairs"] >= 12 and drift["same"] == drift["pairs"], drift


@pytest.mark.parametrize(
    "token",
    ["test-token", 'a "quoted" token', "line\nbreak\\ and ]] brackets", "çığ-ünicode", "x" * 300],
)
def test_the_shadow_config_is_what_a_user_would_write_by_hand(tmp_path, token):
    config = tmp_path / "shadow.toml"
    sms, link = "00000000-0000-4000-8000-0000000005aa", "00000000-0000-4000-8000-0000000007aa"
    config.write_text(shadow_config(token, CAMPAIGN, sms, link))
    fixture = load_settings(str(config)).fixture
    account = fixture["tokens"][token]["account"]
    assert fixture["tokens"] == {token: {"account": account, "active": True}}
    assert fixture["accounts"][account].get("locked") is False
    campaigns = fixture["campaigns"]
    assert {c: (v["account"], v["channel"], v["flow"]) for c, v in campaigns.items()} == {
        CAMPAIGN: (account, "email", True),
        sms: (account, "sms", True),
    }
    assert fixture["link_channels"] == {link: {"account": account}}


def test_without_sms_or_link_the_shadow_holds_the_email_campaign_only(tmp_path):
    config = tmp_path / "shadow.toml"
    config.write_text(shadow_config(TOKEN, CAMPAIGN))
    fixture = load_settings(str(config)).fixture
    assert list(fixture["campaigns"]) == [CAMPAIGN]
    assert not fixture.get("link_channels")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


def test_a_drift_proxy_that_dies_mid_run_is_one_line_and_exit_2(matching, tmp_path):
    record = tmp_path / "drift"
    command = [sys.executable, "-m", "mockserver.cli", "contract", "server", "--live"]
    command += ["--base-url", matching.base_url, "--token", TOKEN, "--campaign-id", CAMPAIGN]
    command += ["--pace", "0.2", "--drift", str(record)]
    kit = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []  # stdout as it comes: the kit says what it does while it runs
    reader = threading.Thread(target=lambda: lines.extend(kit.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (_pairs_at_least(record, 3) and _a_check(lines)):
            time.sleep(0.05)  # waiting for the kit's progress, not for a throttle
        assert kit.poll() is None and _a_check(lines), lines  # printed before the run ended
        assert lines[0].startswith(f"drift: checking {matching.base_url} through pisano-mock")
        for child in children(kit.pid):
            os.kill(child, signal.SIGKILL)
        kit.wait(timeout=120)
        reader.join(10)
        stdout, stderr = "".join(lines), kit.stderr.read()  # type: ignore[union-attr]
    finally:
        kit.kill()
    assert kit.returncode == 2, stdout + stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("pisano-mock contract server: the drift proxy"), stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


def _a_check(lines: list[str]) -> bool:
    return any(line.startswith(("  ok ", "  skip ", "  FAIL ")) for line in list(lines))


def _pairs_at_least(record: Path, count: int) -> bool:
    pairs = record / "pairs.jsonl"
    return pairs.exists() and len(pairs.read_text().splitlines()) >= count
