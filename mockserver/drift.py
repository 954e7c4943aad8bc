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

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
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
    """The differences between the two answers to one request; empty when they are the same.
    Each carries the emulator's reason, and a hint when the shadow's config is the likely cause."""
    if upstream.get("error"):
        return [no_upstream_answer(upstream, emulator)]
    context = {"emulator_reason": emulator.get("reason")} if emulator.get("reason") else {}
    hint = shadow_hint(upstream, emulator)
    if hint is not None:
        context["hint"] = hint
    return [{**found, **context} for found in differences(upstream, emulator)]


def differences(upstream: dict[str, Any], emulator: dict[str, Any]) -> list[dict[str, Any]]:
    up_429, em_429 = upstream["status"] == 429, emulator["status"] == 429
    if up_429 != em_429:
        return [throttle_difference(upstream, emulator)]
    found = [retry_after_difference(upstream, emulator)] if up_429 else []
    found += [difference(upstream, emulator, what) for what in ("status", "code", "content_type")]
    apart = [d for d in found if d is not None]
    text = body_difference(upstream, emulator)
    if text is not None:
        at = first_byte_apart(upstream["body"], emulator["body"])
        apart.append(
            {
                "what": "body",
                "upstream": excerpt(upstream["body"], at),
                "emulator": excerpt(emulator["body"], at),
                "text": text,
            }
        )
    return apart


NO_UPSTREAM_ANSWER = "no upstream answer"  # the proxy's own 502: nothing to compare with


def no_upstream_answer(upstream: dict[str, Any], emulator: dict[str, Any]) -> dict[str, Any]:
    """The proxy answered its own 502 (unreachable, timeout, cut short): not drift."""
    error = str(upstream["error"])
    return {
        "what": NO_UPSTREAM_ANSWER,
        "upstream": error,
        "emulator": emulator["status"],
        "text": f"no upstream answer ({error}): not compared",
    }


def is_unanswered(verdict: Any) -> bool:
    return isinstance(verdict, list) and any(d.get("what") == NO_UPSTREAM_ANSWER for d in verdict)


# The shadow's refusals that mean "this token or campaign is not in my config" (reason prefixes
# as api/common.py and auth.py word them): when upstream accepted, the config is the likely cause.
SHADOW_UNKNOWN = {13001: "", 13002: "campaign_id:", 13013: ""}
SHADOW_HINT = (
    "the shadow's config (--config) probably lacks this token or campaign: not Pisano drift"
)


def shadow_hint(upstream: dict[str, Any], emulator: dict[str, Any]) -> str | None:
    code = emulator.get("code") or json_code(emulator)
    prefix = SHADOW_UNKNOWN.get(code) if isinstance(code, int) else None
    if prefix is None or not 200 <= upstream["status"] < 300:
        return None
    return SHADOW_HINT if str(emulator.get("reason") or "").startswith(prefix) else None


def difference(
    upstream: dict[str, Any], emulator: dict[str, Any], what: str
) -> dict[str, Any] | None:
    """A difference in `what` (status, code or content_type), or None when the sides agree."""
    mine, theirs = SIDE_VALUES[what](emulator), SIDE_VALUES[what](upstream)
    if mine == theirs:
        return None
    text = f"{what} {short(mine)} → {short(theirs)}"  # JSON notation: null, not None
    return {"what": what, "upstream": theirs, "emulator": mine, "text": text}


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


def retry_after_difference(
    upstream: dict[str, Any], emulator: dict[str, Any]
) -> dict[str, Any] | None:
    """Both refused with 429: a `Retry-After` on one side only is another throttle answer (a
    client that honours it waits differently). Its value is not compared: it depends on when."""
    theirs, mine = (
        header(upstream["headers"], "Retry-After"),
        header(emulator["headers"], "Retry-After"),
    )
    if (theirs is None) == (mine is None):
        return None
    tier = (emulator.get("throttle") or {}).get("tier")
    said = f"Retry-After {short(mine)} → {short(theirs)}"
    return {
        "what": "throttle",
        "upstream": {"status": 429, "retry_after": theirs},
        "emulator": {"status": 429, "retry_after": mine, "tier": tier},
        "text": f"both refused (429), {said}",
    }


PATHS_NAMED = 5  # JSON paths named per body difference: enough to see a pattern, bounded
PATHS_COUNTED = 1000  # the walk stops past this many: "and 995+ more"


