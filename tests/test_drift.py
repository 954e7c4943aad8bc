"""drift.py: two answers to one request compared, pairs summarised (SPEC 2.8), as a table."""

from __future__ import annotations

import orjson
import pytest

from mockserver import drift
from mockserver.catalogue import ERROR_CONTENT_TYPE, render_body

JSON = [("Content-Type", ERROR_CONTENT_TYPE)]
TEXT = [("Content-Type", "text/plain")]
OK = orjson.dumps(
    {"status": "ok", "campaign_id": "c1", "count": 1, "sharings": {"a@example.com": 7}}
)


def answer(status: int, body: bytes, headers=JSON, **extra) -> dict:
    return {"status": status, "reason_phrase": "", "headers": headers, "body": body, **extra}


def body_with(**changes) -> bytes:
    parsed = orjson.loads(OK)
    parsed.update(changes)
    return orjson.dumps({k: v for k, v in parsed.items() if v is not None})


CASES = {
    "identical catalogue answers": (
        answer(400, render_body(13030)),
        answer(400, render_body(13030)),
        [],
    ),
    "a 200 whose generated id differs": (
        answer(200, OK.replace(b":7", b":9123")),
        answer(200, OK),
        [],
    ),
    "a message spelled differently": (
        answer(400, render_body(13000).replace(b"occured", b"occurred")),
        answer(400, render_body(13000)),
        ["body"],
    ),
    "401 where the emulator says 13030": (
        answer(401, render_body(13001)),
        answer(400, render_body(13030)),
        ["status", "code", "body"],
    ),
    "only upstream refused with 429": (
        answer(429, b"Retry later\n", TEXT),
        answer(200, OK, throttle={"counts": {"20/5 seconds": 21}}),
        ["throttle"],
    ),
    "only the emulator refused with 429": (
        answer(200, OK),
        answer(429, b"Retry later\n", TEXT, throttle={"tier": "20/5 seconds"}),
        ["throttle"],
    ),
    "both refused, upstream with a JSON body": (
        answer(429, b'{"status":"too_many_requests"}', [("Content-Type", "application/json")]),
        answer(429, b"Retry later\n", TEXT),
        ["content_type", "body"],
    ),
    "a 200 with a renamed key": (
        answer(200, body_with(sharings=None, sharing_ids={"a@example.com": 7})),
        answer(200, OK),
        ["body"],
    ),
    "a 200 with a value of another type": (
        answer(200, body_with(count="1")),
        answer(200, OK),
        ["body"],
    ),
    "a 200 whose generated id is a string": (
        answer(200, OK.replace(b":7", b':"7"')),
        answer(200, OK),
        ["body"],
    ),
    "another Content-Type only": (
        answer(400, render_body(13030), [("Content-Type", "application/json")]),
        answer(400, render_body(13030)),
        ["content_type"],
    ),
    "a body that is not JSON on one side": (
        answer(200, b"<html>ok</html>", [("content-type", ERROR_CONTENT_TYPE)]),
        answer(200, OK),
        ["body"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_compare_names_each_difference_and_nothing_else(case):
    upstream, emulator, expected = CASES[case]
    assert [d["what"] for d in drift.compare(upstream, emulator)] == expected


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        (body_with(sharings=None, sharing_ids={"a@example.com": 7}), "$.sharing_ids"),
        (body_with(count="1"), "$.count: string upstream, number in the emulator"),
        (body_with(extra=1), "$.extra: only upstream has it"),
        (body_with(campaign_id="c2"), '$.campaign_id: "c2" upstream, "c1" in the emulator'),
        (OK.replace(b"a@example.com", b"b@example.com"), "$.sharings.b@example.com"),
    ],
)
def test_a_200_body_difference_names_the_first_json_path(upstream, expected):
    (found,) = drift.compare(answer(200, upstream), answer(200, OK))
    assert expected in found["text"]


def test_a_catalogue_body_difference_names_the_first_byte():
    (found,) = drift.compare(
        answer(400, render_body(13000).replace(b"occured", b"occurred")),
        answer(400, render_body(13000)),
    )
    assert found["text"] == f"bytes differ from byte {render_body(13000).index(b'occured') + 5}"


def test_the_throttle_difference_says_the_tier_or_the_counts():
    (refused,) = drift.compare(
        answer(200, OK), answer(429, b"Retry later\n", TEXT, throttle={"tier": "20/5 seconds"})
    )
    assert refused["emulator"] == {"status": 429, "tier": "20/5 seconds"}
    upstream = answer(429, b"", [("Retry-After", "3")])
    (counted,) = drift.compare(upstream, answer(200, OK, throttle={"counts": {"20/5 s": 21}}))
    assert counted["upstream"] == {"status": 429, "retry_after": "3"}
    assert counted["emulator"] == {"status": 200, "counts": {"20/5 s": 21}}


def test_status_and_code_say_emulator_then_upstream():
    found = drift.compare(answer(401, render_body(13001)), answer(400, render_body(13030)))
    assert [d["text"] for d in found[:2]] == ["status 400 → 401", "code 13030 → 13001"]


PATH = "/v1/email_campaigns/735c19a7-ee54-4b03-a84a-93dfe2a94a56/email_sharings"


def pair(pair_id: int, emulator: dict, upstream: dict) -> dict:
    verdict = drift.compare(upstream, emulator)
    rule = drift.rule_of("POST", PATH, {**emulator, "code": drift.json_code(emulator)})
    return {"id": pair_id, "rule": rule, "verdict": verdict or "same"}


def test_the_summary_groups_pairs_by_the_rule_the_emulator_applied():
    missing = answer(400, render_body(13030))
    pairs = [
        pair(1, answer(200, OK), answer(200, OK)),
        pair(2, missing, answer(401, render_body(13001))),
        pair(3, missing, answer(401, render_body(13001))),
    ]
    summary = drift.summarise(pairs)
    assert (summary["pairs"], summary["same"]) == (3, 1)
    assert [d["request_id"] for d in summary["differences"]] == [2, 2, 2, 3, 3, 3]
    (rule,) = summary["rules"]
    assert rule["rule"] == (
        "13030 Invalid authentication token (row 5) on POST /v1/email_campaigns/<id>/email_sharings"
    )
    assert (rule["pairs"], rule["differ"]) == (2, 2)
    lines = drift.report_lines(summary)
    assert lines[1].startswith(
        rule["rule"] + ": 2 of 2 pairs differ — status 400 → 401, code 13030"
    )
    assert lines[2].startswith("  pair 2: status 400 → 401")


def test_the_report_says_when_every_pair_is_the_same():
    summary = drift.summarise([pair(1, answer(200, OK), answer(200, OK))])
    assert drift.report_lines(summary) == ["every pair is the same (1 pair)"]


def test_the_report_of_no_pair_says_nothing_was_compared():
    # "every pair is the same (0 pairs)" read as a pass where nothing was compared
    assert drift.report_lines(drift.summarise([])) == ["no pair recorded: nothing was compared"]


def test_a_throttle_rule_names_the_tier():
    emulator = answer(429, b"Retry later\n", TEXT, throttle={"tier": "20/5 seconds"})
    assert drift.rule_of("POST", PATH, emulator).startswith(
        "429 throttle tier 20/5 seconds on POST"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (PATH, "POST /v1/email_campaigns/<id>/email_sharings"),
        ("/v1/link_channels/12345/links", "POST /v1/link_channels/<id>/links"),
        ("/v1/unknown", "POST /v1/unknown"),
    ],
)
def test_endpoints_name_ids_as_id(path, expected):
    assert drift.endpoint("POST", path) == expected


