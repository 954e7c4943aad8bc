"""Authentication: which Authorization header forms carry a token (SPEC 1.1), and whose it is."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from .catalogue import PisanoError
from .headers import ADMIN_TOKEN
from .state import Account, Store

# One row per accepted form, in the order they are tried. Names are the `auth_forms` setting.
AUTH_FORM_PATTERNS: dict[str, re.Pattern[str]] = {
    "token_quoted": re.compile(r'Token token="([^"\s]+)"\Z'),  # Pisano's Java client
    "token": re.compile(r"Token token=([^\s\"]+)\Z"),  # Rails' documented form
    "token_space": re.compile(r"Token token= ([^\s\"]+)\Z"),  # the seed's own spelling
    "bearer": re.compile(r"Bearer ([^\s]+)\Z"),  # Pisano's Salesforce guide
    "bare": re.compile(r"([^\s]+)\Z"),  # the seed's cURL sample
}


def token_from_header(header: str | None, forms: tuple[str, ...]) -> str | None:
    """The token an Authorization header carries in one of `forms`, or None."""
    if not header:
        return None
    for form, pattern in AUTH_FORM_PATTERNS.items():
        if form in forms:
            match = pattern.match(header)
            if match:
                return match.group(1)
    return None


def authenticate(store: Store, header: str | None, forms: tuple[str, ...]) -> Account:
    """SPEC 1.4 rules 5-7: the account behind the header, or the catalogue entry that refuses."""
    token = token_from_header(header, forms)
    if token is None:
        shown = "absent" if header is None else "empty" if not header else "of no accepted form"
        raise PisanoError(13030, f"Authorization: header {shown} (accepted: {', '.join(forms)})")
    known = store.token(token)
    if known is None:
        raise PisanoError(13001, f"Authorization: token {mask_token(token)} is unknown")
    if not known.active:
        raise PisanoError(13011, f"Authorization: token {mask_token(token)} is of an inactive user")
    account = store.account(known.account)
    if account is None or account.locked:
        raise PisanoError(13036, f"Authorization: account {known.account!r} is locked")
    return account


# SPEC 2.6: a secret of at least this many characters shows its first and last three.
SHOWN_FROM_LENGTH = 10
MASK = "****"
# Always masked, whatever `mask_headers` says: they carry the API token or the admin token.
SECRET_HEADERS = ("authorization", ADMIN_TOKEN.lower())
# Credentials headers: masked keeping their form (`Bearer tes****ken`), not as one secret.
CREDENTIALS_HEADERS = ("authorization", "proxy-authorization")
# The schemes whose name may show: a first word that is none of these may be the secret itself.
KNOWN_SCHEMES = frozenset({"token", "bearer", "basic", "digest"})


def mask_token(token: str) -> str:
    """A secret as the emulator shows it anywhere (journal, throttle state, reasons, logs):
    enough to recognise it, never enough to reuse it (SPEC 2.6)."""
    if len(token) < SHOWN_FROM_LENGTH:
        return MASK
    return token[:3] + MASK + token[-3:]


TOKEN_ID_LENGTH = 16  # hex characters: 64 bits


def token_id(token: str, secret: bytes) -> str:
    """A request's token as the journal keeps it besides the masked header: a keyed hash under
    the store's secret (every worker's), so the inspector can find a token's requests (SPEC 2.7)
    while nobody can confirm a guessed token from the journal without the secret."""
    mac = hmac.new(secret, b"token-id:" + token.encode(), hashlib.sha256)
    return mac.hexdigest()[:TOKEN_ID_LENGTH]


def mask_authorization(header: str, forms: tuple[str, ...]) -> str:
    """An Authorization header with its credentials masked and its form kept."""
    token = token_from_header(header, forms)
    if token is not None:  # every form ends with the token, but for a closing quote
        start = header.rfind(token)
        return header[:start] + mask_token(token) + header[start + len(token) :]
    scheme, space, credentials = header.partition(" ")
    if space and scheme.lower() in KNOWN_SCHEMES:
        return f"{scheme} {mask_token(credentials)}"
    return mask_token(header)  # no scheme we know: the whole value may be the secret


def mask_headers(
    headers: Iterable[tuple[str, str]], forms: tuple[str, ...], masked: Iterable[str]
) -> dict[str, str]:
    """Request headers as shown: (Proxy-)Authorization, the admin token and every header named
    in `masked` (the `mask_headers` setting, case-insensitive) masked; the others as sent."""
    secret = {*SECRET_HEADERS, *(name.lower() for name in masked)}
    shown = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered in CREDENTIALS_HEADERS:
            shown[name] = mask_authorization(value, forms)
        else:
            shown[name] = mask_token(value) if lowered in secret else value
    return shown
