"""`GET /__mock/contacts` (SPEC 1.2): contacts matched by external_id, else email
(case-insensitively), else phone_number; found → updated, else created."""

from __future__ import annotations

import pytest

from mockserver.contacts import contacts_of
from mockserver.settings import Bounds


def sharing(sid: int, email: str, at: float = 0.0, **attributes: object) -> dict:
    return {"id": sid, "email": email, "custom_attributes": attributes, "accepted_at": at}


def test_the_same_email_in_any_case_is_one_contact():
    (contact,) = contacts_of([sharing(1, "A@example.com", 10), sharing(2, "a@EXAMPLE.com", 20)])
    assert contact["sharings"] == [1, 2]
    assert (contact["first_shared_at"], contact["last_shared_at"]) == (10, 20)
    assert contact["email"] == "a@EXAMPLE.com"  # the latest spelling


def test_external_id_matches_before_email():
    contacts = contacts_of(
        [
            sharing(1, "a@example.com", external_id="E1", name="Ann"),
            sharing(2, "new@example.com", external_id="E1"),
        ]
    )
    (contact,) = contacts
    assert contact["email"] == "new@example.com" and contact["name"] == "Ann"
    assert contact["sharings"] == [1, 2]


def test_a_changed_email_no_longer_finds_the_contact():
    contacts = contacts_of(
        [
            sharing(1, "old@example.com", external_id="E1"),
            sharing(2, "new@example.com", external_id="E1"),
            sharing(3, "old@example.com"),
        ]
    )
    assert [c["sharings"] for c in contacts] == [[1, 2], [3]]


def test_two_external_ids_are_two_customers_even_with_one_email():
    contacts = contacts_of(
        [
            sharing(1, "a@example.com", external_id="E1"),
            sharing(2, "a@example.com", external_id="E2"),
        ]
    )
    assert [(c["external_id"], c["sharings"]) for c in contacts] == [("E1", [1]), ("E2", [2])]


def test_an_email_without_external_id_joins_the_contact_and_gives_it_one():
    contacts = contacts_of(
        [sharing(1, "a@example.com"), sharing(2, "a@example.com", external_id="E9")]
    )
    assert [(c["external_id"], c["sharings"]) for c in contacts] == [("E9", [1, 2])]


def test_phone_number_matches_last():
    contacts = contacts_of(
        [
            sharing(1, "", phone_number="5551234567"),
            sharing(2, "", phone_number="5551234567", name="Bo"),
        ]
    )
    (contact,) = contacts
    assert contact["phone_number"] == "5551234567" and contact["name"] == "Bo"
    assert contact["email"] is None


def test_custom_attributes_merge_without_the_identity_fields():
    (contact,) = contacts_of(
        [
            sharing(1, "a@example.com", name="Ann", Tier="gold", City="Izmir"),
            sharing(2, "a@example.com", Tier="silver"),
        ]
    )
    assert contact["custom_attributes"] == {"Tier": "silver", "City": "Izmir"}
    assert contact["name"] == "Ann"


def test_an_empty_identity_value_matches_nothing():
    contacts = contacts_of(
        [sharing(1, "a@example.com", external_id=""), sharing(2, "b@example.com", external_id="")]
    )
    assert len(contacts) == 2


# -- SMS and link sharings (SPEC 1.2, 1.5, 1.6) ---------------------------------------------------


def sms(sid: int, number: str, at: float = 0.0, **attributes: object) -> dict:
    """An SMS sharing as `GET /__mock/sharings` shows it: the number as sent, its attributes."""
    shown = {"id": sid, "channel": "sms", "phone_number": number, "accepted_at": at}
    return {**shown, "custom_attributes": attributes}


def link(sid: int, at: float = 0.0, **customer: object) -> dict:
    """A link sharing as shown: `email` the customer's (or None), custom attributes its whole
    `customer` object (identity keys included)."""
    email = customer.get("email") or None
    shown = {"id": sid, "channel": "link", "email": email, "accepted_at": at}
    return {**shown, "custom_attributes": customer}


def test_an_sms_sharing_gives_its_contact_the_number():
    (contact,) = contacts_of([sms(1, "+90 532 000 00 01", name="Ayşe")])
    assert (contact["phone_number"], contact["name"], contact["email"]) == (
        "+90 532 000 00 01",
        "Ayşe",
        None,
    )
    assert contact["custom_attributes"] == {}


def test_numbers_equal_once_normalised_are_one_contact():
    numbers = ["+90 532 000 00 01", "90-532-000-0001", "(90) 532.000.0001"]
    (contact,) = contacts_of([sms(i, number) for i, number in enumerate(numbers, 1)])
    assert contact["sharings"] == [1, 2, 3]
    assert contact["phone_number"] == "(90) 532.000.0001"  # the latest spelling


def test_an_sms_matches_by_external_id_before_the_number():
    contacts = contacts_of(
        [sms(1, "5550000001", external_id="E1"), sms(2, "5550000002", external_id="E1")]
    )
    (contact,) = contacts
    assert (contact["phone_number"], contact["sharings"]) == ("5550000002", [1, 2])


def test_an_sms_is_not_matched_by_an_email_attribute():
    """SMS: external_id, else phone_number (the number is the recipient)."""
    contacts = contacts_of(
        [sharing(1, "a@example.com"), sms(2, "5550000001", email="a@example.com")]
    )
    assert [c["sharings"] for c in contacts] == [[1], [2]]


def test_an_sms_finds_the_email_contact_that_gave_its_number():
    contacts = contacts_of(
        [sharing(1, "a@example.com", phone_number="+1 555 000 0001"), sms(2, "15550000001")]
    )
    (contact,) = contacts
    assert (contact["email"], contact["phone_number"], contact["sharings"]) == (
        "a@example.com",
        "15550000001",
        [1, 2],
    )


