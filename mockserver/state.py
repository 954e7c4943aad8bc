"""Domain state: accounts, tokens, campaigns, the journal and the sharings.

`Store` is the one interface the views use; `MemoryStore` keeps everything in this process.
A store shared by several processes (Redis) implements the same methods and changes no view.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .bounded import BoundedLog
from .clock import Clock
from .faults import Fault, FaultBook
from .settings import Bounds, ConfigError


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
    subject: str = ""
    flow: bool = True


@dataclass(frozen=True)
class SharingBatch(Sequence[dict[str, Any]]):
    """The recipients one request delivered, kept as the request sent them."""

    campaign_id: str
    request_id: int
    accepted_at: float
    emails: Sequence[str]
    custom_attributes: dict[str, Any]
    transactional_data: dict[str, Any]
    built_in_responses: dict[str, Any]
    channel: str = "email"

    def __len__(self) -> int:
        return len(self.emails)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        email = self.emails[index]
        return {
            "campaign_id": self.campaign_id,
            "channel": self.channel,
            "email": email,
            "custom_attributes": self.custom_attributes.get(email, {}),
            "transactional_data": self.transactional_data.get(email, {}),
            "built_in_responses": self.built_in_responses,
            "accepted_at": self.accepted_at,
            "request_id": self.request_id,
        }


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
class Entities:
    """What one fixture adds: accounts, tokens and campaigns, each by its name."""

    accounts: dict[str, Account]
    tokens: dict[str, Token]
    campaigns: dict[str, Campaign]

    def counts(self) -> dict[str, int]:
        return {
            "accounts": len(self.accounts),
            "tokens": len(self.tokens),
            "campaigns": len(self.campaigns),
        }


def build_entities(fixture: dict[str, Any], known_accounts: Collection[str]) -> Entities:
    """A fixture's entities; a token or campaign must name an account it adds or one known."""
    accounts = {n: Account(name=n, **data) for n, data in fixture.get("accounts", {}).items()}
    tokens = {t: Token(token=t, **data) for t, data in fixture.get("tokens", {}).items()}
    campaigns = {c: Campaign(id=c, **data) for c, data in fixture.get("campaigns", {}).items()}
    for kind, items in (("token", tokens), ("campaign", campaigns)):
        for key, item in items.items():
            if item.account not in accounts and item.account not in known_accounts:
                raise ConfigError(f"{kind} {key!r}: unknown account {item.account!r}")
    return Entities(accounts, tokens, campaigns)


class Store(Protocol):
    """What the views need of the state, whatever keeps it."""

    def token(self, token: str) -> Token | None: ...
    def account(self, name: str) -> Account | None: ...
    def campaign(self, campaign_id: str) -> Campaign | None: ...
    def add_fixture(self, fixture: dict[str, Any]) -> dict[str, int]: ...
    def begin_request(self, entry: dict[str, Any], nbytes: int, clock: Clock) -> Begun: ...
    def finish_request(self, request_id: int, updates: dict[str, Any], nbytes: int) -> None: ...
    def requests(self, since: int, limit: int) -> Page: ...
    def record_sharings(self, batch: SharingBatch, nbytes: int) -> int: ...
    def sharings(
        self, since: int, limit: int, campaign_id: str | None, email: str | None
    ) -> Page: ...
    def add_fault(self, spec: dict[str, Any]) -> Fault: ...
    def take_fault(self, path: str, token: str | None, campaign_id: str | None) -> Fault | None: ...
    def faults(self) -> list[dict[str, Any]]: ...
    def clear_faults(self) -> None: ...
    def counts(self) -> dict[str, int]: ...
    def reset(self) -> None: ...


class MemoryStore:
    """Everything in this process's memory, bounded by `Bounds`; one lock guards it all."""

    def __init__(self, bounds: Bounds, fixture: dict[str, Any] | None = None) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        self._tokens: dict[str, Token] = {}
        self._campaigns: dict[str, Campaign] = {}
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

    # -- registry -------------------------------------------------------------------------------
    def token(self, token: str) -> Token | None:
        return self._tokens.get(token)

    def account(self, name: str) -> Account | None:
        return self._accounts.get(name)

    def campaign(self, campaign_id: str) -> Campaign | None:
        return self._campaigns.get(campaign_id)

    def add_fixture(self, fixture: dict[str, Any]) -> dict[str, int]:
        """Add (or replace) accounts, tokens and campaigns; refuse dangling account names."""
        with self._lock:
            entities = build_entities(fixture, self._accounts)
            self._accounts = {**self._accounts, **entities.accounts}
            self._tokens = {**self._tokens, **entities.tokens}
            self._campaigns = {**self._campaigns, **entities.campaigns}
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
            return _page(self._journal, since, limit)

    # -- sharings -------------------------------------------------------------------------------
    def record_sharings(self, batch: SharingBatch, nbytes: int) -> int:
        with self._lock:
            return self._sharings.append(batch, nbytes)

    def sharings(self, since: int, limit: int, campaign_id: str | None, email: str | None) -> Page:
        wanted_email = email.lower() if email else None

        def keep(sharing: dict[str, Any]) -> bool:
            if campaign_id and sharing["campaign_id"] != campaign_id:
                return False
            return not wanted_email or sharing["email"].lower() == wanted_email

        with self._lock:
            return _page(self._sharings, since, limit, keep)

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
            self._accounts, self._tokens, self._campaigns = {}, {}, {}
            self.add_fixture(self._fixture)


def _page(log: BoundedLog[dict[str, Any]], since: int, limit: int, keep: Any = None) -> Page:
    items: list[dict[str, Any]] = []
    more = False
    for item_id, item in log.items_since(since, keep):
        if len(items) == limit:
            more = True
            break
        items.append({"id": item_id, **item} if "id" not in item else dict(item))
    return Page(items=items, dropped=log.dropped, more=more)
