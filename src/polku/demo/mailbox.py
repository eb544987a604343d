"""The demo's mailbox: a local SMTP server (aiosmtpd) that keeps every email journeys send.

`polku demo` starts it when no POLKU_SMTP_URL is set and points the journeys at it, so a
newcomer can read what went out: each message is a ``.eml`` file in the folder (any mail
program opens it), and ``index.txt`` lists them, one line each: time, recipient, subject.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
import socket
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["DemoMailbox"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DemoMailbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.count = 0
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-connection lines
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        to = ", ".join(str(a) for a in envelope.rcpt_tos)
        with self._lock:
            self.count += 1
            safe = re.sub(r"[^A-Za-z0-9@._-]+", "_", to)[:60]
            name = f"{self.count:05d}-{safe}.eml"
            (self.folder / name).write_bytes(raw)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            with (self.folder / "index.txt").open("a", encoding="utf-8") as index:
                index.write(f"{stamp}  {to}  {message['Subject']}  ({name})\n")
        return "250 OK"
