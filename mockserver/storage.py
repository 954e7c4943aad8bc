"""Where the emulator's state lives (SPEC 2.5): this process's memory, or Redis shared by many.

`open_parts(settings)` is the one place that chooses: it returns the store, the clock and the
throttle, built for the `--storage` URL in `settings.storage`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .clock import Clock, MemoryClock
from .redis_state import open_redis
from .settings import Settings
from .state import MemoryStore, Store
from .throttle import MemoryThrottle, Throttle


@dataclass(frozen=True)
class Parts:
    store: Store
    clock: Clock
    throttle: Throttle


def open_memory(settings: Settings) -> Parts:
    clock = MemoryClock(rate=settings.time_scale)
    return Parts(
        store=MemoryStore(settings.bounds, settings.fixture),
        clock=clock,
        throttle=MemoryThrottle(settings.throttle, clock),
    )


def open_shared(settings: Settings) -> Parts:
    """Everything in Redis (SPEC 2.5): every worker and replica on the same URL is one Pisano."""
    store, clock, throttle = open_redis(settings)
    return Parts(store=store, clock=clock, throttle=throttle)


OPENERS: dict[str, Callable[[Settings], Parts]] = {"memory": open_memory, "redis": open_shared}


def open_parts(settings: Settings) -> Parts:
    """The store, clock and throttle for `settings.storage` (memory:// or redis://...)."""
    return OPENERS[urlsplit(settings.storage).scheme](settings)
