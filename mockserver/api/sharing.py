"""The sharing endpoints as one table (email, SMS, link: SPEC 1.1, 1.5, 1.6), and the one pipeline
they all run once the request is authenticated and its target found: rows 11-13 of SPEC 1.4 (the
row's loader), record the sharings, add the messages to the outbox, build the 200 body.

`share()` is that pipeline for callers that resolved an account and a campaign themselves (a CSV
upload, a scheduled workflow: SPEC 1.8); a view adds rows 5-10 in front of it (`_view`).
A new endpoint is a new row of ENDPOINTS (and its schema in schemas.py): nothing else repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from flask import Blueprint, Response, g, has_request_context

from ..bodies import Params
from ..catalogue import PisanoError
from ..context import Emulator, current_emulator
from ..links import responses_query
from ..outbox import Letterhead, MailBatch
from ..rules import RuleContext, wants_short_link
from ..schemas import (
    EmailSharingAcceptedSchema,
    EmailSharingSchema,
    LinkGeneratedSchema,
    LinkSharingSchema,
    SmsSharingAcceptedSchema,
    SmsSharingSchema,
)
from ..state import Account, Campaign, LinkChannel, SharingBatch
from ..validation import (
    FastLoader,
    email_sharing_loader,
    link_sharing_loader,
    sms_sharing_loader,
)
from .common import (
    authenticated_account,
    campaign_of,
    link_channel_of,
    request_params,
    with_hint,
)

Target = Campaign | LinkChannel  # what a path's id names


@dataclass(frozen=True)
class Shared:
    """What one share recorded, for the row's `answer` to describe."""

    target_id: str
    first_id: int
    recipients: Sequence[str]
    data: dict[str, Any]
    schema: dict[str, str]  # the account's customer schema: types the link's responses


@dataclass(frozen=True)
class Accepted:
    """A share's outcome: the 200 body, and what was accepted but looks wrong."""

    payload: dict[str, Any]
    warnings: list[str]
    recipients: int

    def response(self) -> Response:
        body = orjson.dumps(self.payload)
        return Response(body, 200, content_type="application/json; charset=utf-8")


@dataclass(frozen=True)
class OpenApiRow:
    """What /openapi.json says of an endpoint (openapi.py builds the operation from it)."""

    summary: str
    description: str
    body: str  # the request schema's registered name
    answer: str  # the 200 schema's registered name
    schemas: dict[str, type]  # name → schema class, registered by openapi.py
    example: str  # the path id of the default fixture
    form_field: str  # the recipients' (or customer's) form key


@dataclass(frozen=True)
class Endpoint:
    """One row of the table: everything that differs between sharing endpoints."""

    rule: str  # the Flask path rule; its one variable is the target's id
    channel: str  # the sharings' channel (SharingBatch.channel); a campaign's channel must match
    loader: FastLoader  # rows 11-13 (schemas.py: fields, then rules.py across fields)
    target: Callable[[Account, str], Target]  # rows 8-9 (or SPEC 1.6's 13035/13013)
    recipients: Callable[[dict[str, Any]], list[str]]  # who, from the loaded body
    parts: Callable[[dict[str, Any], list[str]], dict[str, Any]]  # per-recipient parts held
    answer: Callable[[Shared, Emulator], dict[str, Any]]  # the 200 body
    openapi: OpenApiRow
    messages: bool = True  # one outbox message per recipient (SPEC 1.7); a link has none
    id_name: str = field(init=False)

    def __post_init__(self) -> None:
        name = self.rule.split("<", 1)[1].split(">", 1)[0]
        object.__setattr__(self, "id_name", name)


# -- the pipeline ---------------------------------------------------------------------------------


def share(
    account: Account,
    campaign: Campaign,
    params: Params | dict[str, Any],
    trigger: str = "api",
    *,
    request_id: int | None = None,
    now: float | None = None,
) -> Accepted:
    """Rows 11-13 onward for a campaign's channel (its endpoint's body, e.g. `emails` or
    `phone_numbers`): PisanoError when refused, else the sharings recorded and the messages
    queued. Outside a request to the emulated API, `request_id` is 0 and `now` the clock's
    unless given."""
    params = params if isinstance(params, Params) else Params(params)
    return share_as(
        BY_CHANNEL[campaign.channel], account, campaign, params, trigger, request_id, now
    )


