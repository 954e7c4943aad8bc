"""The throttle counting in-process: tiers parsed by `limits`, windows on the emulator clock."""

from __future__ import annotations

import time
import types

import limits.storage.memory

from mockserver.clock import Clock
from mockserver.settings import ThrottleSettings
from mockserver.throttle import Throttle, parse_tiers

ALIGNED = 1_000_000_000


def test_pisanos_tiers_parse_in_order():
    tiers = parse_tiers("20/5 seconds; 40/25 seconds; 80/125 seconds; 160/625 seconds")
    assert [(t.limit, t.period) for t in tiers] == [(20, 5), (40, 25), (80, 125), (160, 625)]
    assert str(tiers[0]) == "20/5 seconds"


def test_a_frozen_windows_count_survives_hours_of_real_time(monkeypatch):
    clock = Clock()
    clock.set(ALIGNED)
    throttle = Throttle(ThrottleSettings(), clock)
    for _ in range(20):
        assert throttle.hit("token:t", throttle.tiers, clock.now()).allowed
    later = time.time() + 10 * 3600  # ten real hours on, the emulator's clock still frozen
    monkeypatch.setattr(limits.storage.memory, "time", types.SimpleNamespace(time=lambda: later))
    verdict = throttle.hit("token:t", throttle.tiers, clock.now())
    assert not verdict.allowed and verdict.exceeded.count == 21


def test_a_refused_request_is_not_counted_by_later_tiers():
    clock = Clock()
    clock.set(ALIGNED)
    throttle = Throttle(ThrottleSettings(), clock)
    verdicts = [throttle.hit("k", throttle.tiers, clock.now()) for _ in range(25)]
    assert [c.count for c in verdicts[-1].counts] == [25]  # stopped at tier 1
    assert [c.count for c in verdicts[19].counts] == [20, 20, 20, 20]


def test_moving_to_the_next_window_forgets_the_previous_one():
    clock = Clock()
    clock.set(ALIGNED)
    throttle = Throttle(ThrottleSettings(tiers="2/5 seconds"), clock)
    for _ in range(3):
        throttle.hit("k", throttle.tiers, clock.now())
    clock.advance(5)
    assert throttle.hit("k", throttle.tiers, clock.now()).allowed
    assert len(throttle.storage.storage) == 1  # the old window's counter is gone
