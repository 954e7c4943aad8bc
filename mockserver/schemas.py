"""Marshmallow schemas: the single source of truth for bodies, the fast path and /openapi.json."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    EXCLUDE,
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from .clock import READING_BOUND
from .rules import (
    RuleContext,
    check_customer,
    check_email_sharing,
    check_link_sharing,
    check_sms_sharing,
    is_phone_number,
)
from .settings import MAX_CLOCK_RATE

# Marshmallow's message for a required field that is absent; it maps to 13015 (SPEC 1.4 row 11).
MISSING_MESSAGE = "Missing data for required field."

# SPEC 2.6: the clock may be set, advanced, and end up, within ±10^11 s (year ~5138), so that
# every time computed from it stays a finite float; the clock's own reading stops at the same bound.
CLOCK_BOUND = READING_BOUND


class JsonNumber(fields.Float):
    """A JSON number for the admin API: no strings, no booleans, finite (what the document says)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class JsonInteger(fields.Integer):
    """A JSON integer for the admin API: `3` or `3.0`, never `3.5`, `"3"` nor `true`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class PhoneNumber(fields.String):
    """SPEC 1.5: 7 to 15 digits once spaces, `-`, `(`, `)`, `.` and one leading `+` are removed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not is_phone_number(value):
            raise self.make_error("invalid")
        return str(value)


class Customer(fields.Raw):
    """SPEC 1.6's `customer`: not an object, or no identity key → 13038 (check_customer), null
    included; so it checks null itself."""

    checks_null = True  # validation.FastLoader leaves null to the field

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None, **kw: Any) -> Any:
        if value is not None:
            return super().deserialize(value, attr, data, **kw)
        check_customer(value)
        return None

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        check_customer(value)
        return value


class Options(fields.Raw):
    """SPEC 1.6's `options`: never refused (a client serialising nulls sends `"options": null`)."""

    checks_null = True  # validation.FastLoader leaves null to the field, which accepts it

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)


def _keyed_by(recipient: str, what: str) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(),
        values=fields.Dict(),
        metadata={"description": f"{what} keyed by {recipient}."},
    )


def _built_in_responses() -> fields.Dict:
    return fields.Dict(
        keys=fields.String(),
        metadata={"description": "Feedback values embedded in the link, typed by the schema."},
    )


class SharingSchema(Schema):
    """What every sharing body's schema does: unknown fields ignored (warned), rules across
    fields after the fields' own (`cross_field_rules`, which the fast path runs too)."""

    class Meta:
        unknown = EXCLUDE

    cross_field_rules: Any = staticmethod(lambda data, context: [])

    def __init__(self, rule_context: RuleContext | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule_context = rule_context or RuleContext()
        self.warnings: list[str] = []

    @validates_schema
    def run_cross_field_rules(self, data: dict[str, Any], **_: Any) -> None:
        self.warnings = self.cross_field_rules(data, self.rule_context)


class EmailSharingSchema(SharingSchema):
    """`POST /v1/email_campaigns/<campaign_id>/email_sharings` (SPEC 1.1)."""

    # Field order is check order (SPEC 1.4 rows 11-12): the recipients first.
    emails = fields.List(
        fields.Email(),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "Recipients' email addresses; unique case-insensitively."},
    )
    custom_attributes = _keyed_by("email", "Customer fields (name, external_id, ...)")
    transactional_data = _keyed_by("email", "Per-transaction fields (Segment, Location, ...)")
    built_in_responses = _built_in_responses()

    cross_field_rules = staticmethod(check_email_sharing)  # rows 12-13


class SmsSharingSchema(SharingSchema):
    """`POST /v1/sms_campaigns/<campaign_id>/sms_sharings` (SPEC 1.5)."""

    phone_numbers = fields.List(
        PhoneNumber(),
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": "Recipients' phone numbers: 7-15 digits once spaces, -, (, ), . and "
            "one leading + are removed; unique once so normalised."
        },
    )
    custom_attributes = _keyed_by("phone number as sent", "Customer fields (name, email, ...)")
    transactional_data = _keyed_by("phone number as sent", "Per-transaction fields")
    built_in_responses = _built_in_responses()

    cross_field_rules = staticmethod(check_sms_sharing)