def test_a_link_matches_by_external_id_then_email_then_number():
    contacts = contacts_of(
        [
            sharing(1, "a@example.com", external_id="E1"),
            sms(2, "5550000009"),
            link(3, external_id="E1"),
            link(4, email="A@EXAMPLE.com"),
            link(5, phone_number="555-000-0009", name="Bo"),
            link(6, name="Nobody"),
        ]
    )
    assert [c["sharings"] for c in contacts] == [[1, 3, 4], [2, 5], [6]]
    assert contacts[1]["name"] == "Bo"
    assert contacts[0]["custom_attributes"] == {}  # the customer's identity keys are fields


def test_a_links_other_customer_keys_are_custom_attributes():
    (contact,) = contacts_of([link(1, email="a@example.com", Tier="gold", name="Ann")])
    assert contact["custom_attributes"] == {"Tier": "gold"}
    assert (contact["email"], contact["name"]) == ("a@example.com", "Ann")


# -- the admin route ------------------------------------------------------------------------------


def test_contacts_of_the_sharings_held(api, pisano_mock):
    first = {
        "emails": ["a@example.com", "b@example.com"],
        "custom_attributes": {"a@example.com": {"name": "Ann", "external_id": "E1"}},
    }
    second = {
        "emails": ["A@example.com", "c@example.com"],
        "custom_attributes": {"c@example.com": {"external_id": "E1"}},
    }
    assert api.post(first).status_code == 200
    assert api.post(second).status_code == 200
    answer = pisano_mock.call("GET", "/__mock/contacts")
    assert answer["dropped"] == 0 and answer["more"] is False
    shown = [(c["id"], c["email"], c["external_id"], c["sharings"]) for c in answer["contacts"]]
    ids = [s["id"] for s in pisano_mock.sharings()]
    assert shown == [
        (1, "c@example.com", "E1", [ids[0], ids[2], ids[3]]),
        (2, "b@example.com", None, [ids[1]]),
    ]
    assert set(answer["contacts"][0]) == {
        "id",
        "external_id",
        "email",
        "phone_number",
        "name",
        "custom_attributes",
        "sharings",
        "first_shared_at",
        "last_shared_at",
    }


def test_filters_and_pages(api, pisano_mock):
    emails = [f"u{i}@example.com" for i in range(5)]
    body = {"emails": emails, "custom_attributes": {emails[3]: {"external_id": "X3"}}}
    assert api.post(body).status_code == 200
    read = lambda query: pisano_mock.call("GET", f"/__mock/contacts?{query}")  # noqa: E731
    assert [c["email"] for c in read("email=U1@EXAMPLE.COM")["contacts"]] == [emails[1]]
    assert [c["email"] for c in read("external_id=X3")["contacts"]] == [emails[3]]
    page = read("since=1&limit=2")
    assert [c["id"] for c in page["contacts"]] == [2, 3] and page["more"] is True
    assert read("since=3&limit=2")["more"] is False


SMS_PATH = "/v1/sms_campaigns/00000000-0000-4000-8000-000000000501/sms_sharings"
LINK_PATH = "/external/v1/link_sharings/00000000-0000-4000-8000-000000000701/generate_link"


def test_contacts_of_sms_and_link_sharings_over_http(api, pisano_mock):
    numbers = ["+90 532 000 00 01", "05320000002"]
    body = {"phone_numbers": numbers, "custom_attributes": {numbers[0]: {"name": "Ayşe"}}}
    assert api.post(body, path=SMS_PATH).status_code == 200
    customer = {"phone_number": "90-532-000-0001", "external_id": "E7", "Tier": "gold"}
    assert api.post({"customer": customer}, path=LINK_PATH).status_code == 200
    contacts = pisano_mock.call("GET", "/__mock/contacts")["contacts"]
    shown = [(c["phone_number"], c["name"], c["external_id"], len(c["sharings"])) for c in contacts]
    assert shown == [("90-532-000-0001", "Ayşe", "E7", 2), ("05320000002", None, None, 1)]
    assert contacts[0]["custom_attributes"] == {"Tier": "gold"}
    read = lambda query: pisano_mock.call("GET", f"/__mock/contacts?{query}")  # noqa: E731
    assert [c["id"] for c in read("phone_number=%2B905320000001")["contacts"]] == [1]
    assert [c["id"] for c in read("phone_number=0532-000-0002")["contacts"]] == [2]
    assert read("phone_number=5320000003")["contacts"] == []


@pytest.mark.parametrize("query", ["limit=0", "since=-1", "colour=red", "limit=x"])
def test_a_bad_query_is_a_400_naming_it(api, query):
    answer = api.request("GET", f"/__mock/contacts?{query}")
    assert answer.status_code == 400
    assert query.split("=")[0] in answer.json()["reason"]


def test_dropped_sharings_are_counted(server_with):
    with server_with(bounds=Bounds(sharings_max_recipients=2)) as (api, pisano_mock):
        assert api.post({"emails": ["a@example.com", "b@example.com"]}).status_code == 200
        assert api.post({"emails": ["c@example.com"]}).status_code == 200
        answer = pisano_mock.call("GET", "/__mock/contacts")
        assert answer["dropped"] == 1
        assert [c["email"] for c in answer["contacts"]] == ["b@example.com", "c@example.com"]


def test_contacts_on_redis(server_with, redis_url):
    with server_with(storage=redis_url) as (api, pisano_mock):
        assert api.post({"emails": ["a@example.com", "b@example.com"]}).status_code == 200
        assert api.post({"emails": ["B@example.com"]}).status_code == 200
        contacts = pisano_mock.call("GET", "/__mock/contacts")["contacts"]
        assert [len(c["sharings"]) for c in contacts] == [1, 2]
