"""Scenarios a reader can name: each draws customers and how the emulator behaves toward the client.

Every scenario also has one explicit example that always runs first, so each is exercised in every
run, however few examples are asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from .expectations import DEFAULT_CUSTOMER_SCHEMA, NON_RETRYABLE
from .model import Example, ServerBehaviour
from .strategies import built_in_responses, customer_batches, expand_customers

SAMPLE_CUSTOMERS: list[dict[str, Any]] = [
    {
        "email": "ada.lovelace+survey@example.com",
        "name": "Ada Łovelace 😀",
        "external_id": "A-1",
        "phone_number": None,
        "transactional_data": {
            "Segment": "Gold",
            "Amount": 12.5,
            "Items": 3,
            "Vip": True,
            "Note": None,
            # An integer-valued float beyond 2^53: JavaScript writes it -40388485656229150.
            "Balance": -40388485656229152.0,
        },
    },
    {"email": "Bob.O'Neil@example.org", "name": 'Bob "the" Builder', "phone_number": "5551234567"},
    {
        "email": "müşteri@example.net",
        "name": "Müşteri",
        "external_id": "",
        "transactional_data": {},
    },
]


# One of each schema type, in an order that is not the schema's: the link must keep the client's.
SAMPLE_RESPONSES: dict[str, Any] = {
    "Comment": 'Çok iyi, "great" 👍',
    "NPS": 9,
    "Channel": "web",
    "Satisfied": True,
    "Score": 4.5,
    "Tags": ["a", 1, None],
    "VisitDate": "2024-02-29",
    "VisitTime": "2024-02-29 10:00:00",
}


def _ordinary() -> st.SearchStrategy[list[dict[str, Any]]]:
    return customer_batches(min_count=1, max_count=30).map(lambda batch: batch.expand())


def _with(
    behaviour: st.SearchStrategy[ServerBehaviour],
) -> Callable[[str], st.SearchStrategy[Example]]:
    def build(name: str) -> st.SearchStrategy[Example]:
        return st.builds(Example, st.just(name), _ordinary(), behaviour)

    return build


def _fault(
    kind: dict[str, Any], times: st.SearchStrategy[int | None]
) -> st.SearchStrategy[ServerBehaviour]:
    def behaviour(times_value: int | None) -> ServerBehaviour:
        fault = {**kind, "match": {"path": "/v1/"}}
        if times_value is not None:
            fault["times"] = times_value
        return ServerBehaviour(faults=(fault,))

    return times.map(behaviour)


def _scripted_429() -> st.SearchStrategy[ServerBehaviour]:
    return st.builds(
        lambda times, retry_after: ServerBehaviour(
            faults=(
                {
                    "status": 429,
                    "times": times,
                    "match": {"path": "/v1/"},
                    **({"retry_after": retry_after} if retry_after is not None else {}),
                },
            )
        ),
        st.integers(1, 2),
        # Without Retry-After a careful client waits several seconds; keep those examples rarer.
        st.sampled_from([None, 1, 1]),
    )


def _throttle() -> st.SearchStrategy[ServerBehaviour]:
    return st.builds(
        lambda tiers, rate, offset: ServerBehaviour(
            preload_tiers=tiers, clock_rate=rate, window_offset=offset
        ),
        st.integers(1, 2),
        # Slow enough that a client process starting up (0.1-0.5 s) still meets the window.
        st.sampled_from([4.0, 8.0, 16.0]),
        st.integers(0, 2).map(float),
    )


SCENARIOS: dict[str, Callable[[str], st.SearchStrategy[Example]]] = {
    "ordinary": _with(st.just(ServerBehaviour())),
    "empty": lambda name: st.just(Example(name, [])),
    "above 5000": lambda name: st.builds(
        Example,
        st.just(name),
        customer_batches(min_count=5001, max_count=7000).map(lambda b: b.expand()),
    ),
    "throttle tiers": _with(_throttle()),
    "scripted 429": _with(_scripted_429()),
    "transient 5xx": lambda name: st.builds(
        Example,
        st.just(name),
        _ordinary(),
        st.sampled_from([500, 502, 503]).flatmap(
            lambda s: _fault({"status": s}, st.integers(1, 3))
        ),
    ),
    "dropped before": _with(_fault({"drop": "before"}, st.integers(1, 2))),
    "dropped after": _with(_fault({"drop": "after"}, st.just(1))),
    "refused for good": lambda name: st.builds(
        Example,
        st.just(name),
        _ordinary(),
        st.sampled_from(NON_RETRYABLE).flatmap(lambda code: _fault({"error": code}, st.none())),
    ),
}

_EXPLICIT: list[Example] = [
    Example("ordinary", SAMPLE_CUSTOMERS),
    Example("empty", []),
    Example("above 5000", expand_customers(SAMPLE_CUSTOMERS, 5001)),
    Example(
        "throttle tiers", SAMPLE_CUSTOMERS[:2], ServerBehaviour(preload_tiers=1, clock_rate=5.0)
    ),
    Example(
        "throttle tiers", SAMPLE_CUSTOMERS[1:], ServerBehaviour(preload_tiers=2, clock_rate=10.0)
    ),
    Example(
        "scripted 429",
        SAMPLE_CUSTOMERS,
        ServerBehaviour(faults=({"status": 429, "times": 1, "match": {"path": "/v1/"}},)),
    ),
    Example(
        "scripted 429",
        SAMPLE_CUSTOMERS[:1],
        ServerBehaviour(
            faults=({"status": 429, "retry_after": 1, "times": 2, "match": {"path": "/v1/"}},)
        ),
    ),
    Example(
        "transient 5xx",
        SAMPLE_CUSTOMERS,
        ServerBehaviour(faults=({"status": 503, "times": 2, "match": {"path": "/v1/"}},)),
    ),
    Example(
        "dropped before",
        SAMPLE_CUSTOMERS,
        ServerBehaviour(faults=({"drop": "before", "times": 1, "match": {"path": "/v1/"}},)),
    ),
    Example(
        "dropped after",
        SAMPLE_CUSTOMERS,
        ServerBehaviour(faults=({"drop": "after", "times": 1, "match": {"path": "/v1/"}},)),
    ),
    Example(
        "refused for good",
        SAMPLE_CUSTOMERS,
        ServerBehaviour(faults=({"error": 13001, "match": {"path": "/v1/"}},)),
    ),
]


EXPLICIT = [replace(example, built_in_responses=SAMPLE_RESPONSES) for example in _EXPLICIT]


def _with_responses(example: st.SearchStrategy[Example]) -> st.SearchStrategy[Example]:
    responses = built_in_responses(customer_schema=DEFAULT_CUSTOMER_SCHEMA)
    return st.builds(
        lambda drawn, values: replace(drawn, built_in_responses=values), example, responses
    )


def examples(*, scenarios: tuple[str, ...] | None = None) -> st.SearchStrategy[Example]:
    """Examples of the named scenarios (all by default), each scenario equally likely."""
    names = scenarios or tuple(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return _with_responses(st.sampled_from(names).flatmap(lambda name: SCENARIOS[name](name)))


def explicit_examples(*, scenarios: tuple[str, ...] | None = None) -> list[Example]:
    names = scenarios or tuple(SCENARIOS)
    return [example for example in EXPLICIT if example.scenario in names]
