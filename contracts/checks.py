"""What the kit holds a client to (SPEC 3): one small function per line, named as a user says it.

Each check takes the example and what was observed, and raises ContractFailure when it does not
hold. Checks are written to be independent: a client with one defect fails one check.
"""

from __future__ import annotations

import base64
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .endpoints import EMAIL, ENDPOINTS, Endpoint
from .expectations import (
    AUTH_FORMS,
    BATCH_LIMIT,
    DEFAULT_CUSTOMER_SCHEMA,
    IDENTITY_KEYS,
)
from .model import ContractFailure, Example, Observation, as_json, exit_words

Check = Callable[[Example, Observation], None]


# -- reading the journal ------------------------------------------------------------------------


def endpoint_of(example: Example) -> Endpoint:
    return ENDPOINTS[example.endpoint]


def recipients_of(entry: dict[str, Any], endpoint: Endpoint = EMAIL) -> list[str]:
    """The customers one request names, as keys (an email, a normalised number, a link key)."""
    return endpoint.recipients_of(entry)


def is_transient_failure(entry: dict[str, Any]) -> bool:
    fault = entry.get("fault") or {}
    dropped_before = entry["status"] is None and fault.get("kind") == "drop"
    return dropped_before or entry["status"] == 429 or (entry["status"] or 0) >= 500


def is_final_refusal(entry: dict[str, Any]) -> bool:
    """A catalogue refusal the client received (a dropped answer reached it as a dropped
    connection, which it may retry)."""
    dropped = (entry.get("fault") or {}).get("kind") == "drop"
    return entry["code"] is not None and 400 <= entry["status"] < 500 and not dropped


def dropped_after_batches(
    observation: Observation, endpoint: Endpoint = EMAIL
) -> list[frozenset[str]]:
    return [
        frozenset(recipients_of(entry, endpoint))
        for entry in observation.requests
        if (entry.get("fault") or {}).get("kind") == "drop" and entry["status"] == 200
    ]


MAX_EXACT_INTEGER = 2**53  # beyond it, a JSON parser in JavaScript, jq or Go keeps a float64


def _float64(number: int | float) -> float:
    """The float64 any JSON parser makes of a number (a huge integer overflows to infinity)."""
    try:
        return float(number)
    except OverflowError:
        return math.copysign(math.inf, number)


def _json_number(number: int | float) -> int | float:
    """A number by value: an integer within ±2^53 exactly, anything else as its float64 — and an
    integer-valued float64 within ±2^53 as that integer (so 1.0, 1e0 and 1 are one value, and
    -0.0 is 0, as JSON.stringify writes it)."""
    if isinstance(number, int) and abs(number) <= MAX_EXACT_INTEGER:
        return number
    value = _float64(number)
    if math.isfinite(value) and value.is_integer() and abs(value) <= MAX_EXACT_INTEGER:
        return int(value)
    return value


def json_normal(value: Any) -> Any:
    """A parsed JSON value with every number by value; booleans stay apart from numbers."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _json_number(value)
    if isinstance(value, dict):
        return {k: json_normal(x) for k, x in value.items()}
    if isinstance(value, list):
        return [json_normal(x) for x in value]
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict | list | str) or isinstance(b, dict | list | str):
        return type(a) is type(b) and a == b
    return a == b  # numbers (NaN equals nothing: it is not JSON) and null


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values, as any parser reads them: numbers by value at any magnitude (where
    either side is a float or beyond ±2^53, by float64), booleans apart from numbers."""
    return _same(json_normal(a), json_normal(b))


def canonical(value: Any) -> str:
    """A JSON value's identity as text (equal texts: json_equal values, NaN aside)."""
    return json.dumps(json_normal(value), sort_keys=True, ensure_ascii=False)


def fields_of(identity: dict[str, Any], transactional: dict[str, Any] | None) -> dict[str, Any]:
    """What must arrive of a customer: its identity fields (a null or empty one may be left out)
    and its transactional data (an empty object may be left out)."""
    kept = {k: identity[k] for k in IDENTITY_KEYS if identity.get(k) not in (None, "")}
    return {"custom_attributes": kept, "transactional_data": transactional or {}}


def sent_fields(customer: dict[str, Any]) -> dict[str, Any]:
    return fields_of(customer, customer.get("transactional_data"))


def arrived_fields(sharing: dict[str, Any]) -> dict[str, Any]:
    return fields_of(sharing.get("custom_attributes") or {}, sharing.get("transactional_data"))


