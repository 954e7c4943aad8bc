"""Drift (SPEC 2.8): one request's two answers compared, and many pairs summarised by rule.

Pure functions over plain data, so that the proxy, `/__mock/drift` and `pisano-mock drift report`
say the same thing. An answer is a dict: `status`, `reason_phrase`, `headers` ([name, value]
pairs), `body` (bytes); the emulator's also `code`, `reason` and `throttle` (the tier it refused
with, or its counts per tier at that instant).

What differs, and why each rule is what it is:
- exactly one side answered 429: `throttle` alone (the other differences follow from it);
- `status`, and `code` (the JSON body's, on either side);
- `content_type`, the header's value as sent;
- `body`: a 2xx JSON body (the emulator's 2xx) structurally (same keys in the same order, same
  values, but the values the server generates compared by JSON type only), others byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from .catalogue import CATALOGUE

WHATS = ("status", "code", "body", "content_type", "throttle")
SHOWN_BODY_CHARACTERS = 200  # a body in a difference: enough to see it, bounded
EXCERPT_BEFORE = 16  # bytes shown before the first that differs
EXAMPLES_PER_RULE = 3  # request ids named per rule in a summary
GENERATED_KEYS = frozenset({"id", "link", "short_link"})  # values the server makes up
GENERATED_UNDER = frozenset({"sharings"})  # {"sharings": {email: id}}: the ids are made up
_ID_SEGMENT = re.compile(r"/(?=[^/]*\d)[^/]{8,}")  # a path segment that is an id: uuid, number
_STATUS_NUMBER = re.compile(r"/\d+(?=/|$)")

# SPEC 1.4: the row of the table each code answers (codes of several rows name them all).
CODE_ROWS: dict[int, str] = {
    13000: "row 10",
    13001: "row 6",
    13002: "rows 1, 8",
    13005: "row 9",
    13011: "row 7",
    13013: "row 9",
    13015: "row 11",
    13017: "row 13",
    13028: "row 12",
    13030: "row 5",
    13035: "SPEC 1.6",
    13036: "row 7",
    13037: "SPEC 1.8",
    13038: "SPEC 1.8",
}


def compare(upstream: dict[str, Any], emulator: dict[str, Any]) -> list[dict[str, Any]]:
    """The differences between the two answers to one request; empty when they are the same."""
    up_429, em_429 = upstream["status"] == 429, emulator["status"] == 429
    if up_429 != em_429:
        return [throttle_difference(upstream, emulator)]
    found = [difference(upstream, emulator, what) for what in ("status", "code", "content_type")]
    differences = [d for d in found if d is not None]
    text = body_difference(upstream, emulator)
    if text is not None:
        at = first_byte_apart(upstream["body"], emulator["body"])
        differences.append(
            {
                "what": "body",
                "upstream": excerpt(upstream["body"], at),
                "emulator": excerpt(emulator["body"], at),
                "text": text,
            }
        )
    return differences


def difference(
    upstream: dict[str, Any], emulator: dict[str, Any], what: str
) -> dict[str, Any] | None:
    """A difference in `what` (status, code or content_type), or None when the sides agree."""
    mine, theirs = SIDE_VALUES[what](emulator), SIDE_VALUES[what](upstream)
    if mine == theirs:
        return None
    return {"what": what, "upstream": theirs, "emulator": mine, "text": f"{what} {mine} → {theirs}"}


def content_type(answer: dict[str, Any]) -> str | None:
    return header(answer["headers"], "Content-Type")


def json_code(answer: dict[str, Any]) -> int | None:
    """The JSON body's `code`, when it has one."""
    parsed = parse_json(answer["body"])
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


SIDE_VALUES = {
    "status": lambda answer: answer["status"],
    "code": json_code,
    "content_type": content_type,
}