def body_difference(upstream: dict[str, Any], emulator: dict[str, Any]) -> str | None:
    """Why the bodies differ (naming the JSON paths that do), or None when they do not."""
    if upstream["body"] == emulator["body"]:
        return None
    if 200 <= emulator["status"] < 300:
        try:
            mine, theirs = parse_structure(emulator["body"]), parse_structure(upstream["body"])
            if mine is not _NOT_JSON and theirs is not _NOT_JSON:
                found = islice(json_differences(theirs, mine, "$"), PATHS_COUNTED + 1)
                return paths_text(list(found))
        except RecursionError:  # nested deeper than we parse or walk: say where the bytes part
            pass
    return f"bytes differ from byte {first_byte_apart(upstream['body'], emulator['body'])}"


def paths_text(found: list[str]) -> str | None:
    if not found:
        return None
    more = len(found) - PATHS_NAMED
    counted = f"{more - 1}+" if len(found) > PATHS_COUNTED else str(more)
    return "; ".join(found[:PATHS_NAMED]) + (f"; and {counted} more" if more > 0 else "")


def json_differences(theirs: Any, mine: Any, path: str, generated: bool = False) -> Iterator[str]:
    """Each path where two JSON values differ, with what differs."""
    if json_type(theirs) != json_type(mine):
        yield f"{path}: {json_type(theirs)} upstream, {json_type(mine)} in the emulator"
    elif isinstance(mine, dict):
        yield from object_differences(theirs, mine, path)
    elif isinstance(mine, list):
        yield from list_differences(theirs, mine, path)
    elif not generated and theirs != mine:
        yield f"{path}: {short(theirs)} upstream, {short(mine)} in the emulator"


def object_differences(theirs: dict[str, Any], mine: dict[str, Any], path: str) -> Iterator[str]:
    yield from (f"{path}.{key}: repeated upstream" for key in repeated_keys(theirs))
    yield from (f"{path}.{key}: repeated in the emulator" for key in repeated_keys(mine))
    their_keys, my_keys = list(theirs), list(mine)
    for at, key in enumerate(my_keys):
        if at >= len(their_keys) or their_keys[at] != key:
            yield key_difference(their_keys, my_keys, at, path)
            return  # the keys no longer line up: what follows would only repeat this
        made_up = key in GENERATED_KEYS or path.rsplit(".", 1)[-1] in GENERATED_UNDER
        yield from json_differences(theirs[key], mine[key], f"{path}.{key}", made_up)
    if len(their_keys) > len(my_keys):
        yield f"{path}.{their_keys[len(my_keys)]}: only upstream has it"


def key_difference(their_keys: list[str], my_keys: list[str], at: int, path: str) -> str:
    key, theirs = my_keys[at], their_keys[at] if at < len(their_keys) else None
    if key not in their_keys and theirs is not None and theirs not in my_keys:
        return f"{path}.{key}: upstream has {path}.{theirs} in its place"
    if key not in their_keys:
        return f"{path}.{key}: only the emulator has it"
    if theirs is not None and theirs not in my_keys:
        return f"{path}.{theirs}: only upstream has it"
    return f"{path}: keys in another order ({', '.join(their_keys)} upstream)"


def list_differences(theirs: list[Any], mine: list[Any], path: str) -> Iterator[str]:
    for at, (their_item, my_item) in enumerate(zip(theirs, mine, strict=False)):
        yield from json_differences(their_item, my_item, f"{path}[{at}]")
    if len(theirs) != len(mine):
        yield f"{path}: {len(theirs)} items upstream, {len(mine)} in the emulator"


class JSONObject(dict[str, Any]):
    """A parsed JSON object that remembers the keys it saw more than once (a typed client may
    read the first or the last: the bytes say two things)."""

    repeated: tuple[str, ...] = ()


def json_object(pairs: list[tuple[str, Any]]) -> JSONObject:
    made = JSONObject(pairs)
    if len(made) < len(pairs):
        counts = Counter(key for key, _ in pairs)
        made.repeated = tuple(key for key, n in counts.items() if n > 1)
    return made


def repeated_keys(value: dict[str, Any]) -> tuple[str, ...]:
    return value.repeated if isinstance(value, JSONObject) else ()


def parse_structure(body: bytes) -> Any:
    """The body as JSON for a structural comparison (repeated keys kept note of), or _NOT_JSON."""
    if parse_json(body) is _NOT_JSON:  # orjson first: fast, and it bounds the nesting
        return _NOT_JSON
    return json.loads(body, object_pairs_hook=json_object)


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