class LinkSharingSchema(SharingSchema):
    """`POST /external/v1/link_sharings/<link_channel_id>/generate_link` (SPEC 1.6)."""

    customer = Customer(
        required=True,
        metadata={
            "description": "The customer: identity keys email, phone_number, name, external_id "
            "(strings, may be empty; at least one given), any other key a custom attribute.",
            "type": "object",
        },
    )
    built_in_responses = _built_in_responses()
    transactional_data = fields.Dict(
        keys=fields.String(), metadata={"description": "Per-transaction fields."}
    )
    options = Options(
        metadata={
            "description": '`true` or `"true"`: a short link as well; anything else (null '
            'included) none, with a warning unless it is false, "false" or null.'
        },
    )

    cross_field_rules = staticmethod(check_link_sharing)


class Answer(Schema):
    """An answer of ours: the keys shown are fixed, more may be added (SPEC 2.2)."""

    class Meta:
        unknown = INCLUDE


class EmailSharingAcceptedSchema(Answer):
    """The 200 answer: our invention, Pisano documents none (README, Fidelity)."""

    status = fields.String(metadata={"example": "ok"})
    campaign_id = fields.String()
    count = fields.Integer()
    sharings = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "Each accepted email and its sharing id (/__mock/sharings)."},
    )


class SmsSharingAcceptedSchema(EmailSharingAcceptedSchema):
    """The 200 answer of SPEC 1.5: each number as sent and its sharing id."""


class LinkGeneratedSchema(Answer):
    """The 200 answer of SPEC 1.6."""

    status = fields.String(metadata={"example": "ok"})
    link = fields.String(metadata={"description": "The survey link (SPEC 1.7)."})
    short_link = fields.String(metadata={"description": "With `options: true`: `/l/<code>`."})


class CatalogueErrorSchema(Schema):
    """Pisano's error body, exactly these three keys (SPEC 1.4)."""

    class Meta:
        unknown = RAISE

    status = fields.String(metadata={"example": "bad_request"})
    code = fields.Integer(metadata={"example": 13015})
    message = fields.String(metadata={"example": "Required field not present in params!"})


class AdminErrorSchema(Schema):
    """An admin error: ours, not Pisano's (SPEC 2.2)."""

    class Meta:
        unknown = RAISE

    status = fields.String(
        metadata={
            "example": "bad_request",
            "description": "bad_request (400), unauthorized (401), forbidden (403), not_found "
            "(404), method_not_allowed (405), payload_too_large (413), unsupported_media_type "
            "(415)",
        }
    )
    reason = fields.String(metadata={"description": "What is wrong, naming the field."})


class StatusSchema(Answer):
    status = fields.String(metadata={"example": "ok"})


class HealthSchema(StatusSchema):
    requests = fields.Integer()
    requests_dropped = fields.Integer()
    sharings = fields.Integer()
    sharings_dropped = fields.Integer()


class FixturesAddedSchema(StatusSchema):
    added = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "How many accounts, tokens and campaigns there are now."},
    )


class JournalEntrySchema(Answer):
    id = fields.Integer()
    time = fields.Float(metadata={"description": "Unix seconds on the emulator's clock."})
    method = fields.String()
    path = fields.String()
    headers = fields.Dict(
        metadata={"description": "As sent; tokens and secret headers masked (mask_headers)."}
    )
    body = fields.Raw(
        allow_none=True, metadata={"description": "The parsed body (raw text when unparseable)."}
    )
    status = fields.Integer(allow_none=True)
    code = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    warnings = fields.List(fields.String())
    fault = fields.Raw(allow_none=True, metadata={"description": "The scripted fault applied."})
    throttle = fields.Raw(
        allow_none=True, metadata={"description": "On a throttle refusal: the tier and window end."}
    )
    token_id = fields.String(
        allow_none=True,
        metadata={
            "description": "A keyed hash of the token the request carried (the inspector's "
            "token filter compares it); null without an Authorization header."
        },
    )


