"""`/__mock/outbox`, `<id>.eml` and `flush` over HTTP, and the request that fills the outbox."""

from __future__ import annotations

import email
from email import policy
from urllib.parse import parse_qs, urlsplit

import pytest

from mockserver.links import decode_responses

CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
BROKEN = "00000000-0000-4000-8000-0000000000b1"


def outbox(api, query: str = "") -> dict:
    answer = api.request("GET", f"/__mock/outbox{query}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_three_recipients_are_three_captured_messages_whose_links_decode(api):
    emails = ["a@example.com", "b@example.com", "c@example.com"]
    responses = {"nps": 9, "comment": "çok iyi"}
    body = {
        "emails": emails,
        "custom_attributes": {"a@example.com": {"name": "Ayşe"}},
        "built_in_responses": responses,
    }
    answer = api.post(body)
    assert answer.status_code == 200
    messages = outbox(api)["messages"]
    assert [m["id"] for m in messages] == list(answer.json()["sharings"].values())
    assert [m["to"] for m in messages] == emails
    assert {m["status"] for m in messages} == {"captured"}
    assert {(m["subject"], m["campaign_id"], m["provider"]) for m in messages} == {
        ("How was your visit?", CAMPAIGN, "outbox")
    }
    assert messages[0]["text"].startswith("Hello Ayşe,")
    for message in messages:
        sent = parse_qs(urlsplit(message["link"]).query)["responses"][0]
        assert decode_responses(sent) == [
            {"question_key": "nps", "body": 9},
            {"question_key": "comment", "body": "çok iyi"},
        ]
        assert message["link"] in message["text"]


def test_the_page_keys_are_spec_1_7s(api):
    api.post({"emails": ["a@example.com"]})
    (message,) = outbox(api)["messages"]
    assert list(message) == [
        "id", "sharing_id", "campaign_id", "channel", "provider", "from", "to", "subject",
        "text", "html", "link", "status", "attempts", "last_error", "created_at", "sent_at",
    ]  # fmt: skip
    assert (message["attempts"], message["last_error"], message["sent_at"]) == (0, None, None)


def test_filters_since_and_limit(api):
    api.post({"emails": ["a@example.com", "b@example.com", "c@example.com"]})
    first = outbox(api)["messages"][0]["id"]
    assert [m["to"] for m in outbox(api, "?to=B@example.com")["messages"]] == ["b@example.com"]
    page = outbox(api, f"?since={first}&limit=1")
    assert ([m["id"] for m in page["messages"]], page["more"]) == ([first + 1], True)
    assert outbox(api, "?status=queued")["messages"] == []
    assert outbox(api, "?campaign_id=nope")["messages"] == []
    assert len(outbox(api, "?channel=email&status=captured")["messages"]) == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=lost", "status"),
        ("?channel=fax", "channel"),
        ("?limit=0", "limit"),
        ("?since=x", "since"),
        ("?colour=red", "colour"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(api, query, field):
    answer = api.request("GET", f"/__mock/outbox{query}")
    assert answer.status_code == 400
    assert answer.json()["status"] == "bad_request"
    assert answer.json()["reason"].startswith(f"query: {field}: ")


def test_the_eml_is_the_email_smtp_carries(api):
    api.post({"emails": ["a@example.com"]})
    (message,) = outbox(api)["messages"]
    answer = api.request("GET", f"/__mock/outbox/{message['id']}.eml")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "message/rfc822"
    parsed = email.message_from_bytes(answer.content, policy=policy.default)
    assert (parsed["To"], parsed["Subject"]) == ("a@example.com", "How was your visit?")
    assert message["link"] in parsed.get_body(("plain",)).get_content()


def test_an_eml_not_held_is_a_404(api):
    answer = api.request("GET", "/__mock/outbox/424242.eml")
    assert answer.status_code == 404
    assert answer.json() == {
        "status": "not_found",
        "reason": "outbox: no message 424242 (never sent, dropped or reset)",
    }


def test_a_template_that_fails_shows_failed_and_the_api_answer_is_unaffected(api, pisano_mock):
    campaign = {"account": "acme", "html_template": "<p>\n{{ missing }}</p>"}
    pisano_mock.add_fixtures({"campaigns": {BROKEN: campaign}})
    answer = api.post(
        {"emails": ["a@example.com"]}, path=f"/v1/email_campaigns/{BROKEN}/email_sharings"
    )
    assert answer.status_code == 200
    (message,) = outbox(api)["messages"]
    assert (message["status"], message["text"], message["to"]) == ("failed", None, "a@example.com")
    assert message["last_error"] == "template: html_template line 2: 'missing' is undefined"
    eml = api.request("GET", f"/__mock/outbox/{message['id']}.eml")
    assert eml.status_code == 404
    assert "'missing' is undefined" in eml.json()["reason"]


def test_a_template_syntax_error_is_refused_by_the_fixtures(api):
    fixture = {"campaigns": {BROKEN: {"account": "acme", "text_template": "{% for %}"}}}
    answer = api.request("POST", "/__mock/fixtures", json=fixture)
    assert answer.status_code == 400
    reason = answer.json()["reason"]
    assert reason.startswith(f"body: campaigns.{BROKEN}.")  # admin.py's naming of a dict's field
    assert "text_template: line 1: Expected an expression" in reason


def test_flush_with_nothing_pending_answers_the_counts(api):
    api.post({"emails": ["a@example.com", "b@example.com"]})
    answer = api.request("POST", "/__mock/outbox/flush", json={"timeout": 1})
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "statuses": {"queued": 0, "sending": 0, "sent": 0, "failed": 0, "captured": 2},
        "pending": 0,
    }
    assert api.request("POST", "/__mock/outbox/flush").json()["pending"] == 0  # no body: default


@pytest.mark.parametrize("timeout", [-1, 301, "5", True])
def test_a_bad_flush_timeout_is_a_400(api, timeout):
    answer = api.request("POST", "/__mock/outbox/flush", json={"timeout": timeout})
    assert answer.status_code == 400
    assert answer.json()["reason"].startswith("body: timeout: ")


def test_reset_empties_the_outbox(api):
    api.post({"emails": ["a@example.com"]})
    assert api.request("POST", "/__mock/reset").status_code == 200
    assert outbox(api)["messages"] == []


def test_a_drop_after_fault_still_holds_the_messages(api, pisano_mock):
    pisano_mock.add_fault(match={"campaign_id": CAMPAIGN}, drop="after")
    with pytest.raises(Exception):  # noqa: B017 (the connection is closed: any client error)
        api.post({"emails": ["a@example.com", "b@example.com"]})
    assert [m["to"] for m in outbox(api)["messages"]] == ["a@example.com", "b@example.com"]


def test_the_outbox_bounds_drop_the_oldest_captured_messages(server_with):
    from mockserver.settings import Bounds

    with server_with(bounds=Bounds(outbox_max_messages=2)) as (api, _):
        api.post({"emails": ["a@example.com", "b@example.com"]})
        api.post({"emails": ["c@example.com"]})
        page = outbox(api)
    assert ([m["to"] for m in page["messages"]], page["dropped"]) == (
        ["b@example.com", "c@example.com"],
        1,
    )
