"""The fast path and a plain marshmallow load agree on every generated body: accept or refuse,
and the code."""

from __future__ import annotations

from hypothesis import find, given
from hypothesis import strategies as st
from marshmallow import ValidationError, validate

from contracts.strategies import corruptions, email_sharing_bodies
from mockserver.catalogue import PisanoError
from mockserver.rules import RuleContext
from mockserver.schemas import EmailSharingSchema
from mockserver.settings import load_settings
from mockserver.validation import email_sharing_loader, is_email, reference_load

ACME_SCHEMA = load_settings().fixture["accounts"]["acme"]["customer_schema"]
CONTEXT = RuleContext(customer_schema=ACME_SCHEMA)


def fast_code(data, context=CONTEXT) -> int:
    try:
        email_sharing_loader.load(data, context)
    except PisanoError as error:
        return error.code
    return 0


# Addresses near the line: plausible shapes (leading, trailing or doubled dots, hyphens at a label's
# edge, one-letter or digit TLDs), one-character edits of them, and known corner cases. The audit
# found the former strategy never drew a valid address, so a fast path accepting `a@b.c` passed.
_LOCAL = st.from_regex(r"[A-Za-z0-9._%+'-]{1,10}", fullmatch=True)
_LABEL = st.from_regex(r"[A-Za-z0-9-]{1,8}", fullmatch=True)
_PLAUSIBLE = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    _LOCAL,
    st.lists(_LABEL, max_size=3),
    st.from_regex(r"[A-Za-z0-9-]{1,8}", fullmatch=True),
)
_EDITED = st.builds(
    lambda email, at, char, insert: (
        email[:at] + char + email[at:] if insert else email[:at] + email[at + 1 :]
    ),
    _PLAUSIBLE,
    st.integers(0, 30),
    st.sampled_from(list('@.-_ "ş[]\n')),
    st.booleans(),
)
_CORNERS = st.sampled_from(
    [
        "a@b.c",
        "a@b.co",
        "a@localhost",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "a@-b.com",
        "a@b-.com",
        "a@b.c0m",
        "a@123.com",
        "a@[127.0.0.1]",
        '"a b"@example.com',
        "ş@example.com",
        "a@exämple.com",
        "a@example.com.",
        "A+b@Example.COM",
    ]
)
EMAILS = _PLAUSIBLE | _EDITED | _CORNERS


def marshmallow_accepts(value: str) -> bool:
    try:
        validate.Email()(value)
    except ValidationError:
        return False
    return True


def bodies():
    valid = email_sharing_bodies(min_recipients=1, max_recipients=5500, customer_schema=ACME_SCHEMA)
    corrupted = st.builds(
        lambda body, corruption: corruption.apply(body),
        email_sharing_bodies(max_recipients=20, customer_schema=ACME_SCHEMA),
        corruptions(),
    ).filter(lambda data: isinstance(data, dict))
    junk = st.dictionaries(
        st.sampled_from(
            ["emails", "custom_attributes", "transactional_data", "built_in_responses"]
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=30),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=10), inner, max_size=3)
            ),
            max_leaves=8,
        ),
    )
    near_line = st.lists(EMAILS, min_size=1, max_size=5).map(lambda emails: {"emails": emails})
    return st.one_of(valid, corrupted, junk, near_line)


@given(data=bodies(), strict=st.booleans())
def test_fast_path_agrees_with_marshmallow(data, strict):
    context = RuleContext(customer_schema=ACME_SCHEMA, strict_batch_limit=strict)
    assert fast_code(data, context) == reference_load(EmailSharingSchema, data, context)


@given(value=st.text(max_size=40) | EMAILS)
def test_is_email_agrees_with_marshmallow_email(value):
    assert is_email(value) == marshmallow_accepts(value)


@given(emails=st.lists(EMAILS, min_size=1, max_size=5))
def test_fast_path_agrees_with_marshmallow_on_addresses_near_the_line(emails):
    data = {"emails": emails}
    assert fast_code(data) == reference_load(EmailSharingSchema, data, CONTEXT)


def test_the_address_strategy_draws_both_outcomes():
    # Both answers must be reachable, and the plain fast path must be crossed both ways.
    find(EMAILS, lambda email: marshmallow_accepts(email) and "-" in email.split("@")[1])
    find(EMAILS, lambda email: not marshmallow_accepts(email) and email.count("@") == 1)
    find(EMAILS, lambda email: not marshmallow_accepts(email) and email.endswith(tuple("abc")))
