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


def listed_modules(package: str) -> list[str]:
    """ARCHITECTURE.md's floors for `package`, top first: one `name.py` (or `name/`) per line."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = text.split("```\n", 2)[1]
    floors, current = [], None
    for line in block.splitlines():
        if not line.startswith(" "):
            current = line.rstrip("/")
        elif current == package:
            floors.append(line.split()[0].removesuffix(".py").rstrip("/"))
    return floors


def relative_imports(path: Path, package: Path) -> set[str]:
    """The first-level modules of `package` that a module imports (`from .x import` …); a
    subpackage's imports among its own modules (`api/`'s `from .common`) stay inside its floor."""
    depth = len(path.relative_to(package).parts)  # 1 for mockserver/x.py, 2 for mockserver/api/x.py
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == depth:
            if node.module:
                names.add(node.module.split(".")[0])
            else:
                names.update(alias.name for alias in node.names)
    return names


def test_mockserver_imports_point_down_the_floors_of_architecture_md():
    floors = listed_modules("mockserver")
    modules = {
        p.stem if p.parent.name == "mockserver" else p.parent.name
        for p in (ROOT / "mockserver").rglob("*.py")
    } - {"__init__"}
    assert set(floors) == modules, "ARCHITECTURE.md must list every module of mockserver"
    upward = {}
    for path in (ROOT / "mockserver").rglob("*.py"):
        floor = path.stem if path.parent.name == "mockserver" else path.parent.name
        if floor == "__init__":
            continue
        above = set(floors[: floors.index(floor)]) | {floor}
        wrong = relative_imports(path, ROOT / "mockserver") - above
        if wrong:
            upward[str(path.relative_to(ROOT))] = sorted(wrong)
    assert upward == {}
