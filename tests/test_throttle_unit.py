"""The throttle counting in-process: tiers parsed by `limits`, windows on the emulator clock."""

from __future__ import annotations

import math

import pytest

from mockserver.clock import READING_BOUND, MemoryClock
from mockserver.settings import ConfigError, ThrottleSettings, load_settings
from mockserver.throttle import WINDOWS_KEPT, MemoryThrottle, Tier, parse_tiers

ALIGNED = 1_000_000_000


class RealTime:
    """The machine's clock, moved by hand (it may step back, as NTP makes it)."""

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def frozen_throttle(at: float = ALIGNED, **settings) -> MemoryThrottle:
    clock = MemoryClock()
    clock.set(at)
    return MemoryThrottle(ThrottleSettings(**settings), clock)


def accepted(throttle: MemoryThrottle, times: int, bucket: str = "k") -> int:
    return sum(throttle.hit(bucket, throttle.tiers).allowed for _ in range(times))


def test_pisanos_tiers_parse_in_order():
    tiers = parse_tiers("20/5 seconds; 40/25 seconds; 80/125 seconds; 160/625 seconds")
    assert [(t.limit, t.period) for t in tiers] == [(20, 5), (40, 25), (80, 125), (160, 625)]
    assert str(tiers[0]) == "20/5 seconds"


def test_a_frozen_windows_count_survives_hours_of_real_time():
    real = RealTime()
    clock = MemoryClock(real_time=real)
    clock.set(ALIGNED)
    throttle = MemoryThrottle(ThrottleSettings(), clock)
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
    clock = MemoryClock(real_time=real)
    clock.set(ALIGNED + 4.5, rate=1.0)
    throttle = MemoryThrottle(ThrottleSettings(), clock)
    real.value += 0.25
    verdict = throttle.hit("k", throttle.tiers)
    assert verdict.now == ALIGNED + 4.75
    assert [c.window_end for c in verdict.counts] == [ALIGNED + p for p in (5, 25, 125, 625)]


def test_a_reading_late_by_a_millisecond_never_reopens_the_window_before():
    # Issue 8 item 1, deterministically: 25 hits at ALIGNED+5, one at ALIGNED+4.999 (the machine's
    # clock stepped back), 25 at ALIGNED+5 again. The late reading cleared the newer window: 40
    # were accepted. A window of tier 1 accepts 20.
    real = RealTime()
    clock = MemoryClock(real_time=real)
    clock.set(ALIGNED + 5, rate=1.0)
    throttle = MemoryThrottle(ThrottleSettings(), clock)
    total = accepted(throttle, 25)
    real.value -= 0.001
    late = throttle.hit("k", throttle.tiers)
    real.value += 0.001
    total += late.allowed + accepted(throttle, 25)
    assert total == 20
    assert late.now == ALIGNED + 5  # the instant it was counted at, in the window it was counted in


def test_a_clock_set_back_then_forward_never_reopens_a_full_window():
    # attack 8 finding 6: frozen at T, 20 accepted and one refused; set to T-1, one accepted; set
    # to T+1 (T's window again), 20 more were accepted: 40 in one 5 s window.
    throttle = frozen_throttle(ALIGNED)
    assert accepted(throttle, 21) == 20
    throttle.clock.set(ALIGNED - 1)  # an earlier window, never counted in: it is open
    assert accepted(throttle, 1) == 1
    throttle.clock.set(ALIGNED + 1)  # back in T's window, which holds 21 already
    assert accepted(throttle, 21) == 0


def test_back_and_forth_across_three_windows_keeps_each_windows_count():
    throttle = frozen_throttle(tiers="2/5 seconds")
    for window in range(3):
        throttle.clock.set(ALIGNED + 5 * window)
        assert accepted(throttle, 3) == 2
    for offset in (0, 10, 5, 1, 14, 6, 4, 11, 9):  # every window visited again, out of order
        throttle.clock.set(ALIGNED + offset)
        assert accepted(throttle, 1) == 0, offset


