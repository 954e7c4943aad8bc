"""Loading a body against a marshmallow schema: the fast path, and the reference path it must match.

Marshmallow deserialising 5000 `fields.Email` items and nested per-recipient schemas costs ~100 ms
per request (issue 2). The fast path walks the same schema's declared fields and applies the same
rules, but checks a list of emails with marshmallow's own Email regexes in one loop instead of a
field object per item. `tests/test_validation.py` proves both paths agree on generated bodies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from .catalogue import PisanoError
from .rules import RuleContext, is_phone_number, shown
from .schemas import (
    MISSING_MESSAGE,
    EmailSharingSchema,
    LinkSharingSchema,
    PhoneNumber,
    SmsSharingSchema,
)

_EMAIL = validate.Email


# A strict subset of what marshmallow's Email accepts (plain ASCII dot-atoms at ASCII domains), so
# that the common address costs one match; anything else takes marshmallow's own regexes below.
_PLAIN_EMAIL = (
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,6}"
)
_ONE_PLAIN_EMAIL = re.compile(_PLAIN_EMAIL)
# A whole list of plain addresses, joined by newlines (which no address can contain), in one match.
_PLAIN_EMAIL_LINES = re.compile(rf"(?:{_PLAIN_EMAIL}\n)*{_PLAIN_EMAIL}")


def is_email(value: Any) -> bool:
    """marshmallow's `validate.Email` decision, without building an error message per call."""
    if not isinstance(value, str):
        return False
    if _ONE_PLAIN_EMAIL.fullmatch(value):
        return True
    if "@" not in value:
        return False
    user, domain = value.rsplit("@", 1)
    if not _EMAIL.USER_REGEX.match(user):
        return False
    return domain in _EMAIL.DOMAIN_WHITELIST or bool(_EMAIL.DOMAIN_REGEX.match(domain))


def _load_email_list(name: str, field: fields.Field, value: Any) -> None:
    if not isinstance(value, list):
        raise PisanoError(13028, f"{name}: {type(value).__name__} where a list is expected")
    if _all_plain_emails(value):
        return
    for index, item in enumerate(value):
        if not is_email(item):
            raise PisanoError(13028, f"{name}[{index}]: {shown(item)} is not an email address")


def _load_phone_list(name: str, field: fields.Field, value: Any) -> None:
    if not isinstance(value, list):
        raise PisanoError(13028, f"{name}: {type(value).__name__} where a list is expected")
    for index, item in enumerate(value):
        if not is_phone_number(item):
            raise PisanoError(
                13028,
                f"{name}[{index}]: {shown(item)} is not a phone number (7-15 digits once "
                "spaces, -, (, ), . and one leading + are removed)",
            )


def _all_plain_emails(items: list[Any]) -> bool:
    try:
        return bool(items) and bool(_PLAIN_EMAIL_LINES.fullmatch("\n".join(items)))
    except TypeError:  # an item is not a string
        return False


def _load_dict(name: str, field: fields.Field, value: Any) -> None:
    if not isinstance(value, dict):
        raise PisanoError(13028, f"{name}: {type(value).__name__} where an object is expected")
    assert isinstance(field, fields.Dict)
    if isinstance(field.value_field, fields.Dict) and set(map(type, value.values())) - {dict}:
        for key, item in value.items():
            if not isinstance(item, dict):
                raise PisanoError(
                    13028, f'{name}["{key}"]: {type(item).__name__} where an object is expected'
                )


def _load_any_field(name: str, field: fields.Field, value: Any) -> None:
    try:
        field.deserialize(value)
    except ValidationError as error:
        raise PisanoError(13028, f"{name}: {error.messages}") from None


def _loader_for(field: fields.Field) -> Callable[[str, fields.Field, Any], None]:
    if isinstance(field, fields.List) and isinstance(field.inner, fields.Email):
        return _load_email_list
    if isinstance(field, fields.List) and isinstance(field.inner, PhoneNumber):
        return _load_phone_list
    if isinstance(field, fields.Dict):
        return _load_dict
    return _load_any_field


class FastLoader:
    """A schema's field checks compiled once into plain functions; then the schema's rules."""

    def __init__(self, schema: Schema) -> None:
        self.fields = [
            (name, field, _loader_for(field)) for name, field in schema.load_fields.items()
        ]
        self.known = {name for name, _, _ in self.fields}
        self.rules: Callable[[dict[str, Any], RuleContext], list[str]] = getattr(
            schema, "cross_field_rules", lambda data, context: []
        )

    def load(self, data: dict[str, Any], context: RuleContext) -> list[str]:
        """Check `data` as the schema would; raise PisanoError, or return warnings."""
        for name, field, load in self.fields:
            if name not in data:
                if field.required:
                    raise PisanoError(13015, f"{name}: required field is absent")
                continue
            value = data[name]
            if value is None and not getattr(field, "checks_null", False):
                raise PisanoError(13028, f"{name}: null where a value is expected")
            load(name, field, value)
            for validator in field.validators:
                try:
                    validator(value)
                except ValidationError as error:
                    raise PisanoError(13028, f"{name}: {error.messages[0]}") from None
        warnings = self.rules(data, context)
        unknown = sorted(set(data) - self.known)
        if unknown:
            warnings.append(f"ignored unknown field(s): {', '.join(unknown)}")
        return warnings


def reference_load(schema_class: type[Schema], data: dict[str, Any], context: RuleContext) -> int:
    """The code plain marshmallow gives `data` (0 when accepted): the oracle for the fast path."""
    try:
        schema_class(rule_context=context).load(data)  # type: ignore[call-arg]
    except PisanoError as error:
        return error.code
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {}
        missing = any(MISSING_MESSAGE in m for m in messages.values() if isinstance(m, list))
        return 13015 if missing else 13028
    return 0


email_sharing_loader = FastLoader(EmailSharingSchema())
sms_sharing_loader = FastLoader(SmsSharingSchema())
link_sharing_loader = FastLoader(LinkSharingSchema())
