"""The throttle counting in-process: tiers parsed by `limits`, windows on the emulator clock."""

from __future__ import annotations

import pytest

from mockserver.clock import Clock
from mockserver.settings import ThrottleSettings
from mockserver.throttle import Throttle, Tier, parse_tiers

ALIGNED = 1_000_000_000


class RealTime:
    """The machine's clock, moved by hand (it may step back, as NTP makes it)."""

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def frozen_throttle(at: float = ALIGNED, tiers: str | None = None, **kwargs) -> Throttle:
    clock = Clock()
    clock.set(at)
    settings = ThrottleSettings() if tiers is None else ThrottleSettings(tiers=tiers)
    return Throttle(settings, clock, **kwargs)


def accepted(throttle: Throttle, times: int, bucket: str = "k") -> int:
    return sum(throttle.hit(bucket, throttle.tiers).allowed for _ in range(times))


def test_pisanos_tiers_parse_in_order():
    tiers = parse_tiers("20/5 seconds; 40/25 seconds; 80/125 seconds; 160/625 seconds")
    assert [(t.limit, t.period) for t in tiers] == [(20, 5), (40, 25), (80, 125), (160, 625)]
    assert str(tiers[0]) == "20/5 seconds"


def test_a_frozen_windows_count_survives_hours_of_real_time():
    real = RealTime()
    clock = Clock(real_time=real)
    clock.set(ALIGNED)
    throttle = Throttle(ThrottleSettings(), clock)
    assert accepted(throttle, 20) == 20
    real.value += 10 * 3600  # ten real hours on, the emulator's clock still frozen
    verdict = throttle.hit("k", throttle.tiers)
    assert not verdict.allowed and verdict.exceeded.count == 21


def test_a_refused_request_is_not_counted_by_later_tiers():
    throttle = frozen_throttle()
    verdicts = [throttle.hit("k", throttle.tiers) for _ in range(25)]
    assert [c.count for c in verdicts[-1].counts] == [25]  # stopped at tier 1
    assert [c.count for c in verdicts[19].counts] == [20, 20, 20, 20]


def test_moving_to_the_next_window_forgets_the_previous_one():
    throttle = frozen_throttle(tiers="2/5 seconds")
    accepted(throttle, 3)
    throttle.clock.advance(5)
    assert throttle.hit("k", throttle.tiers).allowed
    assert [row["count"] for row in throttle.snapshot(throttle.clock.now())] == [1]


# -- SPEC 1.3 "Exactness" ------------------------------------------------------------------------


def test_a_verdict_carries_the_instant_the_throttle_counted_it_at():
    real = RealTime()
    clock = Clock(real_time=real)
    clock.set(ALIGNED + 4.5, rate=1.0)
    throttle = Throttle(ThrottleSettings(), clock)
    real.value += 0.25
    verdict = throttle.hit("k", throttle.tiers)
    assert verdict.now == ALIGNED + 4.75
    assert [c.window_end for c in verdict.counts] == [ALIGNED + p for p in (5, 25, 125, 625)]


def test_a_reading_late_by_a_millisecond_never_reopens_the_window_before():
    # Issue 8 item 1, deterministically: 25 hits at ALIGNED+5, one at ALIGNED+4.999 (the machine's
    # clock stepped back), 25 at ALIGNED+5 again. The late reading cleared the newer window: 40
    # were accepted. A window of tier 1 accepts 20.
    real = RealTime()
    clock = Clock(real_time=real)
    clock.set(ALIGNED + 5, rate=1.0)
    throttle = Throttle(ThrottleSettings(), clock)
    total = accepted(throttle, 25)
    real.value -= 0.001
    late = throttle.hit("k", throttle.tiers)
    real.value += 0.001
    total += late.allowed + accepted(throttle, 25)
    assert total == 20
    assert late.now == ALIGNED + 5  # the instant it was counted at, in the window it was counted in


def test_a_clock_set_back_opens_the_earlier_window_anew():
    throttle = frozen_throttle(ALIGNED + 5)
    assert accepted(throttle, 21) == 20
    throttle.clock.set(ALIGNED + 4)  # the admin API moved the clock back: the windows follow it
    assert throttle.hit("k", throttle.tiers).allowed
    throttle.clock.set(ALIGNED + 5)  # and forward again: a window left behind is a new window
    # Tier 1's window is new; tier 2's (40 / 25 s) never changed and holds 20 + 1 already.
    assert accepted(throttle, 21) == 40 - 21


def test_reset_clears_every_counter():
    throttle = frozen_throttle()
    accepted(throttle, 21)
    throttle.reset()
    assert throttle.snapshot(throttle.clock.now()) == []
    assert accepted(throttle, 21) == 20


# -- cost per request independent of how many keys exist (issue 8 item 2) ---------------------


class CountingTier(Tier):
    """A tier that counts how often its window is looked up: the work one hit does."""

    lookups = 0

    def window(self, now: float) -> int:
        CountingTier.lookups += 1
        return super().window(now)


def counting_throttle(**kwargs) -> Throttle:
    throttle = frozen_throttle(**kwargs)
    throttle.tiers = tuple(CountingTier(t.limit, t.period) for t in throttle.tiers)
    return throttle


@pytest.mark.parametrize("existing", [10, 5_000])
def test_a_new_key_costs_the_same_however_many_keys_exist(existing):
    throttle = counting_throttle()
    for index in range(existing):
        throttle.hit(f"old-{index}", throttle.tiers)
    throttle.clock.advance(5)  # every key's next hit opens a window, as a new key's does
    CountingTier.lookups = 0
    for index in range(100):
        throttle.hit(f"old-{index}", throttle.tiers)
        throttle.hit(f"new-{index}", throttle.tiers)
    assert CountingTier.lookups / 200 <= 2 * len(throttle.tiers)


def test_keys_whose_windows_have_all_ended_are_dropped():
    throttle = frozen_throttle()
    for index in range(1000):
        throttle.hit(f"old-{index}", throttle.tiers)
    assert throttle.keys_held == 1000
    throttle.clock.advance(624)  # the 625 s window is still open: nothing may be forgotten
    throttle.hit("new-0", throttle.tiers)
    assert throttle.keys_held == 1001
    throttle.clock.advance(1)  # ALIGNED + 625: every window of every key so far has ended
    throttle.hit("new-1", throttle.tiers)
    assert throttle.keys_held == 1


def test_the_number_of_keys_held_is_bounded():
    throttle = frozen_throttle(max_buckets=100)
    for index in range(1000):
        throttle.hit(f"key-{index}", throttle.tiers)
    assert throttle.keys_held == 100
    assert accepted(throttle, 21, "key-999") == 19  # the key touched last kept its count
