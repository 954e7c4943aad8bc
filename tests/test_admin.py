"""The admin API of SPEC 2.2 (health, reset, requests, sharings, fixtures) and /openapi.json."""

from __future__ import annotations

import pytest

from mockserver.settings import Bounds
from tests.conftest import SHARINGS_PATH


def send(api, *emails: str):
    response = api.post({"emails": list(emails)})
    assert response.status_code == 200, response.text
    return response


def test_health_counts_entries(api, pisano_mock):
    send(api, "a@example.com", "b@example.com")
    health = pisano_mock.call("GET", "/__mock/health")
    assert health["status"] == "ok"
    assert (health["requests"], health["sharings"]) == (1, 2)


def test_admin_calls_are_not_journaled(api, pisano_mock):
    for _ in range(3):
        pisano_mock.call("GET", "/__mock/health")
    assert pisano_mock.requests() == []


def test_reset_empties_journal_and_sharings(api, pisano_mock):
    send(api, "a@example.com")
    assert pisano_mock.call("POST", "/__mock/reset") == {"status": "ok"}
    assert pisano_mock.requests() == [] and pisano_mock.sharings() == []


def test_requests_since_cursor_and_limit(api, pisano_mock):
    for i in range(5):
        send(api, f"r{i}@example.com")
    everything = pisano_mock.call("GET", "/__mock/requests")["requests"]
    ids = [e["id"] for e in everything]
    page = pisano_mock.call("GET", f"/__mock/requests?since={ids[1]}&limit=2")
    assert [e["id"] for e in page["requests"]] == ids[2:4]
    assert page["more"] is True and page["dropped"] == 0
    last = pisano_mock.call("GET", f"/__mock/requests?since={ids[-1]}")
    assert last["requests"] == [] and last["more"] is False


def test_journal_entry_shape_and_masked_token(api, pisano_mock):
    send(api, "a@example.com")
    [entry] = pisano_mock.requests()
    expected_keys = {"id", "time", "method", "path", "headers", "body", "status", "code"}
    assert expected_keys | {"reason", "warnings"} <= set(entry)
    assert entry["headers"]["Authorization"] == "Token token=tes****ken"
    assert "test-token" not in str(entry)
    assert entry["body"] == {"emails": ["a@example.com"]}
    assert (entry["method"], entry["path"], entry["status"], entry["code"]) == (
        "POST",
        SHARINGS_PATH,
        200,
        None,
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [("since=-1", "since"), ("limit=0", "limit"), ("limit=x", "limit"), ("since=", "since")],
)
@pytest.mark.parametrize("path", ["/__mock/requests", "/__mock/sharings"])
def test_bad_paging_is_400_naming_the_field(pisano_mock, path, query, field):
    import requests

    response = requests.get(f"{pisano_mock.base_url}{path}?{query}")
    assert response.status_code == 400
    assert response.json()["status"] == "bad_request"
    assert response.json()["reason"].startswith(f"query: {field}:")


def test_sharings_filters(api, pisano_mock):
    send(api, "a@example.com", "B@example.com")
    other = "00000000-0000-4000-8000-0000000000aa"
    pisano_mock.add_fixtures({"campaigns": {other: {"account": "acme"}}})
    api.post({"emails": ["c@example.com"]}, path=f"/v1/email_campaigns/{other}/email_sharings")
    assert [s["email"] for s in pisano_mock.sharings(campaign_id=other)] == ["c@example.com"]
    assert [s["email"] for s in pisano_mock.sharings(email="b@EXAMPLE.com")] == ["B@example.com"]
    assert len(pisano_mock.sharings()) == 3


