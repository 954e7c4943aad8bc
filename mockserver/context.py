"""The emulator's parts as one object, reachable from any view through `current_emulator()`."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from .clock import Clock
from .links import LinkMaker
from .metrics import MemoryMetrics, Metrics
from .outbox import Outbox
from .postman import Postman
from .settings import Settings
from .state import Store
from .throttle import Throttle
from .workflows import Scheduler

EXTENSION_KEY = "pisano_mock"


@dataclass
class Emulator:
    settings: Settings
    store: Store
    clock: Clock
    throttle: Throttle
    links: LinkMaker
    outbox: Outbox
    postman: Postman
    metrics: Metrics = field(default_factory=MemoryMetrics)
    scheduler: Scheduler = field(default_factory=Scheduler.idle)  # SPEC 1.8 workflows

    def reset(self) -> None:
        """SPEC 2.2 reset: journal, sharings, outbox, counters and faults emptied; clock back to
        real; accounts, tokens and campaigns back to the configuration's (issue 8, item 12).
        The metrics' counters stay: Prometheus counters only go up (metrics.py)."""
        self.store.reset()
        self.outbox.reset()  # a message being sent when it empties is settled into nothing
        self.throttle.reset()
        self.clock.reset()
        self.scheduler.reset()  # after the clock: schedules re-armed from its reading


def current_emulator() -> Emulator:
    return current_app.extensions[EXTENSION_KEY]