def first_sharings(observation: Observation) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for sharing in observation.sharings:
        found.setdefault(sharing["email"], sharing)
    return found


def delivered(example: Example, observation: Observation) -> dict[str, dict[str, Any]]:
    """Each customer delivered, by key, with what first arrived of it. Email: the emulator's
    sharings; SMS and link: the bodies of the requests it accepted (200), per recipient."""
    endpoint = endpoint_of(example)
    if endpoint is EMAIL:
        return {email: arrived_fields(s) for email, s in first_sharings(observation).items()}
    found: dict[str, dict[str, Any]] = {}
    for entry in observation.requests:
        if entry["status"] == 200:
            for key, fields in endpoint.arrived(entry):
                found.setdefault(key, fields)
    return found


def _mismatches(example: Example, observation: Observation) -> Iterator[tuple[dict, dict, bool]]:
    """(sent, arrived, keyed to another customer) for each customer whose data arrived wrong."""
    endpoint = endpoint_of(example)
    arrivals = delivered(example, observation)
    owners: dict[str, set[str]] = {}
    for customer in example.customers:
        owners.setdefault(canonical(endpoint.sent_fields(customer)), set()).add(
            endpoint.key_of(customer)
        )
    for customer in example.customers:
        key, sent = endpoint.key_of(customer), endpoint.sent_fields(customer)
        arrived = arrivals.get(key)
        if arrived is None or json_equal(arrived, sent):
            continue
        yield sent, arrived, bool(owners.get(canonical(arrived), set()) - {key})


def differences(expected: Any, arrived: Any) -> tuple[Any, Any]:
    """Only what differs of two JSON objects, key by key, as far down as both are objects; a key
    that one side lacks is simply absent from that side."""
    if not (isinstance(expected, dict) and isinstance(arrived, dict)):
        return expected, arrived
    shown_expected: dict[str, Any] = {}
    shown_arrived: dict[str, Any] = {}
    for key in sorted(expected.keys() | arrived.keys()):
        if key not in arrived:
            shown_expected[key] = expected[key]
        elif key not in expected:
            shown_arrived[key] = arrived[key]
        elif not json_equal(expected[key], arrived[key]):
            shown_expected[key], shown_arrived[key] = differences(expected[key], arrived[key])
    return shown_expected, shown_arrived


def _shown(items: list[Any], limit: int = 3) -> str:
    text = ", ".join(as_json(i) for i in items[:limit])
    return text + (f" … ({len(items)} in all)" if len(items) > limit else "")


# -- the checks ---------------------------------------------------------------------------------


def client_finishes_in_time(example: Example, observation: Observation) -> None:
    if observation.exit_status is None:
        raise ContractFailure(
            "client finishes in time", "the client to exit", "it was killed at the timeout"
        )


def _forced_by_the_server(entry: dict[str, Any]) -> bool:
    """A scripted catalogue refusal, or an answer dropped after the sharings were stored."""
    kind = (entry.get("fault") or {}).get("kind")
    return kind == "error" or (kind == "drop" and entry["status"] == 200)


def _over_the_batch_limit(entry: dict[str, Any], endpoint: Endpoint) -> bool:
    return len(recipients_of(entry, endpoint)) > BATCH_LIMIT


def _malformed(entry: dict[str, Any], endpoint: Endpoint) -> bool:
    return bool(request_problems(entry, endpoint))


def _responses_refused(entry: dict[str, Any]) -> bool:
    """Refused for its built_in_responses: the emulator's reason names the field first."""
    return entry["code"] == 13028 and (entry.get("reason") or "").startswith("built_in_responses")


def _transient_not_retried(entry: dict[str, Any], sent_later: set[str], endpoint: Endpoint) -> bool:
    return is_transient_failure(entry) and not set(recipients_of(entry, endpoint)) <= sent_later


Excuse = Callable[[dict[str, Any], set[str], Endpoint], bool]
# Why a client may stop and exit non-zero without delivering everyone: the server made it stop,
# or another check names what the client did wrong (so one defect fails one check).
STOPPING_EXCUSES: tuple[Excuse, ...] = (
    lambda entry, _later, _endpoint: _forced_by_the_server(entry),
    lambda entry, _later, endpoint: _over_the_batch_limit(entry, endpoint),  # over 5000
    lambda entry, _later, endpoint: _malformed(entry, endpoint),  # requests are well formed
    lambda entry, _later, _endpoint: _responses_refused(entry),  # built in responses arrive...
    _transient_not_retried,  # transient errors retried
)


