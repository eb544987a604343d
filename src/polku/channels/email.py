"""Journey email over SMTP (aiosmtplib): one MIME message per send, text with an HTML
alternative, in UTF-8.

`POLKU_SMTP_URL` says where: ``smtp://user:password@host:port`` (port 587 by default)
upgrades to TLS with STARTTLS whenever the server offers it; ``smtps://...`` (port 465)
speaks TLS from the first byte. The ``Message-ID`` is derived from the send's idempotency
key, so a message sent again after a crash carries the same id and a mailbox can tell it is
the same message. A marketing message carries ``List-Unsubscribe`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), which mail providers
show as an unsubscribe button and which bulk senders must have.

`send` blocks, as the journeys' sender threads call it: it runs the SMTP conversation on
the channel's own event loop, in a thread of its own. SMTP's answer decides `retry`: a 4xx
reply or no connection may work later, a 5xx will not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import re
import ssl
import threading
from collections.abc import Coroutine
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import aiosmtplib

from polku.channels.base import ChannelName, Message, SendResult
from polku.settings import Settings

__all__ = ["EmailChannel", "SmtpTarget", "build_message", "message_id", "parse_smtp_url"]

_PORTS: Final = {"smtp": 587, "smtps": 465}
_QUEUED: Final = re.compile(r"queued as\s+<?([^\s>]+)", re.IGNORECASE)
# Headers the channel writes itself; a message's extra headers may not replace them.
_RESERVED: Final = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-unsubscribe",
        "list-unsubscribe-post",
    }
)


class SmtpTarget:
    """Where and how to connect, read from `POLKU_SMTP_URL`."""

    __slots__ = ("host", "implicit_tls", "password", "port", "username")

    def __init__(
        self, host: str, port: int, username: str, password: str, implicit_tls: bool
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.implicit_tls = implicit_tls

    def __repr__(self) -> str:  # never the password
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"SmtpTarget({scheme}://{self.host}:{self.port})"


def parse_smtp_url(url: str) -> SmtpTarget:
    """`url` read as ``smtp://`` or ``smtps://``; ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in _PORTS:
        raise ValueError(
            f"POLKU_SMTP_URL must start with smtp:// or smtps:// (got {parts.scheme or 'none'}://)"
        )
    if not parts.hostname:
        raise ValueError("POLKU_SMTP_URL names no host: use smtp://user:password@host:587")
    try:
        port = parts.port or _PORTS[parts.scheme]
    except ValueError:
        raise ValueError("POLKU_SMTP_URL has a port that is not a number") from None
    return SmtpTarget(
        parts.hostname,
        port,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        parts.scheme == "smtps",
    )


def message_id(idempotency_key: str, sender: str) -> str:
    """The ``Message-ID`` of the send with `idempotency_key`: the same key, the same id."""
    _, address = parseaddr(sender)
    domain = address.rpartition("@")[2] or "polku.invalid"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def build_message(message: Message, sender: str) -> EmailMessage:
    """The MIME message for `message` from `sender`; ValueError for a header that cannot
    be sent (a line break in a value, a header the channel writes itself)."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(message.idempotency_key, sender)
    if message.unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in message.headers.items():
        if name.lower() in _RESERVED:
            raise ValueError(f"header {name} is written by the email channel; leave it out")
        mail[name] = value
    # quoted-printable keeps the body 7-bit, so servers without 8BITMIME take it too
    mail.set_content(message.text, charset="utf-8", cte="quoted-printable")
    if message.html:
        mail.add_alternative(message.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return mail


def _refused(exc: aiosmtplib.SMTPResponseException, what: str) -> SendResult:
    temporary = 400 <= exc.code < 500
    return SendResult(
        ok=False,
        error=f"smtp_{exc.code}: the SMTP server {what} ({exc.code} {exc.message})",
        retry=temporary,
        status=exc.code,
    )


class _Loop:
    """One event loop on a daemon thread of its own, started on first use.

    Every send of a channel runs on it, from whichever sender thread calls, so a closing
    TLS connection finishes its close_notify exchange on a loop that keeps running (a
    loop per call, ended with the call, would leave those sockets open).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def submit(self, coro: Coroutine[Any, Any, str]) -> concurrent.futures.Future[str]:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="polku-email", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()


