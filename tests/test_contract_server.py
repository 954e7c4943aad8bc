"""`pisano-mock contract server`: passes against the emulator, and names the deviation of servers
that differ from SPEC 1 in one way each (built here by wrapping the emulator)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import replace

import pytest

from contracts.admin_client import AdminClient
from contracts.server_suite import Server, run_server_suite
from mockserver.app import create_app
from mockserver.server import LiveServer
from mockserver.settings import ThrottleSettings, load_settings
from tests.conftest import DEFAULT_CAMPAIGN, DEFAULT_TOKEN


def failing_checks(app) -> set[str]:
    with LiveServer(app) as live:
        server = Server(live.base_url, DEFAULT_TOKEN, DEFAULT_CAMPAIGN, AdminClient(live.base_url))
        return {outcome.name for outcome in run_server_suite(server) if outcome.failure}


class RewriteAnswers:
    """WSGI middleware: replaces bytes or the status line of the emulator's answers."""

    def __init__(
        self, app, old: bytes = b"", new: bytes = b"", status: tuple[str, str] | None = None
    ):
        self.app, self.old, self.new, self.status = app, old, new, status

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            if self.status and status.startswith(self.status[0]):
                status = self.status[1]
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            return start_response(status, headers, exc_info)

        body = b"".join(self.app(environ, start))
        return [body.replace(self.old, self.new) if self.old else body]


class AcceptDuplicates:
    """WSGI middleware: drops repeated addresses before the emulator sees them."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            body = json.loads(raw)
            seen = set()
            body["emails"] = [
                e for e in body["emails"] if not (e.lower() in seen or seen.add(e.lower()))
            ]
            raw = json.dumps(body).encode()
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        import io

        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
        return self.app(environ, start_response)


def wrapped(middleware, **kwargs):
    app = create_app()
    app.wsgi_app = middleware(app.wsgi_app, **kwargs)
    return app


def test_the_emulator_passes_every_check():
    assert failing_checks(create_app()) == set()


def test_a_wrong_message_is_named():
    app = wrapped(RewriteAnswers, old=b"Duplicate value", new=b"Duplicate values")
    assert failing_checks(app) == {"a duplicate is 13017"}


def test_a_wrong_status_is_named():
    app = wrapped(RewriteAnswers, status=("401", "403 FORBIDDEN"))
    assert failing_checks(app) == {"unknown token is 13001"}


def test_no_throttle_is_named():
    settings = load_settings()
    app = create_app(settings.with_changes(throttle=replace(settings.throttle, enabled=False)))
    assert failing_checks(app) == {"throttle tiers hold"}


def test_a_duplicate_accepted_is_named():
    assert failing_checks(wrapped(AcceptDuplicates)) == {"a duplicate is 13017"}


def test_cli_passes_against_the_emulator_and_refuses_a_server_without_admin_api():
    with LiveServer(create_app()) as live:
        command = [
            *(sys.executable, "-m", "mockserver.cli", "contract", "server"),
            *(
                "--base-url",
                live.base_url,
                "--token",
                DEFAULT_TOKEN,
                "--campaign-id",
                DEFAULT_CAMPAIGN,
            ),
        ]
        run = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        # 12 for email and the throttle, 29 for SMS, link and their shared bucket (default ids)
        assert "41 of 41 checks held" in run.stdout
        command[command.index("--base-url") + 1] = live.base_url + "/no-admin-api-here"
        run = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert run.returncode == 2
        assert "--live" in run.stderr


SMS_CAMPAIGN = "00000000-0000-4000-8000-000000000501"
LINK_CHANNEL = "00000000-0000-4000-8000-000000000701"


def test_live_mode_paces_itself_and_mails_only_reserved_domains():
    with LiveServer(create_app()) as live:
        witness = AdminClient(live.base_url)
        witness.reset()
        server = Server(live.base_url, DEFAULT_TOKEN, DEFAULT_CAMPAIGN, admin=None, pace=0.05)
        outcomes = run_server_suite(server)
        assert [outcome.name for outcome in outcomes if outcome.failure] == []
        # Without an SMS campaign or a link channel their checks are skipped, not passed.
        skipped = [outcome.name for outcome in outcomes if outcome.skipped]
        assert skipped and all(name.startswith(("sms", "link", "one throttle")) for name in skipped)
        entries = witness.requests()
        # The last check's burst of bodies refused anyway ({"emails": []}) is sent unpaced;
        # everything before it is paced.
        burst = list(itertools.takewhile(lambda e: e["body"] == {"emails": []}, entries[::-1]))
        assert 1 <= len(burst) <= 61 and all(e["status"] in (400, 429) for e in burst)
        times = [entry["time"] for entry in entries[: len(entries) - len(burst)]]
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.05
        addresses = {
            e
            for entry in entries
            if isinstance(entry["body"], dict)
            for e in entry["body"].get("emails") or []
            if isinstance(e, str)
        }
        assert addresses and all(
            a.rsplit("@", 1)[1] in {"example.com", "example.org", "example.net"}
            for a in addresses
            if "@" in a
        )


def test_live_mode_checks_sms_and_link_sending_no_sms_and_only_reserved_addresses(server_with):
    # Without a throttle: paced for a test (0.01 s), the 29 requests of SMS and link would meet
    # the first tier; the throttle's own check then fails, as it must on such a server.
    with server_with(throttle=ThrottleSettings(enabled=False)) as (_api, witness):
        witness.reset()
        server = Server(witness.base_url, DEFAULT_TOKEN, DEFAULT_CAMPAIGN, admin=None, pace=0.01)
        server.sms_campaign_id, server.link_channel_id = SMS_CAMPAIGN, LINK_CHANNEL
        outcomes = run_server_suite(server)
        entries = witness.requests()
    assert [outcome.name for outcome in outcomes if outcome.failure] == ["throttle tiers hold"]
    # Live, no valid SMS body is sent, and what needs the emulator's clock or schema waits.
    assert [outcome.name for outcome in outcomes if outcome.skipped] == [
        "sms: accepts a valid body",
        "link: a built_in_responses value of the wrong type is 13028",
        "one throttle for email, SMS and link",
    ]
    assert [e for e in entries if "/sms_sharings" in e["path"] and e["status"] == 200] == []
    bodies = [e["body"] for e in entries if "/generate_link" in e["path"]]
    customers = [b["customer"] for b in bodies if isinstance(b, dict) and "customer" in b]
    emails = [c["email"] for c in customers if isinstance(c, dict) and "email" in c]
    assert emails and all(e.rsplit("@", 1)[1] == "example.com" for e in emails)


@pytest.mark.parametrize("flag", ["--token", "--campaign-id", "--base-url"])
def test_cli_needs_its_arguments(flag):
    args = {"--base-url": "http://127.0.0.1:9", "--token": "t", "--campaign-id": "c"}
    del args[flag]
    command = [sys.executable, "-m", "mockserver.cli", "contract", "server", *sum(args.items(), ())]
    assert subprocess.run(command, capture_output=True, timeout=60).returncode == 2
