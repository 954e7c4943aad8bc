"""`pisano-mock`: serve the emulator; other commands (`contract`) are plugged in by entry point.

The `contract` command lives in the `contracts` package, which registers itself under the entry
point group `pisano_mock.commands`, so `mockserver` never imports `contracts` (ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, entry_points, version

from . import access_log
from .access import startup_refusal
from .app import create_app
from .csvfile import CHANNELS, DELIMITER_NAMES, ENCODING_NAMES, Summary, check_csv, file_source
from .drift import any_drift, pair_of_record, report_lines, summarise
from .pairs import PAIR_LOG, PairLog
from .proxy import UPSTREAM_SECONDS, Proxy
from .recording import Recorder, RecordingError
from .replay import Replayer, read_pairs, replay_line
from .server import serve_links_at
from .serving import base_url, hold_stop_signals, listen, serve
from .settings import (
    STORAGE_VARIABLE,
    ConfigError,
    Settings,
    check_workers,
    load_settings,
    with_access_options,
)
from .upstream import Upstream

COMMAND_GROUP = "pisano_mock.commands"
MAX_UPSTREAM_SECONDS = 3600


def build_parser(plugins: bool = True) -> argparse.ArgumentParser:
    """The whole command line; `plugins=False` leaves out the commands other packages plug in
    (`contract` imports hypothesis and the kit: `serve` starts faster without them)."""
    parser = argparse.ArgumentParser(
        prog="pisano-mock",
        description="A local emulator of Pisano's survey-sharing API, and a contract-test kit.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {package_version()}",
        help="show the version",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the emulator",
        description="Run the emulator until interrupted. The first line on standard output is "
        "'pisano-mock serving http://HOST:PORT token=TOKEN campaign=CAMPAIGN_ID'.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (8080)")
    serve.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file over the default fixture: its [accounts], [tokens], [campaigns] "
        "replace the default's, its settings tables are merged key by key",
    )
    serve.add_argument(
        "--no-throttle",
        action="store_true",
        help="remove the throttle (Pisano's on-premises option)",
    )
    serve.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="start the emulator's clock running F times faster than real time (default 1)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes (default 1); more than one needs --storage redis://",
    )
    serve.add_argument(
        "--storage",
        metavar="URL",
        help="where state lives: memory:// (default; this process only) or redis://HOST:PORT/DB "
        "(shared by every worker and replica); default $PISANO_MOCK_STORAGE or memory://",
    )
    serve.add_argument(
        "--admin-token",
        metavar="T",
        help="require 'Authorization: Bearer T' or 'X-Pisano-Mock-Admin-Token: T' on /__mock/ "
        "(default: $PISANO_MOCK_ADMIN_TOKEN; without one, only loopback callers are answered)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="accept this Host header besides the serving host, localhost and loopback "
        "(repeatable)",
    )
    serve.add_argument(
        "--insecure-admin",
        action="store_true",
        help="serve a non-loopback --host without an admin token (anyone reaching it may "
        "reconfigure the emulator)",
    )
    serve.add_argument(
        "--quiet", action="store_true", help="no access-log line per request on standard error"
    )
    serve.add_argument(
        "--log-format",
        choices=access_log.FORMATS,
        default="text",
        help="access-log lines as text, or as one JSON object per line (default text)",
    )
    serve.add_argument(
        "--replay",
        metavar="DIR",
        help="answer a request matching a recorded one (method, path, body) with the recorded "
        "upstream answer (a recording of 'pisano-mock proxy --record DIR'); others as usual",
    )
    serve.set_defaults(handler=serve_command)
    add_csv_command(commands)
    add_proxy_command(commands)
    add_drift_command(commands)
    for command in entry_points(group=COMMAND_GROUP) if plugins else ():
        command.load()(commands)
    return parser


def serve_command(args: argparse.Namespace) -> int:
    try:
        check_port(args.port)
        storage = args.storage or os.environ.get(STORAGE_VARIABLE) or "memory://"
        settings = load_settings(args.config, time_scale=args.time_scale, storage=storage)
        check_workers(args.workers, settings.storage)
    except ConfigError as error:
        print(f"pisano-mock: {error}", file=sys.stderr)
        return 2
    if args.no_throttle:
        settings = settings.with_changes(throttle=replace(settings.throttle, enabled=False))
    settings = settings.with_changes(
        access=with_access_options(
            settings.access, args.admin_token, args.allowed_host, args.insecure_admin
        )
    )
    refusal = startup_refusal(args.host, settings.access)
    if refusal is not None:
        print(f"pisano-mock: {refusal}", file=sys.stderr)
        return 2
    try:
        replay = Replayer(args.replay) if args.replay else None
        app = create_app(settings, replay)  # here, so that e.g. Redis unreachable is one line too
    except (ConfigError, RecordingError) as error:
        print(f"pisano-mock: {error}", file=sys.stderr)
        return 2
    try:
        listener = listen(args.host, args.port)
    except OSError as error:
        print(f"pisano-mock: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    serve_links_at(app, base_url(listener))
    token, campaign = sample_credentials(settings)
    if not args.quiet:
        access_log.configure(sys.stderr, args.log_format)
    hold_stop_signals()  # a stop asked for from now on is graceful
    print(f"pisano-mock serving {base_url(listener)} token={token} campaign={campaign}", flush=True)
    if replay is not None:  # a second line: the first is SPEC 2.1's, which scripts read
        print(replay_line(replay), flush=True)
    serve(app, listener, args.workers)
    return 0


def add_proxy_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    proxy = commands.add_parser(
        "proxy",
        help="forward to a real Pisano and compare each answer with the emulator's (drift)",
        description="Forward every request of the emulated API unchanged to UPSTREAM and answer "
        "with its answer unchanged, while a shadow emulator (configured by --config, like "
        "serve) answers the same request on the side; each pair is compared, served at "
        "/__mock/drift and recorded with --record. The first line on standard output is "
        "'pisano-mock proxy http://HOST:PORT -> UPSTREAM'.",
    )
    proxy.add_argument("--upstream", required=True, metavar="URL", help="the Pisano to forward to")
    proxy.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (8080)")
    proxy.add_argument(
        "--config",
        metavar="FILE",
        help="the shadow emulator's TOML config, as serve's (e.g. your real token and "
        "campaign ids)",
    )
    proxy.add_argument(
        "--record",
        metavar="DIR",
        help="append each pair to DIR/pairs.jsonl (tokens masked), for 'pisano-mock drift "
        "report DIR' and 'serve --replay DIR'",
    )
    proxy.add_argument(
        "--admin-token",
        metavar="T",
        help="require this admin token on /__mock/ (default: $PISANO_MOCK_ADMIN_TOKEN)",
    )
    proxy.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="accept this Host header on /__mock/ besides localhost and loopback (repeatable)",
    )
    proxy.add_argument(
        "--upstream-timeout",
        type=float,
        default=UPSTREAM_SECONDS,
        metavar="S",
        help=f"seconds for the whole exchange upstream (connecting, sending, the whole answer), "
        f"past which the client gets a 502 "
        f"(default {UPSTREAM_SECONDS:g})",
    )
    proxy.add_argument(
        "--quiet",
        action="store_true",
        help="no line per pair on standard error (what each side answered, same or what differs)",
    )
    proxy.set_defaults(handler=proxy_command)


def proxy_command(args: argparse.Namespace) -> int:
    try:
        check_port(args.port)
        if not 0 < args.upstream_timeout <= MAX_UPSTREAM_SECONDS:
            raise ConfigError(f"--upstream-timeout: expected 0 to {MAX_UPSTREAM_SECONDS} s")
        upstream = Upstream(args.upstream, args.upstream_timeout)
        settings = load_settings(args.config, storage="memory://")
        settings = settings.with_changes(
            access=with_access_options(settings.access, args.admin_token, args.allowed_host, False)
        )
        refusal = startup_refusal(args.host, settings.access)
        if refusal is not None:
            raise ConfigError(refusal)
        recorder = Recorder(args.record) if args.record else None
        shadow = create_app(settings)
    except (ConfigError, ValueError) as error:
        print(f"pisano-mock: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"pisano-mock: --record {args.record}: {error.strerror or error}", file=sys.stderr)
        return 2
    bounds = settings.bounds
    pairs = PairLog(bounds.journal_max_entries, bounds.journal_max_bytes, recorder)
    try:
        listener = listen(args.host, args.port)
    except OSError as error:
        print(f"pisano-mock: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        handler = logging.StreamHandler(sys.stderr)
        PAIR_LOG.addHandler(handler)
        PAIR_LOG.setLevel(logging.INFO)
    hold_stop_signals()
    print(f"pisano-mock proxy {base_url(listener)} -> {upstream.url}", flush=True)
    serve(Proxy(upstream, shadow, pairs), listener, 1)
    return 0


def add_drift_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    drift = commands.add_parser(
        "drift", help="drift recordings of 'pisano-mock proxy --record DIR'"
    )
    drift_commands = drift.add_subparsers(dest="drift_command", required=True, metavar="COMMAND")
    report = drift_commands.add_parser(
        "report",
        help="summarise a recording: which rules differ, how often, the first examples",
        description="Read DIR/pairs.jsonl and print which of the emulator's rules answered "
        "differently from upstream, how often, and the first examples, each with the emulator's "
        "reason. Pairs the upstream gave no answer to (the proxy's own 502) are counted apart, not "
        "compared. Exit 0 when every compared pair is the same, 1 when any differs, 2 when DIR is "
        "not a readable recording.",
    )
    report.add_argument("dir", metavar="DIR", help="the recording's directory")
    report.add_argument(
        "--json", action="store_true", help="print the summary as /__mock/drift answers it"
    )
    report.set_defaults(handler=drift_report_command)


def drift_report_command(args: argparse.Namespace) -> int:
    try:
        records = read_pairs(args.dir)
    except RecordingError as error:
        print(f"pisano-mock: {error}", file=sys.stderr)
        return 2
    summary = summarise(map(pair_of_record, records))
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print("\n".join(report_lines(summary)))
    return 1 if any_drift(summary) else 0  # pairs with no upstream answer are not drift


def add_csv_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    csv_parser = commands.add_parser(
        "csv",
        help="CSV files of recipients (SPEC 1.8)",
        description="CSV files of recipients, as an upload to /__mock/campaigns/<id>/csv or a "
        "workflow reads them.",
    )
    csv_commands = csv_parser.add_subparsers(dest="csv_command", required=True, metavar="COMMAND")
    check = csv_commands.add_parser(
        "check",
        help="check a CSV file as the emulator would read it",
        description="Read FILE as an upload would be read: UTF-8 (a BOM allowed; Windows-1254 "
        "with a warning when the bytes are not UTF-8), delimiter ',' ';' or tab detected, a "
        "header row; columns email, phone_number, name, external_id are identity, every other "
        "column a custom attribute. Exit 0 with a summary; 1 with one line per problem "
        "('13037 Malformatted CSV: line 3: ...', '13038 ...: rows 4, 9'); 2 when FILE cannot "
        "be read. Warnings go to standard error.",
    )
    check.add_argument("file", metavar="FILE", help="the CSV file")
    check.add_argument(
        "--channel",
        choices=tuple(CHANNELS),
        default="email",
        help="whose identity key each row needs: email (the email column) or sms "
        "(phone_number); default email",
    )
    check.add_argument(
        "--json", action="store_true", help="print the summary or the problems as one JSON object"
    )
    check.set_defaults(handler=csv_check_command)


def csv_check_command(args: argparse.Namespace) -> int:
    try:
        with open(args.file, "rb") as stream:
            stream.read(1)
        summary = check_csv(file_source(args.file), args.channel)
    except OSError as error:
        print(f"pisano-mock: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return 2
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        print("\n".join(summary_lines(summary)))
    return 1 if summary.problems else 0


def summary_lines(summary: Summary) -> list[str]:
    """The problems, one line each; without any, what the file holds."""
    if summary.problems:
        return [problem.text() for problem in summary.problems]
    kept = ", ".join(summary.custom_attributes) or "(none)"
    return [
        f"ok: {summary.rows} rows, {summary.recipients} recipients ({summary.channel})",
        f"encoding: {ENCODING_NAMES[summary.encoding]}",
        f"delimiter: {DELIMITER_NAMES[summary.delimiter]}",
        f"custom attributes: {kept}",
    ]


def check_port(port: int) -> None:
    # The socket layer would take 99999 as 99999 % 65536 and answer -1 with a traceback.
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port: {port} is not a port; expected 0 to 65535")


def sample_credentials(settings: Settings) -> tuple[str, str]:
    """An active token and a campaign of its account with a flow: what to try first."""
    fixture = settings.fixture
    for token, data in fixture.get("tokens", {}).items():
        account = fixture.get("accounts", {}).get(data["account"], {})
        if not data.get("active", True) or account.get("locked"):
            continue
        for campaign_id, campaign in fixture.get("campaigns", {}).items():
            if campaign["account"] == data["account"] and campaign.get("flow", True):
                return token, campaign_id
    return "-", "-"


def package_version() -> str:
    try:
        return version("pisano-mock")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(plugins=argv[:1] not in (["serve"], ["proxy"])).parse_args(argv)
    code = 0
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # here, not at exit: a reader gone is then caught below
    except BrokenPipeError:  # `pisano-mock csv check f.csv | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return code


if __name__ == "__main__":
    sys.exit(main())
