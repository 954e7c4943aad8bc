"""`/__mock/workflows` (SPEC 1.8): the scheduled workflows, their runs, a run on demand; and what
one run does: the workflow's campaign shares its CSV's rows as the CSV upload does, journaled
with `"trigger": "workflow"`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, BinaryIO

from flask import Blueprint, Flask, Response

from .admin import AdminError, admin_json, load_query, render_admin_error
from .api.sharing import share
from .catalogue import PisanoError
from .context import EXTENSION_KEY, Emulator, current_emulator
from .csv_admin import account_and_campaign
from .csvfile import Source, sharing_params
from .lifecycle import ENTRY_OVERHEAD, journal_entry
from .schemas import NoQuerySchema
from .settings import Workflow
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
# recipients shared, or a PisanoError (`share_csv`; tests may pass another).
Share = Callable[[Emulator, Workflow, int, float], int]
ENTRY_BYTES = ENTRY_OVERHEAD  # what a journal entry costs whatever it holds
TRIGGER = "workflow"  # the journal entry's and the sharings' trigger (SPEC 1.8)


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
    """A run's journal entry: shaped as a request's, marked as a run."""
    path = f"/__mock/workflows/{workflow.name}/run"
    entry = journal_entry("POST", path, {}, trigger=TRIGGER, workflow=workflow.name)
    entry["body"] = {"campaign": workflow.campaign, "source": workflow.source, "due": at}
    return entry


def share_csv(emulator: Emulator, workflow: Workflow, request_id: int, now: float) -> int:
    """The workflow's file shared as `POST /__mock/campaigns/<id>/csv` shares an upload: the same
    campaign checks, the same reading of the file, the same share (SPEC 1.8)."""
    account, campaign = account_and_campaign(emulator, workflow.campaign)
    within_bounds(workflow.source, emulator.settings.bounds.max_body_bytes)
    params, _ = sharing_params(readable(workflow.source), campaign.channel)
    accepted = share(account, campaign, params, TRIGGER, request_id=request_id, now=now)
    return accepted.recipients


def within_bounds(path: str, max_bytes: int) -> None:
    """A file is read whole, as an upload is: one larger than an upload may be is refused as
    the upload would be (13000), not read."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return  # `readable` names what is wrong
    if size > max_bytes:
        raise PisanoError(
            13000, f"source: {path}: {size} bytes, more than max_body_bytes ({max_bytes})"
        )


def readable(path: str) -> Source:
    """The workflow's file as a Source; one that cannot be opened is 13037, naming it and why
    (checked here once: a file that vanishes between two passes is the same answer)."""

    def open_file() -> BinaryIO:
        try:
            return open(path, "rb")  # the pass's `with` closes it
        except OSError as error:
            raise PisanoError(13037, f"source: {path}: cannot be read: {error.strerror}") from None

    return open_file