def test_fixtures_add_accounts_tokens_and_campaigns(api, pisano_mock):
    fixture = {
        "accounts": {"initech": {"customer_schema": {"Tier": "integer"}}},
        "tokens": {"initech-token": {"account": "initech"}},
        "campaigns": {"c-1": {"account": "initech", "subject": "Hi"}},
    }
    added = pisano_mock.add_fixtures(fixture)
    assert added["status"] == "ok"
    # What this call added, not the totals held afterwards (the default fixture has 3 accounts).
    assert added["added"] == {"accounts": 1, "tokens": 1, "campaigns": 1, "link_channels": 0}
    headers = {"Authorization": "Token token=initech-token"}
    path = "/v1/email_campaigns/c-1/email_sharings"
    ok = api.post(
        {"emails": ["x@example.com"], "built_in_responses": {"Tier": 2}}, path=path, headers=headers
    )
    assert ok.status_code == 200
    typed = api.post(
        {"emails": ["y@example.com"], "built_in_responses": {"Tier": "2"}},
        path=path,
        headers=headers,
    )
    assert typed.json()["code"] == 13028
    # The new token is not acme's: acme's campaign is another account's.
    assert api.post({"emails": ["z@example.com"]}, headers=headers).json()["code"] == 13013


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ({"tokens": {"t": {"account": "nobody"}}}, "fixtures: token 't': unknown account 'nobody'"),
        (
            {"campaigns": {"c": {"account": "acme", "colour": "red"}}},
            "body: campaigns.c.value.colour: Unknown field.",
        ),
        (
            {"accounts": {"a": {"customer_schema": {"X": "uuid"}}}},
            "body: accounts.a.value.customer_schema.X.value: Must be one of:",
        ),
    ],
)
def test_bad_fixtures_are_refused_naming_the_field(pisano_mock, fixture, reason):
    import requests

    response = requests.post(f"{pisano_mock.base_url}/__mock/fixtures", json=fixture)
    assert response.status_code == 400
    assert response.json()["status"] == "bad_request"
    assert response.json()["reason"].startswith(reason)


@pytest.mark.parametrize("flag", [0, 1, "yes", "true", None])
def test_fixture_booleans_are_json_booleans(pisano_mock, flag):
    import requests

    fixture = {"accounts": {"a": {"locked": flag}}}
    response = requests.post(f"{pisano_mock.base_url}/__mock/fixtures", json=fixture)
    assert response.status_code == 400
    assert "locked" in response.json()["reason"]


def test_fixtures_answer_says_what_it_added(pisano_mock):
    added = pisano_mock.add_fixtures({"tokens": {"t-1": {"account": "acme"}}})
    assert added["status"] == "ok" and isinstance(added["added"], dict)


@pytest.mark.parametrize("path", ["/__mock/fixtures", "/__mock/clock", "/__mock/faults"])
def test_an_admin_write_that_takes_a_body_needs_one(pisano_mock, path):
    import requests

    response = requests.post(f"{pisano_mock.base_url}{path}")
    assert response.status_code == 400
    assert response.json()["reason"] == "body: absent; a JSON object is expected"