def throttle_difference(upstream: dict[str, Any], emulator: dict[str, Any]) -> dict[str, Any]:
    """One side refused with 429: what each side said (the emulator's tier, or its counts)."""
    throttle = emulator.get("throttle") or {}
    if emulator["status"] == 429:
        upstream_side: Any = upstream["status"]
        emulator_side: Any = {"status": 429, "tier": throttle.get("tier")}
        tier, status = throttle.get("tier"), upstream["status"]
        text = f"the emulator refused with tier {tier}; upstream answered {status}"
    else:
        retry_after = header(upstream["headers"], "Retry-After")
        upstream_side = {"status": 429, "retry_after": retry_after}
        emulator_side = {"status": emulator["status"], "counts": throttle.get("counts", {})}
        counts = ", ".join(f"{tier}: {n}" for tier, n in throttle.get("counts", {}).items())
        said = f"{emulator['status']} ({counts or 'no counts'})"
        text = f"upstream refused (429); the emulator answered {said}"
    return {"what": "throttle", "upstream": upstream_side, "emulator": emulator_side, "text": text}


def body_difference(upstream: dict[str, Any], emulator: dict[str, Any]) -> str | None:
    """Why the bodies differ (naming the first JSON path that does), or None when they do not."""
    if upstream["body"] == emulator["body"]:
        return None
    if 200 <= emulator["status"] < 300:
        mine, theirs = parse_json(emulator["body"]), parse_json(upstream["body"])
        if mine is not _NOT_JSON and theirs is not _NOT_JSON:
            return json_difference(theirs, mine, "$")
    return f"bytes differ from byte {first_byte_apart(upstream['body'], emulator['body'])}"


def json_difference(theirs: Any, mine: Any, path: str, generated: bool = False) -> str | None:
    """The first path where two JSON values differ, with what differs; None when they agree."""
    if json_type(theirs) != json_type(mine):
        return f"{path}: {json_type(theirs)} upstream, {json_type(mine)} in the emulator"
    if isinstance(mine, dict):
        return object_difference(theirs, mine, path)
    if isinstance(mine, list):
        return list_difference(theirs, mine, path)
    if generated or theirs == mine:
        return None
    return f"{path}: {short(theirs)} upstream, {short(mine)} in the emulator"


def object_difference(theirs: dict[str, Any], mine: dict[str, Any], path: str) -> str | None:
    their_keys, my_keys = list(theirs), list(mine)
    for at, key in enumerate(my_keys):
        if at >= len(their_keys) or their_keys[at] != key:
            return key_difference(their_keys, my_keys, at, path)
        made_up = key in GENERATED_KEYS or path.rsplit(".", 1)[-1] in GENERATED_UNDER
        found = json_difference(theirs[key], mine[key], f"{path}.{key}", made_up)
        if found is not None:
            return found
    if len(their_keys) > len(my_keys):
        return f"{path}.{their_keys[len(my_keys)]}: only upstream has it"
    return None


def key_difference(their_keys: list[str], my_keys: list[str], at: int, path: str) -> str:
    key, theirs = my_keys[at], their_keys[at] if at < len(their_keys) else None
    if key not in their_keys and theirs is not None and theirs not in my_keys:
        return f"{path}.{key}: upstream has {path}.{theirs} in its place"
    if key not in their_keys:
        return f"{path}.{key}: only the emulator has it"
    if theirs is not None and theirs not in my_keys:
        return f"{path}.{theirs}: only upstream has it"
    return f"{path}: keys in another order ({', '.join(their_keys)} upstream)"


def list_difference(theirs: list[Any], mine: list[Any], path: str) -> str | None:
    for at, (their_item, my_item) in enumerate(zip(theirs, mine, strict=False)):
        found = json_difference(their_item, my_item, f"{path}[{at}]")
        if found is not None:
            return found
    if len(theirs) != len(mine):
        return f"{path}: {len(theirs)} items upstream, {len(mine)} in the emulator"
    return None


JSON_TYPES = ((bool, "boolean"), ((int, float), "number"), (str, "string"))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return next((name for kind, name in JSON_TYPES if isinstance(value, kind)), "unknown")


_NOT_JSON = object()


def parse_json(body: bytes) -> Any:
    """The body as JSON, or _NOT_JSON (orjson keeps object keys in their order)."""
    if not body or body[:1] not in b'{["-0123456789tfn ':
        return _NOT_JSON
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _NOT_JSON


