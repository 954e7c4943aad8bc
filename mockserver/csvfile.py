"""CSV files of recipients (SPEC 1.8): bytes in, rows out, as a stream.

A file is read in passes, each a stream from its start (`Source` opens it again): one to tell
UTF-8 from Windows-1254 (a Turkish Excel export), one to parse and check the rows, and a third
only when the first check of duplicates could not decide. Memory holds one line at a time, the
problems found (bounded) and a fixed bit table for duplicates, never the file.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

from .catalogue import CATALOGUE, PisanoError
from .rules import is_phone_number, normalised_number, shown
from .validation import is_email

Source = Callable[[], BinaryIO]  # opens the file from its start, once per pass


def file_source(path: str) -> Source:
    """A file on disk as a Source: each pass opens (and closes) it again."""

    def open_file() -> BinaryIO:
        return open(path, "rb")  # the pass's `with` closes it

    return open_file


IDENTITY_KEYS = ("email", "phone_number", "name", "external_id")
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
ENCODING_NAMES = {"utf-8-sig": "utf-8", "cp1254": "windows-1254"}  # codec → what a user knows
# Bounds that keep a hostile file cheap: 10 MB in one cell is a 13037 naming its line.
MAX_LINE_CHARS = 1 << 20
MAX_FIELD_CHARS = 1 << 17  # the csv module's own default, set explicitly (it is process-wide)
MAX_LISTED = 20  # lines a 13038 lists (SPEC 1.8); as many lines for each other kind of problem
CHUNK = 1 << 16
SNIFF_LINES = 20
SNIFF_CHARS = 1 << 16
DUPLICATE_BITS = 1 << 26  # 8 MiB: at 1M recipients ~1.5% of keys need an exact look


class Channel(NamedTuple):
    """What a channel's rows need: the identity column, the API's field, the address rule."""

    key: str
    field: str
    normalise: Callable[[str], str | None]  # the address compared for duplicates, None: invalid
    kind: str


def email_key(value: str) -> str | None:
    return value.lower() if is_email(value) else None


def phone_key(value: str) -> str | None:
    return normalised_number(value) if is_phone_number(value) else None


CHANNELS = {
    "email": Channel("email", "emails", email_key, "an email address"),
    "sms": Channel("phone_number", "phone_numbers", phone_key, "a phone number"),
}


@dataclass(frozen=True)
class CsvRow:
    """One recipient: its line (header = 1), its identity columns, its custom attributes."""

    line: int
    identity: dict[str, str]
    attributes: dict[str, str]


@dataclass(frozen=True)
class Problem:
    """A catalogue entry and the reason naming the line(s)."""

    code: int
    reason: str

    def text(self) -> str:
        return f"{self.code} {CATALOGUE[self.code].message}: {self.reason}"

    def error(self) -> PisanoError:
        return PisanoError(self.code, self.reason)


class Malformed(Exception):
    """13037: the file cannot be read as a CSV from `line` on."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(line, what)
        self.problem = Problem(13037, f"line {line}: {what}")


@dataclass
class Summary:
    """What `csv check` reports: counts, how the file was read, and every problem (bounded)."""

    channel: str
    encoding: str = "utf-8"
    delimiter: str = ","
    rows: int = 0
    recipients: int = 0
    columns: list[str] = field(default_factory=list)
    custom_attributes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": not self.problems,
            "channel": self.channel,
            "rows": self.rows,
            "recipients": self.recipients,
            "encoding": ENCODING_NAMES[self.encoding],
            "delimiter": DELIMITER_NAMES[self.delimiter],
            "custom_attributes": self.custom_attributes,
            "warnings": self.warnings,
            "problems": [
                {"code": p.code, "message": CATALOGUE[p.code].message, "reason": p.reason}
                for p in self.problems
            ],
        }


# --- decoding -------------------------------------------------------------------------------


def detect_encoding(source: Source) -> str:
    """`utf-8-sig` when every byte decodes as UTF-8, else `cp1254`; 13037 when neither does."""
    if _decodes(source, "utf-8-sig"):
        return "utf-8-sig"
    if _decodes(source, "cp1254"):
        return "cp1254"
    raise Malformed(_undecodable_line(source), "not text: neither UTF-8 nor Windows-1254")


