"""The rules of SPEC 1.4 that look across fields (rows 12-13), shared by both load paths.

The marshmallow schema runs them from `@validates_schema`; the fast path runs them after its own
per-field checks. Each rule raises PisanoError or returns warnings; `check_email_sharing` keeps the
table's order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .catalogue import PisanoError

RECIPIENT_KEYED_FIELDS = ("custom_attributes", "transactional_data")


@dataclass(frozen=True)
class RuleContext:
    """What the rules need beyond the body: the account's schema and the fidelity settings."""

    customer_schema: dict[str, str] = field(default_factory=dict)
    batch_limit: int = 5000
    strict_batch_limit: bool = False
    from_form: bool = False


def check_email_sharing(data: dict[str, Any], context: RuleContext) -> list[str]:
    """Rows 12-13 of SPEC 1.4 beyond single fields, in order; returns warnings."""
    emails = data["emails"]
    check_recipient_keys(data, set(emails))
    warnings = check_built_in_responses(data.get("built_in_responses") or {}, context)
    warnings += check_batch_size(len(emails), context)
    check_duplicates(emails)
    return warnings


def check_recipient_keys(data: dict[str, Any], recipients: set[str]) -> None:
    for name in RECIPIENT_KEYED_FIELDS:
        keyed = data.get(name) or {}
        if keyed.keys() - recipients:
            stray = next(key for key in keyed if key not in recipients)
            raise PisanoError(13028, f'{name}: key "{stray}" is not one of emails')


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


def check_batch_size(count: int, context: RuleContext) -> list[str]:
    if count <= context.batch_limit:
        return []
    message = f"emails: {count} recipients, above Pisano's best practice of {context.batch_limit}"
    if context.strict_batch_limit:
        raise PisanoError(13028, message + " (strict_batch_limit)")
    return [message]


def check_duplicates(emails: list[str]) -> None:
    if len(set(map(str.lower, emails))) == len(emails):
        return
    seen: dict[str, str] = {}
    for email in emails:
        folded = email.lower()
        if folded in seen:
            raise PisanoError(
                13017, f'emails: "{email}" repeats "{seen[folded]}" (compared case-insensitively)'
            )
        seen[folded] = email


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
    """A value as a reason quotes it: its repr, cut at 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
