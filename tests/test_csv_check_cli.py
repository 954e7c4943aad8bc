"""`pisano-mock csv check` as a user runs it: exact lines, exit statuses, --json, --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mockserver.cli import main

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csv"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mockserver.cli", "csv", "check", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_a_good_file_exits_0_with_a_summary() -> None:
    result = run(str(FIXTURES / "customers.csv"))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "ok: 3 rows, 3 recipients (email)\n"
        "encoding: utf-8\n"
        "delimiter: comma\n"
        "custom attributes: Segment, Location\n"
    )


def test_turkish_excel_is_read_with_a_warning_on_stderr() -> None:
    result = run(str(FIXTURES / "turkish-excel.csv"))
    assert result.returncode == 0
    assert result.stdout.splitlines()[1:3] == ["encoding: windows-1254", "delimiter: semicolon"]
    assert result.stderr == (
        "warning: the file is not UTF-8: read as Windows-1254 (a Turkish Excel export)\n"
    )


def test_sms_channel_needs_phone_numbers() -> None:
    assert run(str(FIXTURES / "phones.tsv"), "--channel", "sms").returncode == 0
    result = run(str(FIXTURES / "phones.tsv"))  # email: no email column
    assert result.returncode == 1
    assert result.stdout == (
        "13038 Required customer identitiy keys not present in params!: rows 2, 3\n"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "13037 Malformatted CSV: line 1: the file is empty\n"),
        (
            b'email,name\na@example.com,A\nb@example.com,"B\n',
            "13037 Malformatted CSV: line 3: a quoted field is never closed (unterminated quote)\n",
        ),
        (
            b"email,name\na@example.com,A\n,B\nc@example.com\n\nbad,C\n",
            "13038 Required customer identitiy keys not present in params!: rows 3\n"
            '13028 Invalid parameters: line 6: email "bad" is not an email address\n',
        ),
    ],
)
def test_problems_one_line_each_exit_1(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "file.csv"
    path.write_bytes(content)
    result = run(str(path))
    assert (result.returncode, result.stdout) == (1, expected)


def test_json_carries_the_same(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "file.csv"
    path.write_bytes(b"email;tier\na@example.com;gold\n;silver\n")
    assert main(["csv", "check", str(path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "ok": False,
        "channel": "email",
        "rows": 2,
        "recipients": 1,
        "encoding": "utf-8",
        "delimiter": "semicolon",
        "custom_attributes": ["tier"],
        "warnings": [],
        "problems": [
            {
                "code": 13038,
                "message": "Required customer identitiy keys not present in params!",
                "reason": "rows 3",
            }
        ],
    }


@pytest.mark.parametrize("target", ["missing.csv", "."])
def test_a_file_that_cannot_be_read_exits_2(tmp_path: Path, target: str) -> None:
    result = run(str(tmp_path / target))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"pisano-mock: cannot read {tmp_path / target}: ")


def test_help_is_complete() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "csv", "check", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for word in ("FILE", "--channel", "{email,sms}", "--json", "13037", "Windows-1254"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "incomplete.csv",
            "13038 Required customer identitiy keys not present in params!: rows 3, 5\n"
            '13028 Invalid parameters: line 4: email "not-an-address" is not an email address\n',
        ),
        (
            "broken-quote.csv",
            "13037 Malformatted CSV: line 3: a quoted field is never closed (unterminated quote)\n",
        ),
    ],
)
def test_the_readme_examples(name: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["csv", "check", str(FIXTURES / name)]) == 1
    assert capsys.readouterr().out == expected


def test_a_reader_that_leaves_early_is_no_error():
    # `csv check f.csv | head -2` printed a BrokenPipeError traceback (attack on issue 11): here
    # the reader is gone before anything is written.
    read, write = os.pipe()
    os.close(read)
    command = [
        sys.executable,
        "-m",
        "mockserver.cli",
        "csv",
        "check",
        str(FIXTURES / "customers.csv"),
    ]
    done = subprocess.run(command, stdout=write, stderr=subprocess.PIPE, text=True, timeout=60)
    os.close(write)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert done.returncode == 0  # the file is good: what was checked stands
