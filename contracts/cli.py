"""`pisano-mock contract client|server`: plugged into the `pisano-mock` command by entry point."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import urllib.parse
from typing import Any

from .admin_client import AdminClient, AdminError
from .client_suite import run_client_suite
from .drift_run import drift_dir_problem, drift_summary, proxy_to, shadow_config
from .endpoints import ENDPOINTS
from .expectations import DEFAULT_LINK_CHANNEL, DEFAULT_SMS_CAMPAIGN
from .model import KitError
from .report import (
    server_count,
    server_lines,
    server_text_report,
    text_report,
    write_junit,
    write_server_junit,
)
from .runner import CommandClient, EmulatorProcess
from .scenarios import SCENARIOS
from .server_suite import LIVE_PACE_SECONDS, Server, run_server_suite

CLIENT_HELP = """\
Prove that a Pisano client delivers surveys correctly, whatever language it is written in.

The kit starts its own Pisano emulator, then runs your client many times, each time with a
different list of customers and a different way for the server to behave: ordinary lists, an
empty one, more than 5000 customers, names in any script with emoji and quotes, the throttle
refusing with 429, servers failing with 500/502/503 or closing the connection, catalogue errors
that must not be retried. The examples are generated (by the hypothesis library): when one fails,
the kit tries smaller variations to find the smallest example that still fails, and reports it.

Your command is run through `sh -c` with these environment variables:
  PISANO_BASE_URL        the emulator, e.g. http://127.0.0.1:43121
  PISANO_API_TOKEN       the token to send: Authorization: Token token=<token>
  PISANO_ENDPOINT        email, sms or link: the --endpoint the client is to call
  PISANO_CAMPAIGN_ID     the campaign to send to (email, sms)
  PISANO_LINK_CHANNEL_ID the link channel to generate links on (link, instead of the campaign)
  PISANO_CUSTOMERS_FILE  a JSON array of customers:
      email: {"email", "name", "external_id", "phone_number", "transactional_data"}
             (email always there, unique case-insensitively)
      sms:   {"phone_number", "name", "external_id", "email", "transactional_data"}
             (phone_number always there, unique once spaces, -, (, ), . and a leading +
             are removed)
      link:  one link customer each: identity keys "email", "phone_number", "name",
             "external_id" (strings, at least one not empty), every other key a custom
             attribute, and "transactional_data"
  PISANO_BUILT_IN_RESPONSES_FILE
                         a JSON object of built_in_responses typed by the emulator's customer
                         schema (NPS integer, Satisfied boolean, Comment string, ...); a client
                         that sends built_in_responses sends this object with every request
It must deliver every customer and exit 0 exactly when every customer arrived:
  --endpoint email  POST /v1/email_campaigns/<id>/email_sharings   (emails, <= 5000 a request)
  --endpoint sms    POST /v1/sms_campaigns/<id>/sms_sharings       (phone_numbers, <= 5000)
  --endpoint link   POST /external/v1/link_sharings/<channel>/generate_link
                    (one call per customer: {"customer": {...}, "transactional_data": {...}})
The email and SMS bodies key custom_attributes and transactional_data by the email or the
number as sent. A check that cannot apply to an endpoint (no request over 5000 recipients, for
links) is reported as skipped.

