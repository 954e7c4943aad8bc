"""The client suite: hypothesis draws examples, the runner plays them, the checks judge them.

Hypothesis shrinks a failing example to a smaller one by replaying the client — real processes
with real sleeps — so shrinking has a time budget: when it is spent, the smallest failing example
seen so far is the one reported.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from hypothesis import HealthCheck, Phase, given, seed, settings

from .checks import CHECKS, check_name, judged_checks, run_checks
from .model import ContractFailure, Example, KitError, Observation, exit_words
from .runner import Client, ExampleRunner, Target, could_not_run, on_endpoint
from .scenarios import examples, explicit_examples, scenarios_for


@dataclass
class Played:
    example: Example
    observation: Observation
    failures: list[ContractFailure]
    kit_seconds: float
    shrinking: bool
    judged: set[str] = field(default_factory=set)  # the checks that had something to judge


@dataclass
class SuiteResult:
    played: list[Played] = field(default_factory=list)
    seed: int = 0
    budget_spent: bool = False
    endpoint: str = "email"

    @property
    def failed_checks(self) -> set[str]:
        return {f.check for p in self.played for f in p.failures}

    @property
    def passed(self) -> bool:
        return not self.failed_checks

    @property
    def skipped_checks(self) -> set[str]:
        """Checks that had nothing to judge in any example: they did not run, so did not pass."""
        judged = set().union(*(p.judged for p in self.played))
        return set(ALL_CHECK_NAMES) - judged - self.failed_checks

    def smallest_failure(self, check: str) -> Played | None:
        failing = [p for p in self.played if any(f.check == check for f in p.failures)]
        return min(failing, key=lambda p: _size(p.example), default=None)

    def kit_overheads(self) -> list[float]:
        return [p.kit_seconds for p in self.played]

    @property
    def median_overhead(self) -> float:
        return statistics.median(self.kit_overheads()) if self.played else 0.0


class ShrinkBudgetSpent(Exception):
    """Raised instead of replaying the client once the shrinking budget is spent."""


_FAILURE_TYPES: dict[str, type[ContractFailure]] = {}


def _failure_type(check: str) -> type[ContractFailure]:
    # One exception type per check, so that hypothesis keeps distinct checks' failures apart.
    if check not in _FAILURE_TYPES:
        _FAILURE_TYPES[check] = type(check.title().replace(" ", ""), (ContractFailure,), {})
    return _FAILURE_TYPES[check]


class _SuiteRun:
    """One run of the suite: plays examples, records them, and keeps the shrinking budget."""

    def __init__(
        self,
        runner: ExampleRunner,
        result: SuiteResult,
        shrink_seconds: float,
        progress: TextIO | None,
    ) -> None:
        self.runner = runner
        self.result = result
        self.shrink_seconds = shrink_seconds
        self.progress = progress
        self.first_failure_at: float | None = None  # of a drawn example: shrinking starts

    def play(self, example: Example, *, explicit: bool) -> None:
        began_shrinking = self.first_failure_at
        shrinking = began_shrinking is not None
        if began_shrinking is not None and time.monotonic() - began_shrinking > self.shrink_seconds:
            self.result.budget_spent = True
            raise ShrinkBudgetSpent
        began = time.perf_counter()
        observation = self.runner.run(example)
        not_run = could_not_run(observation) if not self.result.played else None
        if not_run is not None:
            raise not_run
        failures = run_checks(example, observation)
        kit_seconds = time.perf_counter() - began - observation.client_seconds
        judged = judged_checks(example, observation)
        played = Played(example, observation, failures, kit_seconds, shrinking, judged)
        self.result.played.append(played)
        _report_progress(self.progress, len(self.result.played), played)
        if failures:
            if not explicit and self.first_failure_at is None:
                self.first_failure_at = time.monotonic()
            first = failures[0]
            raise _failure_type(first.check)(first.check, first.expected, first.received)

    def play_drawn(self, example: Example) -> None:
        self.play(example, explicit=False)


def run_client_suite(
    target: Target,
    client: Client,
    *,
    max_examples: int = 25,
    seed_value: int | None = None,
    timeout: float = 120.0,
    shrink_seconds: float = 60.0,
    scenarios: tuple[str, ...] | None = None,
    progress: TextIO | None = sys.stderr,
    endpoint: str = "email",
) -> SuiteResult:
    """Play every scenario's explicit example on `endpoint`, then `max_examples` drawn ones;
    shrink failures within `shrink_seconds`. Raises KitError when the kit itself cannot run."""
    if scenarios and not set(scenarios) & set(scenarios_for(endpoint)):
        raise KitError(f"no scenario of {', '.join(scenarios)} applies to the {endpoint} endpoint")
    chosen = seed_value if seed_value is not None else random.randrange(2**32)
    result = SuiteResult(seed=chosen, endpoint=endpoint)
    runner = ExampleRunner(on_endpoint(target, endpoint), client, timeout)
    run = _SuiteRun(runner, result, shrink_seconds, progress)
    try:
        for fixed in explicit_examples(scenarios=scenarios, endpoint=endpoint):
            with contextlib.suppress(ContractFailure):  # recorded in `result` by play()
                run.play(fixed, explicit=True)
        if max_examples > 0:
            _search(run, max_examples, scenarios, endpoint)
    finally:
        runner.close()
    return result


def _search(
    run: _SuiteRun, max_examples: int, scenarios: tuple[str, ...] | None, endpoint: str
) -> None:
    """Let hypothesis draw examples and shrink what fails; the record is `run.result`."""
    test = given(example=examples(scenarios=scenarios, endpoint=endpoint))(run.play_drawn)
    test = settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=True,
        print_blob=False,
    )(test)
    try:
        seed(run.result.seed)(test)()
    except KitError:
        raise
    except Exception:  # failures are read from the record, not from hypothesis' exception
        if run.result.passed and not run.result.budget_spent:
            raise


def _size(example: Example) -> tuple[int, int]:
    return len(example.customers), len(repr(example.customers))


def _report_progress(stream: TextIO | None, number: int, played: Played) -> None:
    if stream is None:
        return
    verdict = (
        "ok" if not played.failures else "FAILED " + ", ".join(f.check for f in played.failures)
    )
    phase = "shrinking " if played.shrinking else ""
    example, observation = played.example, played.observation
    print(
        f"[{number:3}] {phase}{example.scenario:<16} {len(example.customers):5} customers  "
        f"{exit_words(observation.exit_status)}  client {observation.client_seconds:5.2f} s  "
        f"kit {played.kit_seconds:4.2f} s  {verdict}",
        file=stream,
        flush=True,
    )


ALL_CHECK_NAMES = [check_name(check) for check in CHECKS]