def test_fixtures_body_not_json_is_400(pisano_mock):
    import requests

    response = requests.post(
        f"{pisano_mock.base_url}/__mock/fixtures",
        data=b"[",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["reason"].startswith("body: not JSON")


def test_journal_is_bounded_by_entries_and_counts_the_dropped(server_with):
    with server_with(bounds=Bounds(journal_max_entries=3)) as (api, mock):
        for i in range(5):
            send(api, f"r{i}@example.com")
        page = mock.call("GET", "/__mock/requests")
        assert [e["body"]["emails"][0] for e in page["requests"]] == [
            f"r{i}@example.com" for i in (2, 3, 4)
        ]
        assert page["dropped"] == 2
        assert mock.call("GET", "/__mock/health")["requests_dropped"] == 2
        # The cursor still works across what was dropped.
        assert len(mock.call("GET", "/__mock/requests?since=1")["requests"]) == 3


def test_sharings_are_bounded_by_recipients_dropping_the_oldest(server_with):
    with server_with(bounds=Bounds(sharings_max_recipients=4)) as (api, mock):
        send(api, "a@example.com", "b@example.com", "c@example.com")
        send(api, "d@example.com", "e@example.com")
        page = mock.call("GET", "/__mock/sharings")
        assert [s["email"] for s in page["sharings"]] == [
            "b@example.com",
            "c@example.com",
            "d@example.com",
            "e@example.com",
        ]
        assert page["dropped"] == 1
        assert mock.call("GET", "/__mock/health")["sharings_dropped"] == 1


def test_sharings_are_bounded_by_bytes(server_with):
    with server_with(bounds=Bounds(sharings_max_bytes=20_000)) as (api, mock):
        for batch in range(4):
            send(api, *[f"r{batch}-{i}@example.com" for i in range(300)])
        health = mock.call("GET", "/__mock/health")
        assert health["sharings_dropped"] > 0
        assert health["sharings"] + health["sharings_dropped"] == 1200
        kept = mock.sharings()
        assert kept[-1]["email"] == "r3-299@example.com"  # the newest are the ones kept


def test_openapi_document_is_generated_from_the_schemas(pisano_mock):
    document = pisano_mock.call("GET", "/openapi.json")
    assert document["openapi"].startswith("3.")
    assert "/v1/email_campaigns/{campaign_id}/email_sharings" in document["paths"]
    for path in (
        "/__mock/health",
        "/__mock/reset",
        "/__mock/requests",
        "/__mock/sharings",
        "/__mock/fixtures",
    ):
        assert path in document["paths"]
    body = document["components"]["schemas"]["EmailSharing"]
    assert body["required"] == ["emails"]
    assert body["properties"]["emails"]["items"]["format"] == "email"
    assert body["properties"]["emails"]["minItems"] == 1


def test_openapi_documents_faults_and_clock_from_their_schemas(pisano_mock):
    document = pisano_mock.call("GET", "/openapi.json")
    assert set(document["paths"]["/__mock/faults"]) == {"get", "post", "delete"}
    fault = document["components"]["schemas"]["Fault"]["properties"]
    assert {"match", "times", "error", "status", "retry_after", "delay_ms", "drop"} <= set(fault)
    assert fault["drop"]["enum"] == ["before", "after"]


def test_a_body_over_the_bound_is_13000_and_journaled(server_with):
    with server_with(bounds=Bounds(max_body_bytes=1000)) as (api, mock):
        emails = [f"r{i}@example.com" for i in range(100)]
        response = api.post({"emails": emails})
        assert (response.status_code, response.json()["code"]) == (413, 13000)
        assert "max_body_bytes" in response.headers["X-Pisano-Mock-Reason"]
        [entry] = mock.requests()
        assert (entry["status"], entry["code"], entry["body"]) == (413, 13000, None)
        assert api.post({"emails": emails[:3]}).status_code == 200


def test_plugin_fixture_drives_clock_faults_and_throttle(api, pisano_mock):
    assert pisano_mock.set_clock(1_000_000_000) == {"now": 1_000_000_000, "rate": 0}
    assert pisano_mock.advance_clock(5)["now"] == 1_000_000_005
    assert pisano_mock.clock()["rate"] == 0
    fault = pisano_mock.add_fault(status=503, times=1)
    assert api.post({"emails": ["a@example.com"]}).status_code == 503
    assert fault["id"] and pisano_mock.call("GET", "/__mock/faults")["faults"] == []
    pisano_mock.add_fault(status=503)
    pisano_mock.clear_faults()
    assert api.post({"emails": ["a@example.com"]}).status_code == 200
    assert pisano_mock.throttle()["counters"][0]["count"] == 1
    assert pisano_mock.email_sharings_url.endswith(f"/{pisano_mock.campaign_id}/email_sharings")


# -- secrets are never shown in clear (SPEC 2.6) -------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("abcdefghij", "abc****hij"),
        ("test-token", "tes****ken"),
        ("a-much-longer-secret-value", "a-m****lue"),
        ("abcdefghi", "****"),
        ("abcdef", "****"),
        ("a", "****"),
        ("", "****"),
    ],
)
def test_mask_token_shows_three_and_three_of_long_secrets_only(secret, shown):
    from mockserver.auth import mask_token

    assert mask_token(secret) == shown


def test_journal_masks_cookie_api_key_and_configured_headers(server_with):
    from mockserver.settings import Access

    access = Access(mask_headers=("Cookie", "X-Api-Key", "x-partner-secret"))
    with server_with(access=access) as (api, mock):
        headers = {
            "Cookie": "session=0123456789abcdef",
            "X-Api-Key": "key-0123456789",
            "X-Partner-Secret": "short",
            "X-Pisano-Mock-Admin-Token": "admin-0123456789",
            "X-Plain": "kept as sent",
        }
        api.post({"emails": ["a@example.com"]}, headers=headers)
        [entry] = mock.requests()
        shown = entry["headers"]
        assert shown["Cookie"] == "ses****def"
        assert shown["X-Api-Key"] == "key****789"
        assert shown["X-Partner-Secret"] == "****"
        assert shown["X-Pisano-Mock-Admin-Token"] == "adm****789"
        assert shown["X-Plain"] == "kept as sent"
        for secret in list(headers.values())[:4]:
            assert secret not in str(entry)


@pytest.mark.parametrize(
    ("authorization", "shown"),
    [
        ("Token token=abcdef", "Token token=****"),
        ("Bearer test-token", "Bearer tes****ken"),
        ("Basic dXNlcjpwYXNzd29yZA==", "Basic dXN****A=="),
        ("Basic short", "Basic ****"),
    ],
)
def test_journal_masks_every_authorization_form(api, pisano_mock, authorization, shown):
    api.post({"emails": ["a@example.com"]}, headers={"Authorization": authorization})
    [entry] = pisano_mock.requests()
    assert entry["headers"]["Authorization"] == shown


