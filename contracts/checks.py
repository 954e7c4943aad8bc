"""What the kit holds a client to (SPEC 3): one small function per line, named as a user says it.

Each check takes the example and what was observed, and raises ContractFailure when it does not
hold. Checks are written to be independent: a client with one defect fails one check.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from .expectations import AUTH_FORMS, BATCH_LIMIT, DOCUMENTED_PATH, IDENTITY_KEYS
from .model import ContractFailure, Example, Observation

Check = Callable[[Example, Observation], None]


# -- reading the journal ------------------------------------------------------------------------


def recipients_of(entry: dict[str, Any]) -> list[str]:
    body = entry.get("body")
    emails = body.get("emails") if isinstance(body, dict) else None
    if isinstance(emails, str):
        return [emails]
    return [e for e in emails if isinstance(e, str)] if isinstance(emails, list) else []


def is_transient_failure(entry: dict[str, Any]) -> bool:
    fault = entry.get("fault") or {}
    dropped_before = entry["status"] is None and fault.get("kind") == "drop"
    return dropped_before or entry["status"] == 429 or (entry["status"] or 0) >= 500


def is_final_refusal(entry: dict[str, Any]) -> bool:
    return entry["code"] is not None and 400 <= entry["status"] < 500


def dropped_after_batches(observation: Observation) -> list[frozenset[str]]:
    return [
        frozenset(recipients_of(entry))
        for entry in observation.requests
        if (entry.get("fault") or {}).get("kind") == "drop" and entry["status"] == 200
    ]


def canonical(value: Any) -> str:
    """A JSON value's identity: numbers by value (1 and 1.0 alike), booleans apart from numbers."""

    def normal(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            return int(v)
        if isinstance(v, dict):
            return {k: normal(x) for k, x in v.items()}
        if isinstance(v, list):
            return [normal(x) for x in v]
        return v

    return json.dumps(normal(value), sort_keys=True, ensure_ascii=False)


def fields_signature(identity: dict[str, Any], transactional: dict[str, Any] | None) -> str:
    """What must arrive of a customer: its identity fields (a null or empty one may be left out)
    and its transactional data (an empty object may be left out), as one comparable string."""
    kept = {k: identity[k] for k in IDENTITY_KEYS if identity.get(k) not in (None, "")}
    return canonical({"identity": kept, "transactional_data": transactional or {}})


def sent_signature(customer: dict[str, Any]) -> str:
    return fields_signature(customer, customer.get("transactional_data"))


def arrived_signature(sharing: dict[str, Any]) -> str:
    return fields_signature(
        sharing.get("custom_attributes") or {}, sharing.get("transactional_data")
    )


def first_sharings(observation: Observation) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for sharing in observation.sharings:
        found.setdefault(sharing["email"], sharing)
    return found


def _mismatches(example: Example, observation: Observation) -> Iterator[tuple[dict, dict, bool]]:
    """(customer, sharing, keyed to another customer) for each customer whose data arrived wrong."""
    delivered = first_sharings(observation)
    owners: dict[str, set[str]] = {}
    for customer in example.customers:
        owners.setdefault(sent_signature(customer), set()).add(customer["email"])
    for customer in example.customers:
        sharing = delivered.get(customer["email"])
        if sharing is None:
            continue
        arrived = arrived_signature(sharing)
        if arrived == sent_signature(customer):
            continue
        yield customer, sharing, bool(owners.get(arrived, set()) - {customer["email"]})


def _fields(identity: Any, transactional: Any) -> str:
    return f"custom attributes {identity} and transactional data {transactional}"


def _shown(items: list[Any], limit: int = 3) -> str:
    text = ", ".join(repr(i) for i in items[:limit])
    return text + (f" … ({len(items)} in all)" if len(items) > limit else "")


# -- the checks ---------------------------------------------------------------------------------


def client_finishes_in_time(example: Example, observation: Observation) -> None:
    if observation.exit_status is None:
        raise ContractFailure(
            "client finishes in time", "the client to exit", "it was killed at the timeout"
        )


def every_customer_delivered(example: Example, observation: Observation) -> None:
    if observation.exit_status != 0:
        return  # a client that exits non-zero admits it did not deliver; other checks judge that
    delivered = {s["email"] for s in observation.sharings}
    missing = [c["email"] for c in example.customers if c["email"] not in delivered]
    if missing:
        raise ContractFailure(
            "every customer delivered",
            f"each of the {len(example.customers)} customer(s) among the sharings (exit 0)",
            f"{len(missing)} missing: {_shown(missing)}",
        )


def no_customer_delivered_twice(example: Example, observation: Observation) -> None:
    resent_after_drop = dropped_after_batches(observation)
    counts: Counter[str] = Counter()
    excused = 0
    for entry in observation.requests:
        if entry["status"] != 200:
            continue
        batch = recipients_of(entry)
        if (entry.get("fault") or {}).get("kind") != "drop" and frozenset(
            batch
        ) in resent_after_drop:
            excused += 1
            continue
        counts.update(email.lower() for email in batch)
    if excused:
        observation.warnings.append(
            f"after a dropped answer (drop: after) the client re-sent exactly that batch {excused} "
            "time(s): those customers were delivered twice, which the client could not know"
        )
    twice = [email for email, n in counts.items() if n > 1]
    if twice:
        raise ContractFailure(
            "no customer delivered twice",
            "each customer in one accepted request",
            f"{len(twice)} delivered more than once: {_shown(twice)}",
        )


def fields_arrive_intact(example: Example, observation: Observation) -> None:
    for customer, sharing, keyed_elsewhere in _mismatches(example, observation):
        if not keyed_elsewhere:
            raise ContractFailure(
                "fields arrive intact",
                f"{customer['email']}: "
                + _fields(
                    {k: customer[k] for k in IDENTITY_KEYS if k in customer},
                    customer.get("transactional_data"),
                ),
                _fields(sharing.get("custom_attributes"), sharing.get("transactional_data")),
            )


def attributes_keyed_by_the_right_email(example: Example, observation: Observation) -> None:
    for customer, sharing, keyed_elsewhere in _mismatches(example, observation):
        if keyed_elsewhere:
            raise ContractFailure(
                "attributes keyed by the right email",
                f"{customer['email']}'s own attributes under its email",
                "another customer's: "
                + _fields(sharing.get("custom_attributes"), sharing.get("transactional_data")),
            )


def no_request_over_5000_recipients(example: Example, observation: Observation) -> None:
    for entry in observation.requests:
        count = len(recipients_of(entry))
        if count > BATCH_LIMIT:
            raise ContractFailure(
                "no request over 5000 recipients",
                f"at most {BATCH_LIMIT} per request",
                f"request #{entry['id']} with {count}",
            )


def requests_are_well_formed(example: Example, observation: Observation) -> None:
    for entry in observation.requests:
        headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        problems = []
        if media_type != "application/json":
            problems.append(f"Content-Type {headers.get('content-type')!r}")
        if not isinstance(entry.get("body"), dict):
            problems.append("a body that is not a JSON object")
        if entry["method"] != "POST" or not DOCUMENTED_PATH.match(entry["path"]):
            problems.append(f"{entry['method']} {entry['path']}")
        authorization = headers.get("authorization")
        if not authorization or not any(form.match(authorization) for form in AUTH_FORMS):
            problems.append(f"Authorization {authorization!r}")
        if problems:
            raise ContractFailure(
                "requests are well formed",
                "POST to the documented path, a JSON object, an accepted auth form",
                f"request #{entry['id']}: " + "; ".join(problems),
            )


def backs_off_after_429(example: Example, observation: Observation) -> None:
    refused: Counter[tuple[str, float]] = Counter()
    for entry in observation.requests:
        window = entry.get("throttle")
        if window:
            refused[window["tier"], window["window_end"]] += 1
    for (tier, window_end), count in refused.items():
        if count > 4:
            raise ContractFailure(
                "backs off after 429",
                "no more than 3 further requests refused in the same throttle window",
                f"{count - 1} further refusals in the {tier} window ending at {window_end:.0f}",
            )


def _followed_by(
    observation: Observation, picked: Callable[[dict[str, Any]], bool]
) -> Iterator[tuple[dict[str, Any], set[str]]]:
    """Each request `picked` selects, with every recipient the client sent after it."""
    requests = observation.requests
    for index, entry in enumerate(requests):
        if picked(entry):
            yield entry, set().union(*(recipients_of(later) for later in requests[index + 1 :]))


def non_retryable_errors_not_retried(example: Example, observation: Observation) -> None:
    for entry, sent_later in _followed_by(observation, is_final_refusal):
        retried = set(recipients_of(entry)) & sent_later
        if retried or observation.exit_status == 0:
            raise ContractFailure(
                "non-retryable errors not retried",
                f"request #{entry['id']} (answered {entry['status']}, code {entry['code']}) "
                "not sent again, and a non-zero exit",
                f"{len(retried)} recipients sent again; exit status {observation.exit_status}",
            )


def transient_errors_retried(example: Example, observation: Observation) -> None:
    for entry, sent_later in _followed_by(observation, is_transient_failure):
        lost = [email for email in recipients_of(entry) if email not in sent_later]
        if lost:
            what = "dropped connection" if entry["status"] is None else f"{entry['status']}"
            raise ContractFailure(
                "transient errors retried",
                f"the batch of request #{entry['id']} ({what}) sent again",
                f"{len(lost)} of its recipients never sent again: {_shown(lost)}",
            )


def exit_status_zero_when_every_customer_arrived(
    example: Example, observation: Observation
) -> None:
    if observation.exit_status in (0, None) or example.server.drops_after:
        return  # after a dropped answer the client cannot know, and may exit non-zero
    delivered = {s["email"] for s in observation.sharings}
    if all(c["email"] in delivered for c in example.customers):
        raise ContractFailure(
            "exit status zero when every customer arrived",
            "exit status 0: every customer was delivered",
            f"exit status {observation.exit_status}",
        )


CHECKS: tuple[Check, ...] = (
    client_finishes_in_time,
    every_customer_delivered,
    no_customer_delivered_twice,
    fields_arrive_intact,
    attributes_keyed_by_the_right_email,
    no_request_over_5000_recipients,
    requests_are_well_formed,
    backs_off_after_429,
    non_retryable_errors_not_retried,
    transient_errors_retried,
    exit_status_zero_when_every_customer_arrived,
)


def check_name(check: Check) -> str:
    return check.__name__.replace("_", " ")


def run_checks(example: Example, observation: Observation) -> list[ContractFailure]:
    """Every check over one example; the failures, each named after its check."""
    failures = []
    for check in CHECKS:
        try:
            check(example, observation)
        except ContractFailure as failure:
            failure.check = check_name(check)
            failures.append(failure)
    return failures
