"""The endpoints a client may call (SPEC 1.1, 1.5, 1.6), as the kit sees them: one table.

Each says where a client posts, what the customers file holds, how one customer is known again
in the journal (its key), what of it must arrive, and how many customers one request may carry.
The checks ask the endpoint of the example, never the endpoint's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .expectations import (
    BATCH_LIMIT,
    DEFAULT_CAMPAIGN,
    DEFAULT_LINK_CHANNEL,
    DEFAULT_SMS_CAMPAIGN,
    IDENTITY_KEYS,
    LINK_IDENTITY_KEYS,
)

# SPEC 1.5: what is removed before counting a number's digits (and one leading "+").
_NUMBER_NOISE = re.compile(r"[\s\-().]")


def normal_number(number: str) -> str:
    """A phone number as SPEC 1.5 compares two: without spaces, `-`, `(`, `)`, `.`, leading `+`."""
    stripped = _NUMBER_NOISE.sub("", number)
    return stripped[1:] if stripped.startswith("+") else stripped


def _kept(values: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The identity fields that must arrive: a null or empty one may be left out (SPEC 3)."""
    return {k: values[k] for k in keys if values.get(k) not in (None, "")}


def _body(entry: dict[str, Any]) -> dict[str, Any]:
    body = entry.get("body")
    return body if isinstance(body, dict) else {}


def _listed(entry: dict[str, Any], field: str) -> list[str]:
    """The recipients a list field of a request names (a form's single string is one item)."""
    values = _body(entry).get(field)
    if isinstance(values, str):
        return [values]
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def link_key(customer: Any) -> str:
    """A link customer known again (SPEC 1.2's matching order: external_id, email, phone_number,
    then name): the first identity key it holds, with its value."""
    if not isinstance(customer, dict):
        return ""
    for key in LINK_IDENTITY_KEYS:
        if customer.get(key) not in (None, ""):
            return f"{key}={customer[key]}"
    return ""


@dataclass(frozen=True)
class Endpoint:
    name: str  # --endpoint
    path: re.Pattern[str]  # the documented path (SPEC 1.1, 1.5, 1.6)
    path_of: Callable[[str], str]  # the path for a campaign / link channel id
    target_id: str  # the default fixture's campaign or link channel
    id_variable: str  # the variable that hands the client `target_id`
    fault_prefix: str  # a fault matching this path prefix hits the client's requests
    batch_limit: int  # customers per request at most (1 for links: one call per customer)
    recipients_of: Callable[[dict[str, Any]], list[str]]  # a journal entry's customers, as keys
    key_of: Callable[[dict[str, Any]], str]  # a file customer's key
    sent_fields: Callable[[dict[str, Any]], dict[str, Any]]  # what must arrive of a customer
    # Each customer an accepted request delivered, by key, with what arrived of it.
    arrived: Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]]]
    file_holds: str  # the customers file, in words (help, README)
    same: Callable[[str], str] = str  # two keys name one customer when these are equal

    @property
    def batches(self) -> bool:
        """Whether a request can carry many customers (then the 5000 limit applies)."""
        return self.batch_limit > 1


def _email_fields(customer: dict[str, Any]) -> dict[str, Any]:
    return {
        "custom_attributes": _kept(customer, IDENTITY_KEYS),
        "transactional_data": customer.get("transactional_data") or {},
    }


