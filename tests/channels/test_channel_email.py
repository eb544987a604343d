"""The email channel against a real SMTP server (aiosmtpd): a UTF-8 message with text and
HTML parts, a Message-ID that a resend repeats, RFC 8058 unsubscribe headers and extra
headers; a login; STARTTLS and implicit TLS with a real certificate; and what each SMTP
failure means for a retry (452, 550, a wrong password, a closed port)."""

from __future__ import annotations

import gc
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smtp_server import FULL, NOBODY, SmtpServer, free_port

from polku.channels.base import Message
from polku.channels.email import EmailChannel, message_id, parse_smtp_url
from polku.settings import Settings

TO = "anna.virtanen@example.fi"
UNSUBSCRIBE = "https://shop.example.fi/u/abc.def"


def mail(**fields: Any) -> Message:
    values: dict[str, Any] = {
        "channel": "email",
        "to": TO,
        "subject": "Ostoskorisi odottaa: Jäätelökone",
        "text": "Hei Anna!\nOstoskorissasi on yhä jäätelökone ja öljylamppu.",
        "html": "<p>Hei Anna!</p><p>Ostoskorissasi on yhä <b>jäätelökone</b> ja öljylamppu.</p>",
        "idempotency_key": "journey:abandoned-cart:v1:p_1:remind",
        "workspace_id": "default",
        "profile_id": "p_1",
        "locale": "fi",
        "unsubscribe_url": UNSUBSCRIBE,
        "headers": {"X-Polku-Journey": "abandoned-cart"},
    }
    values.update(fields)
    return Message(**values)


_OPEN: list[EmailChannel] = []


def channel(url: str, tmp_path: Path, **kwargs: Any) -> EmailChannel:
    settings = Settings.build(
        data_dir=tmp_path, smtp_url=url, smtp_from="Kauppa <kauppa@shop.example.fi>"
    )
    made = EmailChannel(settings, **kwargs)
    _OPEN.append(made)
    return made


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    """A connection left open shows up (a ResourceWarning) in the test that left it."""
    yield
    while _OPEN:
        _OPEN.pop().close()
    gc.collect()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    try:
        yield server
    finally:
        server.close()


def test_a_utf8_message_with_both_parts_and_the_headers(smtp: SmtpServer, tmp_path: Path) -> None:
    email = channel(f"smtp://127.0.0.1:{smtp.port}", tmp_path)
    assert email.name == "email"
    result = email.send(mail())
    assert result.ok, result.error
    assert result.provider_id == "Q0001"  # the server's queue id
    assert result.status == 250

    [got] = smtp.received
    assert got.sender == "kauppa@shop.example.fi"
    assert got.recipients == [TO]
    message = got.message
    assert message["Subject"] == "Ostoskorisi odottaa: Jäätelökone"
    assert message["From"] == "Kauppa <kauppa@shop.example.fi>"
    assert message["To"] == TO
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Polku-Journey"] == "abandoned-cart"
    assert message["Date"]
    assert message["Message-ID"] == message_id(mail().idempotency_key, "kauppa@shop.example.fi")
    assert message["Message-ID"].endswith("@shop.example.fi>")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content_charset() == "utf-8"
    body = text.get_content().replace("\r\n", "\n")  # lines end in CRLF on the wire
    assert body == "Hei Anna!\nOstoskorissasi on yhä jäätelökone ja öljylamppu.\n"
    assert "<b>jäätelökone</b> ja öljylamppu" in html.get_content()
    got.raw.decode("ascii")  # 7-bit on the wire: any server takes it


def test_a_resend_has_the_same_message_id(smtp: SmtpServer, tmp_path: Path) -> None:
    email = channel(f"smtp://127.0.0.1:{smtp.port}", tmp_path)
    assert email.send(mail()).ok
    assert email.send(mail()).ok
    assert email.send(mail(idempotency_key="journey:other")).ok
    ids = [r.message["Message-ID"] for r in smtp.received]
    assert ids[0] == ids[1] != ids[2]


def test_text_only_and_no_unsubscribe(smtp: SmtpServer, tmp_path: Path) -> None:
    email = channel(f"smtp://127.0.0.1:{smtp.port}", tmp_path)
    assert email.send(mail(html="", unsubscribe_url="", purpose="transactional", headers={})).ok
    message = smtp.received[0].message
    assert message.get_content_type() == "text/plain"
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None


