"""What the kit holds clients and servers to, stated here from Pisano's page and SPEC — on purpose
NOT imported from `mockserver`, so that the kit is an independent witness of the emulator too."""

from __future__ import annotations

import re

# SPEC 2.1's default fixture: the token and campaign a client is handed by the kit and the plugin.
DEFAULT_TOKEN = "test-token"
DEFAULT_CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
DEFAULT_SMS_CAMPAIGN = "00000000-0000-4000-8000-000000000501"  # SPEC 1.5
DEFAULT_LINK_CHANNEL = "00000000-0000-4000-8000-000000000701"  # SPEC 1.6
ALIGNED = 1_000_000_000.0  # a multiple of every tier's period (5, 25, 125, 625 s)
BATCH_LIMIT = 5000
IDENTITY_KEYS = ("name", "external_id", "phone_number")
# SPEC 1.6's identity keys of a link customer, in SPEC 1.2's contact-matching order.
LINK_IDENTITY_KEYS = ("external_id", "email", "phone_number", "name")
# The default fixture's customer schema (account acme): what types `built_in_responses` (SPEC 1.1),
# and where a question is an `option`, its link says `option_key` instead of `body` (SPEC 1.7).
DEFAULT_CUSTOMER_SCHEMA = {
    "NPS": "integer",
    "Satisfied": "boolean",
    "Score": "float",
    "Comment": "string",
    "Tags": "list",
    "VisitDate": "date",
    "VisitTime": "datetime",
    "Channel": "option",
}
# SPEC 1.1: the Authorization forms Pisano accepts (checked on the journal's masked header, whose
# masking keeps a token's characters non-blank).
AUTH_FORMS = (
    re.compile(r'Token token="[^"\s]+"\Z'),
    re.compile(r"Token token= ?[^\s\"]+\Z"),
    re.compile(r"Bearer [^\s]+\Z"),
    re.compile(r"[^\s]+\Z"),
)
THROTTLE_TIERS = ((20, 5), (40, 25), (80, 125), (160, 625))
THROTTLED_BODY = b"Retry later\n"
ERROR_CONTENT_TYPE = "application/json; charset=utf-8"

# The entries the server suite provokes: (HTTP status, status word, message), from the seed.
CATALOGUE_CHECKED = {
    13000: (400, "bad_request", "An error occured"),
    13001: (401, "unauthorized", "Wrong authentication token"),
    13002: (404, "NOT_FOUND", "Requested resource not found!"),
    13015: (400, "bad_request", "Required field not present in params!"),
    13017: (400, "bad_request", "Duplicate value"),
    13028: (400, "bad_request", "Invalid parameters"),
    13030: (400, "bad_request", "Invalid authentication token"),
    13035: (404, "not_found", "Node not found"),
    13038: (400, "bad_request", "Required customer identitiy keys not present in params!"),
}
# Catalogue entries a client must not retry (4xx), as the client suite scripts them.
NON_RETRYABLE = (13001, 13002, 13011, 13013, 13028, 13036)


def error_body(code: int) -> bytes:
    _, word, message = CATALOGUE_CHECKED[code]
    return f'{{"status":"{word}","code":{code},"message":"{message}"}}'.encode()
