"""Text messages through an HTTP SMS gateway (the contract: docs/journeys.md#sms).

Polku speaks one small JSON protocol rather than one provider's API, so any gateway (or a
few lines of glue in front of one) will do: a POST per message with the bearer token and
the idempotency key, an id in the answer, and delivery reports and replies posted back to
``/v1/channels/sms/reports`` and ``/v1/channels/sms/inbound``.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from polku.channels.base import ChannelName, Message, SendResult
from polku.channels.links import sms_status_url
from polku.channels.posting import post_json
from polku.settings import Settings

__all__ = ["E164", "SmsChannel"]

E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
"""A phone number as the gateway takes it: ``+`` and 7 to 15 digits (``+358401234567``)."""

_MAX_TEXT: Final = 1600  # ten concatenated segments; longer is surely a template error


class SmsChannel:
    """Posts each message to `settings.sms_gateway_url`.

    When `settings.public_url` is set and `secret` given (the channel secret), each message
    carries a `status_url` with a signed token, so its delivery reports reach the person's
    timeline; without it the gateway posts reports to the fixed reports URL.
    """

    name: ChannelName = "sms"

    def __init__(self, settings: Settings, *, secret: str = "", timeout: float = 10.0) -> None:
        self._url = settings.sms_gateway_url
        self._token = settings.sms_gateway_token.reveal()
        self._sender = settings.sms_sender
        self._public_url = settings.public_url
        self._secret = secret
        self._timeout = timeout

    def body(self, message: Message) -> dict[str, Any]:
        """The JSON object posted to the gateway for `message`."""
        body: dict[str, Any] = {
            "to": message.to,
            "from": self._sender,
            "text": message.text,
            "reference": message.idempotency_key,
        }
        if self._public_url and self._secret:
            body["status_url"] = sms_status_url(
                self._public_url,
                self._secret,
                workspace_id=message.workspace_id,
                profile_id=message.profile_id,
                reference=message.idempotency_key,
            )
        return body

    def send(self, message: Message) -> SendResult:
        """Post `message` to the gateway; see `polku.channels.posting` for what an answer
        means. Never raises."""
        if not self._url:
            return SendResult(ok=False, error="channel_not_configured", retry=False)
        if not E164.fullmatch(message.to):
            return SendResult(
                ok=False,
                error=f"invalid_address: {message.to[:40]!r} is not an E.164 phone number "
                "(+ and 7-15 digits, e.g. +358401234567)",
                retry=False,
            )
        if not message.text.strip() or len(message.text) > _MAX_TEXT:
            return SendResult(
                ok=False,
                error=f"invalid_message: an SMS needs 1-{_MAX_TEXT} characters of text "
                f"(got {len(message.text)})",
                retry=False,
            )
        headers = {
            **{k: v for k, v in message.headers.items() if k.lower() != "authorization"},
            "Idempotency-Key": message.idempotency_key,
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return post_json(
            self._url,
            orjson.dumps(self.body(message)),
            headers,
            timeout=self._timeout,
            what="the SMS gateway",
        )
