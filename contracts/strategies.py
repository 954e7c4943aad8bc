"""Hypothesis strategies for Pisano data: addresses, customers, bodies, and ways to corrupt a body.

Hypothesis cannot draw thousands of elements within its buffer, so large batches are drawn as a
small template plus a count, and `expand_customers` grows them deterministically. Every strategy
takes keyword-only options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from hypothesis import strategies as st

MAX_SAFE_INTEGER = 2**53
# Very long texts only in lists up to this size: thousands of customers each holding kilobytes
# would outgrow the emulator's memory bounds (32 MiB of journal), which then drop records.
LONG_TEXTS_UP_TO = 100
RESERVED_DOMAINS = ("example.com", "example.org", "example.net")

# Dot-atom characters marshmallow's Email accepts, plus letters of several scripts (\w is Unicode).
_ATOM_SPECIALS = "!#$%&'*/=?^`{}|~-_"
_ATOM_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ATOM_SCRIPTS = "éüğşıçÖ日本語кирилицаΑΒΓαβγעבריתالعربية"
_TEXT = st.characters(codec="utf-8", exclude_categories=["Cs"])


def _atoms() -> st.SearchStrategy[str]:
    alphabet = st.sampled_from(_ATOM_LETTERS + _ATOM_SPECIALS + _ATOM_SCRIPTS + "+")
    return st.text(alphabet, min_size=1, max_size=12)


def _labels() -> st.SearchStrategy[str]:
    edge = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789ğüçé")
    middle = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), max_size=10)
    return st.builds(lambda a, m, b: a + m + b, edge, middle, edge) | edge


def email_addresses(*, domains: tuple[str, ...] | None = None) -> st.SearchStrategy[str]:
    """Valid addresses: plus-addressing, specials, several scripts; only `domains` if given."""
    local = st.lists(_atoms(), min_size=1, max_size=3).map(".".join)
    if domains:
        domain = st.sampled_from(domains)
    else:
        tld = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), min_size=2, max_size=6)
        domain = st.builds(
            lambda ls, t: ".".join([*ls, t]), st.lists(_labels(), min_size=1, max_size=3), tld
        )
    return st.builds(lambda lo, do: f"{lo}@{do}", local, domain)


def texts(*, max_size: int = 40, long: bool = True) -> st.SearchStrategy[str]:
    """Text in any script, emoji, quotes and backslashes; now and then (if `long`) a very long
    value."""
    tricky = st.sampled_from(['"', "'", "\\", "😀", "👩‍👩‍👧", "\u200b", "</script>", "Ünïcödé"])
    ordinary = st.text(_TEXT, max_size=max_size)
    if not long:
        return st.one_of(ordinary, tricky)
    return st.one_of(ordinary, tricky, st.text(_TEXT, min_size=1000, max_size=1200))


def scalars(*, long_texts: bool = True) -> st.SearchStrategy[Any]:
    """JSON scalars a customers file allows: strings, integers within ±2^53, floats, bools, null."""
    return st.one_of(
        texts(long=long_texts),
        st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.none(),
    )


def json_values(*, max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars, and lists and objects of them, nested."""
    return st.recursive(
        scalars(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(texts(max_size=10), inner, max_size=3)
        ),
        max_leaves=max_leaves,
    )


def customers(
    *, domains: tuple[str, ...] | None = None, long_texts: bool = True
) -> st.SearchStrategy[dict[str, Any]]:
    """One customer as SPEC 3's customers file holds it (`long_texts`: now and then 1000+
    characters in a field)."""
    optional_text = st.none() | texts(long=long_texts)
    return st.fixed_dictionaries(
        {"email": email_addresses(domains=domains)},
        optional={
            "name": optional_text,
            "external_id": optional_text,
            "phone_number": optional_text,
            "transactional_data": st.dictionaries(
                st.text(_TEXT, max_size=20), scalars(long_texts=long_texts), max_size=5
            ),
        },
    )


