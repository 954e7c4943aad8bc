"""Turning a request body into params: JSON, or a Rack-style form (SPEC 1.1, rule 10 of 1.4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .catalogue import PisanoError
from .forms import FormError, parse_form

FORM_TYPE = "application/x-www-form-urlencoded"
# Keys the email endpoint expects as lists: a lone form value counts as a one-item list, as Rails
# code written `Array(params[:emails])` would take it.
FORM_LIST_KEYS = ("emails", "phone_numbers")


@dataclass
class Params:
    data: dict[str, Any]
    from_form: bool = False
    warnings: list[str] = field(default_factory=list)


def parse_params(raw: bytes, content_type: str | None, form_bodies: bool) -> Params:
    """The params of a request body, or PisanoError(13000) when it cannot be parsed."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == FORM_TYPE:
        if not form_bodies:
            raise PisanoError(13000, f"body: {FORM_TYPE} bodies are off (setting form_bodies)")
        return _form_params(raw)
    params = Params(data=_json_object(raw))
    if media_type != "application/json" and not media_type.endswith("+json"):
        shown = content_type if content_type else "absent"
        params.warnings.append(f"Content-Type: {shown}; the body was read as JSON")
    return params


def _json_object(raw: bytes) -> dict[str, Any]:
    # orjson differs from Ruby's parser in two corners (README, Fidelity): integers outside 64 bits
    # are read as floats, and lone surrogates are refused, so every accepted body can be answered.
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise PisanoError(13000, f"body: not JSON ({error})") from None
    if not isinstance(data, dict):
        raise PisanoError(13000, f"body: JSON {type(data).__name__} where an object is expected")
    return data


def _form_params(raw: bytes) -> Params:
    try:
        data, lost = parse_form(raw.decode("utf-8"))
    except (UnicodeDecodeError, FormError) as error:
        raise PisanoError(13000, f"body: form not parseable ({error})") from None
    for key in FORM_LIST_KEYS:
        if isinstance(data.get(key), str):
            data[key] = [data[key]]
    warnings = [
        f"{name}: {count} value(s) lost: Rack keeps only the last value of a key repeated "
        f"without [] (send {name}[]=...)"
        for name, count in lost.items()
    ]
    return Params(data=data, from_form=True, warnings=warnings)
