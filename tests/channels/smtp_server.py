"""A real SMTP server (aiosmtpd) on a free local port that keeps what it received, and
refuses the recipients the tests use to provoke temporary and permanent failures."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

FULL = "full@example.fi"  # 452: mailbox full, try later
NOBODY = "nobody@example.fi"  # 550: no such user


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes


@dataclass
class Sink:
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == FULL:
            return "452 4.2.2 Mailbox full, try again later"
        if address == NOBODY:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or envelope.content or b"")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), message, raw)
        )
        return f"250 2.0.0 OK queued as Q{len(self.received):04d}"


class SmtpServer:
    """`Controller` around `Sink`; with `login`, AUTH is required (user, password)."""

    def __init__(
        self,
        *,
        login: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.sink = Sink()
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if login is not None:
            user, password = login

            def authenticate(
                server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
            ) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (
                    data.login.decode(),
                    data.password.decode(),
                ) == (user, password)
                if ok:
                    self.sink.logins.append(data.login.decode())
                return AuthResult(success=ok, handled=False)

            # Without TLS, AUTH is offered but not required (aiosmtpd warns otherwise).
            kwargs["authenticator"] = authenticate
            kwargs["auth_required"] = kwargs["auth_require_tls"] = tls_context is not None
        if tls_context is not None and not implicit_tls:
            kwargs["tls_context"] = tls_context
            kwargs["require_starttls"] = True
        if implicit_tls:
            kwargs["ssl_context"] = tls_context
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    @property
    def received(self) -> list[Received]:
        return self.sink.received

    def close(self) -> None:
        self.controller.stop()
