"""Reading a request body, and turning it into params: JSON, or a Rack-style form (SPEC 1.1, rule 10
of 1.4; limits of SPEC 2.5).

The body is read from the WSGI stream itself, never trusting `Content-Length`: at most
`max_body_bytes` + 1 bytes are read, chunked or not, so a body over the bound is refused (413),
never cut, and what the journal is charged is what arrived (issue 8, items 3, 6, 7).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from typing import IO, Any

import orjson

from .catalogue import PisanoError
from .forms import FormError, parse_form
from .settings import Bounds

FORM_TYPE = "application/x-www-form-urlencoded"
# Keys the email endpoint expects as lists: a lone form value counts as a one-item list, as Rails
# code written `Array(params[:emails])` would take it.
FORM_LIST_KEYS = ("emails", "phone_numbers")
# orjson refuses to write nesting deeper than 254, and the journal's answer wraps a body 3 levels
# deep: past this, a kept body could break every later read of the journal (issue 8, item 5).
RETURNABLE_DEPTH = 240
READ_SIZE = 64 << 10
# After a body over the bound, up to this much more is read and thrown away, so that the client,
# still sending, can read the 413 instead of a connection reset.
DRAIN_BYTES = 1 << 20
_LOOKS_LIKE_FORM = re.compile(rb"\s*[A-Za-z_][\w.%\[\]-]*=")
JSON_AS_FORM_HINT = f"the body was sent as {FORM_TYPE} but looks like JSON: " + (
    "send Content-Type: application/json"
)
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
FORM_AS_JSON_HINT = f"the body looks like a form: send Content-Type: {FORM_TYPE}"
_DIGITS = re.compile(r"[0-9]+")
_SHOWN = 40  # characters of a header a reason quotes


class BodyUnread(PisanoError):
    """13000 for a body not read to its end: the connection is closed, what is left is unread."""


class BodyTooLarge(BodyUnread):
    """13000 answered with HTTP 413 (SPEC 2.5), and the connection closed: its body is unread."""

    http_status = 413


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int
    json_depth: int
    form_depth: int

    @classmethod
    def of(cls, bounds: Bounds) -> BodyLimits:
        return cls(
            bounds.max_body_bytes,
            min(bounds.max_json_depth, RETURNABLE_DEPTH),
            min(bounds.max_form_depth, RETURNABLE_DEPTH),
        )


@dataclass
class Params:
    data: dict[str, Any]
    from_form: bool = False
    warnings: list[str] = field(default_factory=list)
    hint: str = ""  # added to a refusal of the params' content: how the body was probably meant


# -- reading --------------------------------------------------------------------------------------
def read_body(environ: dict[str, Any], max_bytes: int) -> bytes:
    """The request body from the WSGI stream: BodyTooLarge over `max_bytes`, BodyUnread when its
    framing cannot be read or it is cut short.

    Only WSGI behaviour is relied on: `wsgi.input_terminated` (chunked, or a server that ends the
    stream itself) means read to the end, whatever `CONTENT_LENGTH` says (HTTP/1.1:
    Transfer-Encoding overrides Content-Length); otherwise read exactly `CONTENT_LENGTH`."""
    _check_transfer_encoding(environ.get("HTTP_TRANSFER_ENCODING"))
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        return _read_to_end(stream, max_bytes)
    declared = _declared_length(environ.get("CONTENT_LENGTH"))
    if declared is None:
        return b""
    if declared > max_bytes:
        if declared <= max_bytes + DRAIN_BYTES:  # an honest client, slightly over: let it finish
            _read_up_to(stream, declared, keep=False)
        raise BodyTooLarge(
            13000, f"body: Content-Length {declared} is over max_body_bytes ({max_bytes})"
        )
    data, broken = _read_up_to(stream, declared)
    if len(data) < declared:
        why = f" ({broken})" if broken else ""  # e.g. the client too slow (worker.ClientTooSlow)
        raise BodyUnread(
            13000,
            f"body: {len(data)} of the {declared} bytes Content-Length announced arrived{why}",
        )
    return data


def _read_to_end(stream: IO[bytes], max_bytes: int) -> bytes:
    data, broken = _read_up_to(stream, max_bytes + 1)
    if broken:  # a server ending the stream itself ends it cleanly: only chunking breaks
        raise BodyUnread(
            13000,
            f"body: the chunked body ended early or broken ({broken}): {len(data)} bytes read",
        )
    if len(data) > max_bytes:
        _read_up_to(stream, DRAIN_BYTES, keep=False)
        raise BodyTooLarge(13000, f"body: over max_body_bytes ({max_bytes}), chunked")
    return data


def _check_transfer_encoding(value: str | None) -> None:
    # Werkzeug de-chunks any list holding "chunked" and joins repeated headers with ",": only a
    # lone "chunked" is read as sent; no other coding is decoded here.
    if value is not None and value.strip(" \t").lower() != "chunked":
        raise BodyUnread(
            13000, f"body: Transfer-Encoding {value[:_SHOWN]!r} is not read here (only chunked)"
        )


def _declared_length(value: str | None) -> int | None:
    """CONTENT_LENGTH as a number, None when absent; BodyUnread unless it is digits only."""
    if not value:
        return None
    digits = value.strip(" \t")
    if not _DIGITS.fullmatch(digits):
        raise BodyUnread(13000, f"body: Content-Length {value[:_SHOWN]!r} is not a number of bytes")
    return int(digits)


def _read_up_to(stream: IO[bytes], limit: int, keep: bool = True) -> tuple[bytes, str]:
    """What arrived, up to `limit` bytes, and why the stream broke ("" when it did not)."""
    chunks: list[bytes] = []
    received = 0
    while received < limit:
        try:
            chunk = stream.read(min(READ_SIZE, limit - received))
        except Exception as error:  # the client went away mid-body, or bad chunking
            return b"".join(chunks), str(error) or type(error).__name__
        if not chunk:
            break
        received += len(chunk)
        if keep:
            chunks.append(chunk)
    return b"".join(chunks), ""


# -- parsing --------------------------------------------------------------------------------------
def parse_params(
    raw: bytes, content_type: str | None, form_bodies: bool, limits: BodyLimits
) -> Params:
    """The params of a request body, or PisanoError(13000) when it cannot be parsed."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == FORM_TYPE:
        if not form_bodies:
            raise PisanoError(13000, f"body: {FORM_TYPE} bodies are off (setting form_bodies)")
        return _form_params(raw, limits.form_depth)
    params = Params(data=_json_object(raw, limits.json_depth), warnings=_repeated_keys(raw))
    if media_type != "application/json" and not media_type.endswith("+json"):
        shown = content_type if content_type else "absent"
        params.warnings.append(f"Content-Type: {shown}; the body was read as JSON")
    return params