def test_a_body_difference_shows_the_bytes_around_where_they_differ():
    (found,) = drift.compare(
        answer(400, render_body(13000).replace(b"occured", b"occurred")),
        answer(400, render_body(13000)),
    )
    assert (found["emulator"], found["upstream"]) == (
        '...:"An error occured"}',
        '...:"An error occurred"}',
    )


# -- issue 13 follow-up: what the attacker and a new user found ---------------------------------
NO_ANSWER = answer(
    502,
    b'{"status":"bad_gateway"}',
    [("Content-Type", "application/json")],
    error="pisano-mock proxy: no answer from http://x: ConnectionRefusedError",
)


def test_a_pair_without_an_upstream_answer_is_not_drift():
    (found,) = drift.compare(NO_ANSWER, answer(200, OK))
    assert found["what"] == "no upstream answer"
    assert "ConnectionRefusedError" in found["text"]
    summary = drift.summarise(
        [pair(1, answer(200, OK), NO_ANSWER), pair(2, answer(200, OK), answer(200, OK))]
    )
    assert (summary["pairs"], summary["same"], summary["no_upstream_answer"]) == (2, 1, 1)
    assert summary["rules"] == [] and summary["differences"] == []
    assert drift.report_lines(summary) == [
        "every compared pair is the same (1 pair)",
        "1 pair had no upstream answer: not compared",
    ]
    assert not drift.any_drift(summary)


def test_unanswered_pairs_are_counted_beside_real_differences():
    missing = answer(400, render_body(13030))
    summary = drift.summarise(
        [pair(1, missing, NO_ANSWER), pair(2, missing, answer(401, render_body(13001)))]
    )
    lines = drift.report_lines(summary)
    assert lines[0].startswith("1 of 1 compared pairs differ")
    assert lines[-1] == "1 pair had no upstream answer: not compared"
    assert drift.any_drift(summary)


