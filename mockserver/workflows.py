"""Scheduled workflows (SPEC 1.8): each `[[workflows]]` entry shares its CSV at every due time of
its cron schedule, on the EMULATOR's clock (UTC).

The rule is one "mark" per workflow: the clock's reading when the schedule was last looked at.
Looking again moves the mark to the clock's new reading, and the due times between the two fire,
each once, in order. A reading below the mark means the clock was set back: the mark follows it
(the schedule is re-armed from there) and nothing fires. The mark is read and moved in one atomic
step together with the clock (one lock in memory, one Lua script in Redis), so that whichever
worker or replica moves it owns the due times it passes: each runs once across all of them.

Who looks: every clock change (admin.py), the listing (`GET /__mock/workflows`), and a ticker
thread while the clock runs (`Scheduler.start`, beside the postman's).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson
import redis
from croniter import croniter

from . import redis_scripts as lua
from .clock import Clock, MemoryClock
from .redis_state import RedisClock, key
from .settings import ConfigError, Workflow

log = logging.getLogger("pisano_mock")

MAX_CATCH_UP = 100  # due times one look fires at most (the LAST ones); earlier ones are skipped
SKIP_COUNT_BOUND = 100_000  # skipped due times counted one by one up to this (~1.5 s of croniter)
RUNS_KEPT = 2 * MAX_CATCH_UP  # runs listed per workflow (a whole look, its skipped note too)
TICK_SECONDS = 0.5  # how often the ticker looks, in real time, while the clock runs
# croniter works on datetimes: years 1 to 9999. The clock may read ±10^11 s (admin bound).
CRON_RANGE = (-62_135_596_800.0, 253_402_300_799.0)


@dataclass(frozen=True)
class Outcome:
    """What one run answered: the share's 200 (`count` recipients) or a catalogue entry."""

    status: str  # "ok" or "refused"
    count: int | None = None
    code: int | None = None
    reason: str | None = None


Run = Callable[[Workflow, float], Outcome]  # (workflow, the run's instant) → what it answered


@dataclass(frozen=True)
class Due:
    """The due times one look fires, oldest first, and the earlier ones it skipped."""

    times: list[float]
    skipped: int = 0  # counted up to SKIP_COUNT_BOUND
    skipped_from: float | None = None
    counted: bool = True  # False: more than SKIP_COUNT_BOUND were skipped


def in_cron_range(*readings: float) -> bool:
    return all(CRON_RANGE[0] < t < CRON_RANGE[1] for t in readings)


def due_times(schedule: str, after: float, until: float, cap: int = MAX_CATCH_UP) -> Due:
    """The due times in (after, until]: the last `cap` of them, and how many came before."""
    if not in_cron_range(after, until):
        return Due([])
    back = croniter(schedule, math.floor(until) + 1)  # due times are whole minutes
    kept: list[float] = []
    try:
        while len(kept) < cap and (when := back.get_prev(float)) > after:
            kept.append(when)
    except (ValueError, OverflowError):  # walked out of the datetime range
        pass
    kept.reverse()
    if len(kept) < cap:
        return Due(kept)
    return skipped_before(schedule, after, kept)


def skipped_before(schedule: str, after: float, kept: list[float]) -> Due:
    """`kept` with a count of the due times in (after, kept[0]), bounded."""
    forward = croniter(schedule, after)
    first = forward.get_next(float)
    if first >= kept[0]:
        return Due(kept)
    skipped = 1
    while skipped < SKIP_COUNT_BOUND and forward.get_next(float) < kept[0]:
        skipped += 1
    counted = skipped < SKIP_COUNT_BOUND or forward.get_next(float) >= kept[0]
    return Due(kept, skipped, first, counted)


def next_run(schedule: str, now: float) -> float | None:
    """The first due time after `now`; None when there is none the calendar can hold."""
    if not in_cron_range(now):
        return None
    try:
        return float(croniter(schedule, now).get_next(float))
    except (ValueError, OverflowError):  # e.g. "0 0 30 2 *": February has no 30th
        return None


def skipped_run(due: Due) -> dict[str, Any]:
    """The run list's note of the due times a look skipped (MAX_CATCH_UP)."""
    how_many = str(due.skipped) if due.counted else f"more than {SKIP_COUNT_BOUND}"
    return {
        "at": due.skipped_from,
        "trigger": "schedule",
        "status": "skipped",
        "count": due.skipped if due.counted else None,
        "code": None,
        "reason": (
            f"{how_many} due times from {due.skipped_from:.0f} to before {due.times[0]:.0f} "
            f"skipped: one look at the clock fires at most the last {MAX_CATCH_UP}"
        ),
    }


# -- where the marks and the runs are kept -------------------------------------------------------


class LookBusy(Exception):
    """Another process held the look longer than a look may wait."""


LOOK_LEASE_SECONDS = 120.0  # a look holds the shared lock at most this long (a process may die)
LOOK_WAIT_SECONDS = 60.0  # a look waits this long for another's to end


