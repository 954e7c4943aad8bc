"""Where the emulator's state lives (SPEC 2.5): this process's memory, or Redis shared by many.

`open_parts(settings)` is the one place that chooses: it returns the store, the clock, the
throttle and the outbox, built for the `--storage` URL in `settings.storage`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

from .clock import Clock, MemoryClock
from .outbox import MemoryOutbox, Outbox
from .redis_outbox import RedisOutbox
from .redis_state import RedisStore, open_redis
from .settings import Settings
from .state import MemoryStore, Store
from .throttle import MemoryThrottle, Throttle


@dataclass(frozen=True)
class Parts:
    store: Store
    clock: Clock
    throttle: Throttle
    outbox: Outbox
    shared: bool = False  # other processes may queue messages: senders start with the app


def open_memory(settings: Settings) -> Parts:
    clock = MemoryClock(rate=settings.time_scale)
    return Parts(
        store=MemoryStore(settings.bounds, settings.fixture),
        clock=clock,
        throttle=MemoryThrottle(settings.throttle, clock),
        outbox=MemoryOutbox(settings.bounds),
    )


def open_shared(settings: Settings) -> Parts:
    """Everything in Redis (SPEC 2.5): every worker and replica on the same URL is one Pisano."""
    store, clock, throttle = open_redis(settings)
    outbox = shared_outbox(store, settings)
    return Parts(store=store, clock=clock, throttle=throttle, outbox=outbox, shared=True)


def shared_outbox(store: RedisStore, settings: Settings) -> Outbox:
    """The outbox in the same Redis: any worker or replica delivers any message, once."""
    return RedisOutbox(store.client, settings.bounds)


OPENERS: dict[str, Callable[[Settings], Parts]] = {"memory": open_memory, "redis": open_shared}


def open_parts(settings: Settings) -> Parts:
    """The store, clock, throttle and outbox for `settings.storage` (memory:// or redis://...)."""
    return OPENERS[urlsplit(settings.storage).scheme](settings)


# What a store raises when it cannot be reached while the emulator serves (Redis stopped, or too
# slow): answered as "unavailable", never as the caller's mistake.
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)


def unavailable_reason(storage: str, error: Exception) -> str:
    """'storage: cannot reach redis://HOST:PORT/DB: <why>', with no password the URL may hold."""
    url = urlsplit(storage)
    shown = f"{url.scheme}://{url.hostname}:{url.port or 6379}{url.path}"
    return f"storage: cannot reach {shown}: {' '.join(str(error).split())}"