def _decodes(source: Source, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    with source() as stream:
        try:
            while chunk := stream.read(CHUNK):
                if b"\0" in chunk:  # no text file holds NUL: binary, whatever decodes it
                    return False
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _undecodable_line(source: Source) -> int:
    """The first line holding a byte no encoding we read can take (or a NUL)."""
    with source() as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                if b"\0" in raw:
                    return number
                raw.decode("cp1254")
            except UnicodeDecodeError:
                return number
    return 1


# --- lines and rows -------------------------------------------------------------------------


class Lines:
    """The text's physical lines, counted, each at most MAX_LINE_CHARS (else 13037)."""

    def __init__(self, text: io.TextIOBase) -> None:
        self.text = text
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        while line := self.text.readline(MAX_LINE_CHARS + 1):
            self.count += 1
            if len(line) > MAX_LINE_CHARS:
                raise Malformed(self.count, f"longer than {MAX_LINE_CHARS} characters")
            yield line


def open_text(source: Source, encoding: str) -> io.TextIOWrapper:
    # newline="": the csv module sees the line ends as written (quoted fields keep theirs).
    return io.TextIOWrapper(source(), encoding=encoding, newline="")


def detect_delimiter(source: Source, encoding: str) -> str:
    """The one of `,` `;` tab that csv.Sniffer finds in the first lines; else the most counted."""
    with open_text(source, encoding) as text:
        sample = "".join(line for _, line in zip(range(SNIFF_LINES), Lines(text), strict=False))
    sample = sample[:SNIFF_CHARS]  # the Sniffer's regular expressions: keep their input small
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:  # one column, or too few lines to tell: count them on the header
        header = sample.splitlines()[0] if sample else ""
        return max(DELIMITERS, key=header.count)


def parsed_rows(lines: Lines, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) per row; blank rows skipped; csv's errors as 13037 naming the line."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        start = lines.count + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise Malformed(start, _csv_error_text(str(error))) from None
        if any(value.strip() for value in fields):
            yield start, fields


def _csv_error_text(message: str) -> str:
    if "unexpected end of data" in message:
        return "a quoted field is never closed (unterminated quote)"
    if "field larger than field limit" in message:
        return f"a field longer than {MAX_FIELD_CHARS} characters (or a quote never closed)"
    return f"not CSV: {message}"


def read_header(fields: list[str]) -> list[str]:
    """Column names: identity names folded to lower case and trimmed; 13037 when it is no header."""
    names = [_column_name(value) for value in fields]
    for position, name in enumerate(names, start=1):
        if not name:
            raise Malformed(1, f"no header: column {position} has no name")
        if is_email(name) or phone_key(name):
            raise Malformed(
                1,
                f"no header: {shown(name)} is a recipient, not a column name; line 1 names "
                "the columns (email, phone_number, name, external_id, ...)",
            )
        if names.index(name) != position - 1:
            raise Malformed(1, f"column {shown(name)} appears twice")
    return names


def _column_name(value: str) -> str:
    name = value.strip()
    return name.lower() if name.lower() in IDENTITY_KEYS else name


def csv_rows(lines: Lines, delimiter: str) -> Iterator[CsvRow]:
    """The file's recipients as rows; 13037 for what makes it no CSV of recipients."""
    parsed = parsed_rows(lines, delimiter)
    first = next(parsed, None)
    if first is None:
        raise Malformed(1, "the file is empty")
    if first[0] != 1:
        raise Malformed(1, "no header: line 1 is blank")
    names = read_header(first[1])
    for line, fields in parsed:
        if len(fields) > len(names):
            raise Malformed(
                line, f"{len(fields)} fields, more than the header's {len(names)} columns"
            )
        yield _row(line, names, fields)


def _row(line: int, names: list[str], fields: list[str]) -> CsvRow:
    identity: dict[str, str] = {}
    attributes: dict[str, str] = {}
    padded = fields + [""] * (len(names) - len(fields))  # a short row: the rest are empty
    for name, value in zip(names, padded, strict=True):
        if name in IDENTITY_KEYS:
            identity[name] = value.strip()
        else:
            attributes[name] = value
    return CsvRow(line, identity, attributes)


# --- checking -------------------------------------------------------------------------------


class Findings:
    """Problems by kind, each listing at most MAX_LISTED lines and counting the rest."""

    def __init__(self) -> None:
        self.missing: list[int] = []
        self.missing_more = 0
        self.invalid: list[Problem] = []
        self.duplicates: list[Problem] = []
        self.more = {13028: 0, 13017: 0}

    def add_missing(self, line: int) -> None:
        if len(self.missing) < MAX_LISTED:
            self.missing.append(line)
        else:
            self.missing_more += 1

    def add(self, problem: Problem) -> None:
        listed = self.invalid if problem.code == 13028 else self.duplicates
        if len(listed) < MAX_LISTED:
            listed.append(problem)
        else:
            self.more[problem.code] += 1

    def problems(self) -> list[Problem]:
        """In the API's order: identity keys (13038), then addresses (13028), duplicates (13017)."""
        found = [self._missing()] if self.missing else []
        found += self._with_more(self.invalid, 13028) + self._with_more(self.duplicates, 13017)
        return found

    def _missing(self) -> Problem:
        rows = ", ".join(map(str, self.missing))
        more = f" and {self.missing_more} more" if self.missing_more else ""
        return Problem(13038, f"rows {rows}{more}")

    def _with_more(self, listed: list[Problem], code: int) -> list[Problem]:
        if not self.more[code]:
            return listed
        return [*listed, Problem(code, f"{self.more[code]} more lines like these")]


class DuplicateBits:
    """Duplicates in fixed memory: a key's bit seen twice makes it a candidate, looked at exactly
    on a later pass (what a set of every key would hold grows with the file)."""

    def __init__(self) -> None:
        self.seen = bytearray(DUPLICATE_BITS // 8)
        self.twice = bytearray(DUPLICATE_BITS // 8)
        self.candidates = 0

    def add(self, key: str) -> None:
        bit = hash(key) % DUPLICATE_BITS
        byte, mask = bit >> 3, 1 << (bit & 7)
        if self.seen[byte] & mask:
            self.twice[byte] |= mask
            self.candidates += 1
        self.seen[byte] |= mask

    def maybe_repeated(self, key: str) -> bool:
        bit = hash(key) % DUPLICATE_BITS
        return bool(self.twice[bit >> 3] & (1 << (bit & 7)))


def check_row(row: CsvRow, channel: Channel, findings: Findings) -> str | None:
    """The row's normalised address, or None after noting why it has none."""
    value = row.identity.get(channel.key, "")
    if not value:
        findings.add_missing(row.line)
        return None
    key = channel.normalise(value)
    if key is None:
        findings.add(
            Problem(13028, f"line {row.line}: {channel.key} {shown(value)} is not {channel.kind}")
        )
    return key


def check_csv(source: Source, channel_name: str = "email") -> Summary:
    """Every problem a file has for `channel_name` (13037 stops the reading), and its summary."""
    summary = Summary(channel_name)
    try:
        _check(source, CHANNELS[channel_name], summary)
    except Malformed as error:
        summary.problems = [error.problem]
    return summary


def _check(source: Source, channel: Channel, summary: Summary) -> None:
    summary.encoding = detect_encoding(source)
    if summary.encoding == "cp1254":
        summary.warnings.append(WINDOWS_1254_WARNING)
    summary.delimiter = detect_delimiter(source, summary.encoding)
    findings, bits = Findings(), DuplicateBits()
    with open_text(source, summary.encoding) as text:
        rows = csv_rows(Lines(text), summary.delimiter)
        for row in rows:
            summary.rows += 1
            key = check_row(row, channel, findings)
            if key is not None:
                bits.add(key)
                summary.recipients += 1
                _note_attributes(summary, row)
    if summary.rows == 0:
        raise Malformed(1, "a header and no rows")
    if bits.candidates:
        _find_duplicates(source, channel, summary, bits, findings)
    summary.problems = findings.problems()


def _note_attributes(summary: Summary, row: CsvRow) -> None:
    if not summary.custom_attributes and row.attributes:
        summary.custom_attributes = list(row.attributes)


def _find_duplicates(
    source: Source, channel: Channel, summary: Summary, bits: DuplicateBits, findings: Findings
) -> None:
    """The exact look at the candidates: the first line of each key, and each line repeating it."""
    first: dict[str, tuple[int, str]] = {}
    with open_text(source, summary.encoding) as text:
        for row in csv_rows(Lines(text), summary.delimiter):
            value = row.identity.get(channel.key, "")
            key = channel.normalise(value) if value else None
            if key is None or not bits.maybe_repeated(key):
                continue
            if key in first:
                line, earlier = first[key]
                findings.add(
                    Problem(
                        13017,
                        f"line {row.line}: {channel.key} {shown(value)} "
                        f"repeats {shown(earlier)} of line {line}",
                    )
                )
            else:
                first[key] = (row.line, value)


WINDOWS_1254_WARNING = "the file is not UTF-8: read as Windows-1254 (a Turkish Excel export)"


# --- reading for a sharing -----------------------------------------------------------------


def sharing_params(source: Source, channel_name: str) -> tuple[dict[str, object], list[str]]:
    """The API body a file's rows make (SPEC 1.8), and its warnings; the first problem as a
    PisanoError naming the line. Held in memory: an upload is bounded by max_body_bytes."""
    summary = check_csv(source, channel_name)
    if summary.problems:
        raise summary.problems[0].error()
    channel = CHANNELS[channel_name]
    recipients: list[str] = []
    attributes: dict[str, dict[str, str]] = {}
    with open_text(source, summary.encoding) as text:
        for row in csv_rows(Lines(text), summary.delimiter):
            address = row.identity[channel.key]
            recipients.append(address)
            attributes[address] = _customer(row, channel)
    params: dict[str, object] = {
        channel.field: recipients,
        "custom_attributes": attributes,
        "transactional_data": {},
    }
    return params, summary.warnings


def _customer(row: CsvRow, channel: Channel) -> dict[str, str]:
    """The row's other identity columns (non-empty) and its custom attributes."""
    others = {k: v for k, v in row.identity.items() if k != channel.key and v}
    return {**others, **row.attributes}