class RunBook(Protocol):
    """Marks and runs, in this process or in Redis (SPEC 2.5: runs listed from any replica)."""

    def now(self) -> float: ...
    def arm(self, names: Sequence[str]) -> None: ...
    def advance(self, name: str) -> tuple[float, float] | None: ...
    def record(self, name: str, run: dict[str, Any]) -> None: ...
    def runs(self, name: str) -> tuple[list[dict[str, Any]], int]: ...
    def reset(self, names: Sequence[str]) -> None: ...
    def looking(self) -> AbstractContextManager[object]: ...


def advanced(mark: float | None, now: float) -> tuple[float, float] | None:
    """The span (mark, now] a look owns; None when nothing is due (first look, set back, still)."""
    return (mark, now) if mark is not None and now > mark else None


class MemoryRunBook:
    """The marks and runs of one process, under one lock with the clock's reading."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._marks: dict[str, float] = {}
        self._runs: dict[str, deque[dict[str, Any]]] = {}
        self._recorded: dict[str, int] = {}

    def now(self) -> float:
        return self.clock.now()

    def looking(self) -> AbstractContextManager[object]:
        return nullcontext()  # one process: the scheduler's own lock keeps looks one at a time

    def arm(self, names: Sequence[str]) -> None:
        with self._lock:
            now = self.clock.now()
            for name in names:
                self._marks.setdefault(name, now)

    def advance(self, name: str) -> tuple[float, float] | None:
        with self._lock:
            now = self.clock.now()
            mark, self._marks[name] = self._marks.get(name), now
            return advanced(mark, now)

    def record(self, name: str, run: dict[str, Any]) -> None:
        with self._lock:
            self._runs.setdefault(name, deque(maxlen=RUNS_KEPT)).append(run)
            self._recorded[name] = self._recorded.get(name, 0) + 1

    def runs(self, name: str) -> tuple[list[dict[str, Any]], int]:
        with self._lock:
            held = list(self._runs.get(name, ()))
            return held, self._recorded.get(name, 0) - len(held)

    def reset(self, names: Sequence[str]) -> None:
        with self._lock:
            self._runs.clear()
            self._recorded.clear()
            self._marks.clear()
        self.arm(names)


# KEYS: clock, mark. ARGV: default rate, bound, only_if_absent (1/0).
# → {now, previous mark or ""}: the clock read and the mark moved in one step, for every replica.
WORKFLOW_ADVANCE = (
    lua._NUMBERS
    + lua._CLOCK
    + r"""