class PageSchema(Answer):
    """What every admin page adds to its items: how many the bounds dropped, whether more wait."""

    dropped = fields.Integer()
    more = fields.Boolean()


class RequestsPageSchema(PageSchema):
    requests = fields.List(fields.Nested(JournalEntrySchema))


class SharingShownSchema(Answer):
    id = fields.Integer()
    campaign_id = fields.String(
        metadata={"description": "The campaign (email, sms) or the link channel (link)."}
    )
    channel = fields.String(metadata={"description": "email, sms or link."})
    email = fields.String(
        allow_none=True, metadata={"description": "email, link (null: the customer gave none)."}
    )
    phone_number = fields.String(metadata={"description": "sms: the number as sent."})
    customer = fields.Dict(metadata={"description": "link: the customer's identity keys."})
    trigger = fields.String(metadata={"description": "api, csv or workflow."})
    custom_attributes = fields.Dict()
    transactional_data = fields.Dict()
    built_in_responses = fields.Dict()
    accepted_at = fields.Float()
    request_id = fields.Integer()
    link = fields.String(
        metadata={"description": "The survey link (SPEC 1.7), `?responses=` when it has any."}
    )


class SharingsPageSchema(PageSchema):
    sharings = fields.List(fields.Nested(SharingShownSchema))


class ThrottledSchema(Answer):
    """The `rich` profile's 429 (the default profile answers Rack::Attack's text/plain)."""

    status = fields.String(metadata={"example": "too_many_requests"})
    message = fields.String(metadata={"example": "Retry later"})
    tier = fields.String(metadata={"example": "20/5 seconds"})
    retry_after = fields.Integer(metadata={"description": "Seconds, as Retry-After says."})


class ThrottleCounterSchema(Answer):
    key = fields.String(metadata={"description": "`token:<masked>`, `ip:<address>` or both."})
    key_id = fields.String(
        metadata={
            "description": "Tells apart keys that mask alike: 12 hex characters of a keyed hash, "
            "stable while the emulator runs; the `since` of the next page.",
            "example": "3f9a0c4e21b7",
        }
    )
    tier = fields.String(metadata={"example": "20/5 seconds"})
    limit = fields.Integer()
    period = fields.Integer()
    count = fields.Integer()
    window_end = fields.Float()


class ThrottleStateSchema(Answer):
    enabled = fields.Boolean()
    profile = fields.String()
    tiers = fields.List(fields.String())
    counters = fields.List(fields.Nested(ThrottleCounterSchema))
    more = fields.Boolean()


class PageQuerySchema(Schema):
    since = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=10_000, validate=validate.Range(min=1, max=100_000))


class NoQuerySchema(Schema):
    """An admin read that takes no query parameter: any given is named in a 400, as on every
    admin read (marshmallow refuses unknown fields)."""


class ThrottleQuerySchema(Schema):
    since = fields.String(
        load_default="",
        metadata={"description": "The last `key_id` seen: counters of later key ids."},
    )
    limit = fields.Integer(
        load_default=1000,
        validate=validate.Range(min=1, max=100_000),
        metadata={"description": "At most this many keys (all their tiers) per page."},
    )


class SharingsQuerySchema(PageQuerySchema):
    campaign_id = fields.String(load_default=None)
    email = fields.String(load_default=None)
    phone_number = fields.String(
        load_default=None,
        metadata={"description": "SMS sharings to this number, compared as normalised."},
    )


class ContactsQuerySchema(PageQuerySchema):
    email = fields.String(load_default=None)
    external_id = fields.String(load_default=None)
    phone_number = fields.String(load_default=None)  # compared as normalised (contacts.py)


