"""Where the emulator's state lives (SPEC 2.5): this process's memory, or Redis shared by many.

`open_parts(settings)` is the one place that chooses: it returns the store, the clock and the
throttle, built for the `--storage` URL in `settings.storage`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .clock import Clock
from .settings import ConfigError, Settings
from .state import MemoryStore, Store
from .throttle import Throttle


@dataclass(frozen=True)
class Parts:
    store: Store
    clock: Clock
    throttle: Throttle


def open_memory(settings: Settings) -> Parts:
    clock = Clock(rate=settings.time_scale)
    return Parts(
        store=MemoryStore(settings.bounds, settings.fixture),
        clock=clock,
        throttle=Throttle(settings.throttle, clock),
    )


def open_redis(settings: Settings) -> Parts:
    raise ConfigError("--storage redis:// is not built yet")


OPENERS: dict[str, Callable[[Settings], Parts]] = {"memory": open_memory, "redis": open_redis}


def open_parts(settings: Settings) -> Parts:
    """The store, clock and throttle for `settings.storage` (memory:// or redis://...)."""
    return OPENERS[urlsplit(settings.storage).scheme](settings)
