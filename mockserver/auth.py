"""Authentication: which Authorization header forms carry a token (SPEC 1.1), and whose it is."""

from __future__ import annotations

import re

from .catalogue import PisanoError
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


def mask_token(token: str) -> str:
    """Enough of a token to recognise it in a log, never enough to reuse it."""
    if len(token) <= 6:
        return "*" * len(token)
    return token[:3] + "*" * (len(token) - 6) + token[-3:]


def mask_authorization(header: str, forms: tuple[str, ...]) -> str:
    token = token_from_header(header, forms)
    if token is None:
        return mask_token(header)
    return header.replace(token, mask_token(token))
