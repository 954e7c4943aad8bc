"""Domain state: accounts, tokens, campaigns, the journal and the sharings.

`Store` is the one interface the views use; `MemoryStore` keeps everything in this process.
A store shared by several processes (Redis) implements the same methods and changes no view.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from .bodies import HeldBody
from .bounded import BoundedLog, give_back_big_blocks
from .clock import Clock
from .faults import Fault, FaultBook
from .rules import IDENTITY_KEYS
from .settings import DEFAULT_SENDER, Bounds, ConfigError


@dataclass(frozen=True)
class Account:
    name: str
    locked: bool = False
    customer_schema: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Token:
    token: str
    account: str
    active: bool = True


@dataclass(frozen=True)
class Campaign:
    id: str
    account: str
    channel: str = "email"  # or "sms": the endpoint that shares it (SPEC 1.5)
    subject: str | None = None  # None: left to the provider (SPEC 1.7)
    flow: bool = True
    sender: str = DEFAULT_SENDER
    text_template: str | None = None  # None: the default template
    html_template: str | None = None
    provider: dict[str, Any] = field(default_factory=lambda: {"type": "outbox"})


EMPTY_OBJECT = b"{}"
BATCH_OVERHEAD = 250  # bytes a batch costs whatever it holds: its objects, the log's (measured)


@dataclass(frozen=True)
class SharingBatch(Sequence[dict[str, Any]]):
    """The recipients one request delivered, held compactly: the emails and each part as JSON
    text, parsed only when a page reads the batch.

    The field names are the email endpoint's; the other channels reuse them: for `sms`, `emails`
    holds the phone numbers as sent (the keys of `custom_attributes` / `transactional_data`); for
    `link`, `campaign_id` is the link channel's id and `emails` holds one recipient, the
    customer's `email` as sent ("" when it gave none), whose custom attributes are the whole
    `customer` object (identity keys included, as the email endpoint's carry `name`, ...).

    Held parsed, a 5000-recipient batch costs ~4x its JSON text in Python objects (issue 9); even
    its emails alone, as 5000 `str` objects, would cost ~2.5x their text."""

    campaign_id: str
    request_id: int
    accepted_at: float
    recipients: int
    emails: bytes  # JSON: the list of emails
    custom_attributes: bytes  # JSON: email → attributes, as the request sent them
    transactional_data: bytes  # JSON: email → data
    built_in_responses: bytes  # JSON: one object, every recipient's
    channel: str = "email"  # "sms", "link": the endpoint that shared them (api/sharing.py)
    trigger: str = "api"  # "csv", "workflow": what made the request (SPEC 1.8)

    @classmethod
    def of(
        cls,
        campaign_id: str,
        request_id: int,
        accepted_at: float,
        emails: Sequence[str],
        parts: dict[str, Any],
        channel: str = "email",
        trigger: str = "api",
    ) -> SharingBatch:
        """A batch from what a request sent: its recipients and its (parsed) per-recipient parts."""
        return cls(
            campaign_id,
            request_id,
            accepted_at,
            len(emails),
            orjson.dumps(emails),
            custom_attributes=_json_or_empty(parts.get("custom_attributes")),
            transactional_data=_json_or_empty(parts.get("transactional_data")),
            built_in_responses=_json_or_empty(parts.get("built_in_responses")),
            channel=channel,
            trigger=trigger,
        )

    @property
    def nbytes(self) -> int:
        """What holding it costs, near enough: the bounds are charged this."""
        return BATCH_OVERHEAD + sum(len(getattr(self, name)) for name in HELD_PARTS)

    def __len__(self) -> int:
        return self.recipients

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        return self.opened()[index]  # one item parses every part: pages call `opened` once

    def picked(
        self, offset: int, campaign_id: str | None, wanted: Recipient | None
    ) -> Iterable[int]:
        """The indexes from `offset` of the recipients a page's filters keep; only the
        recipients are parsed, and only for a recipient filter."""
        if campaign_id and self.campaign_id != campaign_id:
            return ()
        if wanted is None:
            return range(offset, self.recipients)
        if RECIPIENT_KEYS[self.channel] != wanted.key:
            return ()
        recipients = orjson.loads(self.emails)
        return (i for i in range(offset, self.recipients) if wanted.same(recipients[i]))

    def opened(self) -> OpenBatch:
        return OpenBatch(self, *(orjson.loads(getattr(self, name)) for name in HELD_PARTS))


HELD_PARTS = ("emails", "custom_attributes", "transactional_data", "built_in_responses")


def _json_or_empty(value: Any) -> bytes:
    return orjson.dumps(value) if value else EMPTY_OBJECT


# What a sharing calls its recipient, by channel: `GET /__mock/sharings` shows it under this key.
RECIPIENT_KEYS = {"email": "email", "sms": "phone_number", "link": "email"}


@dataclass(frozen=True)
class Recipient:
    """A filter of `GET /__mock/sharings` on the recipient: `email` (case-insensitively) or
    `phone_number` (compared as normalised: `fold` is the rule's, rules.normalised_number)."""

    key: str
    value: str
    fold: Callable[[str], str] = str.lower

    def same(self, recipient: str) -> bool:
        return self.fold(recipient) == self.fold(self.value)


@dataclass(frozen=True)
class OpenBatch(Sequence[dict[str, Any]]):
    """A batch's parts parsed, for one page: each recipient as `GET /__mock/sharings` shows it."""

    held: SharingBatch
    emails: list[str]
    custom_attributes: dict[str, Any]
    transactional_data: dict[str, Any]
    built_in_responses: dict[str, Any]

    def __len__(self) -> int:
        return len(self.emails)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        held = self.held
        recipient = self.emails[index]
        attributes = self.custom_attributes.get(recipient, {})
        shown = {
            "campaign_id": held.campaign_id,
            "channel": held.channel,
            RECIPIENT_KEYS[held.channel]: recipient,
            "custom_attributes": attributes,
            "transactional_data": self.transactional_data.get(recipient, {}),
            "built_in_responses": self.built_in_responses,
            "accepted_at": held.accepted_at,
            "request_id": held.request_id,
            "trigger": held.trigger,
        }
        if held.channel == "link":  # one customer: its identity keys as sent, email "" → null
            shown["email"] = recipient or None
            shown["customer"] = {k: attributes[k] for k in IDENTITY_KEYS if k in attributes}
        return shown


@dataclass(frozen=True)
class Begun:
    """A request's journal entry opened: its id, its instant, and whether a fault may match it
    (no fault held: the gate need not look, which costs a round trip on Redis)."""

    id: int
    now: float
    faults: bool = True


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    dropped: int
    more: bool


@dataclass(frozen=True)
class LinkChannel:
    """A link channel (SPEC 1.6): where generated survey links come from, of one account."""

    id: str
    account: str


# The one table of entities: each fixture table, the type it holds and the field its key fills.
# Every table but `accounts` names an account, which must exist (added with it or before).
ENTITY_TYPES: dict[str, tuple[type, str]] = {
    "accounts": (Account, "name"),
    "tokens": (Token, "token"),
    "campaigns": (Campaign, "id"),
    "link_channels": (LinkChannel, "id"),
}


def entity(table: str, name: str, data: dict[str, Any]) -> Any:
    kind, name_field = ENTITY_TYPES[table]
    return kind(**{name_field: name, **data})


@dataclass(frozen=True)
class Entities:
    """What one fixture adds: each table's entities by their names."""

    tables: dict[str, dict[str, Any]]

    def counts(self) -> dict[str, int]:
        return {table: len(items) for table, items in self.tables.items()}


def build_entities(fixture: dict[str, Any], known_accounts: Collection[str]) -> Entities:
    """A fixture's entities; each must name an account it adds or one known."""
    tables = {
        table: {name: entity(table, name, data) for name, data in fixture.get(table, {}).items()}
        for table in ENTITY_TYPES
    }
    for table, items in tables.items():
        for name, item in items.items():
            owner = getattr(item, "account", None)
            if (
                owner is not None
                and owner not in tables["accounts"]
                and owner not in known_accounts
            ):
                kind = table.removesuffix("s").replace("_", " ")
                raise ConfigError(f"{kind} {name!r}: unknown account {owner!r}")
    return Entities(tables)


class Store(Protocol):
    """What the views need of the state, whatever keeps it."""

    def token(self, token: str) -> Token | None: ...
    def account(self, name: str) -> Account | None: ...
    def campaign(self, campaign_id: str) -> Campaign | None: ...
    def link_channel(self, channel_id: str) -> LinkChannel | None: ...
    def add_fixture(self, fixture: dict[str, Any]) -> dict[str, int]: ...
    def begin_request(self, entry: dict[str, Any], nbytes: int, clock: Clock) -> Begun: ...
    def finish_request(self, request_id: int, updates: dict[str, Any], nbytes: int) -> None: ...
    def requests(self, since: int, limit: int) -> Page: ...
    def record_sharings(self, batch: SharingBatch, nbytes: int) -> int: ...
    def sharings(
        self, since: int, limit: int, campaign_id: str | None, wanted: Recipient | str | None
    ) -> Page: ...
    def sharing(self, sharing_id: int) -> dict[str, Any] | None: ...
    def add_fault(self, spec: dict[str, Any]) -> Fault: ...
    def take_fault(self, path: str, token: str | None, campaign_id: str | None) -> Fault | None: ...
    def faults(self) -> list[dict[str, Any]]: ...
    def clear_faults(self) -> None: ...
    def counts(self) -> dict[str, int]: ...
    def reset(self) -> None: ...
    def link_secret(self) -> bytes: ...


class MemoryStore:
    """Everything in this process's memory, bounded by `Bounds`; one lock guards it all."""

    def __init__(self, bounds: Bounds, fixture: dict[str, Any] | None = None) -> None:
        give_back_big_blocks()  # what the bounds let go of leaves the process too
        self._lock = threading.RLock()
        self._entities: dict[str, dict[str, Any]] = {table: {} for table in ENTITY_TYPES}
        self._journal: BoundedLog[dict[str, Any]] = BoundedLog(
            bounds.journal_max_entries, bounds.journal_max_bytes
        )
        self._sharings: BoundedLog[dict[str, Any]] = BoundedLog(
            bounds.sharings_max_recipients, bounds.sharings_max_bytes
        )
        self._open_requests: dict[int, dict[str, Any]] = {}
        self._faults = FaultBook()
        self._fixture = fixture or {}  # what reset returns to (issue 8, item 12)
        self.add_fixture(self._fixture)
        self._link_secret = os.urandom(32)  # survey links' MACs (links.py); kept by reset

    def link_secret(self) -> bytes:
        return self._link_secret

    # -- registry -------------------------------------------------------------------------------
    def token(self, token: str) -> Token | None:
        return self._entities["tokens"].get(token)

    def account(self, name: str) -> Account | None:
        return self._entities["accounts"].get(name)

    def campaign(self, campaign_id: str) -> Campaign | None:
        return self._entities["campaigns"].get(campaign_id)

    def link_channel(self, channel_id: str) -> LinkChannel | None:
        return self._entities["link_channels"].get(channel_id)

    def add_fixture(self, fixture: dict[str, Any]) -> dict[str, int]:
        """Add (or replace) entities; refuse dangling account names."""
        with self._lock:
            entities = build_entities(fixture, self._entities["accounts"])
            # New dicts, never changed in place: a lookup without the lock sees one or the other.
            self._entities = {
                table: {**held, **entities.tables[table]} for table, held in self._entities.items()
            }
            return entities.counts()

    # -- journal --------------------------------------------------------------------------------
    def begin_request(self, entry: dict[str, Any], nbytes: int, clock: Clock) -> Begun:
        """Open the entry, stamped with the clock's reading: the request's one instant."""
        with self._lock:
            request_id = self._journal.reserve_id()
            entry["id"], entry["time"] = request_id, clock.now()
            self._journal.append([entry], nbytes)
            self._open_requests[request_id] = entry
            return Begun(request_id, entry["time"])

    def finish_request(self, request_id: int, updates: dict[str, Any], nbytes: int) -> None:
        """Close an entry with its answer, charged `nbytes` in all: what it holds is known now."""
        with self._lock:
            entry = self._open_requests.pop(request_id, None)
            if entry is not None:
                entry.update(updates)
                self._journal.resize(request_id, nbytes)

    def requests(self, since: int, limit: int) -> Page:
        with self._lock:
            items, more = page_of(
                self._journal.batches_since(since), limit, open_batch=show_entries
            )
            return Page(items, self._journal.dropped, more)

    # -- sharings -------------------------------------------------------------------------------
    def record_sharings(self, batch: SharingBatch, nbytes: int) -> int:
        with self._lock:
            return self._sharings.append(batch, nbytes)

    def sharings(
        self, since: int, limit: int, campaign_id: str | None, wanted: Recipient | str | None
    ) -> Page:
        pick = sharing_filter(campaign_id, wanted)
        with self._lock:
            batches = self._sharings.batches_since(since)
            items, more = page_of(batches, limit, pick, open_sharings)
            return Page(items, self._sharings.dropped, more)

    def sharing(self, sharing_id: int) -> dict[str, Any] | None:
        """One sharing as the page shows it, or None when it is not held (never made, dropped
        by the bounds, or emptied by a reset)."""
        with self._lock:
            items, _ = page_of(self._sharings.batches_since(sharing_id - 1), 1, None, open_sharings)
            return only_sharing(items, sharing_id)

    # -- faults ---------------------------------------------------------------------------------
    def add_fault(self, spec: dict[str, Any]) -> Fault:
        return self._faults.add(spec)

    def take_fault(self, path: str, token: str | None, campaign_id: str | None) -> Fault | None:
        return self._faults.take(path, token, campaign_id)

    def faults(self) -> list[dict[str, Any]]:
        return self._faults.describe()

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- whole store ----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "requests": self._journal.count,
                "requests_dropped": self._journal.dropped,
                "sharings": self._sharings.count,
                "sharings_dropped": self._sharings.dropped,
            }

    def reset(self) -> None:
        with self._lock:
            self._journal.clear()
            self._sharings.clear()
            self._open_requests.clear()
            self._faults.clear()
            self._entities = {table: {} for table in ENTITY_TYPES}
            self.add_fixture(self._fixture)


Batch = tuple[int, int, Sequence[dict[str, Any]]]  # first id, first index wanted, items
Pick = Callable[[Any, int], Iterable[int]]  # (a batch, first index wanted) → the indexes shown


def page_of(
    batches: Iterable[Batch],
    limit: int,
    pick: Pick | None = None,
    open_batch: Callable[[Any], Sequence[dict[str, Any]]] = lambda items: items,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` items, each with its id first, and whether more are held; a batch is opened
    (its held form turned into the items shown) once, and only when one of its items is shown."""
    items: list[dict[str, Any]] = []
    for first_id, offset, batch in batches:
        opened = None
        for index in range(offset, len(batch)) if pick is None else pick(batch, offset):
            if len(items) == limit:
                return items, True
            opened = open_batch(batch) if opened is None else opened
            items.append({"id": first_id + index, **opened[index]})
    return items, False


def sharing_filter(campaign_id: str | None, wanted: Recipient | str | None) -> Pick | None:
    """The filters of `GET /__mock/sharings`, read on the held batch (a plain string: an email)."""
    if isinstance(wanted, str):
        wanted = Recipient("email", wanted) if wanted else None
    if not campaign_id and wanted is None:
        return None
    return lambda batch, offset: batch.picked(offset, campaign_id, wanted)  # type: ignore[no-any-return]


def only_sharing(items: list[dict[str, Any]], sharing_id: int) -> dict[str, Any] | None:
    """The first item of a page read from `sharing_id - 1`, when it is that sharing: a later one
    means the sharing itself was dropped."""
    return items[0] if items and items[0]["id"] == sharing_id else None


def open_sharings(batch: SharingBatch) -> Sequence[dict[str, Any]]:
    return batch.opened()


def show_entries(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Journal entries as answered: each held body turned into what the journal shows."""
    return [_shown_entry(entry) for entry in entries]


def _shown_entry(entry: dict[str, Any]) -> dict[str, Any]:
    body = entry.get("body")
    return {**entry, "body": body.shown()} if isinstance(body, HeldBody) else entry
