"""Hypothesis properties against a live server: valid bodies are recorded exactly; any single
corruption gets the catalogue entry SPEC 1.4 names, never a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from contracts.strategies import CORRUPTIONS, corruptions, email_sharing_bodies
from mockserver.settings import load_settings

ACME_SCHEMA = load_settings().fixture["accounts"]["acme"]["customer_schema"]


@given(
    body=email_sharing_bodies(min_recipients=1, max_recipients=6000, customer_schema=ACME_SCHEMA)
)
def test_valid_bodies_are_recorded_exactly(live, body):
    api, pisano_mock = live
    pisano_mock.reset()
    event(f"recipients: {'> 5000' if len(body['emails']) > 5000 else '<= 5000'}")
    response = api.post(body)
    assert response.status_code == 200, response.headers.get("X-Pisano-Mock-Reason")
    sharings = pisano_mock.sharings()
    assert [s["email"] for s in sharings] == body["emails"]
    for sharing in sharings:
        email = sharing["email"]
        assert sharing["custom_attributes"] == body["custom_attributes"].get(email, {})
        assert sharing["transactional_data"] == body["transactional_data"].get(email, {})
        assert sharing["built_in_responses"] == body.get("built_in_responses", {})
    assert response.json()["count"] == len(body["emails"])


@given(
    body=email_sharing_bodies(min_recipients=1, max_recipients=30, customer_schema=ACME_SCHEMA),
    corruption=corruptions(),
)
def test_any_single_corruption_gets_the_named_entry(live, body, corruption):
    api, pisano_mock = live
    pisano_mock.reset()
    corrupted = corruption.apply(body)
    data = corrupted if isinstance(corrupted, bytes) else json.dumps(corrupted).encode()
    response = api.post(data=data)
    assert response.status_code < 500
    assert response.json()["code"] == corruption.code, (
        corruption.name,
        response.headers.get("X-Pisano-Mock-Reason"),
    )
    assert pisano_mock.sharings() == []


# Which schema types accept each value, written from SPEC 1.1 (not from the code's checks): a float
# is any JSON number; a date is `YYYY-MM-DD` and a date time `YYYY-MM-DD HH:MM:SS`, real days only;
# an option key (SPEC 1.7) a string or an integer.
ACCEPTED_BY = [
    (None, set()),
    ({"a": 1}, set()),
    ("x", {"string", "option"}),
    ("7", {"string", "option"}),
    (1.5, {"float"}),
    (3, {"integer", "float", "option"}),
    (-0.0, {"float"}),
    (True, {"boolean"}),
    ([1], {"list"}),
    ("2024-02-29", {"string", "date", "option"}),
    ("2023-02-29", {"string", "option"}),
    ("2024-01-02 10:00:00", {"string", "datetime", "option"}),
    ("2024-01-02T10:00:00", {"string", "option"}),
    ("2024-13-02 10:00:00", {"string", "option"}),
]


@pytest.mark.parametrize(("value", "accepted_by"), ACCEPTED_BY, ids=repr)
def test_built_in_responses_are_typed_by_the_customer_schema(live, value, accepted_by):
    api, pisano_mock = live
    pisano_mock.reset()
    for key, schema_type in sorted(ACME_SCHEMA.items()):
        body = {"emails": ["a@example.com"], "built_in_responses": {key: value}}
        response = api.post(body)
        expected = 200 if schema_type in accepted_by else 400
        assert response.status_code == expected, (key, schema_type, response.headers)
        if expected == 400:
            assert response.json()["code"] == 13028


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda c: c.name)
def test_every_corruption_is_exercised(live, corruption):
    # Each one applied for real, not counted by name: it changes a valid body, and the emulator
    # answers the code it names.
    api, pisano_mock = live
    pisano_mock.reset()
    body = {
        "emails": ["a@example.com", "b@example.com"],
        "custom_attributes": {"a@example.com": {"name": "A"}},
        "transactional_data": {"b@example.com": {"Segment": "x"}},
        "built_in_responses": {"NPS": 9},
    }
    assert api.post(body).status_code == 200
    corrupted = corruption.apply(body)
    assert corrupted != body
    data = corrupted if isinstance(corrupted, bytes) else json.dumps(corrupted).encode()
    response = api.post(data=data)
    assert response.json()["code"] == corruption.code, response.headers.get("X-Pisano-Mock-Reason")
    assert len(pisano_mock.sharings()) == 2


def test_corruptions_are_many_and_distinct():
    assert len({c.name for c in CORRUPTIONS}) == len(CORRUPTIONS) >= 15


@given(
    body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "",
            "multipart/form-data",
        ]
    ),
    authorization=st.sampled_from(["Token token=test-token", "Bearer test-token", "", "Basic x"])
    | st.text(st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=40),
)
def test_any_bytes_get_a_catalogued_answer(live, body, content_type, authorization):
    api, pisano_mock = live
    pisano_mock.reset()
    headers = {"Content-Type": content_type, "Authorization": authorization}
    response = api.post(data=body, headers=headers)
    assert response.status_code in (200, 400, 401, 403, 404)
    if response.status_code != 200:
        payload = response.json()
        assert set(payload) == {"status", "code", "message"}
    assert pisano_mock.requests()[-1]["status"] == response.status_code