def test_beyond_the_windows_kept_per_tier_the_least_recently_touched_starts_afresh():
    throttle = frozen_throttle(tiers="2/5 seconds")
    for window in range(WINDOWS_KEPT + 1):  # the first window touched is the one let go
        throttle.clock.set(ALIGNED + 5 * window)
        assert accepted(throttle, 2) == 2
    throttle.clock.set(ALIGNED + 5)  # the second is still kept
    assert accepted(throttle, 1) == 0
    throttle.clock.set(ALIGNED)
    assert accepted(throttle, 3) == 2


def test_a_key_whose_windows_have_ended_keeps_them_for_a_clock_set_back():
    throttle = frozen_throttle()
    assert accepted(throttle, 21) == 20
    throttle.clock.advance(10_000)  # every window of "k" has ended
    for index in range(1000):
        throttle.hit(f"other-{index}", throttle.tiers)
    throttle.clock.set(ALIGNED)
    assert accepted(throttle, 1) == 0


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


def counting_throttle(**kwargs) -> MemoryThrottle:
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


def test_the_default_bound_holds_far_more_than_fifty_thousand_keys():
    # attack 8 finding 7: test-token was full; 50,010 other keys later it took 20 more.
    throttle = frozen_throttle()
    assert accepted(throttle, 21, "test-token") == 20
    for index in range(60_000):
        throttle.hit(f"junk-{index}", throttle.tiers)
    assert accepted(throttle, 1, "test-token") == 0


def test_past_max_keys_the_least_recently_counted_key_is_forgotten():
    throttle = frozen_throttle(max_keys=100)
    assert accepted(throttle, 21, "kept") == 20
    assert accepted(throttle, 1, "forgotten") == 1
    for index in range(98):
        throttle.hit(f"key-{index}", throttle.tiers)
    assert accepted(throttle, 1, "kept") == 0  # counted last now: "forgotten" is the oldest
    throttle.hit("one-more", throttle.tiers)
    assert throttle.keys_held == 100
    assert [row["count"] for row in throttle.snapshot(ALIGNED) if row["key"] == "forgotten"] == []
    assert accepted(throttle, 1, "kept") == 0
    assert accepted(throttle, 20, "forgotten") == 20  # its windows start afresh


def test_max_keys_is_a_setting_of_at_least_one(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[throttle]\nmax_keys = 100\n")
    assert load_settings(path).throttle.max_keys == 100
    path.write_text("[throttle]\nmax_keys = 0\n")
    with pytest.raises(ConfigError, match=r"throttle\.max_keys"):
        load_settings(path)


# -- the clock ---------------------------------------------------------------------------------


def test_a_running_clock_reads_no_further_than_the_bound():
    # attack 8 finding 11: set 1e11 at rate 10^6 ran past 1e11, and then even advance -1 was
    # refused (the admin API's bound). The reading stops at the bound; a step back leaves it.
    real = RealTime()
    clock = MemoryClock(real_time=real)
    clock.set(READING_BOUND - 1, rate=1e6)
    real.value += 1
    assert clock.now() == READING_BOUND
    clock.advance(-1)
    assert clock.now() == READING_BOUND - 1


def test_a_rate_of_minus_zero_reads_zero():
    clock = MemoryClock()
    clock.set(ALIGNED, rate=-0.0)
    assert math.copysign(1, clock.rate) == 1


def test_a_long_token_costs_a_key_of_bounded_length():
    # A junk Authorization of 60 KB per key made each of 50,000 keys cost 60 KB.
    throttle = frozen_throttle()
    first, second = "x" * 60_000 + "1", "x" * 60_000 + "2"
    keys = {throttle.bucket(token, "127.0.0.1") for token in (first, second)}
    assert len(keys) == 2 and all(len(key) <= 80 for key in keys)
    assert throttle.bucket("short-token", "127.0.0.1") == "token:short-token"
