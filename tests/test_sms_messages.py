"""SMS messages (SPEC 1.7): one per recipient, to the number as sent, a text carrying the short
link, no HTML and no subject; captured in the outbox or posted to the campaign's HTTP provider,
never through SMTP. Until the SMS endpoint lands, the batches are built by hand (as the channels
endpoint records them: a SharingBatch on channel "sms", its `emails` holding the numbers)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from provider_servers import http_receiver

from contracts.pytest_plugin import DEFAULT_CAMPAIGN, DEFAULT_TOKEN
from mockserver.app import create_app
from mockserver.context import EXTENSION_KEY, Emulator
from mockserver.links import LinkMaker
from mockserver.messages import RenderError, outline, render, render_many
from mockserver.outbox import Letterhead, MailBatch
from mockserver.providers import DeliveryError, deliver, payload
from mockserver.server import LiveServer
from mockserver.settings import ConfigError, load_settings
from mockserver.state import SharingBatch

LINKS = LinkMaker("http://mock.test", b"k" * 32)
SMS_CAMPAIGN = "00000000-0000-4000-8000-000000000501"  # the default fixture's (acme)
NUMBERS = ["+90 532 000 00 01", "05320000002"]
SMS_PAYLOAD_KEYS = [
    "to", "from", "text", "link", "campaign_id", "sharing_id", "custom_attributes",
    "transactional_data", "channel",
]  # fmt: skip


def sms_batch(
    numbers: list[str], accepted_at: float = 1_700_000_000.0, **parts: Any
) -> SharingBatch:
    made = SharingBatch.of(SMS_CAMPAIGN, 7, accepted_at, numbers, parts)
    return dataclasses.replace(made, channel="sms")


def sms_mail(
    numbers: list[str],
    *,
    text: str | None = None,
    html: str | None = None,
    subject: str | None = "Ignored for SMS",
    provider: dict[str, Any] | None = None,
    first_id: int = 100,
    **parts: Any,
) -> MailBatch:
    head = Letterhead(
        SMS_CAMPAIGN, "PISANO", subject, text, html, provider or {"type": "outbox"}, {}
    )
    return MailBatch(first_id, sms_batch(numbers, **parts), head)


# -- rendering ----------------------------------------------------------------------------------


def test_an_sms_goes_to_the_number_as_sent_with_the_short_link():
    first, second = render_many(sms_mail(NUMBERS), range(2), LINKS)
    assert (first.to, second.to) == tuple(NUMBERS)
    assert (first.id, second.id, first.sharing_id) == (100, 101, 100)
    assert first.link == LINKS.short_link(100) and second.link == LINKS.short_link(101)
    assert first.text == f"Hello there, how did it go? Tell us: {LINKS.short_link(100)}"
    assert (first.channel, first.sender, first.provider) == ("sms", "PISANO", "outbox")


def test_an_sms_has_no_subject_and_no_html_whatever_the_campaign_says():
    message = render(sms_mail(NUMBERS[:1], html="<p>{{ undefined_here }}</p>"), 0, LINKS)
    assert (message.subject, message.html) == (None, "")


def test_the_short_link_leads_to_the_survey_link_with_the_responses():
    batch = sms_mail(NUMBERS[:1], built_in_responses={"nps": 9})
    message = render(batch, 0, LINKS)
    assert LINKS.short_sharing_id(message.link.rsplit("/", 1)[1]) == message.sharing_id
    assert "responses" not in message.link  # short: the responses are in the long link


def test_the_campaigns_text_template_sees_the_number_and_the_attributes():
    template = "{{ name }}|{{ phone_number }}|{{ custom_attributes.tier }}|" + (
        "{{ transactional_data.Store }}|{{ built_in_responses.nps }}|{{ link }}"
    )
    batch = sms_mail(
        NUMBERS[:1],
        text=template,
        custom_attributes={NUMBERS[0]: {"name": "Ayşe", "tier": 3}},
        transactional_data={NUMBERS[0]: {"Store": "Kadıköy"}},
        built_in_responses={"nps": 9},
    )
    message = render(batch, 0, LINKS)
    assert message.text == f"Ayşe|{NUMBERS[0]}|3|Kadıköy|9|{LINKS.short_link(100)}"
    assert message.custom_attributes == {"name": "Ayşe", "tier": 3}
    assert message.transactional_data == {"Store": "Kadıköy"}


def test_an_sms_template_naming_email_fails_its_message_naming_it():
    with pytest.raises(RenderError, match="'email' is undefined"):
        render(sms_mail(NUMBERS[:1], text="{{ email }}"), 0, LINKS)


def test_an_outline_is_the_message_without_its_parts():
    message = outline(sms_mail(NUMBERS[:1], text="{{ broken"), 0, LINKS)
    assert (message.to, message.link, message.text, message.subject) == (
        NUMBERS[0],
        LINKS.short_link(100),
        "",
        None,
    )


def test_an_email_batch_still_renders_as_email():
    head = Letterhead(SMS_CAMPAIGN, "s@x.test", "Hi", None, None, {"type": "outbox"}, {})
    mail = MailBatch(5, SharingBatch.of(SMS_CAMPAIGN, 1, 0.0, ["a@x.test"], {}), head)
    message = render(mail, 0, LINKS)
    assert (message.channel, message.subject) == ("email", "Hi")
    assert message.link == LINKS.link(5, "") and message.html.startswith("<!doctype html>")


# -- providers ----------------------------------------------------------------------------------


def test_the_http_payload_of_an_sms_is_its_own_keys_in_order():
    batch = sms_mail(NUMBERS[:1], custom_attributes={NUMBERS[0]: {"tier": 3}})
    body = payload(render(batch, 0, LINKS))
    assert list(body) == SMS_PAYLOAD_KEYS
    assert (body["channel"], body["to"], body["link"]) == ("sms", NUMBERS[0], LINKS.short_link(100))
    assert body["custom_attributes"] == {"tier": 3}


def test_an_sms_is_posted_to_the_http_provider():
    with http_receiver() as receiver:
        provider = {"type": "http", "url": f"{receiver.base_url}/ok"}
        message = render(sms_mail(NUMBERS[:1], provider=provider), 0, LINKS)
        deliver(message, provider, 5.0)
    (post,) = receiver.posts
    assert post.json == payload(message)
    assert post.json["text"] == message.text


def test_smtp_never_carries_an_sms():
    message = render(sms_mail(NUMBERS[:1]), 0, LINKS)
    with pytest.raises(DeliveryError, match="cannot carry channel 'sms'") as raised:
        deliver(message, {"type": "smtp", "host": "127.0.0.1", "port": 9}, 5.0)
    assert raised.value.permanent


def sms_config(tmp_path: Path, provider: str) -> Path:
    path = tmp_path / "sms.toml"
    path.write_text(
        f"""