def first_byte_apart(a: bytes, b: bytes) -> int:
    return next(
        (at for at, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def excerpt(body: bytes, at: int) -> str:
    """A body in a difference: from a little before the first byte that differs, bounded, as
    text (bytes not UTF-8 replaced), so that a short view shows what differs."""
    start = max(at - EXCERPT_BEFORE, 0)
    end = start + SHOWN_BODY_CHARACTERS
    text = body[start:end].decode("utf-8", errors="replace")
    return ("..." if start else "") + text + ("..." if end < len(body) else "")


def header(headers: Iterable[Sequence[str]], name: str) -> str | None:
    lowered = name.lower()
    return next((value for key, value in headers if key.lower() == lowered), None)


# -- rules and summaries --------------------------------------------------------------------------
def endpoint(method: str, path: str) -> str:
    """`POST /v1/email_campaigns/735c.../email_sharings` → `POST /v1/email_campaigns/<id>/...`."""
    return f"{method} {_STATUS_NUMBER.sub('/<id>', _ID_SEGMENT.sub('/<id>', path))}"


def rule_of(method: str, path: str, emulator: dict[str, Any]) -> str:
    """What the emulator did, on which endpoint: the name a summary groups pairs under."""
    return f"{what_emulator_did(emulator)} on {endpoint(method, path)}"


def what_emulator_did(emulator: dict[str, Any]) -> str:
    status, code = emulator["status"], emulator.get("code")
    if status == 429:
        return f"429 throttle tier {(emulator.get('throttle') or {}).get('tier')}"
    if code in CATALOGUE:
        where = f" ({CODE_ROWS[code]})" if code in CODE_ROWS else ""
        return f"{code} {CATALOGUE[code].message}{where}"
    return f"{status}"


def summarise(pairs: Iterable[dict[str, Any]], dropped: int = 0) -> dict[str, Any]:
    """The `/__mock/drift` object from pairs (`id`, `method`, `path`, `emulator`, `verdict`)."""
    summary: dict[str, Any] = {
        "pairs": 0,
        "same": 0,
        "dropped": dropped,
        "differences": [],
        "rules": [],
    }
    rules: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        summary["pairs"] += 1
        rule = rules.setdefault(pair["rule"], new_rule(pair["rule"]))
        rule["pairs"] += 1
        if pair["verdict"] == "same":
            summary["same"] += 1
            continue
        add_to_rule(rule, pair)
        summary["differences"].extend({"request_id": pair["id"], **d} for d in pair["verdict"])
    summary["rules"] = [rule for rule in rules.values() if rule["differ"]]
    return summary


def new_rule(name: str) -> dict[str, Any]:
    return {"rule": name, "pairs": 0, "differ": 0, "whats": {}, "examples": []}


def add_to_rule(rule: dict[str, Any], pair: dict[str, Any]) -> None:
    rule["differ"] += 1
    for found in pair["verdict"]:
        shown = f"{short(found['emulator'])} → {short(found['upstream'])}"  # as the text says
        rule["whats"].setdefault(found["what"], shown)
    if len(rule["examples"]) < EXAMPLES_PER_RULE:
        texts = "; ".join(found.get("text", found["what"]) for found in pair["verdict"])
        rule["examples"].append({"request_id": pair["id"], "text": texts})


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as text: one paragraph per rule that differs, or that every pair is the same."""
    if summary["pairs"] == 0:
        return ["no pair recorded: nothing was compared"]
    if summary["pairs"] == summary["same"]:
        return [f"every pair is the same ({counted(summary['pairs'], 'pair')})"]
    differ = summary["pairs"] - summary["same"]
    lines = [f"{differ} of {summary['pairs']} pairs differ (each: the emulator's → upstream's)"]
    for rule in summary["rules"]:
        whats = ", ".join(f"{what} {shown}" for what, shown in rule["whats"].items())
        lines.append(f"{rule['rule']}: {rule['differ']} of {rule['pairs']} pairs differ — {whats}")
        lines.extend(f"  request {ex['request_id']}: {ex['text']}" for ex in rule["examples"])
    if summary.get("dropped"):
        lines.append(f"({summary['dropped']} older pairs dropped from the journal)")
    return lines
