"""Rack-style `application/x-www-form-urlencoded` parsing, as Rails parses Pisano's form bodies.

`emails[]=a&emails[]=b` is a list; `a[b][c]=v` nests hashes; a key repeated WITHOUT `[]` keeps only
its last value. That last rule silently loses recipients for clients that send `emails=a&emails=b`
(Pisano's Java client), so the parser counts what each key lost (SPEC 1.1).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import unquote_to_bytes

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SUBKEY = re.compile(r"\[([^\]]*)\]")


class FormError(ValueError):
    """A form body Rack would refuse to parse."""


def parse_form(body: str) -> tuple[dict[str, Any], Counter[str]]:
    """The params hash Rack builds from `body`, and how many values each repeated key lost."""
    params: dict[str, Any] = {}
    lost: Counter[str] = Counter()
    for pair in body.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name, value = _unescape(name), _unescape(value)
        head, _, rest = name.partition("[")
        if not head:
            continue  # Rack ignores a pair whose name starts with "["
        keys = [head, *_SUBKEY.findall("[" + rest)] if rest else [head]
        _assign(params, keys, value, name, lost)
    return params, lost


def _unescape(text: str) -> str:
    if _BAD_PERCENT.search(text):
        raise FormError(f"invalid %-encoding in {text[:60]!r}")
    try:
        return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError as error:
        raise FormError(f"not UTF-8 after %-decoding: {text[:60]!r}") from error


def _assign(
    container: dict[str, Any], keys: list[str], value: str, name: str, lost: Counter[str]
) -> None:
    key, rest = keys[0], keys[1:]
    if not rest:
        if key in container:
            lost[name] += 1
        container[key] = value
    elif rest[0] == "":
        _assign_to_list(container, key, rest[1:], value, name, lost)
    else:
        child = container.setdefault(key, {})
        if not isinstance(child, dict):
            raise FormError(f"expected a hash for {key!r} in {name!r}")
        _assign(child, rest, value, name, lost)


def _assign_to_list(
    container: dict[str, Any], key: str, rest: list[str], value: str, name: str, lost: Counter[str]
) -> None:
    items = container.setdefault(key, [])
    if not isinstance(items, list):
        raise FormError(f"expected an array for {key!r} in {name!r}")
    if not rest:
        items.append(value)
        return
    # `a[][b]=1&a[][c]=2` fills one hash until a key repeats, as Rack does.
    last = items[-1] if items else None
    if not isinstance(last, dict) or rest[0] in last:
        last = {}
        items.append(last)
    _assign(last, rest, value, name, lost)