local now = clock_now(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
local mark = redis.call('GET', KEYS[2])
if ARGV[3] == '1' and mark then return {fmt(now), mark} end
redis.call('SET', KEYS[2], fmt(now))
return {fmt(now), mark or ''}
"""
)


class RedisRunBook:
    """The marks and runs in Redis: one mark per workflow moved by a Lua script, runs in a list."""

    def __init__(self, clock: RedisClock) -> None:
        self.clock = clock
        self.client = clock.client
        self._advance = self.client.register_script(WORKFLOW_ADVANCE)

    @staticmethod
    def keys(name: str) -> tuple[str, str, str]:
        base = key(f"workflow:{name}:")
        return base + "mark", base + "runs", base + "recorded"

    def now(self) -> float:
        return self.clock.now()

    @contextmanager
    def looking(self) -> Iterator[object]:
        """The look's lock, shared by every worker and replica (a lease: a process that dies
        holding it frees it after LOOK_LEASE_SECONDS)."""
        lock = self.client.lock(
            key("workflows:look"),
            timeout=LOOK_LEASE_SECONDS,
            blocking_timeout=LOOK_WAIT_SECONDS,
        )
        if not lock.acquire():
            raise LookBusy
        try:
            yield lock
        finally:
            with suppress(redis.exceptions.LockError):  # the lease ran out: nothing to free
                lock.release()

    def _move(self, name: str, only_if_absent: bool) -> tuple[float, float | None]:
        args = [*self.clock.script_args(), "1" if only_if_absent else "0"]
        now, mark = self._advance(keys=[self.clock.key, self.keys(name)[0]], args=args)
        return float(now), (float(mark) if mark else None)

    def arm(self, names: Sequence[str]) -> None:
        for name in names:  # a replica starting later keeps the mark the others moved
            self._move(name, only_if_absent=True)

    def advance(self, name: str) -> tuple[float, float] | None:
        now, mark = self._move(name, only_if_absent=False)
        return advanced(mark, now)

    def record(self, name: str, run: dict[str, Any]) -> None:
        _, runs, recorded = self.keys(name)
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(runs, orjson.dumps(run))
        pipe.ltrim(runs, -RUNS_KEPT, -1)
        pipe.incr(recorded)
        pipe.execute()

    def runs(self, name: str) -> tuple[list[dict[str, Any]], int]:
        _, runs, recorded = self.keys(name)
        pipe = self.client.pipeline(transaction=True)
        pipe.lrange(runs, 0, -1)
        pipe.get(recorded)
        held, total = pipe.execute()
        return [orjson.loads(run) for run in held], int(total or 0) - len(held)

    def reset(self, names: Sequence[str]) -> None:
        if names:
            self.client.unlink(*(k for name in names for k in self.keys(name)))
        self.arm(names)


def open_run_book(clock: Clock) -> RunBook:
    """Where the clock is, the marks are: a Redis clock shares them with every replica."""
    return RedisRunBook(clock) if isinstance(clock, RedisClock) else MemoryRunBook(clock)


# -- the scheduler -------------------------------------------------------------------------------


class Scheduler:
    """The configured workflows, their marks and runs (`book`), and who runs them (`run`)."""

    def __init__(self, workflows: Sequence[Workflow], book: RunBook, run: Run) -> None:
        self.workflows = {workflow.name: workflow for workflow in workflows}
        if len(self.workflows) != len(workflows):
            names = [workflow.name for workflow in workflows]
            twice = sorted({name for name in names if names.count(name) > 1})
            raise ConfigError(f"workflows: name {', '.join(map(repr, twice))} given twice")
        self.book = book
        self.run = run
        self._lock = threading.Lock()  # one look at a time in this process: runs stay in order
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._unreadable = False  # the last tick failed: logged once, not at every tick
        book.arm(list(self.workflows))

    @classmethod
    def idle(cls) -> Scheduler:
        """No workflows: an Emulator built without a scheduler has this one."""
        return cls((), MemoryRunBook(MemoryClock()), lambda workflow, at: Outcome("ok"))

    def catch_up(self) -> int:
        """Fire every due time the clock passed since the last look; how many ran. One look at
        a time across every process sharing the book: another's later span waits for ours, so
        due times run in order (SPEC 1.8) and not merely once."""
        with self._lock:
            try:
                with self.book.looking():
                    return sum(self._catch_up(w) for w in self.workflows.values())
            except LookBusy:  # another process held the look too long: the next look catches up
                return 0

    def _catch_up(self, workflow: Workflow) -> int:
        span = self.book.advance(workflow.name)
        if span is None:
            return 0
        due = due_times(workflow.schedule, *span)
        if due.skipped:
            self.book.record(workflow.name, skipped_run(due))
        for at in due.times:
            self.fire(workflow, at, "schedule")
        return len(due.times)

    def run_now(self, name: str) -> dict[str, Any] | None:
        """`POST /__mock/workflows/<name>/run`: one run at the clock's reading; None: no such."""
        workflow = self.workflows.get(name)
        if workflow is None:
            return None
        with self._lock:
            return self.fire(workflow, self.book.now(), "manual")

    def fire(self, workflow: Workflow, at: float, trigger: str) -> dict[str, Any]:
        outcome = self._outcome(workflow, at)
        run = {"at": at, "trigger": trigger, **asdict(outcome)}
        self.book.record(workflow.name, run)
        return run

    def _outcome(self, workflow: Workflow, at: float) -> Outcome:
        try:
            return self.run(workflow, at)
        except redis.RedisError:
            raise  # the store is unwell: the caller answers so (503), the tick logs it
        except Exception as error:  # a bug of ours: recorded as the API would answer it, 13000
            log.exception("workflow %s: run at %s failed", workflow.name, at)
            return Outcome("refused", code=13000, reason=f"emulator error: {error!r}")

    def listing(self) -> list[dict[str, Any]]:
        """`GET /__mock/workflows`, after a look: what the clock passed is listed."""
        self.catch_up()
        now = self.book.now()
        return [self._shown(workflow, now) for workflow in self.workflows.values()]

    def _shown(self, workflow: Workflow, now: float) -> dict[str, Any]:
        runs, dropped = self.book.runs(workflow.name)
        return {
            "name": workflow.name,
            "campaign": workflow.campaign,
            "schedule": workflow.schedule,
            "source": workflow.source,
            "next_run": next_run(workflow.schedule, now),
            "runs": runs,
            "runs_dropped": dropped,
        }

    def reset(self) -> None:
        """SPEC 2.2 reset: runs emptied, schedules re-armed from the clock (reset after it)."""
        with self._lock:
            self.book.reset(list(self.workflows))

    # -- the ticker: a running clock passes due times with nobody asking -------------------------
    def start(self) -> None:
        """Start the ticker, in the process that serves (never in one that forks afterwards)."""
        if not self.workflows or (self._ticker is not None and self._ticker.is_alive()):
            return
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_on, name="workflows", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join(timeout=10)
        self._ticker = None

    def _tick_on(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.tick()

    def tick(self) -> None:
        try:
            self.catch_up()
        except Exception:
            if not self._unreadable:
                log.exception("workflows: cannot look at the schedules")
            self._unreadable = True
        else:
            self._unreadable = False
