"""ARCHITECTURE.md's import rules, enforced: mockserver never imports contracts."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_mockserver_never_imports_contracts():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "contracts"
        )
        for path in (ROOT / "mockserver").rglob("*.py")
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_contracts_reach_the_emulator_only_over_http():
    # The pytest plugin may start an emulator in-process; everything else speaks HTTP.
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.split(".")[0] == "mockserver")
        for path in (ROOT / "contracts").glob("*.py")
        if path.name != "pytest_plugin.py"
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_the_check_itself_sees_imports(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import contracts.runner\nfrom contracts import checks\n")
    assert imported_modules(sample) == {"contracts.runner", "contracts"}
