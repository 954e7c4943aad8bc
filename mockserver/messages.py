"""A message to one recipient (SPEC 1.7) and the email it becomes on the wire.

Rendering a campaign's templates into a `Message` lives here too (sandboxed Jinja2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any


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
