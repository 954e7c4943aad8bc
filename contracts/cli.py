"""`pisano-mock contract client|server`: plugged into the `pisano-mock` command by entry point."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .admin_client import AdminClient
from .client_suite import run_client_suite
from .model import KitError
from .report import text_report, write_junit
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
  PISANO_CAMPAIGN_ID     the campaign to send to
  PISANO_CUSTOMERS_FILE  a JSON array of customers: {"email", "name", "external_id",
                         "phone_number", "transactional_data"} (only email is always there)
It must deliver every customer to POST /v1/email_campaigns/<id>/email_sharings and exit 0
exactly when every customer arrived.

What is checked: every customer delivered; none delivered twice; every field arrives intact;
attributes keyed by the right email; no request over 5000 recipients; well-formed requests (JSON,
documented path, accepted Authorization form); backing off after 429; catalogue errors (4xx) not
retried and a non-zero exit; transient errors (5xx, dropped connections) retried; exit status 0
when every customer arrived; finishing within --timeout.

Exit status: 0 every check held; 1 a check failed (the report shows the smallest failing
example, what was expected and what arrived, and the emulator's journal); 2 the kit could not run.
"""

SERVER_HELP = """\
Check a server against Pisano's documented behaviour: the email sharing endpoint, its error
catalogue byte for byte, and the throttle tiers. Against this emulator the kit finds its admin
API and uses it (reset, clock). Against a real Pisano environment it refuses to run unless you
pass --live; then it paces itself to one request per 4 s (within the throttle) and sends only to
addresses at example.com, so no real person receives a survey. Exit status: 0 every check held,
1 a check failed, 2 the kit could not run.
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
        "--live", action="store_true", help="allow a server without the emulator's admin API"
    )
    server.set_defaults(handler=server_command)


def client_command(args: argparse.Namespace) -> int:
    if args.max_examples < 0 or args.timeout <= 0:
        print("pisano-mock contract client: --max-examples >= 0 and --timeout > 0", file=sys.stderr)
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
    admin = AdminClient(base_url)
    emulator = admin.available()
    if not emulator and not args.live:
        print(
            f"pisano-mock contract server: {base_url} has no emulator admin API (/__mock/health); "
            "to check a real Pisano environment pass --live (real requests, paced, to example.com "
            "addresses only)",
            file=sys.stderr,
        )
        return 2
    server = Server(base_url, args.token, args.campaign_id, admin if emulator else None)
    if not emulator:
        server.pace = LIVE_PACE_SECONDS
    outcomes = run_server_suite(server)
    for name, failure in outcomes:
        print(f"  {'FAIL' if failure else 'ok  '}  {name}")
        if failure:
            print(f"        expected: {failure.expected}\n        received: {failure.received}")
    failed = [name for name, failure in outcomes if failure]
    print(
        f"pisano-mock contract server: {len(outcomes) - len(failed)} of {len(outcomes)} checks held"
    )
    return 1 if failed else 0
