"""The rules of SPEC 1.4 that look across fields (rows 12-13), shared by both load paths.

The marshmallow schema runs them from `@validates_schema`; the fast path runs them after its own
per-field checks. Each rule raises PisanoError or returns warnings; `check_email_sharing` keeps the
table's order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from .catalogue import PisanoError

RECIPIENT_KEYED_FIELDS = ("custom_attributes", "transactional_data")


@dataclass(frozen=True)
class RuleContext:
    """What the rules need beyond the body: the account's schema and the fidelity settings."""

    customer_schema: dict[str, str] = field(default_factory=dict)
    batch_limit: int = 5000
    strict_batch_limit: bool = False
    from_form: bool = False


@dataclass(frozen=True)
class RecipientList:
    """A list of recipients (`emails`, `phone_numbers`) and when two of them are the same one."""

    field: str
    fold: Callable[[str], str]  # two recipients are the same when their folds are
    compared: str  # how the 13017 reason says they were compared


def normalised_number(number: str) -> str:
    """A phone number as compared (SPEC 1.5): spaces, `-`, `(`, `)`, `.`, one leading `+` gone."""
    return number.translate(_NUMBER_SEPARATORS).removeprefix("+")


_NUMBER_SEPARATORS = str.maketrans("", "", " -().")
_NUMBER_DIGITS = re.compile(r"[0-9]{7,15}")  # ASCII digits only: "٣" is a digit to str.isdigit


def is_phone_number(value: Any) -> bool:
    """SPEC 1.5: 7 to 15 digits remain once normalised."""
    return isinstance(value, str) and bool(_NUMBER_DIGITS.fullmatch(normalised_number(value)))


EMAILS = RecipientList("emails", str.lower, "compared case-insensitively")
PHONE_NUMBERS = RecipientList(
    "phone_numbers",
    normalised_number,
    "compared without spaces, -, (, ), . and a leading +",
)


def recipient_rules(
    recipients: RecipientList,
) -> Callable[[dict[str, Any], RuleContext], list[str]]:
    """Rows 12-13 of SPEC 1.4 beyond single fields, in order, for one recipient list."""

    def check(data: dict[str, Any], context: RuleContext) -> list[str]:
        listed = data[recipients.field]
        check_recipient_keys(data, set(listed), recipients.field)
        warnings = check_built_in_responses(data.get("built_in_responses") or {}, context)
        warnings += check_batch_size(len(listed), context, recipients.field)
        check_duplicates(listed, recipients)
        return warnings

    return check


check_email_sharing = recipient_rules(EMAILS)
check_sms_sharing = recipient_rules(PHONE_NUMBERS)


def check_link_sharing(data: dict[str, Any], context: RuleContext) -> list[str]:
    """SPEC 1.6's last row; `customer` was checked as a field (check_customer)."""
    warnings = check_built_in_responses(data.get("built_in_responses") or {}, context)
    options = data.get("options")
    if not wants_short_link(options) and not (options is False or options in ("false", None)):
        warnings.append(f'options: {shown(options)} is neither true nor "true": no short link')
    return warnings


def wants_short_link(options: Any) -> bool:
    """SPEC 1.6: `true` or `"true"` (not 1, which equals True in Python)."""
    return options is True or options == "true"


IDENTITY_KEYS = ("email", "phone_number", "name", "external_id")  # a link's customer (SPEC 1.6)


def check_customer(value: Any) -> None:
    """SPEC 1.6: an object holding at least one identity key (13038), each a string (13028)."""
    if not isinstance(value, dict):
        raise PisanoError(13038, f"customer: {type(value).__name__} where an object is expected")
    given = [key for key in IDENTITY_KEYS if key in value]
    if not given:
        raise PisanoError(13038, f"customer: none of {', '.join(IDENTITY_KEYS)} is given")
    for key in given:
        if not isinstance(value[key], str):
            raise PisanoError(13028, f"customer.{key}: {shown(value[key])} is not a string")


def check_recipient_keys(
    data: dict[str, Any], recipients: set[str], listed: str = "emails"
) -> None:
    for name in RECIPIENT_KEYED_FIELDS:
        keyed = data.get(name) or {}
        if keyed.keys() - recipients:
            stray = next(key for key in keyed if key not in recipients)
            raise PisanoError(13028, f'{name}: key "{stray}" is not one of {listed}')


def check_built_in_responses(values: dict[str, Any], context: RuleContext) -> list[str]:
    warnings = []
    for key, value in values.items():
        expected = context.customer_schema.get(key)
        if expected is None:
            warnings.append(f'built_in_responses: "{key}" is not in the customer schema')
        elif not _is_of_type(value, expected, context.from_form):
            raise PisanoError(
                13028, f"built_in_responses: {key}={shown(value)} is not of schema type {expected}"
            )
    return warnings


def check_batch_size(count: int, context: RuleContext, listed: str = "emails") -> list[str]:
    if count <= context.batch_limit:
        return []
    message = f"{listed}: {count} recipients, above Pisano's best practice of {context.batch_limit}"
    if context.strict_batch_limit:
        raise PisanoError(13028, message + " (strict_batch_limit)")
    return [message]


def check_duplicates(listed: list[str], recipients: RecipientList = EMAILS) -> None:
    if len(set(map(recipients.fold, listed))) == len(listed):
        return
    seen: dict[str, str] = {}
    for recipient in listed:
        folded = recipients.fold(recipient)
        if folded in seen:
            said = f'"{recipient}" repeats "{seen[folded]}" ({recipients.compared})'
            raise PisanoError(13017, f"{recipients.field}: {said}")
        seen[folded] = recipient


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\Z")
_INTEGER = re.compile(r"-?\d+\Z")


def _valid_date(value: Any) -> bool:
    return _parses(value, _DATE, lambda v: date.fromisoformat(v))


def _valid_datetime(value: Any) -> bool:
    return _parses(value, _DATETIME, lambda v: datetime.strptime(v, "%Y-%m-%d %H:%M:%S"))


def _parses(value: Any, shape: re.Pattern[str], parse: Callable[[str], Any]) -> bool:
    if not isinstance(value, str) or not shape.match(value):
        return False
    try:
        parse(value)
    except ValueError:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# The customer schema's types (SPEC 1.1): one predicate for JSON values, one for form strings.
JSON_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": _is_number,
    "string": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "date": _valid_date,
    "datetime": _valid_datetime,
    # An option question's answer is an option key (SPEC 1.7 `option_key`): Pisano's keys are
    # strings or integers; a boolean or a float names no option.
    "option": lambda v: isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)),
}
FORM_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    **JSON_TYPE_CHECKS,
    "boolean": lambda v: v in ("true", "false"),
    "integer": lambda v: isinstance(v, str) and bool(_INTEGER.match(v)),
    "float": lambda v: isinstance(v, str) and _float_text(v),
    "option": lambda v: isinstance(v, str),  # a form's value is text: any key reads as one
}


def _float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity")


def _is_of_type(value: Any, expected: str, from_form: bool) -> bool:
    checks = FORM_TYPE_CHECKS if from_form else JSON_TYPE_CHECKS
    return checks[expected](value)


def shown(value: Any) -> str:
    """A value as a reason quotes it: as JSON, the client's own spelling (`true`, `["a"]`, not
    Python's `True`, `['a']`), non-ASCII kept, cut at 80 characters."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits, which orjson refuses and JSON allows
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= 80 else text[:77] + "..."
