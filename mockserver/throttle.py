"""Pisano's throttle tiers (SPEC 1.3), counted the way Rack::Attack counts them.

The tiers are data, parsed once by `limits.parse_many`. Windows are fixed and aligned to the epoch
of the EMULATOR's clock (`floor(now / period)`), so a test steps through them without sleeping.
Tiers are checked in order, and a request is counted against every tier up to the first one it
exceeds (Rack::Attack stops there).

Exactness (SPEC 1.3): the clock is read and the request counted under one lock, so a request
belongs to the window of the instant it was counted at, and that instant (`Verdict.now`) is the
one the journal records. Each key holds one record: per tier, the counts of the last WINDOWS_KEPT
windows it was counted in, ended or not, so that a clock set back and forth among them never opens
a window twice. `limits`' storages are not used for the counters: they expire keys in real time,
while the windows here live on the emulator's clock, which a test freezes, moves on, or sets back.
Memory is bounded by keys, not by time: past `throttle.max_keys` keys the one counted longest ago
is forgotten, in O(1) per request, as a cache store (memcached, Rails' MemoryStore) evicts.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem, parse_many

from .clock import Clock
from .settings import ThrottleSettings

# Windows whose counts a key keeps per tier: the clock may be set back and forth among them
# without a window ever opening twice; one touched before these starts afresh.
WINDOWS_KEPT = 8


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


# One key's counts: per tier, its recent windows as machine integers [index, count, index, count,
# ...], the window touched most recently last. An exact-size array, not objects: a key with every
# window kept costs ~1.1 KiB instead of ~2.1 KiB (`python bench/throttle_keys.py --memory`).
_Record = dict[Tier, "array[int]"]
_NONE: array[int] = array("q")


def _count(record: _Record, tier: Tier, index: int) -> int:
    """One more request in window `index` of `tier`; the count it makes there."""
    windows = record.get(tier, _NONE)
    last = len(windows) - 2
    if last >= 0 and windows[last] == index:  # the usual case: the window touched last
        windows[last + 1] += 1
        return windows[last + 1]
    count = (_held(windows, index) or 0) + 1
    pairs = [(windows[at], windows[at + 1]) for at in range(0, last + 1, 2)]
    others = [pair for pair in pairs if pair[0] != index]
    kept = others[-(WINDOWS_KEPT - 1) :]  # the least recently touched is let go first
    record[tier] = array("q", [n for pair in (*kept, (index, count)) for n in pair])
    return count


def _held(windows: array[int], index: int) -> int | None:
    """The count held for window `index`, if it is held."""
    for at in range(len(windows) - 2, -1, -2):
        if windows[at] == index:
            return windows[at + 1]
    return None


def _held_as(token: str) -> str:
    """A token over 64 characters is held as its first 32 and a 128-bit digest of the whole, so
    that a key costs the same memory whatever the header's length."""
    if len(token) <= 64:
        return token
    digest = hashlib.blake2b(token.encode(errors="surrogatepass"), digest_size=16).hexdigest()
    return token[:32] + digest


class Throttle(Protocol):
    """What the gate and the admin API need of the throttle, whatever keeps its counters."""

    settings: ThrottleSettings
    clock: Clock
    tiers: tuple[Tier, ...]

    @property
    def keys_held(self) -> int: ...
    def bucket(self, token: str | None, client_ip: str) -> str: ...
    def tiers_for(self, client_ip: str) -> tuple[Tier, ...]: ...
    def hit(self, bucket: str, tiers: tuple[Tier, ...]) -> Verdict: ...
    def snapshot(self, now: float) -> list[dict[str, object]]: ...
    def reset(self) -> None: ...


class ThrottleRules:
    """What every throttle decides the same way, wherever it counts: keys and tiers."""

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

    def bucket(self, token: str | None, client_ip: str) -> str:
        """The key requests are counted under (setting `throttle.key`)."""
        by_ip = f"ip:{client_ip}"
        if self.settings.key == "ip" or not token:
            return by_ip
        token = _held_as(token)
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


def snapshot_row(key: str, tier: Tier, count: int, now: float) -> dict[str, object]:
    """One row of `GET /__mock/throttle`: a key's count in a tier's current window."""
    return {
        "key": key,
        "tier": str(tier),
        "limit": tier.limit,
        "period": tier.period,
        "count": count,
        "window_end": tier.window_end(now),
    }


class MemoryThrottle(ThrottleRules):
    """Counters in this process, under one lock."""

    def __init__(self, settings: ThrottleSettings, clock: Clock) -> None:
        super().__init__(settings, clock)
        self._lock = threading.Lock()
        self._records: OrderedDict[str, _Record] = OrderedDict()  # least recently counted first

    @property
    def keys_held(self) -> int:
        """How many keys hold counters."""
        return len(self._records)

    def hit(self, bucket: str, tiers: tuple[Tier, ...]) -> Verdict:
        """Count one request now, on the emulator's clock read under the same lock."""
        counts = []
        with self._lock:
            now = self.clock.now()
            record = self._touch(bucket)
            for tier in tiers:
                index = tier.window(now)
                count = _count(record, tier, index)
                counted = TierCount(tier, count, (index + 1) * tier.period)
                counts.append(counted)
                if counted.count > tier.limit:
                    return Verdict(now, tuple(counts), exceeded=counted)
        return Verdict(now, tuple(counts))

    def snapshot(self, now: float) -> list[dict[str, object]]:
        """Per bucket and tier: the count in the current window and when that window ends."""
        with self._lock:
            held = [
                (key, tier, count)
                for key, record in sorted(self._records.items())
                for tier, windows in sorted(record.items(), key=lambda item: item[0].period)
                if (count := _held(windows, tier.window(now))) is not None
            ]
        return [snapshot_row(key, tier, count, now) for key, tier, count in held]

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    def _touch(self, bucket: str) -> _Record:
        """The key's record, moved to the back (counted last); past `max_keys` the key counted
        longest ago is forgotten, windows open or not, as a cache store evicts under pressure."""
        record = self._records.get(bucket)
        if record is not None:
            self._records.move_to_end(bucket)
            return record
        record = self._records[bucket] = {}
        if len(self._records) > self.settings.max_keys:
            self._records.popitem(last=False)
        return record
