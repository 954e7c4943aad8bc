"""The README's examples for each channel and trigger run as written (issue 11): every `curl` and
`pisano-mock` line of their `sh` blocks, against a fresh `pisano-mock serve`, answers what the
`# ...` lines under it say (`…` or `...` stands for what varies: tokens, times)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTIONS = (
    "Sending a survey by SMS",
    "Generating a survey link",
    "CSV uploads and `pisano-mock csv check`",
    "Scheduled workflows",
    "What your customer receives",
    "The inspector page",
)
START_LINE = re.compile(r"pisano-mock serving (http://127\.0\.0\.1:(\d+)) ")
ELISION = re.compile(r"…|\.\.\.")


@dataclass
class Example:
    command: str
    expected: list[str] = field(default_factory=list)  # what the `# ` lines under it say


def section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {name}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def examples(block: str) -> Iterator[Example]:
    """Commands (a quoted argument or a trailing backslash carries one over lines) and the
    expected lines under each; an indented `#   ` line continues the line above it."""
    current: Example | None = None
    pending = ""
    for line in block.splitlines():
        if pending:
            pending += "\n" + line
        elif line.startswith("# ") and current is not None:
            said = line[2:]
            if said.startswith("  ") and current.expected:
                current.expected[-1] += said.strip()
            else:
                current.expected.append(said)
            continue
        elif line.strip():
            pending = line
        if pending and complete(pending):
            if current is not None:
                yield current
            current, pending = Example(pending), ""
    if current is not None:
        yield current


def complete(command: str) -> bool:
    if command.endswith("\\"):
        return False
    try:
        shlex.split(command, comments=True)
    except ValueError:  # a quote still open
        return False
    return True


@contextmanager
def served(*flags: str) -> Iterator[str]:
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", "--quiet", *flags]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            match = START_LINE.match(process.stdout.readline())
            assert match, "serve printed no start line"
            yield match.group(2)
        finally:
            process.terminate()
            process.wait(timeout=15)


def run(command: str, port: str) -> str:
    shell = command.replace("localhost:8080", f"127.0.0.1:{port}")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        shell,
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": path},
    )
    return done.stdout.replace(f"127.0.0.1:{port}", "127.0.0.1:8080")  # links say where it serves


def holds(expected: list[str], output: str) -> list[str]:
    """The expected lines not found, in order, among the output's lines."""
    lines = [line.rstrip("\r") for line in output.splitlines()]
    missing = []
    at = 0
    for said in expected:
        said = re.sub(r"^200 (?=\{)", "", said)  # "200 {...}": the status said before the body
        if ELISION.fullmatch(said.strip()):
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in ELISION.split(said)) + r"\Z")
        found = next((i for i in range(at, len(lines)) if pattern.match(lines[i])), None)
        if found is None:
            missing.append(said)
        else:
            at = found + 1
    return missing


@pytest.fixture
def leaves_no_file() -> Iterator[None]:
    """The examples run in the checkout (they name its fixtures) and some write a file there, as
    a reader's would (`curl ... -o message.eml`): removed after, so a test run leaves none."""
    before = set(ROOT.iterdir())
    yield
    for path in set(ROOT.iterdir()) - before:
        if path.is_file():
            path.unlink()


@pytest.mark.parametrize("name", SECTIONS)
@pytest.mark.usefixtures("leaves_no_file")
def test_the_readme_examples_of_each_channel_and_trigger_answer_as_written(name):
    """One emulator per section (its blocks follow on: ids go on from one to the next), started
    as the section's own `pisano-mock serve` line says when it has one."""
    runs = [example for block in sh_blocks(section(name)) for example in examples(block)]
    flags: list[str] = []
    if runs and runs[0].command.startswith("pisano-mock serve"):
        flags = shlex.split(runs.pop(0).command)[2:]
    with served(*flags) as port:
        for example in runs:
            output = run(example.command, port)
            missing = holds(example.expected, output)
            assert not missing, f"{example.command}\nmissing: {missing}\ngot:\n{output}"
