"""Rack-style `application/x-www-form-urlencoded` parsing, as Rails parses Pisano's form bodies.

`emails[]=a&emails[]=b` is a list; `a[b][c]=v` nests hashes; a key repeated WITHOUT `[]` keeps only
its last value. That last rule silently loses recipients for clients that send `emails=a&emails=b`
(Pisano's Java client), so the parser counts what each key lost (SPEC 1.1).

A key nests at most `max_depth` levels (`a` is 1, `a[b]` is 2), as Rack's `param_depth_limit`; the
parser walks a key once, without recursion, so its cost is linear in the body (issue 8, item 4).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import unquote_to_bytes

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
RACK_DEPTH_LIMIT = 100
_SHOWN = 60  # characters of a key a reason quotes


class FormError(ValueError):
    """A form body Rack would refuse to parse."""


def parse_form(body: str, max_depth: int = RACK_DEPTH_LIMIT) -> tuple[dict[str, Any], Counter[str]]:
    """The params hash Rack builds from `body`, and how many values each repeated key lost."""
    params: dict[str, Any] = {}
    lost: Counter[str] = Counter()
    for pair in body.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name, value = _unescape(name), _unescape(value)
        keys = split_key(name, max_depth)
        if keys:  # Rack ignores a pair whose name starts with "["
            _assign(params, keys, value, name, lost)
    return params, lost


def split_key(name: str, max_depth: int) -> list[str]:
    """`a[b][]` as ["a", "b", ""]; at most `max_depth` of them are ever looked for.

    A subkey is what lies between a `[` and the next `]` (text between `]` and `[` is skipped; a
    `[` never closed ends the key). The key is read once with `find`, left to right: a regex that
    looked for the `]` at every `[` rescanned the rest of the key each time, quadratic in a run
    of unclosed brackets (80 000 of them took 14 s)."""
    head, bracket, _ = name.partition("[")
    if not head or not bracket:
        return [head] if head else []
    keys = [head]
    opening = len(head)
    while opening >= 0 and len(keys) <= max_depth:
        closing = name.find("]", opening + 1)
        if closing < 0:
            break
        keys.append(name[opening + 1 : closing])
        opening = name.find("[", closing + 1)
    if len(keys) > max_depth:
        raise FormError(f"key {name[:_SHOWN]!r} nests deeper than {max_depth} (max_form_depth)")
    return keys


def _unescape(text: str) -> str:
    if _BAD_PERCENT.search(text):
        raise FormError(f"invalid %-encoding in {text[:_SHOWN]!r}")
    try:
        return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError as error:
        raise FormError(f"not UTF-8 after %-decoding: {text[:_SHOWN]!r}") from error


def _assign(
    params: dict[str, Any], keys: list[str], value: str, name: str, lost: Counter[str]
) -> None:
    """Put `value` at `keys` in `params`, one level per step (no recursion: keys may be deep)."""
    container, index = params, 0
    while index < len(keys) - 1:
        key = keys[index]
        if keys[index + 1] != "":
            container, index = _hash_at(container, key, name), index + 1
            continue
        items = _list_at(container, key, name)
        if index + 2 == len(keys):
            items.append(value)
            return
        container, index = _hash_to_fill(items, keys[index + 2]), index + 2
    if keys[-1] in container:
        lost[name] += 1
    container[keys[-1]] = value


def _hash_at(container: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    child = container.setdefault(key, {})
    if not isinstance(child, dict):
        raise FormError(f"expected a hash for {key[:_SHOWN]!r} in {name[:_SHOWN]!r}")
    return child


def _list_at(container: dict[str, Any], key: str, name: str) -> list[Any]:
    items = container.setdefault(key, [])
    if not isinstance(items, list):
        raise FormError(f"expected an array for {key[:_SHOWN]!r} in {name[:_SHOWN]!r}")
    return items


def _hash_to_fill(items: list[Any], next_key: str) -> dict[str, Any]:
    # `a[][b]=1&a[][c]=2` fills one hash until a key repeats, as Rack does.
    last = items[-1] if items else None
    if not isinstance(last, dict) or next_key in last:
        last = {}
        items.append(last)
    return last