class EmailChannel:
    """Sends through the SMTP server of `settings.smtp_url`, from `settings.smtp_from`.

    `tls_context` replaces the default certificate checks (a private CA, say).
    """

    name: ChannelName = "email"

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._url = settings.smtp_url.reveal()
        self._sender = settings.smtp_from
        self._timeout = timeout
        self._tls_context = tls_context
        self._loop = _Loop()

    def close(self) -> None:
        """Stop the channel's event loop thread (a later send starts a new one)."""
        self._loop.close()

    async def _send(self, target: SmtpTarget, mail: EmailMessage, to: str) -> str:
        client = aiosmtplib.SMTP(
            hostname=target.host,
            port=target.port,
            username=target.username or None,
            password=target.password or None,
            use_tls=target.implicit_tls,
            start_tls=False if target.implicit_tls else None,  # None: when offered
            tls_context=self._tls_context,
            timeout=self._timeout,
        )
        # Not `aiosmtplib.send`: it leaves the socket open when the TLS handshake fails.
        try:
            await client.connect()
            _, answer = await client.send_message(
                mail, sender=parseaddr(self._sender)[1] or None, recipients=[to]
            )
            transport = client.transport  # the TLS one, after STARTTLS
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
            if isinstance(transport, asyncio.Transport):
                # The message is taken (250) and the session over (221): no need to wait
                # for a close_notify the server may never send (asyncio would wait 30 s).
                transport.abort()
            return answer
        finally:
            client.close()

    def send(self, message: Message) -> SendResult:
        """Deliver `message` to the SMTP server; never raises."""
        if not self._url:
            return SendResult(ok=False, error="channel_not_configured", retry=False)
        try:
            target = parse_smtp_url(self._url)
        except ValueError as exc:
            return SendResult(ok=False, error=f"channel_not_configured: {exc}", retry=False)
        _, address = parseaddr(message.to)
        if "@" not in address or address != message.to.strip():
            return SendResult(
                ok=False,
                error=f"invalid_address: {message.to[:80]!r} is not an email address",
                retry=False,
            )
        try:
            Address(addr_spec=address)
            mail = build_message(message, self._sender)
        except (ValueError, TypeError) as exc:  # email's header parser raises both
            return SendResult(ok=False, error=f"invalid_message: {exc}", retry=False)
        try:
            future = self._loop.submit(self._send(target, mail, address))
            try:  # aiosmtplib times out each step; this bounds the whole conversation
                answer = future.result(timeout=self._timeout * 4)
            except TimeoutError:
                future.cancel()
                raise
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients] or [550]
            temporary = all(400 <= code < 500 for code in codes)
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            return SendResult(
                ok=False,
                error=f"recipient_refused: the SMTP server refused {address} ({detail})",
                retry=temporary,
                status=codes[0],
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            return _refused(exc, "refused the login in POLKU_SMTP_URL")
        except aiosmtplib.SMTPSenderRefused as exc:
            return _refused(exc, f"refused the sender {self._sender!r} (POLKU_SMTP_FROM)")
        except aiosmtplib.SMTPResponseException as exc:
            return _refused(exc, "refused the message")
        except aiosmtplib.SMTPNotSupported as exc:
            return SendResult(
                ok=False,
                error=f"smtp_not_supported: {exc} (check POLKU_SMTP_URL: smtp:// or smtps://, "
                "and whether the server needs a login)",
                retry=False,
            )
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
            return SendResult(
                ok=False,
                error=f"timeout: the SMTP server at {target.host}:{target.port} did not "
                f"answer within {self._timeout:g} s ({exc})",
                retry=True,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:  # refused, reset, TLS failure
            return SendResult(
                ok=False,
                error=f"connection_failed: could not talk to the SMTP server at "
                f"{target.host}:{target.port} ({exc})",
                retry=True,
            )
        queued = _QUEUED.search(answer)
        provider_id = queued.group(1) if queued else str(mail["Message-ID"]).strip("<>")
        return SendResult(ok=True, provider_id=provider_id, status=250)
