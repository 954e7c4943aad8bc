"""Survey links (SPEC 1.7): `<public_url>/s/<token>`, with `?responses=` when the request gave
`built_in_responses`.

A token is the sharing's id and a MAC of it under the store's secret, so it cannot be guessed and
needs no table to be read back: `GET /s/<token>` finds its sharing from the token alone.

A short link (SPEC 1.7: an SMS carries one) is `<public_url>/l/<code>`, read back the same way:
the code is the sharing's id in base62 and 8 base62 characters of a MAC of it (`SHORT_MAC_CHARS`).
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
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# 62**8 ~ 2.2e14 codes per sharing id (~47.6 bits): a guesser at 10,000 requests a second needs
# ~350 years on average to hit one sharing's code; and an SMS stays short (a 6-digit id: 12 chars).
SHORT_MAC_CHARS = 8
SHORT_DOMAIN = b"short:"  # the short code's MAC never equals a token's, under the same secret


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

    def short_code(self, sharing_id: int) -> str:
        return to_base62(sharing_id) + self._short_mac(sharing_id)

    def short_link(self, sharing_id: int) -> str:
        """`<public_url>/l/<code>`: `GET` on it redirects to the sharing's survey link."""
        return f"{self.public_url}/l/{self.short_code(sharing_id)}"

    def short_sharing_id(self, code: str) -> int | None:
        """The sharing a short code names, or None when it is not one of ours."""
        head, mac = code[:-SHORT_MAC_CHARS], code[-SHORT_MAC_CHARS:]
        sharing_id = from_base62(head)
        if sharing_id is None or to_base62(sharing_id) != head:  # one code per sharing
            return None
        if not hmac.compare_digest(mac.encode(), self._short_mac(sharing_id).encode()):
            return None
        return sharing_id

    def survey_link(
        self, sharing_id: int, responses: Mapping[str, Any], schema: Mapping[str, str]
    ) -> str:
        return self.link(sharing_id, responses_query(responses, schema))

    def link(self, sharing_id: int, query: str) -> str:
        """A sharing's link with its `responses_query` already made (a batch shares one)."""
        return f"{self.public_url}/s/{self.token(sharing_id)}{query}"

    def _mac(self, raw: bytes) -> bytes:
        return hmac.digest(self.secret, raw, "sha256")[:MAC_BYTES]  # one-shot: 3x hmac.new

    def _short_mac(self, sharing_id: int) -> str:
        raw = SHORT_DOMAIN + sharing_id.to_bytes(ID_BYTES, "big")
        number = int.from_bytes(hmac.digest(self.secret, raw, "sha256")[:8], "big")
        return to_base62(number % 62**SHORT_MAC_CHARS).rjust(SHORT_MAC_CHARS, BASE62[0])


def to_base62(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 62)
        digits = BASE62[digit] + digits
        if not number:
            return digits


def from_base62(text: str) -> int | None:
    """A base62 number up to a sharing id's size, or None (empty, a foreign character, too big)."""
    if not text or len(text) > 11 or any(char not in BASE62 for char in text):
        return None
    number = 0
    for char in text:
        number = number * 62 + BASE62.index(char)
    return number if number < 2 ** (8 * ID_BYTES) else None


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