def share_as(
    endpoint: Endpoint,
    account: Account,
    target: Target,
    params: Params,
    trigger: str = "api",
    request_id: int | None = None,
    now: float | None = None,
) -> Accepted:
    emulator = current_emulator()
    warnings = _loaded(endpoint, account, params, emulator)
    data = params.data
    recipients = endpoint.recipients(data)
    request_id, now = _occasion(request_id, now, emulator)
    batch = SharingBatch.of(
        target.id, request_id, now, recipients, endpoint.parts(data, recipients),
        channel=endpoint.channel, trigger=trigger,
    )  # fmt: skip
    first_id = emulator.store.record_sharings(batch, batch.nbytes)
    if endpoint.messages and isinstance(target, Campaign):
        _queue(emulator, MailBatch(first_id, batch, Letterhead.of(target, account)))
    shared = Shared(target.id, first_id, recipients, data, account.customer_schema)
    return Accepted(endpoint.answer(shared, emulator), warnings, len(batch))


def _loaded(endpoint: Endpoint, account: Account, params: Params, emulator: Emulator) -> list[str]:
    """Rows 11-13: the body checked by the row's loader; its warnings."""
    fidelity = emulator.settings.fidelity
    context = RuleContext(
        customer_schema=account.customer_schema,
        batch_limit=fidelity.batch_limit,
        strict_batch_limit=fidelity.strict_batch_limit,
        from_form=params.from_form,
    )
    try:
        return endpoint.loader.load(params.data, context)
    except PisanoError as error:
        raise with_hint(error, params) from None


def _occasion(request_id: int | None, now: float | None, emulator: Emulator) -> tuple[int, float]:
    """The request's id and instant (lifecycle.begin_request), unless the caller gives them."""
    in_api_request = has_request_context() and g.get("request_id") is not None
    if request_id is None:
        request_id = g.request_id if in_api_request else 0
    if now is None:
        now = g.now if in_api_request else emulator.clock.now()
    return request_id, now


def _queue(emulator: Emulator, mail: MailBatch) -> None:
    emulator.outbox.add(mail)  # one object: nothing is rendered on the request path (SPEC 1.7)
    if mail.letterhead.provider_type != "outbox":
        emulator.postman.wake()


# -- the view: rows 5-10, then the pipeline -------------------------------------------------------


def _view(endpoint: Endpoint) -> Callable[..., Response]:
    def view(**path: str) -> Response:
        account = authenticated_account()
        target = endpoint.target(account, path[endpoint.id_name])
        accepted = share_as(endpoint, account, target, request_params())
        state = g._get_current_object()  # type: ignore[attr-defined]  # once: each proxy use costs
        state.warnings.extend(accepted.warnings)
        state.recipients_accepted = accepted.recipients  # for the metrics (lifecycle)
        return accepted.response()

    return view


# -- what differs per endpoint --------------------------------------------------------------------


def _listed(name: str) -> Callable[[dict[str, Any]], list[str]]:
    return lambda data: data[name]  # type: ignore[no-any-return]


def _keyed_parts(data: dict[str, Any], recipients: list[str]) -> dict[str, Any]:
    return data  # custom_attributes / transactional_data are keyed by the recipients already


def _sharings_body(shared: Shared, emulator: Emulator) -> dict[str, Any]:
    ids = range(shared.first_id, shared.first_id + len(shared.recipients))
    return {
        "status": "ok",
        "campaign_id": shared.target_id,
        "count": len(shared.recipients),
        "sharings": dict(zip(shared.recipients, ids, strict=True)),
    }


def _link_customer(data: dict[str, Any]) -> list[str]:
    return [data["customer"].get("email", "")]  # the one recipient (SharingBatch's docstring)


def _link_parts(data: dict[str, Any], recipients: list[str]) -> dict[str, Any]:
    (recipient,) = recipients
    return {
        "custom_attributes": {recipient: data["customer"]},
        "transactional_data": {recipient: data["transactional_data"]}
        if data.get("transactional_data")
        else {},
        "built_in_responses": data.get("built_in_responses"),
    }


