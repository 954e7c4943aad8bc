"""Pisano's error catalogue: one table, one exception type, one renderer.

Every row is copied from the seed's "API Response Codes" table byte for byte, typos included
("An error occured", "identitiy"). Nothing else in the package builds error bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import orjson


class CatalogueEntry(NamedTuple):
    http_status: int
    status: str
    message: str


CATALOGUE: dict[int, CatalogueEntry] = {
    13000: CatalogueEntry(400, "bad_request", "An error occured"),
    13001: CatalogueEntry(401, "unauthorized", "Wrong authentication token"),
    13002: CatalogueEntry(404, "NOT_FOUND", "Requested resource not found!"),
    13003: CatalogueEntry(404, "not_found", "Reset Token not found"),
    13005: CatalogueEntry(404, "not_found", "This node, nor any of their parent has any flow"),
    13007: CatalogueEntry(403, "forbidden", "It's not allowed to update Pisano node"),
    13008: CatalogueEntry(400, "bad_request", "Record could not be deleted"),
    13009: CatalogueEntry(400, "bad_request", "Updated question already has responses"),
    13010: CatalogueEntry(404, "not_found", "User not found"),
    13011: CatalogueEntry(401, "unauthorized", "User is inactive"),
    13012: CatalogueEntry(409, "conflict", "Password does not match the old password"),
    13013: CatalogueEntry(403, "forbidden", "Permission denied"),
    13014: CatalogueEntry(400, "bad_request", "Wrong activation code"),
    13015: CatalogueEntry(400, "bad_request", "Required field not present in params!"),
    13016: CatalogueEntry(404, "not_found", "Token not found"),
    13017: CatalogueEntry(400, "bad_request", "Duplicate value"),
    13018: CatalogueEntry(404, "not_found", "Response not found"),
    13019: CatalogueEntry(404, "not_found", "Activation token not found"),
    13020: CatalogueEntry(
        400, "bad_request", "You selected a reserved node type. Please choose another one."
    ),
    13024: CatalogueEntry(
        400, "bad_request", "Multiple responses given for a non-multiple choice question"
    ),
    13026: CatalogueEntry(400, "bad_request", "Captcha is invalid"),
    13028: CatalogueEntry(400, "bad_request", "Invalid parameters"),
    13029: CatalogueEntry(400, "bad_request", "Invalid security hash"),
    13030: CatalogueEntry(400, "bad_request", "Invalid authentication token"),
    13031: CatalogueEntry(400, "bad_request", "Invalid proxy server parameters"),
    13032: CatalogueEntry(409, "conflict", "Wrong credentials"),
    13033: CatalogueEntry(400, "bad_request", "Invalid SDK credentials"),
    13034: CatalogueEntry(400, "bad_request", "Invalid Flow"),
    13035: CatalogueEntry(404, "not_found", "Node not found"),
    13036: CatalogueEntry(403, "forbidden", "Account locked"),
    13037: CatalogueEntry(400, "bad_request", "Malformatted CSV"),
    13038: CatalogueEntry(
        400, "bad_request", "Required customer identitiy keys not present in params!"
    ),
}

# SPEC 1.4: Rails' `render json:` sends this Content-Type with compact JSON and no trailing newline.
ERROR_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass
class PisanoError(Exception):
    """The one way to refuse a request: a catalogue code and the reason a user can act on."""

    code: int
    reason: str = ""

    def __post_init__(self) -> None:
        if self.code not in CATALOGUE:
            raise ValueError(f"{self.code} is not in Pisano's catalogue")
        super().__init__(self.code, self.reason)

    @property
    def entry(self) -> CatalogueEntry:
        return CATALOGUE[self.code]


def render_body(code: int) -> bytes:
    """The exact bytes Pisano sends for a catalogue entry: compact JSON, keys in this order."""
    entry = CATALOGUE[code]
    return orjson.dumps({"status": entry.status, "code": code, "message": entry.message})
