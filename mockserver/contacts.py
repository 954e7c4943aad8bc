"""Contacts (SPEC 1.2, 1.7): who the sharings reached, matched as Pisano matches them.

Derived when read from the sharings held (`GET /__mock/contacts`), never kept: the request path
pays nothing, and a contact lasts as long as its sharings do. Matching, in Pisano's order: by
`external_id`, else by `email` (case-insensitively), else by `phone_number` (as normalised, SPEC
1.5); found → updated, else created. An SMS sharing is matched by `external_id`, else by its number
(`MATCH_KEYS`). A contact found by email or phone whose `external_id` differs from the sharing's
is not the same customer: a new contact is made.

Every channel's sharing reads the same way: its recipient (`email`, or `phone_number` for SMS, as
`GET /__mock/sharings` shows it) over what its custom attributes say (a link's are its `customer`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .rules import normalised_number
from .state import Page, Store

IDENTITY_KEYS = ("external_id", "email", "phone_number")  # matching order (SPEC 1.2)
SHOWN_KEYS = (*IDENTITY_KEYS, "name")  # a contact's own fields; other attributes are custom
RECIPIENT_KEYS = ("email", "phone_number")  # a sharing's recipient, shown under one of these
# The keys a sharing is matched by, in order, per channel: an SMS is sent to its number.
MATCH_KEYS = {"email": IDENTITY_KEYS, "link": IDENTITY_KEYS, "sms": ("external_id", "phone_number")}
# How an identity value is compared: emails case-insensitively, numbers as normalised.
FOLDS: dict[str, Callable[[str], str]] = {"email": str.lower, "phone_number": normalised_number}
READ_CHUNK = 10_000  # sharings read per page of the store


@dataclass
class Contact:
    id: int
    fields: dict[str, str | None]
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    sharings: list[int] = field(default_factory=list)
    first_shared_at: float | None = None
    last_shared_at: float | None = None

    def shown(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.fields,
            "custom_attributes": self.custom_attributes,
            "sharings": self.sharings,
            "first_shared_at": self.first_shared_at,
            "last_shared_at": self.last_shared_at,
        }

    def add(self, sharing: dict[str, Any], identity: dict[str, str | None]) -> None:
        """A sharing matched: its non-empty fields win (the latest sharing is the freshest)."""
        self.fields.update({key: value for key, value in identity.items() if value})
        attributes = sharing.get("custom_attributes") or {}
        self.custom_attributes.update(
            {key: value for key, value in attributes.items() if key not in SHOWN_KEYS}
        )
        self.sharings.append(sharing["id"])
        if self.first_shared_at is None:
            self.first_shared_at = sharing["accepted_at"]
        self.last_shared_at = sharing["accepted_at"]


def identity_of(sharing: dict[str, Any]) -> dict[str, str | None]:
    """The sharing's own fields: its recipient, and what its custom attributes say of them."""
    attributes = sharing.get("custom_attributes") or {}
    given = {key: attributes.get(key) for key in SHOWN_KEYS}
    given.update({key: sharing[key] for key in RECIPIENT_KEYS if sharing.get(key)})
    return {key: text_or_none(value) for key, value in given.items()}


def text_or_none(value: Any) -> str | None:
    """An identity value as compared: text, empty or absent as None (a number as its text)."""
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    return value if isinstance(value, str) else str(value)


def folded(key: str, value: str) -> tuple[str, str]:
    fold = FOLDS.get(key)
    return key, fold(value) if fold else value


class ContactBook:
    """Contacts matched or created from sharings, oldest sharing first."""

    def __init__(self) -> None:
        self.contacts: list[Contact] = []
        self.index: dict[tuple[str, str], Contact] = {}

    def add(self, sharing: dict[str, Any]) -> None:
        identity = identity_of(sharing)
        keys = MATCH_KEYS.get(sharing.get("channel", "email"), IDENTITY_KEYS)
        contact = self.match(identity, keys)
        if contact is None:
            contact = Contact(len(self.contacts) + 1, dict.fromkeys(SHOWN_KEYS))
            self.contacts.append(contact)
        before = {key: contact.fields[key] for key in IDENTITY_KEYS}
        contact.add(sharing, identity)
        for key in IDENTITY_KEYS:
            self.reindex(contact, key, before[key])

    def reindex(self, contact: Contact, key: str, before: str | None) -> None:
        """The index follows a contact's value for `key`: a changed email no longer finds it."""
        value = contact.fields[key]
        if before and before != value and self.index.get(folded(key, before)) is contact:
            del self.index[folded(key, before)]
        if value:
            self.index[folded(key, value)] = contact

    def match(self, identity: dict[str, str | None], keys: Iterable[str]) -> Contact | None:
        for key in keys:
            value = identity[key]
            found = self.index.get(folded(key, value)) if value else None
            if found is not None and not other_customer(found, identity):
                return found
        return None


def other_customer(contact: Contact, identity: dict[str, str | None]) -> bool:
    """Two different external ids are two customers, whatever else they share."""
    theirs, ours = contact.fields["external_id"], identity["external_id"]
    return bool(theirs and ours and theirs != ours)


def held_sharings(store: Store) -> Iterator[dict[str, Any]]:
    """Every sharing the store holds, oldest first, a chunk at a time; the first page's dropped
    count is the contacts' (sharings dropped are contacts' history forgotten)."""
    since = 0
    while True:
        page = store.sharings(since, READ_CHUNK, None, None)
        yield from page.items
        if not page.more or not page.items:
            return
        since = page.items[-1]["id"]


@dataclass(frozen=True)
class ContactFilter:
    since: int = 0
    limit: int = 10_000
    email: str | None = None
    external_id: str | None = None
    phone_number: str | None = None  # compared as normalised

    def keeps(self, contact: Contact) -> bool:
        wanted = {key: getattr(self, key) for key in IDENTITY_KEYS}
        return contact.id > self.since and all(
            folded(key, contact.fields[key] or "") == folded(key, value)
            for key, value in wanted.items()
            if value is not None
        )


def contacts_page(store: Store, wanted: ContactFilter) -> Page:
    """`GET /__mock/contacts`: the contacts the held sharings make, filtered and paged by id."""
    dropped = store.sharings(0, 1, None, None).dropped
    book = ContactBook()
    for sharing in held_sharings(store):
        book.add(sharing)
    kept = [contact.shown() for contact in book.contacts if wanted.keeps(contact)]
    return Page(kept[: wanted.limit], dropped, len(kept) > wanted.limit)


def contacts_of(sharings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The contacts some sharings make, as shown (for tests and callers holding sharings)."""
    book = ContactBook()
    for sharing in sharings:
        book.add(sharing)
    return [contact.shown() for contact in book.contacts]
