"""Rendering a recipient's message from the campaign's sandboxed templates (SPEC 1.7)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from mockserver.links import LinkMaker, decode_responses
from mockserver.messages import RenderError, as_email, render, render_many
from mockserver.outbox import Letterhead, MailBatch
from mockserver.state import SharingBatch

LINKS = LinkMaker("http://mock.test", b"k" * 32)
CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"


def mail(
    emails: list[str],
    *,
    text: str | None = None,
    html: str | None = None,
    subject: str | None = "How was it?",
    schema: dict[str, str] | None = None,
    **parts: Any,
) -> MailBatch:
    sharings = SharingBatch.of(CAMPAIGN, 7, 1_700_000_000.0, emails, parts)
    head = Letterhead(
        CAMPAIGN, "surveys@x.test", subject, text, html, {"type": "outbox"}, schema or {}
    )
    return MailBatch(100, sharings, head)


def test_the_default_templates_greet_by_name_and_carry_the_link():
    batch = mail(["a@x.test", "b@x.test"], custom_attributes={"a@x.test": {"name": "Ayşe"}})
    first, second = render_many(batch, range(2), LINKS)
    assert first.text.startswith("Hello Ayşe,")
    assert second.text.startswith("Hello there,")
    assert first.link == f"http://mock.test/s/{LINKS.token(100)}"
    assert first.link in first.text
    assert f'href="{first.link}"' in first.html
    assert (first.id, first.sharing_id, second.id, first.to) == (100, 100, 101, "a@x.test")


def test_a_message_keeps_the_letterhead_and_the_request_instant():
    message = render(mail(["a@x.test"]), 0, LINKS)
    assert (message.sender, message.subject, message.campaign_id) == (
        "surveys@x.test",
        "How was it?",
        CAMPAIGN,
    )
    assert (message.channel, message.provider, message.created_at) == (
        "email",
        "outbox",
        1_700_000_000.0,
    )


def test_no_subject_stays_none_and_the_email_has_no_subject_header():
    message = render(mail(["a@x.test"], subject=None), 0, LINKS)
    assert message.subject is None
    assert "Subject" not in as_email(message)


def test_the_link_carries_the_built_in_responses_typed_by_the_schema():
    responses = {"score": 9, "pick": "opt-1"}
    batch = mail(["a@x.test"], built_in_responses=responses, schema={"pick": "option"})
    link = render(batch, 0, LINKS).link
    assert decode_responses(unquote(link.split("?responses=")[1])) == [
        {"question_key": "score", "body": 9},
        {"question_key": "pick", "option_key": "opt-1"},
    ]


def test_campaign_templates_see_every_variable():
    text = "{{ email }}|{{ campaign_id }}|{{ subject }}|{{ custom_attributes.tier }}|" + (
        "{{ transactional_data.Location }}|{{ built_in_responses.q }}|{{ name }}"
    )
    batch = mail(
        ["a@x.test"],
        text=text,
        custom_attributes={"a@x.test": {"tier": "gold"}},
        transactional_data={"a@x.test": {"Location": "Izmir"}},
        built_in_responses={"q": 1},
    )
    assert render(batch, 0, LINKS).text == f"a@x.test|{CAMPAIGN}|How was it?|gold|Izmir|1|there"


def test_html_is_escaped_and_text_is_not():
    batch = mail(
        ["a@x.test"],
        text="{{ name }}",
        html="<b>{{ name }}</b>",
        custom_attributes={"a@x.test": {"name": "<Tom & Jerry>"}},
    )
    message = render(batch, 0, LINKS)
    assert message.text == "<Tom & Jerry>"
    assert message.html == "<b>&lt;Tom &amp; Jerry&gt;</b>"


@pytest.mark.parametrize(
    ("kind", "source", "reason"),
    [
        ("html", "ok\n\n{{ x }}", "template: html_template line 3: 'x' is undefined"),
        ("text", "a\n{% if %}", "template: text_template line 2: Expected an expression"),
        ("text", "{{ name.__class__ }}", "template: text_template line 1: access to attribute"),
        ("text", "\n{{ 1 / 0 }}", "template: text_template line 2: ZeroDivisionError: division"),
        ("html", "{{ custom_attributes.update(a=1) }}", "template: html_template line 1: "),
    ],
)
def test_a_failing_template_is_a_render_error_naming_the_cause(kind, source, reason):
    batch = mail(["a@x.test"], **{kind: source})
    with pytest.raises(RenderError) as raised:
        render(batch, 0, LINKS)
    assert str(raised.value).startswith(reason)


def test_rendering_twice_gives_the_same_message():
    batch = mail(["a@x.test"], custom_attributes={"a@x.test": {"name": "A"}})
    assert render(batch, 0, LINKS) == render(batch, 0, LINKS)


def test_a_template_syntax_error_is_refused_when_the_fixture_loads():
    from mockserver.settings import ConfigError, load_fixture

    bad = {"campaigns": {"c1": {"account": "acme", "html_template": "a\n{% if %}"}}}
    with pytest.raises(ConfigError) as raised:
        load_fixture(bad)
    assert str(raised.value).startswith("fixtures: campaigns.c1.html_template: line 2: Expected")
