"""`POST /__mock/campaigns/<campaign_id>/csv`: a CSV file's rows shared as one API call would
share them (SPEC 1.8): the same 200 body or catalogue answer, the reason naming the line.

An admin path (SPEC 2.6's access rules, `text/csv` or `multipart/form-data` allowed by access.py),
so never throttled; unlike other admin writes it is journaled, with `"trigger": "csv"`, because
it shares surveys as the API does and an integrator looks for it where the API's calls are.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Request, Response, g, request

from .admin import AdminError, render_admin_error
from .api.sharing import share
from .auth import mask_headers
from .bodies import BodyUnread, hold_body
from .catalogue import PisanoError
from .context import Emulator, current_emulator
from .csvfile import Source, sharing_params
from .headers import REQUEST_ID, WARNING, ascii_header
from .lifecycle import ENTRY_OVERHEAD, journal_entry, request_body
from .state import Account, Campaign

blueprint = Blueprint("csv_admin", __name__, url_prefix="/__mock")
blueprint.register_error_handler(AdminError, render_admin_error)

TRIGGER = "csv"
MULTIPART_FIELD = "file"


@blueprint.post("/campaigns/<campaign_id>/csv")
def upload_csv(campaign_id: str) -> Response:
    """Share the campaign's survey with the file's recipients; the answer is the API's."""
    emulator = current_emulator()
    entry = CsvEntry.open(emulator)
    g.csv_request_id = entry.id
    try:
        account, campaign = account_and_campaign(emulator, campaign_id)
        params, warnings = sharing_params(_csv_source(_csv_bytes()), campaign.channel)
        accepted = share(account, campaign, params, TRIGGER, request_id=entry.id, now=entry.now)
    except PisanoError as error:
        status = getattr(error, "http_status", error.entry.http_status)  # 413: body too large
        entry.close(emulator, status, [], error.code, error.reason)
        raise
    except AdminError as error:
        entry.close(emulator, error.status, [], None, error.reason)
        raise
    warnings = warnings + accepted.warnings
    entry.close(emulator, 200, warnings)
    g.csv_warnings = warnings
    return accepted.response()


@blueprint.after_request
def label_answer(response: Response) -> Response:
    # A body over max_body_bytes is still on the wire: the connection cannot be reused.
    if isinstance(g.get("csv_body_error"), BodyUnread):
        response.headers["Connection"] = "close"
    if g.get("csv_request_id") is not None:  # the journal entry, as every API answer names it
        response.headers[REQUEST_ID] = str(g.csv_request_id)
    if g.get("csv_warnings"):  # as the API says what it accepted but finds wrong (SPEC 1.1)
        response.headers[WARNING] = ascii_header("; ".join(g.csv_warnings))
    return response


def account_and_campaign(emulator: Emulator, campaign_id: str) -> tuple[Account, Campaign]:
    """What the API's rows 7-9 say of the campaign and its account (there is no token)."""
    campaign = emulator.store.campaign(campaign_id)
    if campaign is None:
        raise PisanoError(13002, f"campaign_id: {campaign_id!r} is unknown")
    account = emulator.store.account(campaign.account)
    if account is None or account.locked:
        raise PisanoError(13036, f"campaign_id: {campaign_id!r} is of a locked account")
    if not campaign.flow:
        raise PisanoError(13005, f"campaign_id: {campaign_id!r} has no flow attached")
    return account, campaign


def _csv_bytes() -> bytes:
    """The file: the body itself (`text/csv`), or a multipart body's field `file`."""
    try:
        raw = request_body()  # read once, within max_body_bytes, chunked or not (SPEC 2.5)
    except PisanoError as error:
        g.csv_body_error = error
        raise
    if request.mimetype != "multipart/form-data":
        return raw
    parsed = _multipart(raw)
    uploads = parsed.files.getlist(MULTIPART_FIELD)
    if len(uploads) == 1:
        return uploads[0].read()
    raise AdminError(400, f"{MULTIPART_FIELD}: {_multipart_problem(parsed, len(uploads))}")


def _multipart_problem(parsed: Request, files: int) -> str:
    how = f"send one file as the multipart field '{MULTIPART_FIELD}' (curl -F file=@customers.csv)"
    if files > 1:
        return f"{files} files given; {how}"
    if MULTIPART_FIELD in parsed.form:  # `-F 'file=...'`: text, no filename
        return f"given as a text field, not a file; {how}"
    return f"absent; {how}"


def _multipart(raw: bytes) -> Request:
    # Parsed from the bytes already read: the stream is gone (it must be read once only).
    environ = {**request.environ, "wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw))}
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return Request(environ)


def _csv_source(data: bytes) -> Source:
    return lambda: io.BytesIO(data)


@dataclass(frozen=True)
class CsvEntry:
    """The upload's journal entry: opened first (its id and instant are the sharings'), closed
    with the answer, as lifecycle does for the API's calls."""

    id: int
    now: float
    nbytes: int

    @classmethod
    def open(cls, emulator: Emulator) -> CsvEntry:
        settings = emulator.settings
        headers = mask_headers(
            request.headers.items(), settings.fidelity.auth_forms, settings.access.mask_headers
        )
        entry = _entry(headers)
        nbytes = ENTRY_OVERHEAD + len(request.path) + sum(map(len, (*headers, *headers.values())))
        begun = emulator.store.begin_request(entry, nbytes, emulator.clock)
        return cls(begun.id, begun.now, nbytes)

    def close(
        self,
        emulator: Emulator,
        status: int,
        warnings: list[str],
        code: int | None = None,
        reason: str | None = None,
    ) -> None:
        raw = b"" if g.get("csv_body_error") else g.get("body", b"")
        held = hold_body(raw)
        updates = {
            "status": status,
            "warnings": warnings,
            "body": held,
            "code": code,
            "reason": reason,
        }
        said = sum(map(len, warnings)) + len(reason or "")
        nbytes = self.nbytes + (len(held.data) if held is not None else 0) + said
        emulator.store.finish_request(self.id, updates, nbytes)


def _entry(headers: dict[str, str]) -> dict[str, Any]:
    return journal_entry(request.method, request.path, headers, trigger=TRIGGER)
