"""`GET /s/<token>` (SPEC 1.7): the page a survey link lands on; 13002 for a token not ours."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from mockserver.catalogue import render_body
from mockserver.settings import Bounds, ThrottleSettings

NOT_FOUND = render_body(13002)  # Pisano's bytes, from the catalogue the seed fixes
SCHEMA_FIXTURE = {
    "accounts": {"acme": {"customer_schema": {"NPS": "integer", "Channel": "option"}}}
}


def share(api, pisano_mock, body) -> list[dict]:
    answer = api.post(body)
    assert answer.status_code == 200, answer.headers.get("X-Pisano-Mock-Reason")
    return pisano_mock.sharings()


def page(api, link: str):
    return api.session.get(link, timeout=30)


def test_the_page_names_campaign_recipient_and_prefilled_answers(api, pisano_mock):
    pisano_mock.add_fixtures(SCHEMA_FIXTURE)
    body = {
        "emails": ["ayse@example.com"],
        "custom_attributes": {"ayse@example.com": {"name": "Ayşe Yılmaz"}},
        "built_in_responses": {"NPS": 9, "Channel": "web", "Free": "9"},
    }
    (sharing,) = share(api, pisano_mock, body)
    answer = page(api, sharing["link"])
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    html = answer.text
    for text in (sharing["campaign_id"], "ayse@example.com", "Ayşe Yılmaz"):
        assert text in html
    rows = [
        "<td>NPS</td><td>body</td>\n<td><code>9</code></td><td>integer</td>",
        "<td>Channel</td><td>option_key</td>\n<td><code>&#34;web&#34;</code></td><td>string</td>",
        "<td>Free</td><td>body</td>\n<td><code>&#34;9&#34;</code></td><td>string</td>",
    ]
    positions = [html.index(row) for row in rows]
    assert positions == sorted(positions)  # in the link's order


def test_without_responses_the_page_says_no_prefilled_answers(api, pisano_mock):
    (sharing,) = share(api, pisano_mock, {"emails": ["a@example.com"]})
    answer = page(api, sharing["link"])
    assert answer.status_code == 200
    assert "No prefilled answers." in answer.text


def test_everything_shown_is_escaped(api, pisano_mock):
    evil = "<script>alert(1)</script>"
    body = {
        "emails": ["a@example.com"],
        "custom_attributes": {"a@example.com": {"name": evil}},
        "built_in_responses": {evil: evil},
    }
    (sharing,) = share(api, pisano_mock, body)
    html = page(api, sharing["link"]).text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_page_loads_nothing_from_outside(api, pisano_mock):
    (sharing,) = share(api, pisano_mock, {"emails": ["a@example.com"]})
    answer = page(api, sharing["link"])
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert "http" not in answer.text.replace(pisano_mock.base_url, "")  # no link to elsewhere
    assert "src=" not in answer.text


def encoded(value: object) -> str:
    return quote(base64.b64encode(json.dumps(value).encode()).decode(), safe="")


@pytest.mark.parametrize(
    "responses",
    [
        "%%%",
        "bm90IGpzb24=",  # "not json"
        "ab",  # base64 with its padding missing
        encoded({"question_key": "a", "body": 1}),  # not an array
        encoded([{"question_key": "a"}]),
        encoded([{"question_key": "a", "body": 1, "option_key": 2}]),
        encoded([{"question_key": 3, "body": 1}]),
        encoded(["x"]),
        "%C5%9F",  # not ASCII
    ],
)
def test_a_bad_responses_is_a_400_page_never_a_500(api, pisano_mock, responses):
    (sharing,) = share(api, pisano_mock, {"emails": ["a@example.com"]})
    answer = page(api, f"{sharing['link']}?responses={responses}")
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "could not be decoded" in answer.text


@pytest.mark.parametrize(
    "token",
    [
        "x",
        "A" * 32,  # the right length, a MAC that is not
        "%%%%",
        "AAAAAAAAAAF98gZ6JMQDtSDxpX57UQl2",
    ],
)
def test_a_token_not_ours_is_13002(api, token):
    answer = api.request("GET", f"/s/{token}")
    assert answer.status_code == 404
    assert answer.content == NOT_FOUND
    assert "token" in answer.headers["X-Pisano-Mock-Reason"]


def test_a_token_changed_in_one_character_is_13002(api, pisano_mock):
    (sharing,) = share(api, pisano_mock, {"emails": ["a@example.com"]})
    link = sharing["link"]
    swapped = link[:-1] + ("A" if link[-1] != "A" else "B")
    assert page(api, swapped).content == NOT_FOUND
    assert page(api, link).status_code == 200


def test_a_sharing_dropped_by_the_bounds_is_13002(server_with):
    with server_with(bounds=Bounds(sharings_max_recipients=2)) as (api, pisano_mock):
        emails = ["a@example.com", "b@example.com", "c@example.com"]
        assert api.post({"emails": emails[:1]}).status_code == 200
        (first,) = pisano_mock.sharings()
        assert page(api, first["link"]).status_code == 200
        assert api.post({"emails": emails[1:]}).status_code == 200
        answer = page(api, first["link"])
        assert answer.status_code == 404 and answer.content == NOT_FOUND
        assert "not held" in answer.headers["X-Pisano-Mock-Reason"]
        assert [page(api, s["link"]).status_code for s in pisano_mock.sharings()] == [200, 200]


def test_a_reset_sharing_is_13002(api, pisano_mock):
    (sharing,) = share(api, pisano_mock, {"emails": ["a@example.com"]})
    pisano_mock.reset()
    assert page(api, sharing["link"]).content == NOT_FOUND


def test_the_page_is_neither_journaled_nor_throttled(server_with):
    one_per_window = ThrottleSettings(tiers="2/5second")
    with server_with(throttle=one_per_window) as (api, mock):
        (sharing,) = share(api, mock, {"emails": ["a@example.com"]})
        journaled = len(mock.requests())
        statuses = {page(api, sharing["link"]).status_code for _ in range(5)}
        assert statuses == {200}
        assert api.request("GET", "/s/not-ours").status_code == 404
        assert len(mock.requests()) == journaled
        assert api.post({"emails": ["b@example.com"]}).status_code == 200  # the page counted 0
        assert api.post({"emails": ["c@example.com"]}).status_code == 429  # the tier: 2 / 5 s


@pytest.mark.parametrize("storage", ["redis"])
def test_the_page_on_redis(server_with, request, storage):
    redis_url = request.getfixturevalue("redis_url")
    with server_with(storage=redis_url) as (api, pisano_mock):
        body = {"emails": ["a@example.com", "b@example.com"], "built_in_responses": {"NPS": 7}}
        sharings = share(api, pisano_mock, body)
        for sharing in sharings:
            answer = page(api, sharing["link"])
            assert answer.status_code == 200
            assert sharing["email"] in answer.text and "<code>7</code>" in answer.text
