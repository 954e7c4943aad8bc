"""Reports of a suite: text for people, JUnit XML for CI systems."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .checks import ABOUT_BY_NAME
from .client_suite import ALL_CHECK_NAMES, SuiteResult
from .server_suite import ServerOutcome, server_fix


def verdict(result: SuiteResult, check: str) -> str:
    """FAIL, skip (nothing to judge in any example: it did not run) or ok."""
    if check in result.failed_checks:
        return "FAIL"
    return "skip" if check in result.skipped_checks else "ok  "


def skip_reason(check: str) -> str:
    return f"nothing to judge: no example with {ABOUT_BY_NAME[check].needs}"


def _exit(status: int | None) -> str:
    return "none (killed at the timeout)" if status is None else str(status)


def text_report(result: SuiteResult, rerun_hint: str = "--seed {seed}") -> str:
    """What held, what did not run, and for each check that failed: the smallest example,
    expected vs arrived, how to fix it, and the journal excerpt. `rerun_hint` says how to repeat
    the run where it was started (a command's option, a pytest fixture's setting)."""
    played = len(result.played)
    lines = [
        f"pisano-mock contract client: {played} examples played on the {result.endpoint} "
        f"endpoint (seed {result.seed}); "
        f"median kit overhead {result.median_overhead:.3f} s per example"
    ]
    for check in ALL_CHECK_NAMES:
        mark = verdict(result, check)
        why = f"  ({skip_reason(check)})" if mark == "skip" else ""
        lines.append(f"  {mark}  {check}{why}")
    for check in ALL_CHECK_NAMES:
        smallest = result.smallest_failure(check)
        if smallest is None:
            continue
        failure = next(f for f in smallest.failures if f.check == check)
        lines += [
            "",
            f"✗ {check}",
            f"  example:  {smallest.example.describe()}",
            f"  expected: {failure.expected}",
            f"  arrived:  {failure.received}",
            f"  fix:      {ABOUT_BY_NAME[check].fix}",
            f"  client exit status: {_exit(smallest.observation.exit_status)}",
            "  journal:",
            smallest.observation.journal_excerpt(),
        ]
        if smallest.observation.stderr.strip():
            lines.append("  client stderr: " + smallest.observation.stderr.strip()[-500:])
    warnings = sorted({w for p in result.played for w in p.observation.warnings})
    lines += ["", *(f"warning: {w}" for w in warnings)] if warnings else []
    if result.budget_spent:
        lines.append(
            "note: the shrinking budget was spent; the smallest example found so far is shown"
        )
    if not result.passed:
        lines.append("rerun this run with " + rerun_hint.format(seed=result.seed))
    return "\n".join(lines)


def write_junit(result: SuiteResult, path: str | Path) -> None:
    """One <testcase> per check: failed with the smallest example when it did not hold, skipped
    when it had nothing to judge."""
    failures = result.failed_checks
    suite = ET.Element(
        "testsuite",
        name="pisano-mock contract client",
        tests=str(len(ALL_CHECK_NAMES)),
        failures=str(len(failures)),
        errors="0",
        skipped=str(len(result.skipped_checks)),
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="seed", value=str(result.seed))
    ET.SubElement(properties, "property", name="examples", value=str(len(result.played)))
    for check in ALL_CHECK_NAMES:
        case = ET.SubElement(suite, "testcase", classname="pisano_mock.contract.client", name=check)
        if check in result.skipped_checks:
            ET.SubElement(case, "skipped", message=skip_reason(check))
        smallest = result.smallest_failure(check)
        if smallest is not None:
            failure = next(f for f in smallest.failures if f.check == check)
            element = ET.SubElement(
                case,
                "failure",
                message=f"expected {failure.expected}; arrived {failure.received}; "
                f"fix: {ABOUT_BY_NAME[check].fix}",
            )
            element.text = (
                f"{smallest.example.describe()}\n{smallest.observation.journal_excerpt()}"
            )
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def server_lines(outcome: ServerOutcome) -> list[str]:
    if outcome.skipped is not None:
        return [f"  skip  {outcome.name} ({outcome.skipped})"]
    if outcome.failure is None:
        return [f"  ok    {outcome.name}"]
    return [
        f"  FAIL  {outcome.name}",
        f"        expected: {outcome.failure.expected}",
        f"        received: {outcome.failure.received}",
        f"        fix:      {server_fix(outcome.name)}",
    ]


def server_text_report(outcomes: list[ServerOutcome]) -> str:
    """A line per check (ok, FAIL with expected/received/fix, skip with why), then the count."""
    lines = [line for outcome in outcomes for line in server_lines(outcome)]
    return "\n".join([*lines, server_count(outcomes)])


def server_count(outcomes: list[ServerOutcome]) -> str:
    """The report's last line: how many checks held, and were skipped."""
    held = sum(o.failure is None and o.skipped is None for o in outcomes)
    skipped = sum(o.skipped is not None for o in outcomes)
    summary = f"pisano-mock contract server: {held} of {len(outcomes)} checks held"
    return summary + (f", {skipped} skipped" if skipped else "")


SERVER_CLASS = "pisano_mock.contract.server"


def write_server_junit(outcomes: list[ServerOutcome], path: str | Path) -> None:
    """One <testcase> per check of the server suite: failed, skipped (with why) or passed."""
    suite = ET.Element(
        "testsuite",
        name="pisano-mock contract server",
        tests=str(len(outcomes)),
        failures=str(sum(o.failure is not None for o in outcomes)),
        errors="0",
        skipped=str(sum(o.skipped is not None for o in outcomes)),
    )
    for outcome in outcomes:
        case = ET.SubElement(
            suite, "testcase", classname="pisano_mock.contract.server", name=outcome.name
        )
        if outcome.skipped is not None:
            ET.SubElement(case, "skipped", message=outcome.skipped)
        if outcome.failure is not None:
            element = ET.SubElement(case, "failure", message=f"expected {outcome.failure.expected}")
            element.text = f"received {outcome.failure.received}\nfix: {server_fix(outcome.name)}"
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