def _json_object(raw: bytes, max_depth: int) -> dict[str, Any]:
    # orjson differs from Ruby's parser in two corners (README, Fidelity): integers outside 64 bits
    # are read as floats, and lone surrogates are refused, so every accepted body can be answered.
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        hint = f"; {FORM_AS_JSON_HINT}" if _LOOKS_LIKE_FORM.match(raw) else ""
        raise PisanoError(13000, f"body: not JSON ({error}){hint}") from None
    if json_depth(raw) > max_depth:
        raise PisanoError(13000, f"body: JSON nested deeper than {max_depth} (max_json_depth)")
    if not isinstance(data, dict):
        raise PisanoError(13000, f"body: JSON {type(data).__name__} where an object is expected")
    return data


def _repeated_keys(raw: bytes) -> list[str]:
    """A warning per top-level key the JSON object gives more than once (the last value is kept,
    as Ruby's JSON keeps it). Looked for only when `"emails"` occurs twice in the text: the second,
    slower parse that sees every pair is paid only then (the count costs ~1.3 ms per MB)."""
    if raw.count(b'"emails"') < 2:
        return []
    objects: list[list[tuple[str, Any]]] = []
    try:  # values are not built: only keys matter
        json.loads(
            raw,
            object_pairs_hook=objects.append,
            parse_int=_skip,
            parse_float=_skip,
            parse_constant=_skip,
        )
    except ValueError:  # orjson read it already: a corner Python's parser sees otherwise
        return []
    counts = Counter(key for key, _ in objects[-1])  # the top-level object closes last
    return [
        f"{key}: given {count} times in the JSON object, only the last kept"
        for key, count in counts.items()
        if count > 1
    ]