def pair_of_record(record: dict[str, Any]) -> dict[str, Any]:
    """A recorded pair as `summarise` takes it. A recording made before unanswered pairs had a
    verdict of their own says so by the upstream side's `error`."""
    emulator, upstream = record["emulator"], record["upstream"]
    verdict = record["verdict"]
    if upstream.get("error") and not is_unanswered(verdict):
        verdict = [{**no_upstream_answer(upstream, emulator), "text": "no upstream answer"}]
    rule = rule_of(record["request"]["method"], record["request"]["path"], emulator)
    return {"id": record["id"], "rule": rule, "verdict": verdict, "reason": emulator.get("reason")}


def summarise(pairs: Iterable[dict[str, Any]], dropped: int = 0) -> dict[str, Any]:
    """The `/__mock/drift` object from pairs (`id`, `rule`, `verdict`). A pair that got no
    upstream answer is counted apart (`no_upstream_answer`): not the same, not a difference."""
    summary: dict[str, Any] = {
        "pairs": 0,
        "same": 0,
        "no_upstream_answer": 0,
        "dropped": dropped,
        "differences": [],
        "rules": [],
    }
    rules: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        summary["pairs"] += 1
        if is_unanswered(pair["verdict"]):
            summary["no_upstream_answer"] += 1
            continue
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
        rule["whats"].setdefault(found["what"], shown_what(found))
        if found.get("hint"):
            rule.setdefault("hint", found["hint"])
    if len(rule["examples"]) < EXAMPLES_PER_RULE:
        texts = "; ".join(found.get("text", found["what"]) for found in pair["verdict"])
        example = {"request_id": pair["id"], "text": texts}
        reasons = (found.get("emulator_reason") for found in pair["verdict"])
        reason = next((r for r in reasons if r), pair.get("reason"))  # a recording's own
        rule["examples"].append({**example, "emulator_reason": reason} if reason else example)


def shown_what(found: dict[str, Any]) -> dict[str, Any]:
    """A difference in a rule's `whats`: the values as they are (JSON escapes them once), and a
    body's text (the JSON paths that differ, or the byte)."""
    shown = {"emulator": found["emulator"], "upstream": found["upstream"]}
    return {**shown, "text": found["text"]} if found["what"] == "body" else shown


def what_text(what: str, shown: dict[str, Any]) -> str:
    """A rule's difference as text, in JSON notation: a body by its JSON paths when it has them,
    else by its excerpts; anything else as the emulator's → upstream's value."""
    if what == "body" and str(shown.get("text", "")).startswith("$"):
        return f"body {shown['text']}"
    return f"{what} {short(shown['emulator'])} → {short(shown['upstream'])}"


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def any_drift(summary: dict[str, Any]) -> bool:
    """A compared pair differs (what `drift report` exits 1 for)."""
    return bool(summary["pairs"] - summary["same"] - summary.get("no_upstream_answer", 0))


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as text: one paragraph per rule that differs, or that every pair is the same;
    then the pairs that got no upstream answer, counted apart."""
    if summary["pairs"] == 0:
        return ["no pair recorded: nothing was compared"]
    unanswered = summary.get("no_upstream_answer", 0)
    lines = verdict_lines(summary, summary["pairs"] - unanswered, unanswered)
    if summary.get("dropped"):
        lines.append(f"({summary['dropped']} older pairs dropped from the journal)")
    if unanswered:
        had = "pair had" if unanswered == 1 else "pairs had"
        lines.append(f"{unanswered} {had} no upstream answer: not compared")
    return lines


def verdict_lines(summary: dict[str, Any], compared: int, unanswered: int) -> list[str]:
    noun = "compared pair" if unanswered else "pair"
    if compared == 0:
        return ["no pair was compared"]
    if compared == summary["same"]:
        return [f"every {noun} is the same ({counted(compared, 'pair')})"]
    differ = compared - summary["same"]
    lines = [f"{differ} of {compared} {noun}s differ (each: the emulator's → upstream's)"]
    for rule in summary["rules"]:
        lines.extend(rule_lines(rule))
    return lines


def rule_lines(rule: dict[str, Any]) -> list[str]:
    whats = ", ".join(what_text(what, shown) for what, shown in rule["whats"].items())
    lines = [f"{rule['rule']}: {rule['differ']} of {rule['pairs']} pairs differ — {whats}"]
    if rule.get("hint"):
        lines.append(f"  hint: {rule['hint']}")
    for example in rule["examples"]:
        lines.append(f"  pair {example['request_id']}: {example['text']}")
        if example.get("emulator_reason"):
            lines.append(f"    the emulator's reason: {example['emulator_reason']}")
    return lines