def test_a_short_unknown_token_is_not_shown_in_the_reason(api):
    response = api.post({"emails": ["a@example.com"]}, headers={"Authorization": "Bearer abcdef"})
    assert response.json()["code"] == 13001
    assert "abcdef" not in response.headers["X-Pisano-Mock-Reason"]
    assert "****" in response.headers["X-Pisano-Mock-Reason"]


def test_throttle_state_masks_the_tokens_it_counts(api, pisano_mock):
    api.post({"emails": ["a@example.com"]})
    api.post({"emails": ["a@example.com"]}, headers={"Authorization": "Bearer abcdef"})
    keys = {row["key"] for row in pisano_mock.throttle()["counters"]}
    assert keys == {"token:tes****ken", "token:****"}


@pytest.mark.parametrize(
    ("authorization", "shown"),
    [
        ("sk_live_0123456789abcdef extra", "sk_****tra"),  # an unknown scheme: all masked
        ("SECRET Weird thing here", "SEC****ere"),
        ("two words", "****"),
        ("sk_live_0123456789abcdef", "sk_****def"),  # one long word (not an accepted form here)
        ("", "****"),
        ("bearer sk_live_0123456789abcdef extra", "bearer sk_****tra"),  # a known scheme, any case
        ("DIGEST username=sk_live_0123456789", "DIGEST use****789"),
        ("Token sk_live_0123456789abcdef extra", "Token sk_****tra"),
    ],
)
def test_an_authorization_of_no_accepted_form_keeps_only_a_known_scheme(authorization, shown):
    from mockserver.auth import mask_authorization

    assert mask_authorization(authorization, ("token", "bearer")) == shown


@pytest.mark.parametrize("name", ["Authorization", "Proxy-Authorization"])
def test_journal_never_shows_an_unknown_authorization_in_clear(api, pisano_mock, name):
    secret = "sk_live_0123456789abcdef"
    api.post({"emails": ["a@example.com"]}, headers={name: f"{secret} extra"})
    [entry] = pisano_mock.requests()
    assert entry["headers"][name] == "sk_****tra"
    assert secret not in str(entry)


def test_journal_masks_proxy_authorization_like_authorization(api, pisano_mock):
    api.post({"emails": ["a@example.com"]}, headers={"Proxy-Authorization": "Basic SECRETPROXY"})
    [entry] = pisano_mock.requests()
    assert entry["headers"]["Proxy-Authorization"] == "Basic SEC****OXY"


def throttle_rows(pisano_mock, query: str = "") -> dict:
    return pisano_mock.call("GET", f"/__mock/throttle{query}")


def test_throttle_state_tells_apart_keys_that_mask_alike(api, pisano_mock):
    secrets = ["Weird-000000-xxx", "Weird-111111-xxx"]  # both shown as Wei****xxx
    for secret in secrets:
        api.post({"emails": ["a@example.com"]}, headers={"Authorization": f"Bearer {secret}"})
    rows = throttle_rows(pisano_mock)["counters"]
    keys = {(row["key"], row["key_id"]) for row in rows}
    assert {key for key, _ in keys} == {"token:Wei****xxx"}
    assert len(keys) == 2 and all(len(key_id) == 12 for _, key_id in keys)
    assert not any(secret in str(rows) for secret in secrets)
    assert throttle_rows(pisano_mock)["counters"] == rows  # stable from one listing to the next


def test_throttle_state_pages_by_key_id_with_limit_and_more(api, pisano_mock):
    for i in range(5):
        api.post({"emails": ["a@example.com"]}, headers={"Authorization": f"Bearer key-{i:06d}"})
    seen: list[str] = []
    since, more = "", True
    while more:
        page = throttle_rows(pisano_mock, f"?since={since}&limit=2")
        ids = list(dict.fromkeys(row["key_id"] for row in page["counters"]))
        assert len(ids) <= 2 and ids == sorted(ids) and all(i > since for i in ids)
        seen += ids
        since, more = ids[-1] if ids else since, page["more"]
    everything = throttle_rows(pisano_mock)
    assert everything["more"] is False
    assert seen == sorted({row["key_id"] for row in everything["counters"]})
    assert len(seen) == 5


@pytest.mark.parametrize(("query", "field"), [("limit=0", "limit"), ("limit=x", "limit")])
def test_bad_throttle_paging_is_400_naming_the_field(pisano_mock, query, field):
    import requests

    response = requests.get(f"{pisano_mock.base_url}/__mock/throttle?{query}")
    assert response.status_code == 400
    assert response.json()["reason"].startswith(f"query: {field}:")
