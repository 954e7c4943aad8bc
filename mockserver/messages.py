"""A message to one recipient (SPEC 1.7) and the email it becomes on the wire.

Rendering a campaign's templates into a `Message` lives here too (sandboxed Jinja2), one row of
`CHANNELS` per channel: an email has a subject, a text and an HTML part and the survey link; an
SMS (to the number as sent) has a text only, carrying the short link (SPEC 1.2: SMS needs the link
shortener).
"""

from __future__ import annotations

import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .links import LinkMaker
from .outbox import MailBatch
from .state import OpenBatch


@dataclass(frozen=True)
class Message:
    """What one recipient receives: its content, rendered; its delivery state is the outbox's."""

    id: int  # the outbox's id; the recipient's sharing id, as one message per recipient
    sharing_id: int
    campaign_id: str
    channel: str  # "email" or "sms" (a row of CHANNELS)
    provider: str  # the campaign provider's type: outbox, smtp, http
    sender: str  # shown as `from`
    to: str  # an address, or for sms the number as sent
    subject: str | None  # None: left to the provider (the seed); always None for sms
    text: str
    html: str  # empty for sms
    link: str  # the survey link; for sms the short link
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


class RenderError(Exception):
    """A campaign's template failed for one message; str(error) names the template, the line and
    the cause (the message's `last_error`)."""


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
TEMPLATE_NAME = "<template>"  # the file name Jinja gives a template's frames: finds its line

# Sandboxed (a template in a config file cannot reach the server), immutable (nor change the data
# it is given). StrictUndefined: a misspelt variable fails the message with its name, where the
# default would send an email with a silent hole in it; optional keys read `x.get("k")`.
ENVIRONMENTS: dict[str, jinja2.Environment] = {
    "text_template": ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    ),
    "html_template": ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=True, keep_trailing_newline=True
    ),
}
DEFAULT_SMS_TEXT_TEMPLATE = "Hello {{ name }}, how did it go? Tell us: {{ link }}"
DEFAULT_TEMPLATES = {
    ("email", "text_template"): DEFAULT_TEXT_TEMPLATE,
    ("email", "html_template"): DEFAULT_HTML_TEMPLATE,
    ("sms", "text_template"): DEFAULT_SMS_TEXT_TEMPLATE,
}


@dataclass(frozen=True)
class ChannelStyle:
    """What a channel's message is made of."""

    recipient: str  # the template variable naming the recipient (as sent)
    templates: tuple[str, ...]  # the campaign's templates rendered; a part not rendered is empty
    short_link: bool  # the message carries the short link (`link`), not the survey link
    has_subject: bool  # False: `subject` is None whatever the campaign says


CHANNELS = {
    "email": ChannelStyle("email", ("text_template", "html_template"), False, True),
    "sms": ChannelStyle("phone_number", ("text_template",), True, False),
}


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


_TEMPLATES = _Cache(256)  # by (kind, source): each distinct source compiled once
_OPENED = _Cache(8)  # by id(batch): a batch's JSON parsed once for all its messages


def compiled(kind: str, source: str | None, channel: str = "email") -> jinja2.Template:
    """The template for `kind` (text_template, html_template), the channel's default when
    `source` is None; raises RenderError naming a syntax error's line."""
    text = DEFAULT_TEMPLATES[channel, kind] if source is None else source
    return _TEMPLATES.get_or_make((kind, text), lambda: _compile(kind, text))


def _compile(kind: str, source: str) -> jinja2.Template:
    try:
        return ENVIRONMENTS[kind].from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise RenderError(f"template: {kind} line {error.lineno}: {error.message}") from None


def _failed_line(error: BaseException) -> int | None:
    """The template line an exception was raised on (Jinja's frames carry the template's lines)."""
    frames = traceback.walk_tb(error.__traceback__)
    lines = [n for f, n in frames if f.f_code.co_filename == TEMPLATE_NAME]
    return lines[-1] if lines else None


def _render_one(kind: str, template: jinja2.Template, variables: dict[str, Any]) -> str:
    try:
        return template.render(variables)
    except Exception as error:  # any failure of a campaign's template fails its message only
        line = _failed_line(error)
        where = f"{kind} line {line}" if line else kind
        cause = str(error) if isinstance(error, jinja2.TemplateError) else _named(error)
        raise RenderError(f"template: {where}: {cause}") from None


def _named(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


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
    message = _outline(mail, opened, index, links)
    style = CHANNELS[message.channel]
    variables = {
        "name": message.custom_attributes.get("name") or DEFAULT_NAME,
        style.recipient: message.to,
        "link": message.link,
        "custom_attributes": message.custom_attributes,
        "transactional_data": message.transactional_data,
        "built_in_responses": opened.built_in_responses,
        "campaign_id": message.campaign_id,
        "subject": message.subject,
    }
    head = mail.letterhead
    parts = {
        kind: _render_one(kind, compiled(kind, getattr(head, kind), message.channel), variables)
        for kind in style.templates
    }
    return replace(message, text=parts["text_template"], html=parts.get("html_template", ""))


def outline(mail: MailBatch, index: int, links: LinkMaker) -> Message:
    """Recipient `index`'s message with `text` and `html` empty: what is known without rendering
    (shown when a template fails)."""
    return _outline(mail, _opened(mail), index, links)


def _outline(mail: MailBatch, opened: OpenBatch, index: int, links: LinkMaker) -> Message:
    head = mail.letterhead
    channel = mail.sharings.channel
    style = CHANNELS[channel]
    to = opened.emails[index]  # for sms: the number as sent (SharingBatch keeps it there)
    sharing_id = mail.first_id + index
    if style.short_link:
        link = links.short_link(sharing_id)
    else:
        link = links.survey_link(sharing_id, opened.built_in_responses, head.customer_schema)
    return Message(
        id=sharing_id,
        sharing_id=sharing_id,
        campaign_id=head.campaign_id,
        channel=channel,
        provider=head.provider_type,
        sender=head.sender,
        to=to,
        subject=head.subject if style.has_subject else None,
        text="",
        html="",
        link=link,
        created_at=mail.sharings.accepted_at,
        custom_attributes=opened.custom_attributes.get(to) or {},
        transactional_data=opened.transactional_data.get(to) or {},
    )
