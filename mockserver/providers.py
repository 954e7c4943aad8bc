"""Providers (SPEC 1.7): how one message leaves, through the campaign's SMTP server or HTTP API.

`deliver(message, provider, timeout)` makes one attempt and raises `DeliveryError` naming the
cause when it fails; the caller (the senders) retries with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .messages import Message


class DeliveryError(Exception):
    """One attempt failed; str(error) is the message's `last_error` (names the cause)."""


def deliver(message: Message, provider: Mapping[str, Any], timeout: float) -> None:
    """One delivery attempt of `message` through `provider` (a campaign's provider table)."""
    raise DeliveryError(f"provider type {provider.get('type')!r}: not built yet (issue 10)")
