"""Survey links on every sharing (SPEC 1.7), the `option` schema type (SPEC 1.1), and the links'
base URL: where the emulator serves unless `[links] public_url` says otherwise."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from mockserver.app import create_app
from mockserver.catalogue import PisanoError
from mockserver.links import decode_responses
from mockserver.rules import RuleContext
from mockserver.schemas import EmailSharingSchema
from mockserver.server import LiveServer, serve_links_at
from mockserver.settings import Links, load_settings
from mockserver.validation import email_sharing_loader, reference_load

SCHEMA = {"Channel": "option", "NPS": "integer"}
CONTEXT = RuleContext(customer_schema=SCHEMA)
CHANNEL_FIXTURE = {"accounts": {"acme": {"customer_schema": SCHEMA}}}


def decoded(link: str) -> list[dict]:
    """The responses a link carries, read as SPEC 1.7 writes them (not with links.py)."""
    query = parse_qs(urlsplit(link).query)
    if "responses" not in query:
        return []
    return json.loads(base64.b64decode(query["responses"][0], validate=True))


# -- the option type ----------------------------------------------------------------------------


def both_paths(value: object) -> tuple[int, int]:
    body = {"emails": ["a@example.com"], "built_in_responses": {"Channel": value}}
    try:
        email_sharing_loader.load(body, CONTEXT)
        fast = 0
    except PisanoError as error:
        fast = error.code
    return fast, reference_load(EmailSharingSchema, body, CONTEXT)


@pytest.mark.parametrize("value", ["web", "", "7", 7, -1, 0])
def test_an_option_key_is_a_string_or_an_integer(value):
    assert both_paths(value) == (0, 0)


@pytest.mark.parametrize("value", [True, False, 1.5, 7.0, [1], {"a": 1}])
def test_any_other_option_value_is_13028_on_both_paths(value):
    assert both_paths(value) == (13028, 13028)


def test_a_wrong_option_value_is_named_in_the_reason():
    with pytest.raises(PisanoError) as raised:
        email_sharing_loader.load(
            {"emails": ["a@example.com"], "built_in_responses": {"Channel": True}}, CONTEXT
        )
    assert raised.value.reason == ("built_in_responses: Channel=true is not of schema type option")


def test_an_option_key_from_a_form_is_its_text():
    form = RuleContext(customer_schema=SCHEMA, from_form=True)
    body = {"emails": ["a@example.com"], "built_in_responses": {"Channel": "12"}}
    assert email_sharing_loader.load(body, form) == []


# -- links on sharings --------------------------------------------------------------------------


def test_every_sharing_carries_its_link(api, pisano_mock):
    emails = ["a@example.com", "b@example.com", "c@example.com"]
    assert api.post({"emails": emails}).status_code == 200
    sharings = pisano_mock.sharings()
    links = [s["link"] for s in sharings]
    assert all(link.startswith(pisano_mock.base_url + "/s/") for link in links)
    assert len(set(links)) == 3
    assert all("?" not in link for link in links)  # no built_in_responses: no `responses`


def test_a_link_carries_the_responses_in_order_with_their_types(api, pisano_mock):
    pisano_mock.add_fixtures(CHANNEL_FIXTURE)
    responses = {"NPS": 9, "Channel": "web", "Unknown": 1.5}
    body = {"emails": ["a@example.com", "b@example.com"], "built_in_responses": responses}
    assert api.post(body).status_code == 200
    expected = [
        {"question_key": "NPS", "body": 9},
        {"question_key": "Channel", "option_key": "web"},
        {"question_key": "Unknown", "body": 1.5},
    ]
    for sharing in pisano_mock.sharings():
        assert decoded(sharing["link"]) == expected
        raw = parse_qs(urlsplit(sharing["link"]).query)["responses"][0]
        assert decode_responses(raw) == expected
    first, second = (s["link"] for s in pisano_mock.sharings())
    assert first.split("?")[0] != second.split("?")[0]


def test_a_link_is_percent_encoded_standard_base64():
    settings = load_settings().with_changes(links=Links(public_url="https://surveys.test/"))
    app = create_app(settings)
    links = app.extensions["pisano_mock"].links
    link = links.survey_link(5, {"Comment": "ş?>>>"}, {})
    assert link.startswith("https://surveys.test/s/")
    raw = link.split("?responses=")[1]
    assert "+" not in raw and "/" not in raw and "=" not in raw  # percent-encoded
    assert base64.b64decode(unquote(raw)).decode() == '[{"question_key":"Comment","body":"ş?>>>"}]'


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


def test_links_on_both_storages(storage, server_with):
    with server_with(storage=storage) as (api, pisano_mock):
        pisano_mock.add_fixtures(CHANNEL_FIXTURE)
        body = {"emails": ["a@example.com"], "built_in_responses": {"Channel": 3}}
        assert api.post(body).status_code == 200
        (sharing,) = pisano_mock.sharings()
        assert sharing["link"].startswith(pisano_mock.base_url + "/s/")
        assert decoded(sharing["link"]) == [{"question_key": "Channel", "option_key": 3}]


# -- where links point --------------------------------------------------------------------------


def test_a_live_server_points_links_at_itself():
    with LiveServer(create_app(load_settings())) as server:
        emulator = server.app.extensions["pisano_mock"]
        assert emulator.links.public_url == server.base_url
        assert emulator.settings.links.public_url == server.base_url


def test_the_public_url_setting_wins_over_the_serving_url():
    settings = load_settings().with_changes(links=Links(public_url="https://x.test/p"))
    with LiveServer(create_app(settings)) as server:
        assert server.app.extensions["pisano_mock"].links.public_url == "https://x.test/p"


@pytest.mark.parametrize(
    ("served", "linked"),
    [
        ("http://0.0.0.0:8080", "http://localhost:8080"),
        ("http://[::]:8080", "http://localhost:8080"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:9", "http://[::1]:9"),
    ],
)
def test_links_from_a_wildcard_address_name_localhost(served, linked):
    app = create_app(load_settings())
    serve_links_at(app, served)
    assert app.extensions["pisano_mock"].links.public_url == linked


START_LINE = re.compile(r"pisano-mock serving (\S+) token=(\S+) campaign=(\S+)")


@pytest.fixture
def served() -> Iterator[tuple[str, str, str]]:
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", "--quiet"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            match = START_LINE.match(process.stdout.readline())
            assert match
            yield match.group(1), match.group(2), match.group(3)
        finally:
            process.terminate()
            process.wait(timeout=15)


def test_serve_on_port_0_makes_links_from_the_printed_url(served):
    url, token, campaign = served
    answer = requests.post(
        f"{url}/v1/email_campaigns/{campaign}/email_sharings",
        json={"emails": ["a@example.com"]},
        headers={"Authorization": f"Token token={token}"},
        timeout=30,
    )
    assert answer.status_code == 200
    (sharing,) = requests.get(f"{url}/__mock/sharings", timeout=30).json()["sharings"]
    assert sharing["link"].startswith(url + "/s/")
    assert requests.get(sharing["link"], timeout=30).status_code == 200
