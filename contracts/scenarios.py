"""Scenarios a reader can name: each draws customers and how the emulator behaves toward the client.

Every scenario also has one explicit example that always runs first, so each is exercised in every
run, however few examples are asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from .endpoints import ENDPOINTS
from .expectations import DEFAULT_CUSTOMER_SCHEMA, NON_RETRYABLE
from .model import Example, ServerBehaviour
from .strategies import EXPANDERS, built_in_responses, customer_batches

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


SAMPLE_SMS_CUSTOMERS: list[dict[str, Any]] = [
    {
        "phone_number": "+90 (532) 123-45-67",
        "name": "Ayşe Yılmaz 😀",
        "external_id": "S-1",
        "email": None,
        "transactional_data": SAMPLE_CUSTOMERS[0]["transactional_data"],
    },
    {"phone_number": "5551234567", "name": 'Bob "the" Builder', "email": "bob@example.org"},
    {"phone_number": "555.123.4568", "external_id": "", "transactional_data": {}},
]

SAMPLE_LINK_CUSTOMERS: list[dict[str, Any]] = [
    {
        "external_id": "L-1",
        "email": "ada.lovelace+survey@example.com",
        "name": "Ada Łovelace 😀",
        "phone_number": "",
        "Tier": "Gold",
        "Visits": 3,
        "transactional_data": SAMPLE_CUSTOMERS[0]["transactional_data"],
    },
    {"email": "Bob.O'Neil@example.org", "name": 'Bob "the" Builder', "Vip": True},
    {"phone_number": "+90 532 123 45 67", "external_id": "", "Note": None},
    {"name": "Müşteri"},
]

SAMPLES: dict[str, list[dict[str, Any]]] = {
    "email": SAMPLE_CUSTOMERS,
    "sms": SAMPLE_SMS_CUSTOMERS,
    "link": SAMPLE_LINK_CUSTOMERS,
}
# A link is one call per customer: lists stay small enough to meet the throttle only where a
# scenario means it to.
MOST_CUSTOMERS = {"email": 30, "sms": 30, "link": 8}

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


def _ordinary(endpoint: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    batches = customer_batches(min_count=1, max_count=MOST_CUSTOMERS[endpoint], endpoint=endpoint)
    return batches.map(lambda batch: batch.expand())


Build = Callable[[str, str], st.SearchStrategy[Example]]  # (scenario, endpoint) -> examples


def _with(behaviour: st.SearchStrategy[ServerBehaviour]) -> Build:
    def build(name: str, endpoint: str) -> st.SearchStrategy[Example]:
        return st.builds(Example, st.just(name), _ordinary(endpoint), behaviour)

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


SCENARIOS: dict[str, Build] = {
    "ordinary": _with(st.just(ServerBehaviour())),
    "empty": lambda name, _endpoint: st.just(Example(name, [])),
    "above 5000": lambda name, endpoint: st.builds(
        Example,
        st.just(name),
        customer_batches(min_count=5001, max_count=7000, endpoint=endpoint).map(
            lambda b: b.expand()
        ),
    ),
    "throttle tiers": _with(_throttle()),
    "scripted 429": _with(_scripted_429()),
    "transient 5xx": lambda name, endpoint: st.builds(
        Example,
        st.just(name),
        _ordinary(endpoint),
        st.sampled_from([500, 502, 503]).flatmap(
            lambda s: _fault({"status": s}, st.integers(1, 3))
        ),
    ),
    "dropped before": _with(_fault({"drop": "before"}, st.integers(1, 2))),
    "dropped after": _with(_fault({"drop": "after"}, st.just(1))),
    "refused for good": lambda name, endpoint: st.builds(
        Example,
        st.just(name),
        _ordinary(endpoint),
        st.sampled_from(NON_RETRYABLE).flatmap(lambda code: _fault({"error": code}, st.none())),
    ),
}

# Scenarios that cannot apply to an endpoint: a link is one customer per call, so 5001 of them
# are 5001 calls (and hours of throttle), not one request over the limit.
NOT_FOR: dict[str, frozenset[str]] = {"link": frozenset({"above 5000"})}


def scenarios_for(endpoint: str) -> tuple[str, ...]:
    return tuple(name for name in SCENARIOS if name not in NOT_FOR.get(endpoint, frozenset()))


_EXPLICIT: list[Example] = [
    Example("ordinary", SAMPLE_CUSTOMERS),
    Example("empty", []),
    Example("above 5000", EXPANDERS["email"](SAMPLE_CUSTOMERS, 5001)),
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


def retargeted(example: Example, endpoint: str) -> Example:
    """An example on `endpoint`: its faults on that endpoint's path (scenarios write them for
    "/v1/")."""
    prefix = ENDPOINTS[endpoint].fault_prefix
    faults = tuple(
        {**fault, "match": {**fault["match"], "path": prefix}} for fault in example.server.faults
    )
    return replace(example, endpoint=endpoint, server=replace(example.server, faults=faults))


def _explicit_on(example: Example, endpoint: str) -> Example:
    """A fixed example (written with the email samples) with `endpoint`'s samples instead."""
    customers = example.customers
    if endpoint != "email" and customers:
        customers = _samples_like(customers, endpoint)
    return retargeted(replace(example, customers=customers), endpoint)


def _samples_like(customers: list[dict[str, Any]], endpoint: str) -> list[dict[str, Any]]:
    """As many of `endpoint`'s samples as the email example holds of the email samples."""
    samples = SAMPLES[endpoint]
    if len(customers) > len(SAMPLE_CUSTOMERS):
        return EXPANDERS[endpoint](samples, len(customers))
    start = SAMPLE_CUSTOMERS.index(customers[0]) if customers[0] in SAMPLE_CUSTOMERS else 0
    return samples[start : start + len(customers)] or samples[: len(customers)]


def _with_responses(example: st.SearchStrategy[Example]) -> st.SearchStrategy[Example]:
    responses = built_in_responses(customer_schema=DEFAULT_CUSTOMER_SCHEMA)
    return st.builds(
        lambda drawn, values: replace(drawn, built_in_responses=values), example, responses
    )


def _names(scenarios: tuple[str, ...] | None, endpoint: str) -> tuple[str, ...]:
    """The scenarios asked for (all by default) that apply to `endpoint`."""
    names = scenarios or tuple(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return tuple(name for name in names if name in scenarios_for(endpoint))


def examples(
    *, scenarios: tuple[str, ...] | None = None, endpoint: str = "email"
) -> st.SearchStrategy[Example]:
    """Examples of the named scenarios (all by default) on `endpoint`, each equally likely."""
    names = _names(scenarios, endpoint)
    if not names:
        return st.nothing()

    def build(name: str) -> st.SearchStrategy[Example]:
        return SCENARIOS[name](name, endpoint).map(lambda drawn: retargeted(drawn, endpoint))

    return _with_responses(st.sampled_from(names).flatmap(build))


def explicit_examples(
    *, scenarios: tuple[str, ...] | None = None, endpoint: str = "email"
) -> list[Example]:
    names = _names(scenarios, endpoint)
    return [_explicit_on(e, endpoint) for e in EXPLICIT if e.scenario in names]
