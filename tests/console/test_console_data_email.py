"""The channel page's test email goes through the configured SMTP server (a real aiosmtpd
on a free local port) to the signed-in admin, and the page says so."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from console_world import csrf_of, signed_in, user
from fastapi.testclient import TestClient

from conftest import Polku
from polku.app import create_app
from polku.runtime import Runtime
from polku.settings import Secret, Settings


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def mailed(settings: Settings) -> Iterator[tuple[Polku, Mailbox]]:
    mailbox, port = Mailbox(), _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings = settings.replace(smtp_url=Secret(f"smtp://127.0.0.1:{port}"))
    runtime = Runtime.open(settings)
    created = runtime.bootstrap()
    assert created is not None
    try:
        with TestClient(create_app(settings, runtime)) as client:
            yield Polku(runtime, client, created[0], created[1].token), mailbox
    finally:
        runtime.close()
        controller.stop()


def test_the_test_email_reaches_the_admin_and_the_url_is_never_shown(
    mailed: tuple[Polku, Mailbox],
) -> None:
    polku, mailbox = mailed
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    page = admin.get("/console/data/channels")
    assert "Set (hidden)" in page.text and "smtp://127.0.0.1" not in page.text
    assert "The environment" in page.text
    sent = admin.post("/console/data/channels/test-email", data={"csrf_token": csrf_of(page.text)})
    assert sent.status_code == 200 and "A test email was sent to ada@example.com" in sent.text
    assert [to for to, _ in mailbox.messages] == [["ada@example.com"]]
    assert mailbox.messages[0][1]["Subject"] == "Polku test email"
