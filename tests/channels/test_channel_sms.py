"""The SMS channel against a real HTTP server standing in for the gateway: the JSON body
and headers of the documented contract (docs/journeys.md#sms), the gateway's id as the
provider id, and what each answer means for a retry (503, 429, 400, a timeout, a closed
port); bad numbers and an unset gateway never reach the network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from smtp_server import free_port

from http_receiver import Receiver
from polku.channels.base import Message
from polku.channels.links import read_status
from polku.channels.sms import SmsChannel
from polku.settings import Settings

TOKEN = "gateway-token-0123456789"
SECRET = "channel-secret-0123456789abcdef"


def text(**fields: Any) -> Message:
    values: dict[str, Any] = {
        "channel": "sms",
        "to": "+358401234567",
        "text": "Hei Anna! Ostoskorisi odottaa: jäätelökone 89 €.",
        "idempotency_key": "journey:abandoned-cart:v1:p_1:sms",
        "workspace_id": "default",
        "profile_id": "p_1",
    }
    values.update(fields)
    return Message(**values)


def sms(url: str, tmp_path: Path, **settings: Any) -> SmsChannel:
    built = Settings.build(
        data_dir=tmp_path,
        sms_gateway_url=url,
        sms_gateway_token=TOKEN,
        sms_sender="Kauppa",
        **settings,
    )
    return SmsChannel(built, secret=SECRET, timeout=2)


@pytest.fixture
def gateway() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


def test_the_gateway_contract(gateway: Receiver, tmp_path: Path) -> None:
    channel = sms(f"{gateway.url}/messages", tmp_path, public_url="https://polku.example.fi/")
    assert channel.name == "sms"
    result = channel.send(text())
    assert result.ok, result.error
    assert (result.provider_id, result.status) == ("m-1", 200)

    [request] = gateway.requests
    assert request.path == "/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["idempotency-key"] == "journey:abandoned-cart:v1:p_1:sms"
    assert request.headers["content-type"] == "application/json"
    body = orjson.loads(request.body)
    assert set(body) == {"to", "from", "text", "reference", "status_url"}
    assert body["to"] == "+358401234567"
    assert body["from"] == "Kauppa"
    assert body["text"] == "Hei Anna! Ostoskorisi odottaa: jäätelökone 89 €."
    assert body["reference"] == "journey:abandoned-cart:v1:p_1:sms"
    prefix = "https://polku.example.fi/v1/channels/sms/reports?token="
    assert body["status_url"].startswith(prefix)
    link = read_status(SECRET, body["status_url"].removeprefix(prefix))
    assert link is not None
    assert (link.workspace_id, link.profile_id) == ("default", "p_1")
    assert link.reference == "journey:abandoned-cart:v1:p_1:sms"


def test_no_status_url_without_a_public_url(gateway: Receiver, tmp_path: Path) -> None:
    gateway.answers = [(202, b'{"message_id": 42}')]
    result = sms(gateway.url, tmp_path).send(text())
    assert (result.ok, result.provider_id, result.status) == (True, "42", 202)
    assert "status_url" not in orjson.loads(gateway.requests[0].body)


@pytest.mark.parametrize(
    ("status", "retry"), [(503, True), (500, True), (429, True), (400, False), (401, False)]
)
def test_answers_and_retries(gateway: Receiver, tmp_path: Path, status: int, retry: bool) -> None:
    gateway.answers = [(status, b'{"error": "nope"}')]
    result = sms(gateway.url, tmp_path).send(text())
    assert (result.ok, result.retry, result.status) == (False, retry, status)
    assert result.error.startswith(f"http_{status}: the SMS gateway answered HTTP {status}")
    assert "nope" in result.error


def test_a_redirect_is_not_followed(gateway: Receiver, tmp_path: Path) -> None:
    gateway.answers = [(301, b"")]
    result = sms(gateway.url, tmp_path).send(text())
    assert (result.ok, result.retry, result.status) == (False, False, 301)
    assert result.error.startswith("redirected:")
    assert len(gateway.requests) == 1


def test_no_answer_and_no_server(tmp_path: Path) -> None:
    slow = Receiver(delay=5)
    try:
        channel = SmsChannel(
            Settings.build(data_dir=tmp_path, sms_gateway_url=slow.url), timeout=0.3
        )
        result = channel.send(text())
        assert (result.ok, result.retry) == (False, True)
        assert result.error.startswith("timeout:")
    finally:
        slow.close()
    closed = sms(f"http://127.0.0.1:{free_port()}", tmp_path).send(text())
    assert (closed.ok, closed.retry) == (False, True)
    assert closed.error.startswith("connection_failed:")


def test_what_never_reaches_the_gateway(gateway: Receiver, tmp_path: Path) -> None:
    channel = sms(gateway.url, tmp_path)
    for bad in ("0401234567", "+358 40 123 4567", "anna@example.fi", "+0123456789"):
        result = channel.send(text(to=bad))
        assert (result.ok, result.retry) == (False, False)
        assert result.error.startswith("invalid_address:")
    empty = channel.send(text(text="  "))
    assert empty.error.startswith("invalid_message:")
    assert gateway.requests == []
    unset = SmsChannel(Settings.build(data_dir=tmp_path)).send(text())
    assert (unset.ok, unset.error, unset.retry) == (False, "channel_not_configured", False)
