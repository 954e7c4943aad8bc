"""Short links (SPEC 1.7): `<public_url>/l/<code>`, a code read back without a table, and
`GET /l/<code>` redirecting (302) to the sharing's survey link; anything not ours is 13002."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from contracts.pytest_plugin import PisanoMock
from mockserver.app import create_app
from mockserver.catalogue import render_body
from mockserver.context import EXTENSION_KEY
from mockserver.links import BASE62, SHORT_MAC_CHARS, LinkMaker, to_base62
from mockserver.server import LiveServer
from mockserver.settings import ThrottleSettings, load_settings
from tests.conftest import Api

NOT_FOUND = render_body(13002)
LINKS = LinkMaker("http://mock.test", b"k" * 32)
SCHEMA_FIXTURE = {"accounts": {"acme": {"customer_schema": {"Channel": "option"}}}}


# -- the code -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sharing_id", [0, 1, 61, 62, 5000, 123_456_789, 2**63 - 1, 2**64 - 1])
def test_a_code_reads_back_as_its_sharing(sharing_id):
    code = LINKS.short_code(sharing_id)
    assert LINKS.short_link(sharing_id) == f"http://mock.test/l/{code}"
    assert LINKS.short_sharing_id(code) == sharing_id
    assert all(char in BASE62 for char in code)


def test_a_code_is_short():
    assert len(LINKS.short_code(999_999)) == 4 + SHORT_MAC_CHARS  # 62**4 > 10**6


def test_another_secret_reads_no_code_of_ours():
    other = LinkMaker("http://mock.test", b"j" * 32)
    codes = [LINKS.short_code(n) for n in range(1, 200)]
    assert [other.short_sharing_id(code) for code in codes] == [None] * len(codes)


def test_a_code_changed_in_any_character_is_not_ours():
    code = LINKS.short_code(4242)
    for at in range(len(code)):
        swapped = BASE62[(BASE62.index(code[at]) + 1) % 62]
        assert LINKS.short_sharing_id(code[:at] + swapped + code[at + 1 :]) is None


def test_an_id_with_a_leading_zero_is_not_a_second_code_for_the_sharing():
    code = LINKS.short_code(77)
    assert LINKS.short_sharing_id("0" + code) is None


def test_a_token_is_not_a_short_code():
    token = LINKS.token(5)
    mac = LINKS.short_code(5)[-SHORT_MAC_CHARS:]
    assert token[-SHORT_MAC_CHARS:] != mac  # a separate MAC (domain-separated), not a token's tail


@pytest.mark.parametrize(
    "code",
    ["", "x", "0" * SHORT_MAC_CHARS, "1" + "A" * SHORT_MAC_CHARS, "ü" * 12, "-_" * 6, "z" * 40],
)
def test_a_malformed_code_is_not_ours(code):
    assert LINKS.short_sharing_id(code) is None


def test_an_id_beyond_eight_bytes_is_not_ours():
    huge = 2**64
    assert LINKS.short_sharing_id(to_base62(huge) + "A" * SHORT_MAC_CHARS) is None


# -- GET /l/<code> ------------------------------------------------------------------------------


@contextmanager
def serving(**changes: Any) -> Iterator[tuple[Api, PisanoMock, LinkMaker]]:
    """A live server, and its LinkMaker (its secret is the store's: a test cannot guess it)."""
    app = create_app(load_settings().with_changes(**changes))
    with LiveServer(app) as server:
        yield Api(server.base_url), PisanoMock(server.base_url), app.extensions[EXTENSION_KEY].links


@pytest.fixture
def served() -> Iterator[tuple[Api, PisanoMock, LinkMaker]]:
    with serving() as parts:
        yield parts


def shared(api: Api, pisano_mock: PisanoMock, body: dict[str, Any]) -> list[dict[str, Any]]:
    answer = api.post(body)
    assert answer.status_code == 200, answer.headers.get("X-Pisano-Mock-Reason")
    return pisano_mock.sharings()


def follow(api: Api, url: str) -> requests.Response:
    return api.session.get(url, allow_redirects=False, timeout=30)


def test_a_short_link_redirects_to_the_survey_link_with_its_responses(served):
    api, pisano_mock, links = served
    pisano_mock.add_fixtures(SCHEMA_FIXTURE)
    body = {"emails": ["a@example.com", "b@example.com"], "built_in_responses": {"Channel": "web"}}
    for sharing in shared(api, pisano_mock, body):
        assert links.short_link(sharing["id"]).startswith(f"{api.base_url}/l/")
        answer = follow(api, links.short_link(sharing["id"]))
        assert answer.status_code == 302
        assert answer.headers["Location"] == sharing["link"]
        assert "?responses=" in sharing["link"]
        assert follow(api, answer.headers["Location"]).status_code == 200  # the survey page


@pytest.mark.parametrize("code", ["x", "1AAAAAAAA", "0" * 9, "%00", "a.b", "A" * 300])
def test_a_code_not_ours_is_13002(api, code):
    answer = api.request("GET", f"/l/{code}", allow_redirects=False)
    assert answer.status_code == 404
    assert answer.content == NOT_FOUND
    assert "short link" in answer.headers["X-Pisano-Mock-Reason"]


def test_a_forged_code_for_a_held_sharing_is_13002(served):
    api, pisano_mock, links = served
    (sharing,) = shared(api, pisano_mock, {"emails": ["a@example.com"]})
    good = links.short_link(sharing["id"])
    forged = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert follow(api, forged).content == NOT_FOUND
    assert follow(api, good).status_code == 302
    assert (
        follow(api, LINKS.short_link(sharing["id"]).replace(LINKS.public_url, api.base_url)).content
        == NOT_FOUND
    )


def test_a_reset_sharing_is_13002(served):
    api, pisano_mock, links = served
    (sharing,) = shared(api, pisano_mock, {"emails": ["a@example.com"]})
    pisano_mock.reset()
    answer = follow(api, links.short_link(sharing["id"]))
    assert answer.content == NOT_FOUND
    assert "not held" in answer.headers["X-Pisano-Mock-Reason"]


def test_short_links_are_neither_journaled_nor_throttled():
    with serving(throttle=ThrottleSettings(tiers="2/5second")) as (api, mock, links):
        (sharing,) = shared(api, mock, {"emails": ["a@example.com"]})
        journaled = len(mock.requests())
        statuses = {follow(api, links.short_link(sharing["id"])).status_code for _ in range(5)}
        assert statuses == {302}
        assert api.request("GET", "/l/not-ours").status_code == 404
        assert len(mock.requests()) == journaled
        assert api.post({"emails": ["b@example.com"]}).status_code == 200  # the links counted 0
        assert api.post({"emails": ["c@example.com"]}).status_code == 429  # the tier: 2 / 5 s


@pytest.mark.parametrize("storage", ["redis"])
def test_short_links_on_redis(request, storage):
    """Every worker reads the one secret in Redis: a code made by one process reads in another."""
    with serving(storage=request.getfixturevalue("redis_url")) as (api, mock, links):
        body = {"emails": ["a@example.com"], "built_in_responses": {"NPS": 7}}
        (sharing,) = shared(api, mock, body)
        answer = follow(api, links.short_link(sharing["id"]))
        assert answer.status_code == 302 and answer.headers["Location"] == sharing["link"]


LINK_PATH = "/external/v1/link_sharings/00000000-0000-4000-8000-000000000701/generate_link"


@pytest.mark.parametrize("asked", [True, "true"])
def test_a_generated_short_link_redirects_to_the_generated_link(api, pisano_mock, asked):
    pisano_mock.add_fixtures(SCHEMA_FIXTURE)
    body = {"customer": {"email": "a@example.com"}, "built_in_responses": {"Channel": "web"}}
    answer = api.post({**body, "options": asked}, path=LINK_PATH)
    assert answer.status_code == 200, answer.headers.get("X-Pisano-Mock-Reason")
    made = answer.json()
    assert "/l/" in made["short_link"] and "?responses=" in made["link"]
    redirect = follow(api, made["short_link"])
    assert redirect.status_code == 302 and redirect.headers["Location"] == made["link"]
