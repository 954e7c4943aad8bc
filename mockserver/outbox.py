"""The outbox (SPEC 1.7): one message per accepted recipient, held bounded, and its delivery state.

A request adds one `MailBatch` (its recipients and the campaign's letterhead as they were at the
request's instant): nothing is rendered on the request path. A message is rendered when it is
read or delivered (`messages.render`). `Outbox` is the interface; `MemoryOutbox` keeps it in this
process, `redis_outbox.RedisOutbox` in Redis, shared by every worker and replica.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .state import Account, Campaign, SharingBatch

STATUSES = ("queued", "sending", "sent", "failed", "captured")
UNSENT = ("queued", "sending")  # never dropped by the bounds; what a flush waits for
LETTERHEAD_BYTES = 512  # what a batch's letterhead costs the bounds, near enough


@dataclass(frozen=True)
class Letterhead:
    """What a campaign says of its messages, as it was when the request was answered."""

    campaign_id: str
    sender: str
    subject: str | None
    text_template: str | None
    html_template: str | None
    provider: Mapping[str, Any]
    customer_schema: Mapping[str, str]  # the account's: types the survey link's responses

    @classmethod
    def of(cls, campaign: Campaign, account: Account) -> Letterhead:
        return cls(
            campaign.id,
            campaign.sender,
            campaign.subject,
            campaign.text_template,
            campaign.html_template,
            campaign.provider,
            account.customer_schema,
        )

    @property
    def provider_type(self) -> str:
        return str(self.provider.get("type", "outbox"))


@dataclass(frozen=True)
class MailBatch:
    """One request's accepted recipients as the outbox holds them; message `first_id + i` goes to
    recipient `i` and is its sharing `first_id + i`."""

    first_id: int
    sharings: SharingBatch
    letterhead: Letterhead

    @property
    def nbytes(self) -> int:
        return self.sharings.nbytes + LETTERHEAD_BYTES

    def __len__(self) -> int:
        return len(self.sharings)


@dataclass(frozen=True)
class DeliveryState:
    status: str  # one of STATUSES
    attempts: int = 0
    last_error: str | None = None
    sent_at: float | None = None  # on the emulator's clock


@dataclass(frozen=True)
class HeldMessage:
    """A message as the outbox holds it: rendered only when shown or delivered."""

    id: int
    mail: MailBatch
    index: int
    state: DeliveryState


@dataclass(frozen=True)
class Claimed:
    """A message taken for one delivery attempt (its status is `sending` until settled)."""

    message: HeldMessage  # state.attempts counts this attempt


@dataclass(frozen=True)
class OutboxFilter:
    campaign_id: str | None = None
    to: str | None = None  # compared case-insensitively
    status: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class OutboxPage:
    messages: list[HeldMessage]
    dropped: int
    more: bool


@dataclass(frozen=True)
class Settled:
    """How a delivery attempt ended: sent, failed for good, or to be tried again later."""

    sent_at: float | None = None  # set: sent
    error: str | None = None  # set (and no retry): failed, with this last_error
    retry_in: float | None = None  # set with an error: queued again, due in this many seconds


class Outbox(Protocol):
    """What the views and the senders need of the outbox, whatever keeps it."""

    def add(self, mail: MailBatch) -> None: ...
    def claim(self, lease_seconds: float) -> Claimed | None: ...
    def settle(self, message_id: int, outcome: Settled) -> None: ...
    def page(self, since: int, limit: int, wanted: OutboxFilter) -> OutboxPage: ...
    def get(self, message_id: int) -> HeldMessage | None: ...
    def statuses(self) -> dict[str, int]: ...
    def reset(self) -> None: ...