def _stopped_for_a_reason(observation: Observation, endpoint: Endpoint) -> bool:
    return any(
        excuse(entry, sent_later, endpoint)
        for entry, sent_later in _followed_by(observation, lambda _entry: True, endpoint)
        for excuse in STOPPING_EXCUSES
    )


def _missing(example: Example, observation: Observation) -> list[str]:
    """The customers (their keys) not delivered."""
    arrivals = delivered(example, observation)
    keys = [endpoint_of(example).key_of(c) for c in example.customers]
    return [key for key in keys if key not in arrivals]


def every_customer_delivered(example: Example, observation: Observation) -> None:
    if observation.exit_status is None:
        return  # killed at the timeout: judged by "client finishes in time"
    if observation.exit_status != 0 and _stopped_for_a_reason(observation, endpoint_of(example)):
        return
    missing = _missing(example, observation)
    if missing:
        raise ContractFailure(
            "every customer delivered",
            f"each of the {len(example.customers)} customer(s) among the sharings",
            f"{len(missing)} missing: {_shown(missing)}; {exit_words(observation.exit_status)}",
        )


def no_customer_delivered_twice(example: Example, observation: Observation) -> None:
    endpoint = endpoint_of(example)
    resent_after_drop = dropped_after_batches(observation, endpoint)
    counts: Counter[str] = Counter()
    excused = 0
    for entry in observation.requests:
        if entry["status"] != 200:
            continue
        batch = recipients_of(entry, endpoint)
        if (entry.get("fault") or {}).get("kind") != "drop" and frozenset(
            batch
        ) in resent_after_drop:
            excused += 1
            continue
        counts.update(endpoint.same(key) for key in batch)
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


def _what_differs(sent: dict[str, Any], arrived: dict[str, Any]) -> tuple[str, str]:
    """The customer's fields that did not arrive as sent, and what arrived instead, in JSON."""
    expected, instead = differences(sent, arrived)
    return as_json(expected), as_json(instead)


def _who(example: Example, sent: dict[str, Any]) -> str:
    """The customer whose `sent` fields these are, by its key."""
    endpoint = endpoint_of(example)
    keys = (endpoint.key_of(c) for c in example.customers if endpoint.sent_fields(c) == sent)
    return next(keys, "?")


def fields_arrive_intact(example: Example, observation: Observation) -> None:
    for sent, arrived, keyed_elsewhere in _mismatches(example, observation):
        if not keyed_elsewhere:
            expected, instead = _what_differs(sent, arrived)
            raise ContractFailure(
                "fields arrive intact", f"{_who(example, sent)}: {expected}", instead
            )


def attributes_keyed_by_the_right_email(example: Example, observation: Observation) -> None:
    for sent, arrived, keyed_elsewhere in _mismatches(example, observation):
        if keyed_elsewhere:
            expected, instead = _what_differs(sent, arrived)
            raise ContractFailure(
                "attributes keyed by the right email",
                f"{_who(example, sent)}'s own fields under its own key: {expected}",
                f"another customer's: {instead}",
            )


def no_request_over_5000_recipients(example: Example, observation: Observation) -> None:
    for entry in observation.requests:
        count = len(recipients_of(entry, endpoint_of(example)))
        if count > BATCH_LIMIT:
            raise ContractFailure(
                "no request over 5000 recipients",
                f"at most {BATCH_LIMIT} per request",
                f"request #{entry['id']} with {count}",
            )


def request_problems(entry: dict[str, Any], endpoint: Endpoint = EMAIL) -> list[str]:
    """What is wrong with the form of one request: media type, body, method and path, auth."""
    headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    problems = []
    if media_type != "application/json":
        problems.append(f"Content-Type {as_json(headers.get('content-type'))}")
    if not isinstance(entry.get("body"), dict):
        problems.append("a body that is not a JSON object")
    if entry["method"] != "POST" or not endpoint.path.match(entry["path"]):
        problems.append(f"{entry['method']} {entry['path']}")
    authorization = headers.get("authorization")
    if not authorization or not any(form.match(authorization) for form in AUTH_FORMS):
        problems.append(f"Authorization {as_json(authorization)}")
    problems.extend(f"unknown field(s) {names}" for names in _ignored_fields(entry))
    return problems