def test_each_example_carries_the_emulators_reason():
    emulator = answer(400, render_body(13030), reason="Authorization: absent")
    found = drift.compare(answer(401, render_body(13001)), emulator)
    assert {d["emulator_reason"] for d in found} == {"Authorization: absent"}
    summary = drift.summarise([pair(1, emulator, answer(401, render_body(13001)))])
    assert summary["rules"][0]["examples"][0]["emulator_reason"] == "Authorization: absent"
    assert "    the emulator's reason: Authorization: absent" in drift.report_lines(summary)


@pytest.mark.parametrize(
    ("code", "reason", "hinted"),
    [
        (13001, "Authorization: token tes****kn is unknown", True),
        (13002, "campaign_id: '735c' is unknown", True),
        (13013, "campaign_id: '735c' belongs to another account than 'acme'", True),
        (13002, "no route for POST /v1/x", False),
        (13030, "Authorization: absent", False),
    ],
)
def test_a_shadow_that_does_not_know_the_token_or_campaign_is_hinted(code, reason, hinted):
    emulator = answer(400, render_body(code), reason=reason)
    found = drift.compare(answer(200, OK), emulator)
    assert ("hint" in found[0]) is hinted
    summary = drift.summarise([pair(1, emulator, answer(200, OK))])
    said = any("--config" in line for line in drift.report_lines(summary))
    assert said is hinted


def test_a_shadow_hint_needs_upstream_to_have_accepted():
    emulator = answer(401, render_body(13001), reason="token unknown")
    found = drift.compare(answer(403, render_body(13013)), emulator)
    assert all("hint" not in d for d in found)


def test_a_429_on_both_sides_with_retry_after_on_one_only_differs():
    limited = answer(429, b"Retry later\n", [*TEXT, ("Retry-After", "60")])
    emulator = answer(429, b"Retry later\n", TEXT, throttle={"tier": "20/5 seconds"})
    (found,) = drift.compare(limited, emulator)
    assert found["what"] == "throttle"
    assert found["upstream"] == {"status": 429, "retry_after": "60"}
    assert found["emulator"] == {"status": 429, "retry_after": None, "tier": "20/5 seconds"}
    assert drift.compare(limited, answer(429, b"Retry later\n", limited["headers"])) == []


def test_a_200_body_names_every_path_that_differs_bounded():
    upstream = body_with(campaign_id="c2", count="1", extra=1)
    (found,) = drift.compare(answer(200, upstream), answer(200, OK))
    assert "$.campaign_id" in found["text"] and "$.count" in found["text"]
    assert "$.extra" in found["text"]
    theirs = orjson.dumps({f"k{i}": i + 1 for i in range(50)})
    mine = orjson.dumps({f"k{i}": -i - 1 for i in range(50)})
    (found,) = drift.compare(answer(200, theirs), answer(200, mine))
    assert found["text"].count("$.k") == drift.PATHS_NAMED
    assert found["text"].endswith(f"and {50 - drift.PATHS_NAMED} more")


def test_a_repeated_json_key_differs():
    repeated = OK[:-1] + b',"status":"ok"}'
    (found,) = drift.compare(answer(200, repeated), answer(200, OK))
    assert found["what"] == "body"
    assert "$.status: repeated upstream" in found["text"]


def test_a_body_difference_in_a_rule_line_is_its_text_not_escaped_excerpts():
    upstream = answer(200, body_with(sharings=None, sharing_ids={"a@example.com": 7}))
    summary = drift.summarise([pair(1, answer(200, OK), upstream)])
    said = "$.sharings: upstream has $.sharing_ids in its place"
    assert summary["rules"][0]["whats"]["body"]["text"] == said
    assert f"body {said}" in drift.report_lines(summary)[1]
    assert all("\\" not in line for line in drift.report_lines(summary))


def test_body_excerpts_are_escaped_once_in_json_and_in_text():
    upstream = answer(400, render_body(13000).replace(b"occured", b"occurred"))
    summary = drift.summarise([pair(1, answer(400, render_body(13000)), upstream)])
    shown = summary["rules"][0]["whats"]["body"]
    assert shown["upstream"] == '...:"An error occurred"}'  # the bytes, not a JSON text of them
    assert "\\\\" not in orjson.dumps(summary).decode()  # never a backslash escaped twice
    assert (
        'body "...:\\"An error occured\\"}" → "...:\\"An error occurred\\"}"'
        in (drift.report_lines(summary)[1])
    )


def test_a_deeply_nested_200_body_is_compared_by_its_bytes_never_a_crash():
    deep = b"[" * 1000 + b"]" * 1000
    (found,) = drift.compare(answer(200, deep[:1000] + b"1" + deep[1000:]), answer(200, deep))
    assert found["text"] == "bytes differ from byte 1000"
