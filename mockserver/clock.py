"""The emulator's clock (SPEC 2.2): everything time-based reads `Clock.now()`, never time.time().

It runs at `rate` times real time from an anchor; set/advance freeze it (rate 0) unless a rate is
given, so a test can step through the throttle windows without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    def __init__(self, rate: float = 1.0, real_time: Callable[[], float] = time.time) -> None:
        self._real_time = real_time
        self._default_rate = rate
        self._lock = threading.Lock()
        self.reset()

    def now(self) -> float:
        """Unix seconds on the emulator's clock."""
        with self._lock:
            return self._anchor + (self._real_time() - self._real_anchor) * self._rate

    @property
    def rate(self) -> float:
        return self._rate

    def set(self, when: float, rate: float = 0.0) -> None:
        """Move to `when`; frozen there unless `rate` says how fast it runs on."""
        with self._lock:
            self._anchor, self._real_anchor, self._rate = when, self._real_time(), rate

    def advance(self, seconds: float, rate: float = 0.0) -> None:
        self.set(self.now() + seconds, rate)

    def reset(self) -> None:
        """Back to real time, running at the rate the emulator started with."""
        with self._lock:
            self._real_anchor = self._real_time()
            self._anchor = self._real_anchor
            self._rate = self._default_rate

    def real_seconds(self, emulated_seconds: float) -> float | None:
        """How long `emulated_seconds` take in real time; None while the clock is frozen."""
        rate = self._rate
        return emulated_seconds / rate if rate > 0 else None
