"""Reports of a suite: text for people, JUnit XML for CI systems."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .client_suite import ALL_CHECK_NAMES, SuiteResult


def text_report(result: SuiteResult) -> str:
    """What held, and for each check that failed: the smallest example, expected vs arrived, and
    the journal excerpt."""
    played = len(result.played)
    lines = [
        f"pisano-mock contract client: {played} examples played (seed {result.seed}); "
        f"median kit overhead {result.median_overhead:.3f} s per example"
    ]
    for check in ALL_CHECK_NAMES:
        lines.append(f"  {'FAIL' if check in result.failed_checks else 'ok  '}  {check}")
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
            f"  client exit status: {smallest.observation.exit_status}",
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
        lines.append(f"rerun this run with --seed {result.seed}")
    return "\n".join(lines)


def write_junit(result: SuiteResult, path: str | Path) -> None:
    """One <testcase> per check, failed with the smallest example when it did not hold."""
    failures = result.failed_checks
    suite = ET.Element(
        "testsuite",
        name="pisano-mock contract client",
        tests=str(len(ALL_CHECK_NAMES)),
        failures=str(len(failures)),
        errors="0",
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="seed", value=str(result.seed))
    ET.SubElement(properties, "property", name="examples", value=str(len(result.played)))
    for check in ALL_CHECK_NAMES:
        case = ET.SubElement(suite, "testcase", classname="pisano_mock.contract.client", name=check)
        smallest = result.smallest_failure(check)
        if smallest is not None:
            failure = next(f for f in smallest.failures if f.check == check)
            element = ET.SubElement(
                case, "failure", message=f"expected {failure.expected}; arrived {failure.received}"
            )
            element.text = (
                f"{smallest.example.describe()}\n{smallest.observation.journal_excerpt()}"
            )
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
