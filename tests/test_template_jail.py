"""A campaign's own template cannot freeze or exhaust the server (attack on issue 10): it renders
in a child process bounded in time and memory; the message fails naming why, the rest goes on."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from test_messages import LINKS, mail

from mockserver import template_jail
from mockserver.app import create_app
from mockserver.messages import RenderError, render
from mockserver.server import LiveServer
from mockserver.settings import load_settings

CAMPAIGN = "00000000-0000-4000-8000-0000000b0002"
DEFAULT = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
AUTH = {"Authorization": "Token token=test-token"}
POWER = "{{ (7 ** (10**8 + email|length)) > 1 }}"  # one C call of minutes, holding the GIL


@pytest.fixture
def short_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    monkeypatch.setattr(template_jail, "LIMIT_SECONDS", 1.0)
    yield 1.0


def test_a_render_over_the_time_limit_fails_its_message_and_the_next_one_renders(short_limit):
    with pytest.raises(RenderError, match=r"template: text_template: took over 1 s to render"):
        render(mail(["a@x.test"], text=POWER), 0, LINKS)
    message = render(mail(["b@x.test"], text="Hi {{ email }}"), 0, LINKS)  # a fresh child
    assert message.text == "Hi b@x.test"


def test_a_template_building_gigabytes_fails_its_message_naming_memory():
    with pytest.raises(RenderError, match=r"text_template.*(ran out of memory|MemoryError)"):
        render(mail(["a@x.test"], text='{{ "x" * 10**9 }}'), 0, LINKS)


def test_a_template_writing_more_than_a_mebibyte_fails_its_message():
    with pytest.raises(RenderError, match=r"wrote 2000000 characters, over 1048576"):
        render(mail(["a@x.test"], html='{{ "x" * 2000000 }}'), 0, LINKS)


def test_the_api_answers_while_a_hostile_template_renders(short_limit):
    settings = load_settings()
    campaigns = dict(settings.fixture["campaigns"])
    campaigns[CAMPAIGN] = {
        **campaigns[DEFAULT],
        "text_template": POWER,
    }
    fixture = {**settings.fixture, "campaigns": campaigns}
    with LiveServer(create_app(settings.with_changes(fixture=fixture))) as server:
        url = f"{server.base_url}/v1/email_campaigns/{CAMPAIGN}/email_sharings"
        answer = requests.post(url, json={"emails": ["a@x.test"]}, headers=AUTH, timeout=30)
        assert answer.status_code == 200
        page: list[requests.Response] = []
        reading = threading.Thread(
            target=lambda: page.append(requests.get(f"{server.base_url}/__mock/outbox", timeout=30))
        )
        reading.start()  # renders the hostile template: in the jail, for up to the limit
        other = f"{server.base_url}/v1/email_campaigns/{DEFAULT}/email_sharings"
        answer = requests.post(other, json={"emails": ["b@x.test"]}, headers=AUTH, timeout=30)
        still_rendering = reading.is_alive()
        reading.join(30)
    assert answer.status_code == 200
    assert still_rendering  # answered while the render went on: nothing froze
    (shown,) = [m for m in page[0].json()["messages"] if m["to"] == "a@x.test"]
    assert (shown["status"], shown["last_error"]) == (
        "failed",
        "template: text_template: took over 1 s to render",
    )
