"""`/__mock/workflows` (SPEC 1.8): the scheduled workflows, their runs, a run on demand; and what
one run does: the workflow's campaign shares its CSV's rows as the CSV upload does, journaled
with `"trigger": "workflow"`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response

from .admin import AdminError, admin_json, load_query, render_admin_error
from .catalogue import PisanoError
from .context import EXTENSION_KEY, Emulator, current_emulator
from .outbox import Letterhead, MailBatch
from .rules import RuleContext
from .schemas import NoQuerySchema
from .settings import Workflow
from .state import Account, Campaign, SharingBatch
from .validation import email_sharing_loader
from .workflows import Outcome, Run

blueprint = Blueprint("workflows_admin", __name__, url_prefix="/__mock")
blueprint.register_error_handler(AdminError, render_admin_error)


@blueprint.get("/workflows")
def workflows() -> Response:
    load_query(NoQuerySchema())
    return admin_json({"workflows": current_emulator().scheduler.listing()})


@blueprint.post("/workflows/<name>/run")
def run_workflow_now(name: str) -> Response:
    run = current_emulator().scheduler.run_now(name)
    if run is None:
        raise AdminError(404, f"name: no workflow {name!r}")
    return admin_json({"status": "ok", "run": run})


# -- one run ------------------------------------------------------------------------------------

# What turns a workflow's file into shared rows: (emulator, workflow, request id, instant) →
# recipients shared, or a PisanoError. The CSV upload's code once it lands (csvfile.py).
Share = Callable[[Emulator, Workflow, int, float], int]
ENTRY_BYTES = 1200  # what a journal entry costs whatever it holds (lifecycle.ENTRY_OVERHEAD)


def runner(app: Flask, share: Share) -> Run:
    """A `Run` for the scheduler: each run in `app`'s context (the ticker has none of its own)."""

    def run(workflow: Workflow, at: float) -> Outcome:
        with app.app_context():
            return journaled_run(app.extensions[EXTENSION_KEY], workflow, at, share)

    return run


def journaled_run(emulator: Emulator, workflow: Workflow, at: float, share: Share) -> Outcome:
    """One run, in the journal as a request would be, with its answer or catalogue entry."""
    entry = run_entry(workflow, at)
    begun = emulator.store.begin_request(entry, ENTRY_BYTES, emulator.clock)
    try:
        outcome = Outcome("ok", count=share(emulator, workflow, begun.id, begun.now))
        updates: dict[str, Any] = {"status": 200}
    except PisanoError as error:
        outcome = Outcome("refused", code=error.code, reason=error.reason)
        updates = {"status": error.entry.http_status, "code": error.code, "reason": error.reason}
    emulator.store.finish_request(begun.id, updates, ENTRY_BYTES + len(outcome.reason or ""))
    return outcome


def run_entry(workflow: Workflow, at: float) -> dict[str, Any]:
    """A run's journal entry: shaped as a request's (lifecycle._new_entry), marked as a run."""
    return {
        "id": None,
        "time": None,
        "method": "POST",
        "path": f"/__mock/workflows/{workflow.name}/run",
        "headers": {},
        "body": {"campaign": workflow.campaign, "source": workflow.source, "due": at},
        "status": None,
        "code": None,
        "reason": None,
        "warnings": [],
        "fault": None,
        "throttle": None,
        "trigger": "workflow",
        "workflow": workflow.name,
    }


def workflow_campaign(emulator: Emulator, workflow: Workflow) -> tuple[Campaign, Account]:
    """The campaign a run shares and its account (SPEC 1.4 rows 8-9, as the CSV upload)."""
    campaign = emulator.store.campaign(workflow.campaign)
    account = emulator.store.account(campaign.account) if campaign else None
    if campaign is None or account is None:
        raise PisanoError(13002, f"campaign: {workflow.campaign!r} is unknown")
    if not campaign.flow:
        raise PisanoError(13005, f"campaign: {workflow.campaign!r} has no flow attached")
    return campaign, account


def read_source(path: str) -> bytes:
    """The workflow's CSV file; one that cannot be read is 13037, naming it and why."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise PisanoError(13037, f"source: {path}: cannot be read: {error.strerror}") from None


def share_csv(emulator: Emulator, workflow: Workflow, request_id: int, now: float) -> int:
    """INTERIM, until the CSV upload's code lands (wt-csv, wt-channels): the file's `email`
    column shared by the email steps; every other column a custom attribute."""
    campaign, account = workflow_campaign(emulator, workflow)
    params = interim_params(read_source(workflow.source))
    context = RuleContext(customer_schema=account.customer_schema)
    email_sharing_loader.load(params, context)
    batch = SharingBatch.of(campaign.id, request_id, now, params["emails"], params)
    first_id = emulator.store.record_sharings(batch, batch.nbytes)
    mail = MailBatch(first_id, batch, Letterhead.of(campaign, account))
    emulator.outbox.add(mail)
    if mail.letterhead.provider_type != "outbox":
        emulator.postman.wake()
    return len(batch)


def interim_params(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text, newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error) as error:
        raise PisanoError(13037, f"line ?: {error}") from None
    if not rows:
        raise PisanoError(13037, "line 1: no rows")
    missing = [str(n + 2) for n, row in enumerate(rows) if not (row.get("email") or "")]
    if missing:
        raise PisanoError(13038, f"rows {', '.join(missing[:20])}: no email")
    emails = [row["email"] for row in rows]
    others = {row["email"]: {k: v for k, v in row.items() if k != "email"} for row in rows}
    return {"emails": emails, "custom_attributes": others}