IGNORED_FIELDS = "ignored unknown field(s): "  # the emulator's journal warning, SPEC 2.3


def _ignored_fields(entry: dict[str, Any]) -> list[str]:
    """The keys the server ignored as unknown (a misspelt `builtInResponses`, say): what the
    client meant never arrived, though the request was accepted."""
    warnings = entry.get("warnings") or []
    return [w.removeprefix(IGNORED_FIELDS) for w in warnings if w.startswith(IGNORED_FIELDS)]


def requests_are_well_formed(example: Example, observation: Observation) -> None:
    for entry in observation.requests:
        problems = request_problems(entry, endpoint_of(example))
        if problems:
            raise ContractFailure(
                "requests are well formed",
                "POST to the documented path, a JSON object of known fields, an accepted auth form",
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
    observation: Observation, picked: Callable[[dict[str, Any]], bool], endpoint: Endpoint
) -> Iterator[tuple[dict[str, Any], set[str]]]:
    """Each request `picked` selects, with every recipient the client sent after it."""
    requests = observation.requests
    for index, entry in enumerate(requests):
        if picked(entry):
            later = requests[index + 1 :]
            yield entry, set().union(*(recipients_of(e, endpoint) for e in later))


def non_retryable_errors_not_retried(example: Example, observation: Observation) -> None:
    endpoint = endpoint_of(example)
    for entry, sent_later in _followed_by(observation, is_final_refusal, endpoint):
        retried = set(recipients_of(entry, endpoint)) & sent_later
        if retried or observation.exit_status == 0:
            raise ContractFailure(
                "non-retryable errors not retried",
                f"request #{entry['id']} (answered {entry['status']}, code {entry['code']}) "
                "not sent again, and a non-zero exit",
                f"{len(retried)} recipients sent again; {exit_words(observation.exit_status)}",
            )


def transient_errors_retried(example: Example, observation: Observation) -> None:
    endpoint = endpoint_of(example)
    for entry, sent_later in _followed_by(observation, is_transient_failure, endpoint):
        lost = [key for key in recipients_of(entry, endpoint) if key not in sent_later]
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
    """SPEC 3: exit status zero *exactly* when every customer arrived, both ways round."""
    if not _exit_status_judged(example, observation):
        return
    missing = _missing(example, observation)
    if observation.exit_status == 0 and missing:
        raise ContractFailure(
            "exit status zero when every customer arrived",
            "a non-zero exit status: a customer was not delivered",
            f"exit status 0 with {len(missing)} missing: {_shown(missing)}",
        )
    if observation.exit_status != 0 and not missing:
        raise ContractFailure(
            "exit status zero when every customer arrived",
            "exit status 0: every customer was delivered",
            f"{exit_words(observation.exit_status)}",
        )


def _exit_status_judged(example: Example, observation: Observation) -> bool:
    """Not for a client killed at the timeout (it has no exit status), nor a non-zero exit after
    a dropped answer (the client cannot know), nor a missing customer on a record cut short by
    the emulator's bounds (its sharing may be what was dropped)."""
    status = observation.exit_status
    if status is None or (status != 0 and example.server.drops_after):
        return False
    return not observation.incomplete or _all_arrived(example, observation)


def link_items(responses: dict[str, Any]) -> list[dict[str, Any]]:
    """`built_in_responses` as SPEC 1.7's link carries them: in the client's key order, an
    `option` question's value as its `option_key`, any other's as its `body`."""
    return [
        {"question_key": key, ("option_key" if kind == "option" else "body"): value}
        for key, value in responses.items()
        for kind in [DEFAULT_CUSTOMER_SCHEMA.get(key)]
    ]


def link_responses(link: str) -> Any:
    """A survey link's `responses`, decoded again here (the kit never imports the emulator):
    standard base64 of a UTF-8 JSON array, percent-encoded; no parameter is no responses.
    Raises ValueError when it does not decode."""
    values = parse_qs(urlsplit(link).query).get("responses")
    return json.loads(base64.b64decode(values[0], validate=True)) if values else []


def _question_type(item: dict[str, Any]) -> str | None:
    return DEFAULT_CUSTOMER_SCHEMA.get(str(item.get("question_key")))