def _link_body(shared: Shared, emulator: Emulator) -> dict[str, Any]:
    responses = shared.data.get("built_in_responses") or {}
    link = emulator.links.link(shared.first_id, responses_query(responses, shared.schema))
    body = {"status": "ok", "link": link}
    if wants_short_link(shared.data.get("options")):
        body["short_link"] = emulator.links.short_link(shared.first_id)  # `GET /l/<code>`
    return body


def _campaign_target(channel: str) -> Callable[[Account, str], Target]:
    return lambda account, campaign_id: campaign_of(account, campaign_id, channel)


_CROSS_FIELD_NOTE = (
    "Rules across fields that JSON Schema cannot state (13028/13017): a `custom_attributes` or "
    "`transactional_data` key must be one of `{field}`; {duplicates} is 13017; "
    "`built_in_responses` values are typed by the account's customer schema. A method other "
    "than POST is 404/13002, as Rails answers a path without that route."
)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        rule="/v1/email_campaigns/<campaign_id>/email_sharings",
        channel="email",
        loader=email_sharing_loader,
        target=_campaign_target("email"),
        recipients=_listed("emails"),
        parts=_keyed_parts,
        answer=_sharings_body,
        openapi=OpenApiRow(
            summary="Share an email campaign's survey with recipients (Pisano's API).",
            description=_CROSS_FIELD_NOTE.format(
                field="emails", duplicates="the same address twice (case-insensitively)"
            ),
            body="EmailSharing",
            answer="EmailSharingAccepted",
            schemas={
                "EmailSharing": EmailSharingSchema,
                "EmailSharingAccepted": EmailSharingAcceptedSchema,
            },
            example="735c19a7-ee54-4b03-a84a-93dfe2a94a56",  # SPEC 2.1's default fixture
            form_field="emails",
        ),
    ),
    Endpoint(
        rule="/v1/sms_campaigns/<campaign_id>/sms_sharings",
        channel="sms",
        loader=sms_sharing_loader,
        target=_campaign_target("sms"),
        recipients=_listed("phone_numbers"),
        parts=_keyed_parts,
        answer=_sharings_body,
        openapi=OpenApiRow(
            summary="Share an SMS campaign's survey with phone numbers (Pisano's API).",
            description=_CROSS_FIELD_NOTE.format(
                field="phone_numbers",
                duplicates="the same number twice (once spaces, -, (, ), . and a leading + are "
                "removed)",
            ),
            body="SmsSharing",
            answer="SmsSharingAccepted",
            schemas={
                "SmsSharing": SmsSharingSchema,
                "SmsSharingAccepted": SmsSharingAcceptedSchema,
            },
            example="00000000-0000-4000-8000-000000000501",  # SPEC 1.5's default fixture
            form_field="phone_numbers",
        ),
    ),
    Endpoint(
        rule="/external/v1/link_sharings/<link_channel_id>/generate_link",
        channel="link",
        loader=link_sharing_loader,
        target=link_channel_of,
        recipients=_link_customer,
        parts=_link_parts,
        answer=_link_body,
        messages=False,
        openapi=OpenApiRow(
            summary="Generate a survey link for one customer (Pisano's API).",
            description="An unknown link channel is 404/13035; `customer` not an object or "
            "with none of email, phone_number, name, external_id is 13038; "
            "`built_in_responses` values are typed by the account's customer schema (13028).",
            body="LinkSharing",
            answer="LinkGenerated",
            schemas={"LinkSharing": LinkSharingSchema, "LinkGenerated": LinkGeneratedSchema},
            example="00000000-0000-4000-8000-000000000701",  # SPEC 1.6's default fixture
            form_field="customer",
        ),
    ),
)
BY_CHANNEL = {endpoint.channel: endpoint for endpoint in ENDPOINTS}

blueprint = Blueprint("sharing", __name__)
for _endpoint in ENDPOINTS:
    blueprint.add_url_rule(
        _endpoint.rule, f"{_endpoint.channel}_sharings", _view(_endpoint), methods=["POST"]
    )
