"""Survey links (SPEC 1.7): `<public_url>/s/<token>`, with `?responses=` when the request gave
`built_in_responses`.

A token is the sharing's id and a MAC of it under the store's secret, so it cannot be guessed and
needs no table to be read back: `GET /s/<token>` finds its sharing from the token alone.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

ID_BYTES = 8
MAC_BYTES = 16  # 128 bits: unguessable
TOKEN_CHARS = 32  # base64url of 24 bytes, no padding needed


@dataclass(frozen=True)
class LinkMaker:
    """Makes and reads survey links; one per emulator, its secret shared by every worker."""

    public_url: str  # no trailing slash
    secret: bytes

    def token(self, sharing_id: int) -> str:
        raw = sharing_id.to_bytes(ID_BYTES, "big")
        return base64.urlsafe_b64encode(raw + self._mac(raw)).decode()

    def sharing_id(self, token: str) -> int | None:
        """The sharing a token names, or None when it is not one of ours."""
        if len(token) != TOKEN_CHARS:
            return None
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return None
        head, mac = raw[:ID_BYTES], raw[ID_BYTES:]
        if not hmac.compare_digest(mac, self._mac(head)):
            return None
        return int.from_bytes(head, "big")

    def survey_link(
        self, sharing_id: int, responses: Mapping[str, Any], schema: Mapping[str, str]
    ) -> str:
        return self.link(sharing_id, responses_query(responses, schema))

    def link(self, sharing_id: int, query: str) -> str:
        """A sharing's link with its `responses_query` already made (a batch shares one)."""
        return f"{self.public_url}/s/{self.token(sharing_id)}{query}"

    def _mac(self, raw: bytes) -> bytes:
        return hmac.digest(self.secret, raw, "sha256")[:MAC_BYTES]  # one-shot: 3x hmac.new


def response_items(responses: Mapping[str, Any], schema: Mapping[str, str]) -> list[dict[str, Any]]:
    """`built_in_responses` as Pisano's link carries them, in the body's key order: an `option`
    question's value is its `option_key`, any other's its `body`; each value as sent."""
    return [
        {"question_key": key, ("option_key" if schema.get(key) == "option" else "body"): value}
        for key, value in responses.items()
    ]


def responses_query(responses: Mapping[str, Any], schema: Mapping[str, str]) -> str:
    """What follows a link's token: `?responses=...`, or nothing without responses."""
    return f"?responses={encode_responses(responses, schema)}" if responses else ""


def encode_responses(responses: Mapping[str, Any], schema: Mapping[str, str]) -> str:
    """Standard base64 (RFC 4648, padded) of the UTF-8 JSON array, then percent-encoded."""
    text = base64.b64encode(orjson.dumps(response_items(responses, schema))).decode("ascii")
    return quote(text, safe="")


def decode_responses(value: str) -> list[dict[str, Any]]:
    """What `encode_responses` wrote, already percent-decoded (as a query string parser gives
    it). Raises ValueError when it is not base64 of a JSON array."""
    items = orjson.loads(base64.b64decode(value.encode("ascii"), validate=True))
    if not isinstance(items, list):
        raise ValueError("responses: not a JSON array")
    return items