def _integer_kinds(items: Any) -> list[bool]:
    """For each item of an `integer` question, whether its value is a JSON integer (not 9.0)."""
    if not isinstance(items, list):
        return []
    return [
        isinstance(value, int) and not isinstance(value, bool)
        for item in items
        if isinstance(item, dict) and _question_type(item) == "integer"
        for value in [item.get("body")]
    ]


def same_responses(a: Any, b: Any) -> bool:
    """Equal as JSON values, and an `integer` question's value an integer on both sides: the
    customer schema types it, and the emulator refuses 9.0 for it (13028), unlike a `float`
    question's 4.0, which JSON.stringify writes 4."""
    return json_equal(a, b) and _integer_kinds(a) == _integer_kinds(b)


def _arrived_in_link(sharing: dict[str, Any]) -> Any:
    try:
        return link_responses(sharing["link"])
    except ValueError as error:
        return f"a link whose responses do not decode ({error}): {sharing['link']}"


def _sent_responses(entry: dict[str, Any]) -> Any:
    """What one request sent as `built_in_responses`, as the link would carry it."""
    sent = entry["body"].get("built_in_responses", {})
    return link_items(sent) if isinstance(sent, dict) else sent


def built_in_responses_arrive_in_the_link(example: Example, observation: Observation) -> None:
    if not _sends_built_in_responses(example, observation):
        return  # nothing to judge: the client never sends them (reported as skipped)
    expected = link_items(example.built_in_responses)
    for sharing in _client_sharings(example, observation):
        arrived = _arrived_in_link(sharing)
        if not same_responses(arrived, expected):
            raise ContractFailure(
                "built in responses arrive in the link",
                f"{_sharing_name(sharing)}'s link: {as_json(expected)}",
                as_json(arrived),
            )
    endpoint = endpoint_of(example)
    for entry in observation.requests:  # refused ones too: a wrong type is refused (13028)
        body = entry.get("body")
        if entry["status"] != 200 and isinstance(body, dict) and recipients_of(entry, endpoint):
            sent = _sent_responses(entry)
            if not same_responses(sent, expected):
                raise ContractFailure(
                    "built in responses arrive in the link",
                    f"request #{entry['id']} to send {as_json(expected)}",
                    f"{as_json(sent)} (answered {entry['status']}, code {entry['code']})",
                )


def _client_sharings(example: Example, observation: Observation) -> list[dict[str, Any]]:
    """The sharings of the example's customers on its endpoint's channel (email: by address)."""
    endpoint = endpoint_of(example)
    if endpoint is EMAIL:
        wanted = {c["email"] for c in example.customers}
        return [s for s in observation.sharings if s.get("email") in wanted]
    return [s for s in observation.sharings if s.get("channel") == endpoint.name]


def _sharing_name(sharing: dict[str, Any]) -> str:
    for key in ("email", "phone_number", "id"):
        if sharing.get(key) not in (None, ""):
            return str(sharing[key])
    return "a sharing"


def _sends_built_in_responses(_example: Example, observation: Observation) -> bool:
    """The client sent `built_in_responses` at all, and the server shows survey links."""
    sent = any(
        isinstance(entry.get("body"), dict) and "built_in_responses" in entry["body"]
        for entry in observation.requests
    )
    return sent and all("link" in sharing for sharing in observation.sharings)


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
    built_in_responses_arrive_in_the_link,
)


def _any_request(
    picked: Callable[[dict[str, Any]], bool],
) -> Callable[[Example, Observation], bool]:
    return lambda _example, observation: any(picked(e) for e in observation.requests)


def _delivered_count(example: Example, observation: Observation) -> int:
    return len(delivered(example, observation))


def _all_arrived(example: Example, observation: Observation) -> bool:
    return not _missing(example, observation)


@dataclass(frozen=True)
class About:
    """When a check has something to judge in an example (else it did not run there), what an
    example must hold for it to run, and how to fix a client that fails it (one line)."""

    judges: Callable[[Example, Observation], bool]
    needs: str
    fix: str


