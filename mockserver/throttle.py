"""Pisano's throttle tiers (SPEC 1.3), counted the way Rack::Attack counts them.

The tiers are data, parsed once by `limits.parse_many`. Windows are fixed and aligned to the epoch
of the EMULATOR's clock (`floor(now / period)`), so a test steps through them without sleeping.
Tiers are checked in order, and a request is counted against every tier up to the first one it
exceeds (Rack::Attack stops there).

Exactness (SPEC 1.3): the clock is read and the request counted under one lock, so a request
belongs to the window of the instant it was counted at, and that instant (`Verdict.now`) is the
one the journal records. Each key holds one record: per tier, the index of its current window and
the count in it. `limits`' storages are not used for the counters: they expire keys in real time
and can only be swept whole, while the windows here end on the emulator's clock, which a test
freezes, moves on, or sets back; the records below expire in O(1) per request instead.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from limits import RateLimitItem, parse_many

from .clock import Clock
from .settings import ThrottleSettings

# Keys held at most: past it the key touched longest ago is forgotten first, as the least recently
# used entry of Rails' MemoryStore (Rack::Attack's usual cache) is pruned. About 40 MiB at most.
MAX_BUCKETS = 50_000


@dataclass(frozen=True)
class Tier:
    limit: int
    period: int  # seconds

    @classmethod
    def from_item(cls, item: RateLimitItem) -> Tier:
        return cls(limit=item.amount, period=item.get_expiry())

    def __str__(self) -> str:
        return f"{self.limit}/{self.period} seconds"

    def window(self, now: float) -> int:
        return math.floor(now / self.period)

    def window_end(self, now: float) -> float:
        return (self.window(now) + 1) * self.period


def parse_tiers(text: str) -> tuple[Tier, ...]:
    """'20/5 seconds; 40/25 seconds' → tiers, in the order Rack::Attack checks them."""
    return tuple(Tier.from_item(item) for item in parse_many(text))


@dataclass(frozen=True)
class TierCount:
    tier: Tier
    count: int
    window_end: float

    @property
    def remaining(self) -> int:
        return max(self.tier.limit - self.count, 0)


@dataclass(frozen=True)
class Verdict:
    """What the throttle said of one request: the instant it counted it at, the counts it took,
    and the tier exceeded if any."""

    now: float
    counts: tuple[TierCount, ...] = ()
    exceeded: TierCount | None = None

    @property
    def allowed(self) -> bool:
        return self.exceeded is None


@dataclass(slots=True)
class _Bucket:
    """One key's counters: per tier, (index of the current window, count in it)."""

    windows: dict[Tier, tuple[int, int]] = field(default_factory=dict)
    ends: float = -math.inf  # when its last window ends; after that it holds nothing

    def count(self, tier: Tier, now: float) -> TierCount:
        """One more request in the window of `now`: a window other than the held one is new (the
        clock only goes back when it is set back, and then the windows follow it)."""
        index = tier.window(now)
        held, count = self.windows.get(tier, (index, 0))
        count = count + 1 if held == index else 1
        self.windows[tier] = (index, count)
        end = (index + 1) * tier.period
        self.ends = max(self.ends, end)
        return TierCount(tier, count, end)


class Throttle:
    def __init__(
        self, settings: ThrottleSettings, clock: Clock, max_buckets: int = MAX_BUCKETS
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.tiers = parse_tiers(settings.tiers) if settings.enabled else ()
        self._overrides = [
            (
                ipaddress.ip_network(o.cidr, strict=False),
                parse_tiers(o.tiers or settings.tiers) if o.enabled else (),
            )
            for o in settings.overrides
        ]
        self._max_buckets = max_buckets
        self._lock = threading.Lock()
        # Least recently counted first: with the same tiers for all, that is also the order in
        # which their windows end, so expired buckets are found at the front.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def keys_held(self) -> int:
        """How many keys hold counters."""
        return len(self._buckets)

    def bucket(self, token: str | None, client_ip: str) -> str:
        """The key requests are counted under (setting `throttle.key`)."""
        by_ip = f"ip:{client_ip}"
        if self.settings.key == "ip" or not token:
            return by_ip
        if self.settings.key == "token_and_ip":
            return f"token:{token}|{by_ip}"
        return f"token:{token}"

    def tiers_for(self, client_ip: str) -> tuple[Tier, ...]:
        """The tiers for a client: the first per-IP override (CIDR) that holds, else the default."""
        if not self.settings.enabled:
            return ()
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return self.tiers
        for network, tiers in self._overrides:
            if address in network:
                return tiers
        return self.tiers

    def hit(self, bucket: str, tiers: tuple[Tier, ...]) -> Verdict:
        """Count one request now, on the emulator's clock read under the same lock."""
        counts = []
        with self._lock:
            now = self.clock.now()
            record = self._touch(bucket, now)
            for tier in tiers:
                counted = record.count(tier, now)
                counts.append(counted)
                if counted.count > tier.limit:
                    return Verdict(now, tuple(counts), exceeded=counted)
        return Verdict(now, tuple(counts))

    def snapshot(self, now: float) -> list[dict[str, object]]:
        """Per bucket and tier: the count in the current window and when that window ends."""
        with self._lock:
            return [
                {
                    "key": key,
                    "tier": str(tier),
                    "limit": tier.limit,
                    "period": tier.period,
                    "count": count,
                    "window_end": tier.window_end(now),
                }
                for key, record in sorted(self._buckets.items())
                for tier, (index, count) in sorted(
                    record.windows.items(), key=lambda item: item[0].period
                )
                if index == tier.window(now)
            ]

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def _touch(self, bucket: str, now: float) -> _Bucket:
        """The bucket's record, moved to the back; expired records leave from the front."""
        record = self._buckets.get(bucket)
        if record is None:
            record = self._buckets[bucket] = _Bucket()
        else:
            self._buckets.move_to_end(bucket)
        self._drop_expired(now)
        return record

    def _drop_expired(self, now: float) -> None:
        """O(1) amortised: each record is dropped once, and the walk stops at the first one alive.
        Past `max_buckets` the least recently counted goes, even if alive."""
        buckets = self._buckets
        while len(buckets) > 1:
            oldest = next(iter(buckets.values()))
            if oldest.ends > now and len(buckets) <= self._max_buckets:
                return
            buckets.popitem(last=False)
