"""A drift recording (SPEC 2.8): `DIR/pairs.jsonl`, one JSON object per pair, tokens masked.

Written by the proxy (appended and flushed as each pair completes: a crash loses at most the pair
in flight), read by `pisano-mock drift report` and `serve --replay`. A body is `body` when its
bytes are UTF-8, else `body_base64`, so replay gives back the exact bytes either way.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote_plus

import orjson

from .auth import AUTH_FORM_PATTERNS, KNOWN_SCHEMES, MASK, mask_token, token_from_header

PAIRS_FILE = "pairs.jsonl"
ALL_FORMS = tuple(AUTH_FORM_PATTERNS)  # a recording masks a token in any form Pisano may take
# Headers whose whole value is a secret, besides those the `mask_headers` setting names.
SECRET_HEADERS = frozenset({"cookie", "x-api-key", "x-pisano-mock-admin-token"})
CREDENTIALS_HEADERS = frozenset({"authorization", "proxy-authorization"})
SECRET_WORDS = ("token", "key", "secret", "password", "auth")  # query or form names holding one
MIN_SECRET_LENGTH = 4  # shorter secrets are masked where they stand, not searched for elsewhere


class RecordingError(Exception):
    """A recording that cannot be read: absent, unreadable, or not a recording."""


def encoded_body(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode("ascii")}


def decoded_body(side: dict[str, Any]) -> bytes:
    if "body_base64" in side:
        return base64.b64decode(side["body_base64"], validate=True)
    return str(side.get("body", "")).encode("utf-8")


# -- masking ----------------------------------------------------------------------------------
def secrets_of(
    headers: Sequence[tuple[str, str]], query: str, body: bytes, masked: Iterable[str] = ()
) -> list[str]:
    """Every secret a request carries (a token in any Authorization form, secret headers, query,
    form or JSON fields named like one, as sent and percent-decoded), longest first, so that each
    is masked wherever it appears. Shorter than MIN_SECRET_LENGTH: masked where it stands only."""
    secret_names = SECRET_HEADERS | {name.lower() for name in masked}
    found = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in CREDENTIALS_HEADERS:
            found.append(credentials(value))
        elif lowered in secret_names:
            found.append(value.strip())
    found += field_secrets(query)
    text = body.decode("latin-1") if is_form(body) or is_json(body) else ""
    found += field_secrets(text) if is_form(body) else json_secrets(text)
    return sorted({s for s in found if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def is_form(body: bytes) -> bool:
    return b"=" in body[:4096] and body[:1] not in b"{["


def is_json(body: bytes) -> bool:
    return body.lstrip()[:1] in (b"{", b"[")


def secret_name(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


def field_secrets(text: str) -> list[str]:
    """The values of a query's or form's fields named like a secret, as sent and decoded."""
    found = []
    for part in text.split("&"):
        name, _, value = part.partition("=")
        if secret_name(unquote_plus(name)):
            found += [value, unquote_plus(value)]
    return found


# A JSON string field: its name (escapes kept) and its value (escapes kept), as written.
JSON_FIELD = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:\s*)"((?:[^"\\]|\\.)*)"')


def json_secrets(text: str) -> list[str]:
    return [m.group(3) for m in JSON_FIELD.finditer(text) if secret_name(m.group(1))]


def masked_fields(text: str) -> str:
    """A query or form with each field named like a secret masked where it stands (whatever its
    length or encoding); every other byte as it was."""
    parts = text.split("&")
    for index, part in enumerate(parts):
        name, equals, value = part.partition("=")
        if equals and value and secret_name(unquote_plus(name)):
            parts[index] = f"{name}={mask_token(value)}"
    return "&".join(parts)


def masked_json_fields(text: str) -> str:
    """A JSON body with each string field named like a secret masked where it stands."""

    def masked(match: re.Match[str]) -> str:
        name, colon, value = match.groups()
        return f'"{name}"{colon}"{mask_token(value)}"' if secret_name(name) else match.group(0)

    return JSON_FIELD.sub(masked, text)


def masked_request_body(text: str) -> str:
    """A request body's secret fields masked where they stand (form or JSON)."""
    encoded = text.encode("utf-8", "surrogatepass")
    if is_form(encoded):
        return masked_fields(text)
    return masked_json_fields(text) if is_json(encoded) else text


def credentials(value: str) -> str:
    """The secret of an Authorization header: its token in a known form, else what follows a known
    scheme, else the whole value."""
    token = token_from_header(value.strip(), ALL_FORMS)
    if token is not None:
        return token
    scheme, space, rest = value.strip().partition(" ")
    return rest.strip() if space and scheme.lower() in KNOWN_SCHEMES else value.strip()


def masked_header(name: str, value: str, secrets: Sequence[str], masked: Iterable[str] = ()) -> str:
    lowered = name.lower()
    if lowered in SECRET_HEADERS or lowered in {m.lower() for m in masked}:
        return mask_token(value.strip()) if value.strip() else value
    if lowered in CREDENTIALS_HEADERS:
        secret = credentials(value)
        return value.replace(secret, mask_token(secret)) if secret else value
    return mask_text(value, secrets)


def mask_text(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, mask_token(secret))
    return text


def mask_json(value: Any, secrets: Sequence[str]) -> Any:
    """Every string in a JSON value with the secrets masked."""
    if not secrets:
        return value
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, dict):
        return {mask_text(k, secrets): mask_json(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_json(item, secrets) for item in value]
    return value


# -- writing and reading -----------------------------------------------------------------------
class Recorder:
    """Appends one line per pair to DIR/pairs.jsonl, flushed at once; safe across threads."""

    def __init__(self, directory: str) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.path = Path(directory) / PAIRS_FILE
        self._stream: IO[bytes] = open(self.path, "ab")  # noqa: SIM115  # open while we serve
        self._lock = threading.Lock()
        try:  # two proxies on one recording would each count pairs from 1: ids said twice
            fcntl.flock(self._stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._stream.close()
            raise OSError(errno.EBUSY, "being recorded by another pisano-mock proxy") from None

    def write(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record) + b"\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()  # to the OS at once: a crash of the proxy loses nothing written

    def close(self) -> None:
        self._stream.close()


def read_recording(directory: str) -> list[dict[str, Any]]:
    """The pairs of a recording; RecordingError saying why when it is not one. A last line cut
    short (the pair in flight when the proxy died) is left out."""
    path = Path(directory) / PAIRS_FILE
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as error:
        raise RecordingError(f"cannot read {path}: {error.strerror or error}") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith(NOT_RECORDED_MARK):
            continue  # a marker: pairs the disk refused (said in the line, not a pair)
        try:
            records.append(checked_record(orjson.loads(line)))
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as error:
            if number == len(lines) and not line.endswith(b"}"):
                break  # cut short by a crash: the pair in flight
            raise RecordingError(
                f"{path}: line {number} is not a recorded pair ({error})"
            ) from None
    return records


NOT_RECORDED_MARK = b'{"not_recorded":'  # the line PairLog writes when writing works again


REQUIRED = {
    "request": ("method", "path"),
    "upstream": ("status", "headers"),
    "emulator": ("status",),
}


def checked_record(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict) or "id" not in record or "verdict" not in record:
        raise ValueError("no id or verdict")
    for side, keys in REQUIRED.items():
        for key in keys:
            record[side][key]  # KeyError/TypeError: not a pair
    if record["verdict"] != "same" and not isinstance(record["verdict"], list):
        raise ValueError("verdict is neither 'same' nor a list")
    decoded_body(record["upstream"])  # a body that cannot be given back is no recording
    return record


__all__ = ["MASK", "Recorder", "RecordingError", "read_recording"]
