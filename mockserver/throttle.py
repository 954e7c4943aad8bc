"""Pisano's throttle tiers (SPEC 1.3), counted the way Rack::Attack counts them.

The tiers are data, parsed once by `limits.parse_many`. Windows are fixed and aligned to the epoch
of the EMULATOR's clock (`floor(now / period)`), so a test steps through them without sleeping;
`limits`' storage holds the counters, keyed by the window index. Tiers are checked in order, and a
request is counted against every tier up to the first one it exceeds (Rack::Attack stops there).
"""

from __future__ import annotations

import ipaddress
import math
import threading
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage

from .clock import Clock
from .settings import ThrottleSettings

# Counters leave the storage when their window is over on the emulator's clock (see `_open`); the
# storage's own expiry, which runs in real time, is only a backstop that must never come first.
REAL_TIME_BACKSTOP = 10 * 365 * 24 * 3600
SWEEP_ABOVE = 10_000


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
    """What the throttle said of one request: the counts it took, and the tier exceeded if any."""

    now: float
    counts: tuple[TierCount, ...] = ()
    exceeded: TierCount | None = None

    @property
    def allowed(self) -> bool:
        return self.exceeded is None


class Throttle:
    def __init__(self, settings: ThrottleSettings, clock: Clock) -> None:
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
        self.storage = MemoryStorage()
        self._lock = threading.Lock()
        self._open_windows: dict[tuple[str, Tier], str] = {}

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

    def hit(self, bucket: str, tiers: tuple[Tier, ...], now: float) -> Verdict:
        """Count one request at `now` on the emulator's clock."""
        counts = []
        with self._lock:
            for tier in tiers:
                key = self._open(bucket, tier, now)
                counted = TierCount(
                    tier, self.storage.incr(key, REAL_TIME_BACKSTOP), tier.window_end(now)
                )
                counts.append(counted)
                if counted.count > tier.limit:
                    return Verdict(now, tuple(counts), exceeded=counted)
        return Verdict(now, tuple(counts))

    def snapshot(self, now: float) -> list[dict[str, object]]:
        """Per bucket and tier: the count in the current window and when that window ends."""
        with self._lock:
            rows = []
            for (bucket, tier), key in sorted(
                self._open_windows.items(), key=lambda kv: (kv[0][0], kv[0][1].period)
            ):
                if key == self._key(bucket, tier, now):
                    rows.append(
                        {
                            "key": bucket,
                            "tier": str(tier),
                            "limit": tier.limit,
                            "period": tier.period,
                            "count": self.storage.get(key),
                            "window_end": tier.window_end(now),
                        }
                    )
            return rows

    def reset(self) -> None:
        with self._lock:
            self.storage.reset()
            self._open_windows.clear()

    def _key(self, bucket: str, tier: Tier, now: float) -> str:
        return f"{bucket}/{tier.limit}/{tier.period}/{tier.window(now)}"

    def _open(self, bucket: str, tier: Tier, now: float) -> str:
        """The counter key of the current window; the bucket's previous window is cleared."""
        key = self._key(bucket, tier, now)
        previous = self._open_windows.get((bucket, tier))
        if previous != key:
            if previous is not None:
                self.storage.clear(previous)
            self._open_windows[bucket, tier] = key
            if len(self._open_windows) > SWEEP_ABOVE:
                self._sweep(now)
        return key

    def _sweep(self, now: float) -> None:
        for (bucket, tier), key in list(self._open_windows.items()):
            if key != self._key(bucket, tier, now):
                self.storage.clear(key)
                del self._open_windows[bucket, tier]
