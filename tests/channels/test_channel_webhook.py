"""The webhook channel against a real HTTP server: the step's JSON, signed exactly like
buying-signal webhooks (checked with `polku.signals.webhooks.verify`), the delivery and
idempotency headers, and the same retry rules as the SMS gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from smtp_server import free_port

from http_receiver import Receiver
from polku.channels.base import Message
from polku.channels.webhook import WebhookChannel
from polku.signals.webhooks import verify

SECRET = "whsec_journey_0123456789abcdef"
BODY = '{"event": "journey.step", "profile_id": "p_1", "note": "Jäätelökone"}'


def hook(url: str, **fields: Any) -> Message:
    values: dict[str, Any] = {
        "channel": "webhook",
        "to": url,
        "text": BODY,
        "idempotency_key": "journey:vip:v2:p_1:notify-crm",
        "workspace_id": "default",
        "profile_id": "p_1",
        "secret": SECRET,
        "headers": {"X-Journey": "vip", "Polku-Delivery": "forged"},
    }
    values.update(fields)
    return Message(**values)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


def test_signed_like_signal_webhooks(receiver: Receiver) -> None:
    channel = WebhookChannel()
    assert channel.name == "webhook"
    result = channel.send(hook(f"{receiver.url}/crm/hooks"))
    assert result.ok, result.error
    assert result.provider_id == "m-1"
    [request] = receiver.requests
    assert request.path == "/crm/hooks"
    assert request.body == BODY.encode()
    assert verify(SECRET, request.headers["polku-signature"], request.body, now=time.time())
    assert not verify(
        "another-secret-0123456789",
        request.headers["polku-signature"],
        request.body,
        now=time.time(),
    )
    assert not verify(
        SECRET, request.headers["polku-signature"], request.body + b" ", now=time.time()
    )
    assert request.headers["polku-delivery"] == "journey:vip:v2:p_1:notify-crm"
    assert request.headers["idempotency-key"] == "journey:vip:v2:p_1:notify-crm"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-journey"] == "vip"


def test_unsigned_without_a_secret(receiver: Receiver) -> None:
    assert WebhookChannel().send(hook(receiver.url, secret="")).ok
    assert "polku-signature" not in receiver.requests[0].headers


@pytest.mark.parametrize(
    ("status", "retry"), [(503, True), (429, True), (400, False), (404, False)]
)
def test_answers_and_retries(receiver: Receiver, status: int, retry: bool) -> None:
    receiver.answers = [(status, b"")]
    result = WebhookChannel().send(hook(receiver.url))
    assert (result.ok, result.retry, result.status) == (False, retry, status)
    assert result.error.startswith(f"http_{status}:")


def test_no_server_no_answer_and_bad_messages(receiver: Receiver) -> None:
    closed = WebhookChannel().send(hook(f"http://127.0.0.1:{free_port()}/"))
    assert (closed.ok, closed.retry) == (False, True)
    assert closed.error.startswith("connection_failed:")
    slow = Receiver(delay=5)
    try:
        late = WebhookChannel(timeout=0.3).send(hook(slow.url))
        assert (late.ok, late.retry) == (False, True)
        assert late.error.startswith("timeout:")
    finally:
        slow.close()
    for bad, code in (
        (hook("ftp://127.0.0.1/x"), "invalid_address"),
        (hook("not a url"), "invalid_address"),
        (hook(receiver.url, text="not json"), "invalid_message"),
    ):
        result = WebhookChannel().send(bad)
        assert (result.ok, result.retry) == (False, False)
        assert result.error.startswith(f"{code}:")
    assert receiver.requests == []
