"""A message to one recipient (SPEC 1.7) and the email it becomes on the wire.

Rendering a campaign's templates into a `Message` lives here too (sandboxed Jinja2).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import jinja2

from .links import LinkMaker
from .outbox import MailBatch
from .state import OpenBatch
from .template_jail import JAIL
from .templates import RenderError as RenderError  # raised by render, caught from here
from .templates import compile_template, render_template


@dataclass(frozen=True)
class Message:
    """What one recipient receives: its content, rendered; its delivery state is the outbox's."""

    id: int  # the outbox's id; the recipient's sharing id, as one message per recipient
    sharing_id: int
    campaign_id: str
    channel: str  # "email" (issue 11: "sms")
    provider: str  # the campaign provider's type: outbox, smtp, http
    sender: str  # shown as `from`
    to: str
    subject: str | None  # None: left to the provider (the seed)
    text: str
    html: str
    link: str
    created_at: float  # the request's instant, on the emulator's clock
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    transactional_data: dict[str, Any] = field(default_factory=dict)

    def shown(self) -> dict[str, Any]:
        """The content keys of `GET /__mock/outbox` (the outbox adds the delivery state)."""
        return {
            "id": self.id,
            "sharing_id": self.sharing_id,
            "campaign_id": self.campaign_id,
            "channel": self.channel,
            "provider": self.provider,
            "from": self.sender,
            "to": self.to,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "link": self.link,
        }


def as_email(message: Message, at: float | None = None) -> EmailMessage:
    """The email as SMTP carries it: text and HTML alternatives; no Subject when it is None."""
    email = EmailMessage()
    email["From"] = message.sender
    email["To"] = message.to
    if message.subject is not None:
        email["Subject"] = message.subject
    email["Date"] = formatdate(message.created_at if at is None else at, usegmt=True)
    email["Message-ID"] = make_msgid(f"pisano-mock-{message.id}", domain="pisano-mock.test")
    email["X-Pisano-Mock-Message-Id"] = str(message.id)
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


DEFAULT_NAME = "there"  # "Hello there," when the recipient has no `name` attribute
DEFAULT_TEXT_TEMPLATE = (
    "Hello {{ name }},\n\n"
    "We would love to hear how it went. It takes a minute:\n"
    "{{ link }}\n\n"
    "Thank you!\n"
)
DEFAULT_HTML_TEMPLATE = (
    "<!doctype html>\n<html><body>\n"
    "<p>Hello {{ name }},</p>\n"
    "<p>We would love to hear how it went. It takes a minute:</p>\n"
    '<p><a href="{{ link }}">Take the survey</a></p>\n'
    "<p>Thank you!</p>\n"
    "</body></html>\n"
)
DEFAULT_TEMPLATES = {"text_template": DEFAULT_TEXT_TEMPLATE, "html_template": DEFAULT_HTML_TEMPLATE}


class _Cache(OrderedDict[Any, Any]):
    """A small LRU shared by the threads of a process: compiled templates, opened batches."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self:
                self.move_to_end(key)
                return self[key]
        value = make()  # outside the lock: compiling or parsing may take a while
        with self.lock:
            self[key] = value
            while len(self) > self.size:
                self.popitem(last=False)
        return value


_TEMPLATES = _Cache(2)  # the default templates, by kind
_OPENED = _Cache(8)  # by id(batch): a batch's JSON parsed once for all its messages


def compiled(kind: str, source: str | None) -> jinja2.Template:
    """The default template for `kind` (text_template, html_template), compiled once."""
    return _TEMPLATES.get_or_make(kind, lambda: compile_template(kind, DEFAULT_TEMPLATES[kind]))


def _render_one(kind: str, source: str | None, variables: dict[str, Any]) -> str:
    """Ours render here; a campaign's own in the jail, bounded in memory and time."""
    if source is None:
        return render_template(kind, compiled(kind, None), variables)
    return JAIL.render(kind, source, variables)


def _opened(mail: MailBatch) -> OpenBatch:
    held = _OPENED.get_or_make(id(mail), lambda: (mail, mail.sharings.opened()))
    if held[0] is not mail:  # an id reused after a batch was freed
        held = (mail, mail.sharings.opened())
    return held[1]  # type: ignore[no-any-return]


def render(mail: MailBatch, index: int, links: LinkMaker) -> Message:
    """Recipient `index`'s message of a batch; a pure function of the batch and the index (read
    twice, the same message). Raises RenderError when a template fails."""
    return _render(mail, _opened(mail), index, links)


def render_many(mail: MailBatch, indexes: Iterable[int], links: LinkMaker) -> Iterator[Message]:
    """`render` for several recipients of one batch."""
    opened = _opened(mail)
    return (_render(mail, opened, index, links) for index in indexes)


def _render(mail: MailBatch, opened: OpenBatch, index: int, links: LinkMaker) -> Message:
    head = mail.letterhead
    email = opened.emails[index]
    sharing_id = mail.first_id + index
    custom = opened.custom_attributes.get(email) or {}
    transactional = opened.transactional_data.get(email) or {}
    link = links.survey_link(sharing_id, opened.built_in_responses, head.customer_schema)
    variables = {
        "name": custom.get("name") or DEFAULT_NAME,
        "email": email,
        "link": link,
        "custom_attributes": custom,
        "transactional_data": transactional,
        "built_in_responses": opened.built_in_responses,
        "campaign_id": head.campaign_id,
        "subject": head.subject,
    }
    text, html = (
        _render_one(kind, getattr(head, kind), variables)
        for kind in ("text_template", "html_template")
    )
    return Message(
        id=sharing_id,
        sharing_id=sharing_id,
        campaign_id=head.campaign_id,
        channel=mail.sharings.channel,
        provider=head.provider_type,
        sender=head.sender,
        to=email,
        subject=head.subject,
        text=text,
        html=html,
        link=link,
        created_at=mail.sharings.accepted_at,
        custom_attributes=custom,
        transactional_data=transactional,
    )
