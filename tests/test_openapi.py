"""The OpenAPI document is what the server does: a short, deterministic schemathesis run.

`make fuzz` runs the same with ≥ 10,000 cases (README, "The admin API").
"""

from __future__ import annotations

from tests.fuzz_openapi import fuzz


def test_schemathesis_finds_nothing_over_a_few_hundred_cases():
    run = fuzz(max_examples=40, seed=1)
    assert run.returncode == 0, run.output[-6000:]
    assert run.cases >= 300, run.output[-2000:]