def test_smtp_failures_and_their_retry(smtp: SmtpServer, tmp_path: Path) -> None:
    email = channel(f"smtp://127.0.0.1:{smtp.port}", tmp_path)
    full = email.send(mail(to=FULL))
    assert (full.ok, full.retry, full.status) == (False, True, 452)
    assert full.error.startswith("recipient_refused:") and "Mailbox full" in full.error
    nobody = email.send(mail(to=NOBODY))
    assert (nobody.ok, nobody.retry, nobody.status) == (False, False, 550)
    assert "No such user" in nobody.error
    assert smtp.received == []

    closed = channel(f"smtp://127.0.0.1:{free_port()}", tmp_path, timeout=5).send(mail())
    assert (closed.ok, closed.retry) == (False, True)
    assert closed.error.startswith("connection_failed:")


def test_bad_messages_and_no_configuration(smtp: SmtpServer, tmp_path: Path) -> None:
    email = channel(f"smtp://127.0.0.1:{smtp.port}", tmp_path)
    for bad in (
        mail(to="not an address"),
        mail(to="anna@example.fi, eve@example.fi"),
        mail(headers={"X-Note": "two\r\nBcc: eve@example.fi"}),
        mail(headers={"From": "eve@example.fi"}),
    ):
        result = email.send(bad)
        assert (result.ok, result.retry) == (False, False), bad
        assert result.error.split(":")[0] in ("invalid_address", "invalid_message"), result.error
    assert smtp.received == []

    unset = EmailChannel(Settings.build(data_dir=tmp_path)).send(mail())
    assert unset.ok is False
    assert unset.error == "channel_not_configured"
    assert unset.retry is False
    wrong = channel("http://127.0.0.1:25", tmp_path).send(mail())
    assert wrong.error.startswith("channel_not_configured:") and "smtp://" in wrong.error


def test_the_smtp_url() -> None:
    target = parse_smtp_url("smtps://user%40shop:p%C3%A4ss@mail.example.fi")
    assert (target.host, target.port, target.implicit_tls) == ("mail.example.fi", 465, True)
    assert (target.username, target.password) == ("user@shop", "päss")
    assert "päss" not in repr(target)
    assert parse_smtp_url("smtp://mail.example.fi").port == 587
    assert parse_smtp_url("smtp://mail.example.fi:2525").port == 2525


def test_a_login(tmp_path: Path) -> None:
    server = SmtpServer(login=("shop", "s3cret"))
    try:
        ok = channel(f"smtp://shop:s3cret@127.0.0.1:{server.port}", tmp_path).send(mail())
        assert ok.ok, ok.error
        assert server.sink.logins == ["shop"]
        bad = channel(f"smtp://shop:wrong@127.0.0.1:{server.port}", tmp_path).send(mail())
        assert (bad.ok, bad.retry, bad.status) == (False, False, 535)
        assert "login" in bad.error
        assert len(server.received) == 1
    finally:
        server.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the TLS tests make their certificate with the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_starttls_when_offered(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    server_ctx, client_ctx = _contexts(certificate)
    server = SmtpServer(login=("shop", "s3cret"), tls_context=server_ctx)
    try:  # the server requires STARTTLS and refuses a login before it
        url = f"smtp://shop:s3cret@127.0.0.1:{server.port}"
        result = channel(url, tmp_path, tls_context=client_ctx).send(mail())
        assert result.ok, result.error
        assert server.sink.logins == ["shop"]
        # a certificate the client does not trust: no mail, and it is not the address's fault
        untrusted = channel(url, tmp_path).send(mail())
        assert (untrusted.ok, untrusted.retry) == (False, True)
        assert len(server.received) == 1
    finally:
        server.close()


def test_implicit_tls(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    server_ctx, client_ctx = _contexts(certificate)
    server = SmtpServer(tls_context=server_ctx, implicit_tls=True)
    try:
        url = f"smtps://127.0.0.1:{server.port}"
        result = channel(url, tmp_path, tls_context=client_ctx).send(mail())
        assert result.ok, result.error
        assert server.received[0].message["Subject"].startswith("Ostoskorisi")
    finally:
        server.close()
