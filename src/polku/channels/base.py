"""What every channel speaks: a `Message` goes in, a `SendResult` comes out.

A channel (email, SMS, webhook) delivers one rendered message and says what happened; it
decides nothing. Consent, frequency caps, quiet hours and suppression are the journeys'
guards (`polku.journeys.guards`), checked before a message reaches a channel. A channel is
called from the journeys' sender threads, never from the event loop, so `send` blocks.

The sender records a message's idempotency key before it calls `send` and the result after,
so a crash between the two leaves a row that says "maybe sent": the channel passes the key
to the far side where it can (``Idempotency-Key`` for webhooks and the SMS gateway, the
``Message-ID`` header for email) so that a receiver can drop the second copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["Channel", "ChannelName", "Message", "SendResult"]

ChannelName = Literal["email", "sms", "webhook"]


@dataclass(frozen=True, slots=True)
class Message:
    """One message, rendered and addressed, ready to leave Polku.

    `to` is an email address, an E.164 phone number or a URL, by channel. `subject` and
    `html` are for email only; `text` is the body of every channel (JSON text for webhooks).
    `purpose` is the consent purpose it was checked against (``marketing``,
    ``transactional``, ...); `unsubscribe_url` is the one-click link of a marketing email
    (``List-Unsubscribe`` and ``List-Unsubscribe-Post`` headers, RFC 8058).
    """

    channel: ChannelName
    to: str
    text: str
    idempotency_key: str
    workspace_id: str
    profile_id: str
    purpose: str = "marketing"
    subject: str = ""
    html: str = ""
    locale: str = "en"
    unsubscribe_url: str = ""
    secret: str = ""  # webhook signing secret (HMAC-SHA256, see polku.signals.webhooks.sign)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a channel did with a message.

    `ok`: the far side took it (an SMTP 250, a 2xx from the gateway or webhook). `retry`:
    it did not, but trying again later may work (a timeout, a 4xx/5xx SMTP reply that is
    temporary, a 5xx or 429 answer); a refusal that will not change (an invalid address, a
    4xx from the gateway) has `retry` False. `provider_id` is the far side's id for the
    message (the gateway's message id, the SMTP queue id), used to match delivery reports.
    """

    ok: bool
    provider_id: str = ""
    error: str = ""
    retry: bool = False
    status: int | None = None  # the HTTP status or SMTP reply code, when there was one


class Channel(Protocol):
    """Delivers messages of one kind (`name`); blocking; safe to call from several threads."""

    name: ChannelName

    def send(self, message: Message) -> SendResult: ...