class ClockChangeSchema(Schema):
    """`POST /__mock/clock`: set or advance, frozen there unless a rate is given (SPEC 2.2)."""

    class Meta:
        unknown = RAISE

    set = JsonNumber(
        validate=validate.Range(min=-CLOCK_BOUND, max=CLOCK_BOUND),
        metadata={"description": "Unix seconds to move to. Not with `advance`."},
    )
    advance = JsonNumber(
        validate=validate.Range(min=-CLOCK_BOUND, max=CLOCK_BOUND),
        metadata={
            "description": "Seconds to move forward (or back). Not with `set`; the clock it "
            "leads to must also lie within ±10^11 s."
        },
    )
    rate = JsonNumber(
        validate=validate.Range(min=0, max=MAX_CLOCK_RATE),
        metadata={"description": "How fast it runs on from there; 0 (frozen) by default."},
    )

    @validates_schema
    def set_or_advance(self, data: dict[str, Any], **_: Any) -> None:
        if "set" in data and "advance" in data:
            raise ValidationError("give set or advance, not both")


class ClockSchema(Answer):
    now = fields.Float()
    rate = fields.Float()


# -- issue 10-11's admin answers (SPEC 1.2, 1.7, 1.8): what `/openapi.json` states of them ----


def _nullable(description: str = "") -> fields.String:
    return fields.String(
        allow_none=True, metadata={"description": description} if description else {}
    )


class OutboxMessageSchema(Answer):
    """One message of `GET /__mock/outbox`: its content, rendered, and its delivery state."""

    id = fields.Integer()
    sharing_id = fields.Integer()
    campaign_id = fields.String()
    channel = fields.String(metadata={"description": "email or sms."})
    provider = fields.String(metadata={"description": "outbox, smtp or http."})
    sender = fields.String(data_key="from", metadata={"description": "An address, or a sender id."})
    to = fields.String(metadata={"description": "An address, or the number as sent."})
    subject = _nullable("None: left to the provider; always null for sms.")
    text = _nullable("null when the campaign's templates fail (status failed).")
    html = _nullable("Empty for sms; null when the templates fail.")
    link = fields.String(metadata={"description": "The survey link; for sms the short link."})
    status = fields.String(metadata={"description": "queued, sending, sent, failed or captured."})
    attempts = fields.Integer()
    last_error = _nullable()
    created_at = fields.Float(metadata={"description": "The request's instant (emulator clock)."})
    sent_at = fields.Float(allow_none=True)


class OutboxPageSchema(PageSchema):
    messages = fields.List(fields.Nested(OutboxMessageSchema))


class FlushedSchema(StatusSchema):
    statuses = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "By status."}
    )
    pending = fields.Integer(metadata={"description": "Still queued or sending: 0 once settled."})


class ContactSchema(Answer):
    id = fields.Integer()
    external_id = _nullable()
    email = _nullable()
    phone_number = _nullable()
    name = _nullable()
    custom_attributes = fields.Dict()
    sharings = fields.List(fields.Integer(), metadata={"description": "Its sharings' ids."})
    first_shared_at = fields.Float(allow_none=True)
    last_shared_at = fields.Float(allow_none=True)


class ContactsPageSchema(PageSchema):
    contacts = fields.List(fields.Nested(ContactSchema))


class WorkflowRunSchema(Answer):
    at = fields.Float(metadata={"description": "The run's instant (emulator clock)."})
    trigger = fields.String(metadata={"description": "schedule or manual."})
    status = fields.String(metadata={"description": "ok or refused."})
    count = fields.Integer(allow_none=True, metadata={"description": "ok: recipients shared."})
    code = fields.Integer(allow_none=True, metadata={"description": "refused: the catalogue's."})
    reason = _nullable()


class WorkflowShownSchema(Answer):
    name = fields.String()
    campaign = fields.String()
    schedule = fields.String(metadata={"description": "Cron, five fields."})
    source = fields.String(metadata={"description": "The CSV file's path."})
    next_run = fields.Float(allow_none=True, metadata={"description": "null: none ahead."})
    runs = fields.List(fields.Nested(WorkflowRunSchema))
    runs_dropped = fields.Integer()


class WorkflowsSchema(Answer):
    workflows = fields.List(fields.Nested(WorkflowShownSchema))


class WorkflowRanSchema(StatusSchema):
    run = fields.Nested(WorkflowRunSchema)
