"""Journey webhooks: a step's JSON posted to a URL, signed like buying-signal webhooks.

The receiver checks ``Polku-Signature`` exactly as for CRM deliveries
(`polku.signals.webhooks.verify`: HMAC-SHA256 over ``"<t>.<raw body>"``) and drops a second
copy by ``Polku-Delivery`` (the same value as ``Idempotency-Key``: the send's idempotency
key). A message without a secret is sent unsigned.
"""

from __future__ import annotations

import time

import orjson

from polku.channels.base import ChannelName, Message, SendResult
from polku.channels.posting import post_json
from polku.signals.webhooks import sign

__all__ = ["WebhookChannel"]

_OURS = frozenset({"polku-signature", "polku-delivery", "idempotency-key", "content-type"})


class WebhookChannel:
    """Posts `message.text` (a JSON document) to the URL in `message.to`."""

    name: ChannelName = "webhook"

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._timeout = timeout

    def send(self, message: Message) -> SendResult:
        """Post, signed with `message.secret`; 2xx is taken, 429/5xx/no answer retried.
        Never raises."""
        body = message.text.encode("utf-8")
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return SendResult(
                ok=False,
                error=f"invalid_message: a webhook's text must be a JSON document ({exc})",
                retry=False,
            )
        headers = {k: v for k, v in message.headers.items() if k.lower() not in _OURS}
        headers["Polku-Delivery"] = message.idempotency_key
        headers["Idempotency-Key"] = message.idempotency_key
        if message.secret:
            headers["Polku-Signature"] = sign(message.secret, int(time.time()), body)
        return post_json(message.to, body, headers, timeout=self._timeout, what="the webhook")