[delivery]
max_attempts = 2
backoff_seconds = 0.02
attempt_timeout_seconds = 2

[campaigns.{SMS_CAMPAIGN}]
account = "acme"
channel = "sms"
from = "PISANO"
provider = {provider}
"""
    )
    return path


def test_an_sms_campaign_with_an_smtp_provider_is_a_config_error(tmp_path):
    path = sms_config(tmp_path, '{ type = "smtp", host = "127.0.0.1" }')
    with pytest.raises(ConfigError, match="provider 'smtp' cannot carry channel 'sms'"):
        load_settings(path)


@pytest.mark.parametrize("provider", ['{ type = "outbox" }', '{ type = "http", url = "http://x" }'])
def test_an_sms_campaign_takes_outbox_or_http(tmp_path, provider):
    settings = load_settings(sms_config(tmp_path, provider))
    assert settings.fixture["campaigns"][SMS_CAMPAIGN]["channel"] == "sms"


# -- over HTTP: the outbox's page, .eml, the short link, delivery -------------------------------


@contextmanager
def serving(config: Path | None = None) -> Iterator[tuple[str, Emulator]]:
    app = create_app(load_settings(config))
    with LiveServer(app) as server:
        yield server.base_url, app.extensions[EXTENSION_KEY]


def recorded(emulator: Emulator, numbers: list[str], **parts: Any) -> MailBatch:
    """What the SMS endpoint does after its checks: record the sharings, add their messages."""
    store = emulator.store
    campaign = store.campaign(SMS_CAMPAIGN)
    account = store.account(campaign.account) if campaign else None
    assert campaign is not None and account is not None
    batch = sms_batch(numbers, emulator.clock.now(), **parts)
    first_id = store.record_sharings(batch, batch.nbytes)
    mail = MailBatch(first_id, batch, Letterhead.of(campaign, account))
    emulator.outbox.add(mail)
    emulator.postman.wake()
    return mail


def get(url: str, **params: Any) -> requests.Response:
    return requests.get(url, params=params, allow_redirects=False, timeout=30)


def test_the_outbox_shows_sms_messages_and_filters_them_by_channel():
    with serving() as (base, emulator):
        post = requests.post(
            f"{base}/v1/email_campaigns/{DEFAULT_CAMPAIGN}/email_sharings",
            json={"emails": ["a@example.com"]},
            headers={"Authorization": f"Token token={DEFAULT_TOKEN}"},
            timeout=30,
        )
        assert post.status_code == 200, post.text
        mail = recorded(emulator, NUMBERS, built_in_responses={"nps": 9})
        every = get(f"{base}/__mock/outbox").json()["messages"]
        sms = get(f"{base}/__mock/outbox", channel="sms").json()["messages"]
        email = get(f"{base}/__mock/outbox", channel="email").json()["messages"]
        assert [m["channel"] for m in every] == ["email", "sms", "sms"]
        assert [m["to"] for m in sms] == NUMBERS and [m["to"] for m in email] == ["a@example.com"]
        first = sms[0]
        assert (first["id"], first["subject"], first["html"], first["status"]) == (
            mail.first_id,
            None,
            "",
            "captured",
        )
        assert first["link"] in first["text"] and "/l/" in first["link"]
        redirect = get(first["link"])
        assert redirect.status_code == 302
        assert "?responses=" in redirect.headers["Location"]
        assert get(redirect.headers["Location"]).status_code == 200  # the survey page


def test_the_eml_of_an_sms_is_a_404_saying_it_is_not_an_email():
    with serving() as (base, emulator):
        mail = recorded(emulator, NUMBERS[:1])
        answer = get(f"{base}/__mock/outbox/{mail.first_id}.eml")
        assert answer.status_code == 404
        assert "sms channel, not an email" in answer.json()["reason"]


def test_an_sms_campaigns_messages_are_posted_to_its_http_provider(tmp_path):
    with http_receiver() as receiver:
        url = f"{receiver.base_url}/ok"
        with serving(sms_config(tmp_path, f'{{ type = "http", url = "{url}" }}')) as (base, emu):
            custom = {NUMBERS[1]: {"name": "Mehmet"}}
            recorded(emu, NUMBERS, custom_attributes=custom)
            flushed = requests.post(f"{base}/__mock/outbox/flush", json={"timeout": 20}, timeout=60)
            assert flushed.json()["pending"] == 0
            shown = {m["to"]: m for m in get(f"{base}/__mock/outbox").json()["messages"]}
    assert {m["status"] for m in shown.values()} == {"sent"}
    posts = {post.json["to"]: post.json for post in receiver.posts}
    assert sorted(posts) == sorted(NUMBERS)
    for number, body in posts.items():
        assert list(body) == SMS_PAYLOAD_KEYS
        assert (body["channel"], body["from"], body["campaign_id"]) == (
            "sms",
            "PISANO",
            SMS_CAMPAIGN,
        )
        assert (body["link"], body["text"]) == (shown[number]["link"], shown[number]["text"])
    assert posts[NUMBERS[1]]["text"].startswith("Hello Mehmet,")


def test_an_sms_smtp_campaign_added_as_a_fixture_is_refused():
    with serving() as (base, _):
        fixture = {
            "campaigns": {
                "sms-by-smtp": {
                    "account": "acme",
                    "channel": "sms",
                    "provider": {"type": "smtp", "host": "127.0.0.1"},
                }
            }
        }
        answer = requests.post(f"{base}/__mock/fixtures", json=fixture, timeout=30)
        assert answer.status_code == 400
        assert "cannot carry channel 'sms'" in answer.text


# -- end to end: the SMS endpoint fills the outbox -------------------------------------------------

SMS_PATH = f"/v1/sms_campaigns/{SMS_CAMPAIGN}/sms_sharings"


def test_post_sms_sharings_makes_one_sms_per_number_in_the_outbox(api):
    numbers = ["+90 532 000 00 01", "(0532) 000-0002", "5320000003"]
    body = {
        "phone_numbers": numbers,
        "custom_attributes": {numbers[0]: {"name": "Ayşe"}},
        "transactional_data": {numbers[1]: {"Store": "Kadıköy"}},
        "built_in_responses": {"nps": 9},
    }
    answer = api.post(body, path=SMS_PATH)
    assert answer.status_code == 200, answer.headers.get("X-Pisano-Mock-Reason")
    sharings = answer.json()["sharings"]
    messages = api.request("GET", "/__mock/outbox?channel=sms").json()["messages"]
    assert [(m["to"], m["id"]) for m in messages] == list(sharings.items())
    assert {(m["channel"], m["subject"], m["html"], m["status"]) for m in messages} == {
        ("sms", None, "", "captured")
    }
    assert messages[0]["text"].startswith("Hello Ayşe,")
    for message in messages:
        assert message["text"].endswith(message["link"])
        redirect = api.session.get(message["link"], allow_redirects=False, timeout=30)
        assert redirect.status_code == 302 and "?responses=" in redirect.headers["Location"]
    assert api.request("GET", "/__mock/outbox?channel=email").json()["messages"] == []


def test_a_refused_sms_request_adds_nothing_to_the_outbox(api):
    answer = api.post({"phone_numbers": ["12ab"]}, path=SMS_PATH)
    assert answer.status_code == 400
    assert api.request("GET", "/__mock/outbox").json()["messages"] == []


def test_sms_messages_on_redis(server_with, redis_url):
    with server_with(storage=redis_url) as (api, _):
        answer = api.post({"phone_numbers": NUMBERS}, path=SMS_PATH)
        assert answer.status_code == 200
        messages = api.request("GET", "/__mock/outbox?channel=sms").json()["messages"]
        assert [m["to"] for m in messages] == NUMBERS
        assert api.request("GET", f"/__mock/outbox/{messages[0]['id']}.eml").status_code == 404
        redirect = api.session.get(messages[1]["link"], allow_redirects=False, timeout=30)
        assert redirect.status_code == 302