What is checked, one check each (the names the report uses):
  client finishes in time               within --timeout
  every customer delivered              unless the server refused for good
  no customer delivered twice
  fields arrive intact                  as JSON values: 1.0 equals 1, "1" does not
  attributes keyed by the right email
  no request over 5000 recipients
  requests are well formed              known JSON fields, documented path, accepted Authorization
  backs off after 429                   at most 3 further refusals in the refusing window
  non retryable errors not retried      catalogue errors (4xx), then a non-zero exit
  transient errors retried              5xx, 429, dropped connections
  exit status zero when every customer arrived
  built in responses arrive in the link in every survey link, in order, JSON types kept
                                        (an integer question's 9 is not 9.0)
                                        (skipped for a client that never sends them)
A check with nothing to judge in any example (no 429 met, say) is reported as skipped, not ok.
Each failed check says how to fix it.

Exit status: 0 every check held; 1 a check failed (the report shows the smallest failing
example, what was expected and what arrived, and the emulator's journal); 2 the kit could not run.
"""

SERVER_HELP = """\
Check a server against Pisano's documented behaviour: the email sharing endpoint, SMS sharing
(--sms-campaign-id) and link generation (--link-channel-id) with their 200 bodies and their rules
in order, the error catalogue byte for byte, the throttle tiers, and one throttle bucket for email,
SMS and link. Against this emulator the kit finds its admin
API and uses it (reset, clock). Against a real Pisano environment it refuses to run unless you
pass --live; then it paces itself to one request per 4 s (--pace; within the throttle) and sends
only to addresses at example.com, so no real person receives a survey. The throttle's first tier
is checked live by a burst of bodies the server refuses anyway ({"emails": []}: nobody is sent
anything): a 429 text/plain "Retry later\\n" must come by the 21st request of a 5 s window. A
check that could not run (a burst too slow to fill a window) is reported as skipped, not ok.
A `pisano-mock proxy` at --base-url (its health says mode "proxy") is checked as the real
environment behind it: --live only, its admin API never used.

With --live --drift DIR the kit does the proxying itself: it starts `pisano-mock proxy --upstream
<--base-url> --record DIR` with a shadow emulator configured from --token, --campaign-id,
--sms-campaign-id and --link-channel-id (an active account owning them, flow attached), runs the
live suite through it, stops it and prints the drift summary (`pisano-mock drift report DIR`):
where the emulator answered differently from the environment, rule by rule.
Exit status: 0 every check held, 1 a check failed, 2 the kit could not run (nothing listens at
--base-url, no admin API and no --live, the drift proxy did not start or died). Drift does not
change it.
"""


def register(commands: Any) -> None:
    """Add `contract` to the `pisano-mock` command (entry point `pisano_mock.commands`)."""
    contract = commands.add_parser(
        "contract", help="run the contract-test kit", description="The contract-test kit."
    )
    suites = contract.add_subparsers(dest="suite", required=True, metavar="SUITE")
    _add_client_suite(suites)
    _add_server_suite(suites)


def _add_client_suite(suites: Any) -> None:
    client = suites.add_parser(
        "client",
        help="prove that a client integrates correctly",
        description=CLIENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    client.add_argument(
        "--client-cmd",
        required=True,
        metavar="COMMAND",
        help="how to run your client (through sh -c)",
    )
    client.add_argument(
        "--endpoint",
        choices=sorted(ENDPOINTS),
        default="email",
        help="the endpoint the client calls: email (default), sms or link",
    )
    client.add_argument(
        "--max-examples",
        type=int,
        default=25,
        metavar="N",
        help="generated examples, beyond one per scenario (25)",
    )
    client.add_argument(
        "--seed", type=int, metavar="S", help="repeat a run exactly (the report prints its seed)"
    )
    client.add_argument("--junit-xml", metavar="PATH", help="also write a JUnit XML report")
    client.add_argument(
        "--timeout", type=float, default=120.0, metavar="SECONDS", help="per example (120)"
    )
    client.add_argument(
        "--shrink-seconds",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time to spend looking for a smaller failing example (60)",
    )
    client.add_argument(
        "--scenario",
        action="extend",
        nargs="+",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help="only these scenarios: --scenario ordinary empty, or the flag repeated; one of: "
        + ", ".join(repr(name) for name in SCENARIOS),
    )
    client.set_defaults(handler=client_command)


def _add_server_suite(suites: Any) -> None:
    server = suites.add_parser(
        "server",
        help="check a server against Pisano's documented behaviour",
        description=SERVER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080")
    server.add_argument("--token", required=True, help="an API token of the server")
    server.add_argument("--campaign-id", required=True, help="a campaign of that token's account")
    server.add_argument(
        "--sms-campaign-id",
        metavar="ID",
        help="an SMS campaign of that account: checks the SMS endpoint (on this emulator, default "
        f"the default fixture's {DEFAULT_SMS_CAMPAIGN}; else its checks are skipped)",
    )
    server.add_argument(
        "--link-channel-id",
        metavar="ID",
        help="a link channel of that account: checks link generation (on this emulator, default "
        f"the default fixture's {DEFAULT_LINK_CHANNEL}; else its checks are skipped)",
    )
    server.add_argument(
        "--live",
        action="store_true",
        help="check it as a real Pisano environment: no admin API used (even on an emulator), "
        "paced requests, only example.com addresses, the throttle's first tier by a burst of "
        "bodies refused anyway",
    )
    server.add_argument(
        "--pace",
        type=float,
        default=LIVE_PACE_SECONDS,
        metavar="SECONDS",
        help=f"with --live, the pause between requests ({LIVE_PACE_SECONDS:g}: within every tier; "
        "shorter only against a server of your own)",
    )
    server.add_argument(
        "--admin-token",
        metavar="T",
        help="the emulator's admin token, when it was started with one (default: "
        "$PISANO_MOCK_ADMIN_TOKEN)",
    )
    server.add_argument("--junit-xml", metavar="PATH", help="also write a JUnit XML report")
    server.add_argument(
        "--drift",
        metavar="DIR",
        help="with --live: send the suite through `pisano-mock proxy`, which holds the "
        "emulator's answer to each request against the environment's and records both in DIR "
        "(a new or empty directory); the drift summary follows the report (the exit status "
        "stays the suite's)",
    )
    server.set_defaults(handler=server_command)


ADMIN_TOKEN_VARIABLE = "PISANO_MOCK_ADMIN_TOKEN"  # as the emulator reads it (README)


def admin_refusal(admin: AdminClient) -> int | None:
    """401 or 403 when an emulator's admin API is there but refuses this caller, else None."""
    try:
        admin.call("GET", "/__mock/health")
    except AdminError as error:
        return error.status if error.status in (401, 403) else None
    return None


def client_command(args: argparse.Namespace) -> int:
    wrong = argument_problem(
        (args.max_examples < 0, "--max-examples: 0 or more (0: only the fixed examples)"),
        (args.timeout <= 0, "--timeout: more than 0 seconds"),
        (args.shrink_seconds < 0, "--shrink-seconds: 0 or more"),
        (not args.client_cmd.strip(), "--client-cmd: a command to run, not an empty string"),
        (not writable(args.junit_xml), f"--junit-xml: cannot write {args.junit_xml}"),
    )
    if wrong:
        print(f"pisano-mock contract client: {wrong}", file=sys.stderr)
        return 2
    try:
        with EmulatorProcess.start() as emulator:
            result = run_client_suite(
                emulator.target,
                CommandClient(args.client_cmd),
                max_examples=args.max_examples,
                seed_value=args.seed,
                timeout=args.timeout,
                shrink_seconds=args.shrink_seconds,
                scenarios=tuple(args.scenario) if args.scenario else None,
                endpoint=args.endpoint,
            )
    except KitError as error:
        print(f"pisano-mock contract client: {error}", file=sys.stderr)
        return 2
    print(text_report(result))
    if args.junit_xml:
        write_junit(result, args.junit_xml)
    return 0 if result.passed else 1


def server_command(args: argparse.Namespace) -> int:
    base_url = args.base_url.rstrip("/")
    drift_problem = None if args.drift is None else drift_dir_problem(args.drift)
    wrong = argument_problem(
        (
            urllib.parse.urlsplit(base_url).scheme not in ("http", "https"),
            f"--base-url: {base_url!r} is not an http:// or https:// URL",
        ),
        (args.pace < 0, "--pace: 0 or more seconds"),
        (not writable(args.junit_xml), f"--junit-xml: cannot write {args.junit_xml}"),
        (
            args.drift is not None and not args.live,
            "--drift: needs --live (it checks a real environment, through the proxy)",
        ),
        (drift_problem is not None, drift_problem or ""),
    )
    if wrong:
        _say(wrong)
        return 2
    if not listening(base_url):
        _say(f"nothing listens at {base_url} (connection refused or no such host)")
        return 2
    admin = AdminClient(
        base_url, admin_token=args.admin_token or os.environ.get(ADMIN_TOKEN_VARIABLE)
    )
    refusal = why_not_checked(base_url, admin, args.live)
    if refusal:
        _say(refusal)
        return 2
    if args.drift is not None:
        return _through_the_proxy(args, base_url)
    emulator = not args.live  # why_not_checked: without --live, an emulator's admin API answers
    return _run_server_suite(args, _server(args, base_url, admin if emulator else None))


def why_not_checked(base_url: str, admin: AdminClient, live: bool) -> str | None:
    """Why the suite cannot run against what answers at `base_url` as asked, or None. A proxy
    (health's mode "proxy") is a real environment behind a shadow: checked live only, its admin
    API never driven (a reset would empty its pairs, not the environment's state)."""
    refused = admin_refusal(admin)
    if refused and not live:
        return (
            f"{base_url}: the emulator's admin API refused the kit ({refused}): pass its admin "
            f"token with --admin-token T or ${ADMIN_TOKEN_VARIABLE} (or --live to check it as a "
            "real Pisano environment)"
        )
    health = admin.health() if not refused else None
    if health is not None and health.get("mode") == "proxy" and not live:
        return (
            f"{base_url} is a pisano-mock proxy to {health.get('upstream', 'a real environment')}: "
            "checking it checks that environment; pass --live (real requests, paced, to "
            "example.com addresses only)"
        )
    if health is None and not live:
        return (
            f"{base_url} answers but has no emulator admin API (/__mock/health); to check a real "
            "Pisano environment pass --live (real requests, paced, to example.com addresses only)"
        )
    return None


def _server(args: argparse.Namespace, base_url: str, admin: AdminClient | None) -> Server:
    emulator = admin is not None
    server = Server(base_url, args.token, args.campaign_id, admin)
    server.pace = 0.0 if emulator else args.pace
    server.sms_campaign_id = args.sms_campaign_id or (DEFAULT_SMS_CAMPAIGN if emulator else None)
    server.link_channel_id = args.link_channel_id or (DEFAULT_LINK_CHANNEL if emulator else None)
    return server


def _run_server_suite(args: argparse.Namespace, server: Server, as_it_goes: bool = False) -> int:
    """The suite and its report; `as_it_goes` prints each check's lines when it ends (a live run
    through the drift proxy takes minutes: a CI log should not stay silent)."""
    if as_it_goes:
        outcomes = run_server_suite(server, lambda outcome: _print_lines(server_lines(outcome)))
        _print_lines([server_count(outcomes)])
    else:
        outcomes = run_server_suite(server)
        print(server_text_report(outcomes))
    if args.junit_xml:
        write_server_junit(outcomes, args.junit_xml)
    return 1 if any(outcome.failure for outcome in outcomes) else 0


def _through_the_proxy(args: argparse.Namespace, base_url: str) -> int:
    """The live suite sent through `pisano-mock proxy` to `base_url`, then the drift summary.
    The exit status stays the suite's: drift is reported, not judged (README)."""
    config = shadow_config(args.token, args.campaign_id, args.sms_campaign_id, args.link_channel_id)
    try:
        with proxy_to(base_url, args.drift, config) as proxy:
            _print_lines([f"drift: checking {base_url} through pisano-mock proxy {proxy.base_url}"])
            status = _run_server_suite(args, _server(args, proxy.base_url, None), as_it_goes=True)
    except KitError as error:
        _say(str(error))
        return 2
    except OSError as error:  # the proxy is the kit's own child: it died, or was killed
        _say(
            f"the drift proxy stopped answering ({getattr(error, 'reason', error)}); what it "
            f"recorded until then is in {args.drift}"
        )
        return 2
    _, summary = drift_summary(args.drift)
    print(f"\ndrift, recorded in {args.drift} (pisano-mock drift report {args.drift}):")
    print(summary)
    return status


def _print_lines(lines: list[str]) -> None:
    print("\n".join(lines), flush=True)  # flushed: stdout is often a pipe (CI), block-buffered


def argument_problem(*rules: tuple[bool, str]) -> str | None:
    """The first (broken, what is expected) rule that is broken: checked before anything runs."""
    return next((expected for broken, expected in rules if broken), None)


def writable(path: str | None) -> bool:
    """Whether a report can be written there (checked before the run, not after it)."""
    return path is None or os.access(os.path.dirname(os.path.abspath(path)), os.W_OK)


def listening(base_url: str, timeout: float = 10.0) -> bool:
    """Whether anything accepts a connection at the URL's host and port."""
    url = urllib.parse.urlsplit(base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _say(message: str) -> None:
    print(f"pisano-mock contract server: {message}", file=sys.stderr)