ABOUT: dict[Check, About] = {
    client_finishes_in_time: About(
        lambda _e, _o: True,
        "any example",
        "Bound every wait (a timeout per request, a cap on retries) so the client exits in time.",
    ),
    every_customer_delivered: About(
        lambda example, _o: bool(example.customers),
        "customers",
        "Send every customer of the file; exit non-zero only when the server refused for good.",
    ),
    no_customer_delivered_twice: About(
        _any_request(lambda entry: entry["status"] == 200),
        "an accepted request",
        "Split the list without overlap, and never send again a batch answered 200.",
    ),
    fields_arrive_intact: About(
        lambda example, observation: _delivered_count(example, observation) > 0,
        "a delivered customer",
        "Send name, external_id, phone_number and transactional_data as they are in the file: "
        "same JSON types (a number stays a number).",
    ),
    attributes_keyed_by_the_right_email: About(
        lambda example, observation: (
            endpoint_of(example).batches and _delivered_count(example, observation) > 1
        ),
        "two delivered customers in an endpoint's lists (a link call carries one customer, its "
        "fields with it)",
        "Key custom_attributes and transactional_data by each customer's own email (SMS: its "
        "own number, as sent).",
    ),
    no_request_over_5000_recipients: About(
        lambda example, observation: (
            endpoint_of(example).batches
            and len(example.customers) > BATCH_LIMIT
            and bool(observation.requests)
        ),
        "more than 5000 customers to an endpoint that takes lists, and a request (scenario "
        "'above 5000'; a link is one customer per call)",
        "Send at most 5000 emails per request: split larger lists into batches.",
    ),
    requests_are_well_formed: About(
        _any_request(lambda _entry: True),
        "a request",
        "POST a JSON object of the documented fields (Content-Type: application/json) to the "
        "endpoint's path (see --help) with Authorization: Token token=<token>.",
    ),
    backs_off_after_429: About(
        _any_request(lambda entry: bool(entry.get("throttle"))),
        "a 429 of the throttle (scenario 'throttle tiers')",
        "After a 429 wait Retry-After if given, else 5 s growing x5 (5, 25, 125, 625 s).",
    ),
    non_retryable_errors_not_retried: About(
        _any_request(is_final_refusal),
        "a 4xx catalogue error (scenario 'refused for good')",
        "On a 4xx catalogue error (not 429) do not resend that batch, and exit non-zero.",
    ),
    transient_errors_retried: About(
        _any_request(is_transient_failure),
        "a 429, 5xx or dropped connection (scenarios 'transient 5xx', 'dropped before')",
        "Retry the same batch after a 429, a 5xx or a dropped connection, with back-off.",
    ),
    exit_status_zero_when_every_customer_arrived: About(
        _exit_status_judged,
        "an exit status to judge (not killed at the timeout)",
        "Exit 0 when every batch was accepted, non-zero when a customer was not delivered.",
    ),
    built_in_responses_arrive_in_the_link: About(
        _sends_built_in_responses,
        "a client sending built_in_responses (from PISANO_BUILT_IN_RESPONSES_FILE)",
        "Send the file's built_in_responses object as it is, every key, in its order, each value "
        "with its JSON type (9 stays a number, true a boolean), in every request.",
    ),
}
HOW_TO_FIX: dict[Check, str] = {check: about.fix for check, about in ABOUT.items()}


def check_name(check: Check) -> str:
    return check.__name__.replace("_", " ")


# What a record cut short by the emulator's bounds cannot tell: a customer whose sharing was dropped
# looks undelivered. Every other check judges only what the record holds (the newest entries),
# so a cut record cannot make it fail a correct client, and a flood that outgrew the journal is
# still judged on what it left.
NEEDS_THE_WHOLE_RECORD = frozenset({"every customer delivered"})


def checks_for(observation: Observation) -> tuple[Check, ...]:
    if not observation.incomplete:
        return CHECKS
    return tuple(c for c in CHECKS if check_name(c) not in NEEDS_THE_WHOLE_RECORD)


def run_checks(example: Example, observation: Observation) -> list[ContractFailure]:
    """Every check over one example; the failures, each named after its check. An example whose
    record is incomplete is judged on what it holds, less what needs the whole record (warned)."""
    if observation.incomplete:
        observation.warnings.append(
            f"an example of {example.scenario} was not judged for "
            f"{', '.join(sorted(NEEDS_THE_WHOLE_RECORD))}: {observation.incomplete}"
        )
    failures = []
    for check in checks_for(observation):
        try:
            check(example, observation)
        except ContractFailure as failure:
            failure.check = check_name(check)
            failures.append(failure)
    return failures


def judged_checks(example: Example, observation: Observation) -> set[str]:
    """The checks that had something to judge in this example."""
    return {check_name(c) for c in checks_for(observation) if ABOUT[c].judges(example, observation)}


ABOUT_BY_NAME: dict[str, About] = {check_name(check): about for check, about in ABOUT.items()}
