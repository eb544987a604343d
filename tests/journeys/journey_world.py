"""A running Polku with a hand-moved journey clock and a real SMTP server (aiosmtpd) that
keeps what it received, for the journeys' tests."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi.testclient import TestClient

from conftest import Polku
from polku.app import create_app
from polku.events import to_iso
from polku.journeys.clock import ManualClock
from polku.runtime import Runtime
from polku.settings import Secret, Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Mailbox:
    """What the SMTP server received, message by message."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or envelope.content or b"")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


class Gateway:
    """A real HTTP server standing in for the SMS gateway: keeps every message posted."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received
        self.refuse = 0  # answer this many posts with 503 first (a gateway having trouble)
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = orjson.loads(raw)
                body["_idempotency_key"] = self.headers.get("Idempotency-Key")
                body["_signature"] = self.headers.get("Polku-Signature")
                body["_raw"] = raw
                body["_path"] = self.path
                if gateway.refuse > 0:
                    gateway.refuse -= 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                received.append(body)
                answer = orjson.dumps({"id": f"gw-{len(received)}"})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class World(Polku):
    clock: ManualClock = field(default_factory=ManualClock)
    mailbox: Mailbox = field(default_factory=Mailbox)
    gateway: Gateway | None = None

    def put_journey(self, document: dict[str, Any], *, enabled: bool = True) -> Any:
        response = self.client.put(
            f"/v1/journeys/{document['key']}",
            json=document,
            params={"enabled": str(enabled).lower()},
            headers=self.admin,
        )
        assert response.status_code in (200, 201), response.text
        return response.json()

    def event(self, body: dict[str, Any], *, kind: str = "track") -> None:
        body = {"messageId": uuid.uuid4().hex, "timestamp": to_iso(self.clock.now_ms()), **body}
        response = self.send(f"/v1/{kind}", body)
        assert response.status_code == 200, response.text

    def customer(
        self,
        user_id: str,
        *,
        email_address: str | None = None,
        phone: str | None = None,
        consent: dict[str, Any] | None = None,
        **traits: Any,
    ) -> None:
        found: dict[str, Any] = dict(traits)
        if email_address:
            found["email"] = email_address
        if phone:
            found["phone"] = phone
        if consent is not None:
            found["consent"] = consent
        self.event({"userId": user_id, "traits": found}, kind="identify")

    def profile_of(self, user_id: str) -> str:
        self.settle()
        response = self.client.get(
            "/v1/profiles/lookup",
            params={"type": "user_id", "value": user_id},
            headers=self.admin,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["profile_id"])

    def run(self) -> int:
        """Settle the pipeline, then run due waits and sends until nothing is left."""
        self.settle()
        runner = self.runtime.journeys
        assert runner is not None
        done = runner.run_once()
        self.settle()
        return done + runner.run_once()

    def trace(self, key: str, user_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"/v1/journeys/{key}/trace",
            params={"profile": self.profile_of(user_id)},
            headers=self.admin,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_for_mail(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.mailbox.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.mailbox.messages)} of {count} emails came")
            self.run()
            time.sleep(0.02)
        return self.mailbox.messages


def open_world(settings: Settings) -> Iterator[World]:
    """Body of a test module's `world` fixture (fixtures are not shared between modules
    here: there is one conftest.py)."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    # Start at a fixed weekday noon in Helsinki, so quiet hours never interfere unless asked.
    clock = ManualClock(_next_noon())
    gateway = Gateway()
    settings = settings.replace(
        smtp_url=_secret(f"smtp://127.0.0.1:{port}"),
        sms_gateway_url=gateway.url,
        sms_gateway_token=_secret("gateway-token"),
        journeys_tick=3600,
    )
    runtime = Runtime.open(settings, clock=clock)
    created = runtime.bootstrap()
    assert created is not None
    key, token = created
    app = create_app(settings, runtime)
    try:
        with TestClient(app) as client:
            world = World(
                runtime, client, key, token.token, clock=clock, mailbox=mailbox, gateway=gateway
            )
            world.client.put(
                "/v1/journeys/settings", json={"holdout_percent": 0}, headers=world.admin
            )
            yield world
    finally:
        runtime.close()
        controller.stop()
        gateway.close()


def _next_noon() -> int:
    """The journey clock's start: noon in Helsinki (outside quiet hours, a known time of
    day), and at least an hour ahead of real time. What the API stamps with real time (a
    staff claim, a stock receipt) must not lie in the clock's future, or a claim would not
    yet suppress and a movement's step would never fall due; so after 11:00 it is tomorrow's
    noon."""
    now = datetime.now(ZoneInfo("Europe/Helsinki"))
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    if noon - now < timedelta(hours=1):
        noon += timedelta(days=1)
    return int(noon.timestamp() * 1000)


def _secret(value: str) -> Secret:
    return Secret(value)
