"""The fast path and a plain marshmallow load agree on every generated body: accept or refuse,
and the code."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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
    return st.one_of(valid, corrupted, junk)


@given(data=bodies(), strict=st.booleans())
def test_fast_path_agrees_with_marshmallow(data, strict):
    context = RuleContext(customer_schema=ACME_SCHEMA, strict_batch_limit=strict)
    assert fast_code(data, context) == reference_load(EmailSharingSchema, data, context)


@given(value=st.text(max_size=40) | st.from_regex(r"[^@\s]{1,10}@[^@\s]{1,12}", fullmatch=True))
def test_is_email_agrees_with_marshmallow_email(value):
    from marshmallow import ValidationError, validate

    try:
        validate.Email()(value)
        expected = True
    except ValidationError:
        expected = False
    assert is_email(value) == expected