@dataclass(frozen=True)
class CustomerBatch:
    """A drawn template and the count it expands to."""

    template: list[dict[str, Any]]
    count: int
    endpoint: str = "email"

    def expand(self) -> list[dict[str, Any]]:
        return EXPANDERS[self.endpoint](self.template, self.count)


def customer_batches(
    *,
    min_count: int = 1,
    max_count: int = 6000,
    domains: tuple[str, ...] | None = None,
    endpoint: str = "email",
) -> st.SearchStrategy[CustomerBatch]:
    """A template of 1-4 customers and a count, mostly small, sometimes in the thousands."""
    if not 0 <= min_count <= max_count:
        raise ValueError(f"need 0 <= min_count <= max_count, got {min_count}, {max_count}")
    small = st.integers(min_count, min(max_count, max(min_count, 8)))
    large = st.integers(max(min_count, max_count - max_count // 5), max_count)
    count = st.one_of(small, st.integers(min_count, max_count), large)

    def batch(n: int) -> st.SearchStrategy[CustomerBatch]:
        long_texts = n <= LONG_TEXTS_UP_TO
        drawn = CUSTOMER_STRATEGIES[endpoint](domains=domains, long_texts=long_texts)
        template = st.lists(drawn, min_size=1, max_size=4)
        return st.builds(CustomerBatch, template, st.just(n), st.just(endpoint))

    return count.flatmap(batch)


def expand_customers(template: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` customers cycling through `template`, each address made unique by `+<index>`."""
    expanded, seen = [], set()
    for index in range(count):
        customer = dict(template[index % len(template)])
        local, domain = customer["email"].rsplit("@", 1)
        customer["email"] = f"{local}+{index}@{domain}"
        if customer["email"].lower() not in seen:
            seen.add(customer["email"].lower())
            expanded.append(customer)
    return expanded


# -- SMS and link customers (SPEC 1.5, 1.6) ------------------------------------------------------

_NUMBER_SEPARATORS = ("", " ", "-", ".")


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """Valid numbers as people write them (SPEC 1.5): 7 to 15 digits, now and then a leading `+`,
    groups apart by spaces, `-` or `.`, the first group sometimes in parentheses."""
    digits = draw(st.text(st.sampled_from("0123456789"), min_size=7, max_size=15))
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=3)))
    groups = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    if len(groups) > 1 and draw(st.booleans()):
        groups[0] = f"({groups[0]})"
    separator = draw(st.sampled_from(_NUMBER_SEPARATORS))
    return draw(st.sampled_from(["", "+"])) + separator.join(groups)


def sms_customers(*, long_texts: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """One customer of an SMS customers file: `phone_number` always, the rest optional."""
    optional_text = st.none() | texts(long=long_texts)
    return st.fixed_dictionaries(
        {"phone_number": phone_numbers()},
        optional={
            "name": optional_text,
            "external_id": optional_text,
            "email": st.none() | email_addresses(domains=RESERVED_DOMAINS),
            "transactional_data": st.dictionaries(
                st.text(_TEXT, max_size=20), scalars(long_texts=long_texts), max_size=5
            ),
        },
    )


LINK_IDENTITY = ("external_id", "email", "phone_number", "name")
_RESERVED_LINK_KEYS = {*LINK_IDENTITY, "transactional_data"}


def link_customers() -> st.SearchStrategy[dict[str, Any]]:
    """One link customer (SPEC 1.6): identity keys as strings (one at least not empty, made so by
    `expand_link_customers`), any other key a custom attribute of any scalar type."""
    identity = {
        "external_id": texts(max_size=12, long=False),
        "email": st.just("") | email_addresses(domains=RESERVED_DOMAINS),
        "phone_number": st.just("") | phone_numbers(),
        "name": texts(long=False),
    }
    attributes = st.dictionaries(
        st.text(_TEXT, min_size=1, max_size=12).filter(lambda k: k not in _RESERVED_LINK_KEYS),
        scalars(long_texts=False),
        max_size=3,
    )
    data = st.dictionaries(st.text(_TEXT, max_size=20), scalars(long_texts=False), max_size=4)
    return st.builds(
        lambda ident, attrs, extra: {**attrs, **ident, **extra},
        st.fixed_dictionaries({}, optional=identity),
        attributes,
        st.fixed_dictionaries({}, optional={"transactional_data": data}),
    )


def _renumbered(number: str, index: int) -> str:
    """`number` with its digits replaced by (its digits + index), its layout kept."""
    digits = [c for c in number if c.isdigit()]
    shifted = str((int("".join(digits)) + index) % 10 ** len(digits)).zfill(len(digits))
    refill = iter(shifted)
    return "".join(next(refill) if c.isdigit() else c for c in number)


def _digits(number: str) -> str:
    stripped = "".join(c for c in number if c not in " -().")
    return stripped.removeprefix("+")


def expand_sms_customers(template: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` SMS customers cycling through `template`, numbers unique once normalised."""
    expanded, seen = [], set()
    for index in range(count):
        customer = dict(template[index % len(template)])
        customer["phone_number"] = _renumbered(customer["phone_number"], index)
        if _digits(customer["phone_number"]) not in seen:
            seen.add(_digits(customer["phone_number"]))
            expanded.append(customer)
    return expanded


def expand_link_customers(template: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` link customers cycling through `template`, each known by its own key: the first
    identity key it holds (external_id, email, phone_number, name) made unique by its index."""
    expanded, seen = [], set()
    for index in range(count):
        customer = dict(template[index % len(template)])
        key = next((k for k in LINK_IDENTITY if customer.get(k) not in (None, "")), "external_id")
        customer[key] = _unique_identity(key, customer.get(key) or "", index)
        if (key, customer[key]) not in seen:
            seen.add((key, customer[key]))
            expanded.append(customer)
    return expanded


def _unique_identity(key: str, value: str, index: int) -> str:
    if key == "email":
        local, domain = value.rsplit("@", 1)
        return f"{local}+{index}@{domain}"
    if key == "phone_number":
        return _renumbered(value, index)
    return f"{value}#{index}"


EXPANDERS = {
    "email": expand_customers,
    "sms": expand_sms_customers,
    "link": expand_link_customers,
}
CUSTOMER_STRATEGIES: dict[str, Callable[..., st.SearchStrategy[dict[str, Any]]]] = {
    "email": customers,
    "sms": lambda *, domains=None, long_texts=True: sms_customers(long_texts=long_texts),
    "link": lambda *, domains=None, long_texts=True: link_customers(),
}


def _date_text(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _datetime_text(d: datetime) -> str:
    return f"{_date_text(d)} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"


SCHEMA_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "boolean": st.booleans(),
    "integer": st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "string": texts(),
    "list": st.lists(scalars(), max_size=4),
    "date": st.dates().map(_date_text),
    "datetime": st.datetimes().map(_datetime_text),
    "option": st.one_of(texts(max_size=12), st.integers(0, 1000)),  # an option key (SPEC 1.7)
}


def built_in_responses(*, customer_schema: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    """Values typed by an account's customer schema (SPEC 1.1)."""
    return st.fixed_dictionaries(
        {}, optional={key: SCHEMA_VALUES[kind] for key, kind in customer_schema.items()}
    )


def body_for(customers: list[dict[str, Any]], built_ins: dict[str, Any] | None = None) -> dict:
    """The email_sharings body that delivers `customers`, as a correct client builds it."""
    body: dict[str, Any] = {"emails": [c["email"] for c in customers]}
    attributes = {
        c["email"]: {k: c[k] for k in ("name", "external_id", "phone_number") if k in c}
        for c in customers
    }
    body["custom_attributes"] = {e: a for e, a in attributes.items() if a}
    body["transactional_data"] = {
        c["email"]: c["transactional_data"] for c in customers if c.get("transactional_data")
    }
    if built_ins:
        body["built_in_responses"] = built_ins
    return body


@st.composite
def email_sharing_bodies(
    draw: st.DrawFn,
    *,
    min_recipients: int = 1,
    max_recipients: int = 6000,
    customer_schema: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Valid bodies for the email_sharings endpoint."""
    batch = draw(customer_batches(min_count=min_recipients, max_count=max_recipients))
    built_ins = draw(built_in_responses(customer_schema=customer_schema or {}))
    body = body_for(batch.expand(), built_ins)
    # Beyond the identity fields, attributes and transactional data of any JSON type, nested.
    extras = draw(
        st.dictionaries(st.text(_TEXT, min_size=1, max_size=12), json_values(), max_size=3)
    )
    if extras:
        for field in ("custom_attributes", "transactional_data"):
            keyed = body[field]
            for email in body["emails"][:: max(len(body["emails"]) // 7, 1)]:
                keyed[email] = {**keyed.get(email, {}), **extras}
    return body


@dataclass(frozen=True)
class Corruption:
    """One change that makes a valid body invalid, and the catalogue code SPEC 1.4 names for it."""

    name: str
    code: int
    apply: Callable[[dict[str, Any]], Any]


def _without(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda body: {k: v for k, v in body.items() if k != key}


def _replacing(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda body: {**body, key: value}


def _email_item(value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda body: {**body, "emails": [value, *body["emails"][1:]]} | _drop_first_keys(body)


def _drop_first_keys(body: dict[str, Any]) -> dict[str, Any]:
    first = body["emails"][0]
    return {
        key: {e: v for e, v in body[key].items() if e != first}
        for key in ("custom_attributes", "transactional_data")
        if key in body
    }


def _duplicate_first(body: dict[str, Any]) -> dict[str, Any]:
    # The twin differs only in the case of its domain, whose top-level label is ASCII letters.
    local, domain = body["emails"][0].rsplit("@", 1)
    return {**body, "emails": [*body["emails"], f"{local}@{domain.upper()}"]}


def _stray_key(field: str) -> Callable[[dict[str, Any]], Any]:
    def corrupt(body: dict[str, Any]) -> dict[str, Any]:
        stray = "stray+" + body["emails"][0]
        return {**body, field: {**body.get(field, {}), stray: {}}}

    return corrupt


CORRUPTIONS: tuple[Corruption, ...] = (
    Corruption("emails absent", 13015, _without("emails")),
    Corruption("emails empty", 13028, _replacing("emails", [])),
    Corruption("emails a string", 13028, lambda b: {**b, "emails": b["emails"][0]}),
    Corruption("emails an object", 13028, _replacing("emails", {"a": "b@example.com"})),
    Corruption("emails null", 13028, _replacing("emails", None)),
    Corruption("an email an integer", 13028, _email_item(42)),
    Corruption("an email null", 13028, _email_item(None)),
    Corruption("an email without @", 13028, _email_item("plainaddress")),
    Corruption("an email without domain", 13028, _email_item("someone@")),
    Corruption("an email with a space", 13028, _email_item("some one@example.com")),
    Corruption("custom_attributes a list", 13028, _replacing("custom_attributes", [])),
    Corruption("custom_attributes a string", 13028, _replacing("custom_attributes", "x")),
    Corruption("transactional_data a list", 13028, _replacing("transactional_data", [1])),
    Corruption("built_in_responses a list", 13028, _replacing("built_in_responses", [])),
    Corruption("custom_attributes key not a recipient", 13028, _stray_key("custom_attributes")),
    Corruption("transactional_data key not a recipient", 13028, _stray_key("transactional_data")),
    Corruption("a recipient twice", 13017, _duplicate_first),
    Corruption("body a JSON array", 13000, lambda b: [b]),
    Corruption("body not JSON", 13000, lambda b: b"{not json"),
)


def corruptions() -> st.SearchStrategy[Corruption]:
    return st.sampled_from(CORRUPTIONS)
