"""The emulator's clock (SPEC 2.2): everything time-based reads `Clock.now()`, never time.time().

It runs at `rate` times real time from an anchor; set/advance freeze it (rate 0) unless a rate is
given, so a test can step through the throttle windows without sleeping. It never runs backwards
unless it is set back: a step back of the machine's clock (NTP) holds it still instead, so that a
throttle window, once left, is not entered again by a late reading (SPEC 1.3, "Exactness").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

# The clock never reads beyond ±READING_BOUND: a clock set near it and running on stops there,
# so that the admin API (which refuses to move it beyond the same bound) can still move it back.
READING_BOUND = 1e11


class Clock(Protocol):
    """What everything time-based needs of the emulator's clock, whatever keeps it (SPEC 2.2)."""

    def now(self) -> float: ...
    @property
    def rate(self) -> float: ...
    def set(self, when: float, rate: float = 0.0) -> None: ...
    def advance(self, seconds: float, rate: float = 0.0) -> None: ...
    def reset(self) -> None: ...
    def real_seconds(self, emulated_seconds: float) -> float | None: ...


def clamp_reading(value: float) -> float:
    return min(max(value, -READING_BOUND), READING_BOUND)


class MemoryClock:
    """The clock of one process: real time read from `real_time`, under a lock."""

    def __init__(self, rate: float = 1.0, real_time: Callable[[], float] = time.time) -> None:
        self._real_time = real_time
        self._default_rate = rate
        self._lock = threading.Lock()
        self._latest: float  # the latest reading since the clock was last set: it never goes back
        self.reset()

    def now(self) -> float:
        """Unix seconds on the emulator's clock."""
        with self._lock:
            running = clamp_reading(
                self._anchor + (self._real_time() - self._real_anchor) * self._rate
            )
            self._latest = max(self._latest, running)
            return self._latest

    @property
    def rate(self) -> float:
        return self._rate

    def set(self, when: float, rate: float = 0.0) -> None:
        """Move to `when`; frozen there unless `rate` says how fast it runs on."""
        with self._lock:
            self._anchor, self._real_anchor = when, self._real_time()
            self._rate = rate + 0.0  # -0.0 reads 0.0
            self._latest = clamp_reading(when)

    def advance(self, seconds: float, rate: float = 0.0) -> None:
        self.set(self.now() + seconds, rate)

    def reset(self) -> None:
        """Back to real time, running at the rate the emulator started with."""
        with self._lock:
            self._real_anchor = self._real_time()
            self._anchor = self._latest = self._real_anchor
            self._rate = self._default_rate

    def real_seconds(self, emulated_seconds: float) -> float | None:
        """How long `emulated_seconds` take in real time; None while the clock is frozen."""
        rate = self._rate
        return emulated_seconds / rate if rate > 0 else None
