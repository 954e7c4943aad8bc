"""SPEC 1.8's rules for CSV files, one row each (mockserver/csvfile.py)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.catalogue import PisanoError
from mockserver.csvfile import (
    MAX_FIELD_CHARS,
    MAX_LINE_CHARS,
    Source,
    check_csv,
    sharing_params,
)


def source(data: bytes) -> Source:
    return lambda: io.BytesIO(data)


def lines_of(data: bytes, channel: str = "email") -> list[str]:
    return [problem.text() for problem in check_csv(source(data), channel).problems]


M37 = "13037 Malformatted CSV: "
M38 = "13038 Required customer identitiy keys not present in params!: "

# (name, file, channel, the exact problem lines)
RULES = [
    ("good file", b"email,name\na@example.com,A\n", "email", []),
    ("empty", b"", "email", [M37 + "line 1: the file is empty"]),
    ("a BOM only", b"\xef\xbb\xbf", "email", [M37 + "line 1: the file is empty"]),
    ("blank lines only", b"\n\n \n", "email", [M37 + "line 1: the file is empty"]),
    ("header only", b"email,name\n", "email", [M37 + "line 1: a header and no rows"]),
    (
        "binary",
        b"email\na@example.com\n\x00\x01\x02\xff\n",
        "email",
        [M37 + "line 3: not text: neither UTF-8 nor Windows-1254"],
    ),
    (
        "no header (a recipient on line 1)",
        b"a@example.com,A\nb@example.com,B\n",
        "email",
        [
            M37 + 'line 1: no header: "a@example.com" is a recipient, not a column name; '
            "line 1 names the columns (email, phone_number, name, external_id, ...)"
        ],
    ),
    (
        "blank line 1",
        b"\nemail\na@example.com\n",
        "email",
        [M37 + "line 1: no header: line 1 is blank"],
    ),
    (
        "a column without a name",
        b"email,,x\na@example.com,1,2\n",
        "email",
        [M37 + "line 1: no header: column 2 has no name"],
    ),
    (
        "a column twice",
        b"email,Email\na@example.com,b@example.com\n",
        "email",
        [M37 + 'line 1: column "email" appears twice'],
    ),
    (
        "ragged: more fields than the header",
        b"email,name\na@example.com,A\nb@example.com,B,extra\n",
        "email",
        [M37 + "line 3: 3 fields, more than the header's 2 columns"],
    ),
    (
        "unterminated quote on the last line",
        b'email,name\na@example.com,A\nb@example.com,"B\n',
        "email",
        [M37 + "line 3: a quoted field is never closed (unterminated quote)"],
    ),
    (
        "unterminated quote, no final newline",
        b'email,name\na@example.com,"A',
        "email",
        [M37 + "line 2: a quoted field is never closed (unterminated quote)"],
    ),
    (
        "text after a closing quote",
        b'email,name\na@example.com,"A"x\n',
        "email",
        [M37 + "line 2: not CSV: ',' expected after '\"'"],
    ),
    (
        "identity key missing or empty",
        b"email,name\na@example.com,A\n,B\n  ,C\nd@example.com,D\n",
        "email",
        [M38 + "rows 3, 4"],
    ),
    (
        "sms: phone_number missing",
        b"phone_number,email\n5321234567,a@example.com\n,b@example.com\n",
        "sms",
        [M38 + "rows 3"],
    ),
    (
        "the column absent altogether",
        b"name\nA\nB\n",
        "email",
        [M38 + "rows 2, 3"],
    ),
    (
        "an invalid address",
        b"email\na@example.com\nnot-an-address\n",
        "email",
        ['13028 Invalid parameters: line 3: email "not-an-address" is not an email address'],
    ),
    (
        "sms: 30 digits and letters",
        b"phone_number\n" + b"1" * 30 + b"\n53212abc67\n",
        "sms",
        [
            f'13028 Invalid parameters: line 2: phone_number "{"1" * 30}" is not a phone number',
            '13028 Invalid parameters: line 3: phone_number "53212abc67" is not a phone number',
        ],
    ),
    (
        "a duplicate, compared case-insensitively",
        b"email\nA@example.com\nb@example.com\na@EXAMPLE.com\n",
        "email",
        ['13017 Duplicate value: line 4: email "a@EXAMPLE.com" repeats "A@example.com" of line 2'],
    ),
    (
        "sms: a duplicate after normalisation",
        b"phone_number\n+90 532 123 45 67\n905321234567\n",
        "sms",
        [
            '13017 Duplicate value: line 3: phone_number "905321234567" repeats '
            '"+90 532 123 45 67" of line 2'
        ],
    ),
    (
        "a short row is padded, a blank row skipped",
        b"email,name,Segment\na@example.com\n\n,,\nb@example.com,B,gold\n",
        "email",
        [],
    ),
]


@pytest.mark.parametrize(("name", "data", "channel", "expected"), RULES, ids=[r[0] for r in RULES])
def test_rules(name: str, data: bytes, channel: str, expected: list[str]) -> None:
    assert lines_of(data, channel) == expected


def test_more_than_20_missing_rows_are_counted_not_listed() -> None:
    data = b"email,name\n" + b",x\n" * 25
    rows = ", ".join(str(line) for line in range(2, 22))
    assert lines_of(data) == [M38 + f"rows {rows} and 5 more"]


def test_problems_in_the_api_order() -> None:
    data = b"email,name\nbad,B\n\na@example.com,A\nA@example.com,A\n,C\n"
    codes = [problem.code for problem in check_csv(source(data)).problems]
    assert codes == [13038, 13028, 13017]


def test_ten_megabytes_in_one_cell_is_13037_naming_the_line() -> None:
    data = b"email,note\na@example.com,x\nb@example.com," + b"y" * 10_000_000 + b"\n"
    assert lines_of(data) == [M37 + f"line 3: longer than {MAX_LINE_CHARS} characters"]


def test_a_quoted_field_over_the_bound_names_its_first_line() -> None:
    cell = ("y" * 1000 + "\n") * (MAX_FIELD_CHARS // 1000 + 5)
    data = b'email,note\na@example.com,"' + cell.encode() + b'"\n'
    assert lines_of(data) == [
        M37 + f"line 2: a field longer than {MAX_FIELD_CHARS} characters (or a quote never closed)"
    ]


def test_turkish_excel_windows_1254_with_semicolons() -> None:
    text = "E-posta;Email;Ad;Şehir\r\nx;ayşe@example.com;Ayşe;İstanbul\r\n"
    summary = check_csv(source(text.encode("cp1254")))
    assert summary.problems == []
    assert (summary.encoding, summary.delimiter) == ("cp1254", ";")
    assert summary.warnings == [
        "the file is not UTF-8: read as Windows-1254 (a Turkish Excel export)"
    ]
    assert summary.custom_attributes == ["E-posta", "Ad", "Şehir"]


@pytest.mark.parametrize(
    ("data", "delimiter"),
    [
        (b"email,name\na@example.com,A\n", ","),
        (b"email;name\na@example.com;A\n", ";"),
        (b"email\tname\na@example.com\tA\n", "\t"),
        (b"email\na@example.com\n", ","),
    ],
)
def test_delimiter_detected(data: bytes, delimiter: str) -> None:
    assert check_csv(source(data)).delimiter == delimiter


def test_utf8_with_bom_and_identity_names_folded_and_trimmed() -> None:
    data = "\ufeff EMAIL ,Name,Phone_Number,tier\n a@example.com ,Ayşe,,gold\n".encode()
    params, warnings = sharing_params(source(data), "email")
    assert warnings == []
    assert params == {
        "emails": ["a@example.com"],
        "custom_attributes": {"a@example.com": {"name": "Ayşe", "tier": "gold"}},
        "transactional_data": {},
    }


def test_sharing_params_sms_keyed_by_the_number_as_written() -> None:
    data = b"phone_number;name\n+90 532 123 45 67;A\n"
    params, _ = sharing_params(source(data), "sms")
    assert params["phone_numbers"] == ["+90 532 123 45 67"]
    assert params["custom_attributes"] == {"+90 532 123 45 67": {"name": "A"}}


def test_sharing_params_raise_the_first_problem() -> None:
    with pytest.raises(PisanoError) as raised:
        sharing_params(source(b"email\n\nbad\n"), "email")
    assert (raised.value.code, raised.value.reason) == (
        13028,
        'line 3: email "bad" is not an email address',
    )


values = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)


@given(
    delimiter=st.sampled_from([",", ";", "\t"]),
    rows=st.lists(st.tuples(values, values), min_size=1, max_size=30),
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
)
def test_what_csv_writer_writes_reads_back(
    delimiter: str, rows: list[tuple[str, str]], encoding: str
) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["email", "Segment", "Note"])
    emails = [f"customer{number}@example.com" for number in range(len(rows))]
    for email, (segment, note) in zip(emails, rows, strict=True):
        writer.writerow([email, segment, note])
    data = out.getvalue().encode(encoding)
    params, warnings = sharing_params(source(data), "email")
    assert warnings == []
    assert params["emails"] == emails
    assert params["custom_attributes"] == {
        email: {"Segment": segment, "Note": note}
        for email, (segment, note) in zip(emails, rows, strict=True)
    }


def test_a_short_row_has_the_missing_columns_empty() -> None:
    params, _ = sharing_params(source(b"email;name;Segment\na@example.com\n"), "email")
    assert params["custom_attributes"] == {"a@example.com": {"Segment": ""}}