def _skip(_: str) -> None:
    return None


def json_depth(raw: bytes) -> int:
    """How deep the JSON text `raw`, already parsed without error, nests: `{}` is 1, `1` is 0.

    Measured on the text, in C-speed passes rather than by walking the parsed objects (a walk costs
    ~10 ms on a 5000-recipient body): escapes and every character but brackets and quotes are
    dropped, then strings (so a bracket inside a string never counts); the maximum of the running
    bracket balance is the depth. Valid JSON makes this exact."""
    if b"\\" in raw:
        raw = _ESCAPE.sub(b"", raw)
    # Adjacent quotes are an empty string or two strings meeting once the rest is dropped.
    reduced = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in reduced:  # a string held brackets: remove it whole
        reduced = _STRING.sub(b"", reduced)
    return max(accumulate(map(_STEP.__getitem__, reduced)), default=0)


def _form_params(raw: bytes, max_depth: int) -> Params:
    try:
        data, lost = parse_form(raw.decode("utf-8"), max_depth)
    except (UnicodeDecodeError, FormError) as error:
        raise PisanoError(13000, f"body: form not parseable ({error})") from None
    for key in FORM_LIST_KEYS:
        if isinstance(data.get(key), str):
            data[key] = [data[key]]
    warnings = [
        f"{name}: {count} value(s) lost: Rack keeps only the last value of a key repeated "
        f"without [] (send {name}[]=...)"
        for name, count in lost.items()
    ]
    hint = JSON_AS_FORM_HINT if raw.lstrip()[:1] in (b"{", b"[") else ""
    return Params(data=data, from_form=True, warnings=warnings, hint=hint)


class HeldBody:
    """A body as the journal holds it: bytes, turned into what the journal shows only when read.

    Held parsed, a 5000-recipient body costs ~4x its JSON text in Python objects, and the bounds
    (charged in bytes) would hold ~4x what they say (issue 9). Not a dataclass: orjson would
    write one's fields instead of asking `default=` (see `as_json`)."""

    __slots__ = ("data", "parsed")

    def __init__(self, data: bytes, parsed: bool = False) -> None:
        self.data = data
        self.parsed = parsed  # `data` is the JSON of the params a view parsed, not what arrived

    def shown(self) -> Any:
        """What the journal answers for this body."""
        return orjson.loads(self.data) if self.parsed else journal_body(self.data)

    def as_json(self) -> Any:
        """For `orjson.dumps(..., default=)`: the JSON text itself when it is ours, no parse."""
        return orjson.Fragment(self.data) if self.parsed else self.shown()


def hold_body(raw: bytes, parsed: Any = None) -> HeldBody | None:
    """What the journal keeps of a body: the params a view parsed from it (`parsed`, shown as
    parsed: a form's params, not its text), else the bytes that arrived; None when there were
    none."""
    if parsed is not None:
        try:
            return HeldBody(orjson.dumps(parsed), parsed=True)
        except orjson.JSONEncodeError:  # not writable as JSON: then no read could answer it either
            pass
    return HeldBody(raw) if raw else None


def journal_body(raw: bytes) -> Any:
    """A body as the journal keeps it: parsed JSON, or the text when it is not JSON or nests too
    deep for the journal's answer to be written (SPEC 2.5: nothing held can break a read)."""
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")
    return raw.decode("utf-8", errors="replace") if json_depth(raw) > RETURNABLE_DEPTH else data