def _email_arrived(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return _keyed_arrivals(entry, "emails", str, IDENTITY_KEYS)


def _keyed_arrivals(
    entry: dict[str, Any], field: str, key: Callable[[str], str], identity: tuple[str, ...]
) -> list[tuple[str, dict[str, Any]]]:
    """Per recipient of a list endpoint: its attributes and data keyed by it as sent."""
    body = _body(entry)
    attributes, data = body.get("custom_attributes"), body.get("transactional_data")
    attributes = attributes if isinstance(attributes, dict) else {}
    data = data if isinstance(data, dict) else {}
    return [
        (
            key(sent),
            {
                "custom_attributes": _kept(attributes.get(sent) or {}, identity),
                "transactional_data": data.get(sent) or {},
            },
        )
        for sent in _listed(entry, field)
    ]


SMS_ATTRIBUTE_KEYS = ("name", "external_id", "email")  # the number itself is the key


def _sms_fields(customer: dict[str, Any]) -> dict[str, Any]:
    return {
        "custom_attributes": _kept(customer, SMS_ATTRIBUTE_KEYS),
        "transactional_data": customer.get("transactional_data") or {},
    }


def _sms_arrived(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return _keyed_arrivals(entry, "phone_numbers", normal_number, SMS_ATTRIBUTE_KEYS)


def link_customer(customer: dict[str, Any]) -> dict[str, Any]:
    """The `customer` object of a customers-file entry: every key but its transactional data,
    a null or empty identity key left out (it may be omitted)."""
    return {
        k: v
        for k, v in customer.items()
        if k != "transactional_data" and not (k in LINK_IDENTITY_KEYS and v in (None, ""))
    }


def _link_fields(customer: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer": link_customer(customer),
        "transactional_data": customer.get("transactional_data") or {},
    }


def _link_arrived(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    body = _body(entry)
    customer = body.get("customer")
    if not isinstance(customer, dict) or not link_key(customer):
        return []
    data = body.get("transactional_data")
    fields = {**customer, "transactional_data": data if isinstance(data, dict) else {}}
    return [(link_key(customer), _link_fields(fields))]


def _link_recipients(entry: dict[str, Any]) -> list[str]:
    key = link_key(_body(entry).get("customer"))
    return [key] if key else []


EMAIL = Endpoint(
    name="email",
    path=re.compile(r"/v1/email_campaigns/(?P<campaign_id>[^/]+)/email_sharings/?\Z"),
    path_of=lambda campaign: f"/v1/email_campaigns/{campaign}/email_sharings",
    target_id=DEFAULT_CAMPAIGN,
    id_variable="PISANO_CAMPAIGN_ID",
    fault_prefix="/v1/",
    batch_limit=BATCH_LIMIT,
    recipients_of=lambda entry: _listed(entry, "emails"),
    key_of=lambda customer: customer["email"],
    sent_fields=_email_fields,
    arrived=_email_arrived,
    file_holds='{"email", "name", "external_id", "phone_number", "transactional_data"} '
    "(email always there, unique case-insensitively)",
    same=str.lower,
)
SMS = Endpoint(
    name="sms",
    path=re.compile(r"/v1/sms_campaigns/(?P<campaign_id>[^/]+)/sms_sharings/?\Z"),
    path_of=lambda campaign: f"/v1/sms_campaigns/{campaign}/sms_sharings",
    target_id=DEFAULT_SMS_CAMPAIGN,
    id_variable="PISANO_CAMPAIGN_ID",
    fault_prefix="/v1/",
    batch_limit=BATCH_LIMIT,
    recipients_of=lambda entry: [normal_number(n) for n in _listed(entry, "phone_numbers")],
    key_of=lambda customer: normal_number(customer["phone_number"]),
    sent_fields=_sms_fields,
    arrived=_sms_arrived,
    file_holds='{"phone_number", "name", "external_id", "email", "transactional_data"} '
    "(phone_number always there, unique once spaces, -, (, ), . and a leading + are removed)",
)
LINK = Endpoint(
    name="link",
    path=re.compile(r"/external/v1/link_sharings/(?P<campaign_id>[^/]+)/generate_link/?\Z"),
    path_of=lambda channel: f"/external/v1/link_sharings/{channel}/generate_link",
    target_id=DEFAULT_LINK_CHANNEL,
    id_variable="PISANO_LINK_CHANNEL_ID",
    fault_prefix="/external/v1/",
    batch_limit=1,
    recipients_of=_link_recipients,
    key_of=link_key,
    sent_fields=_link_fields,
    arrived=_link_arrived,
    file_holds="one link customer each: identity keys email, phone_number, name, external_id "
    "(strings; at least one), any other key a custom attribute, and transactional_data",
)

ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in (EMAIL, SMS, LINK)}


def endpoint_named(name: str) -> Endpoint:
    return ENDPOINTS[name]
