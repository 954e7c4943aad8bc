"""`POST /v1/email_campaigns/<campaign_id>/email_sharings` (SPEC 1.1)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from flask import Blueprint, Response, g

from ..catalogue import PisanoError
from ..context import current_emulator
from ..outbox import Letterhead, MailBatch
from ..rules import RuleContext
from ..state import SharingBatch
from ..validation import email_sharing_loader
from .common import authenticated_account, campaign_of, request_params, with_hint

blueprint = Blueprint("email_sharings", __name__)


@blueprint.post("/v1/email_campaigns/<campaign_id>/email_sharings")
def create_email_sharings(campaign_id: str) -> Response:
    """Share a campaign's survey with each recipient; 200 lists their sharing ids."""
    emulator = current_emulator()
    fidelity = emulator.settings.fidelity
    account = authenticated_account()
    campaign = campaign_of(account, campaign_id)
    params = request_params()
    context = RuleContext(
        customer_schema=account.customer_schema,
        batch_limit=fidelity.batch_limit,
        strict_batch_limit=fidelity.strict_batch_limit,
        from_form=params.from_form,
    )
    state = g._get_current_object()  # type: ignore[attr-defined]  # once: each proxy use costs
    try:
        state.warnings.extend(email_sharing_loader.load(params.data, context))
    except PisanoError as error:
        raise with_hint(error, params) from None
    body = params.data
    batch = SharingBatch.of(
        campaign.id,
        state.request_id,
        state.now,  # the request's instant (lifecycle.begin_request)
        body["emails"],
        body,
    )
    first_id = emulator.store.record_sharings(batch, batch.nbytes)
    mail = MailBatch(first_id, batch, Letterhead.of(campaign, account))
    emulator.outbox.add(mail)  # one object: nothing is rendered on the request path (SPEC 1.7)
    if mail.letterhead.provider_type != "outbox":
        emulator.postman.wake()
    state.recipients_accepted = len(batch)  # for the metrics (lifecycle.finish_request)
    return _accepted(campaign.id, first_id, body["emails"])


def _accepted(campaign_id: str, first_id: int, emails: Sequence[str]) -> Response:
    payload = {
        "status": "ok",
        "campaign_id": campaign_id,
        "count": len(emails),
        "sharings": dict(zip(emails, range(first_id, first_id + len(emails)), strict=True)),
    }
    return Response(orjson.dumps(payload), 200, content_type="application/json; charset=utf-8")
