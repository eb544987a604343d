"""Journeys survive SIGKILL: thousands of people wait in a journey, `polku serve` and its
pipeline process are killed with SIGKILL while the reminders go out, and after a restart
every person gets their email (none lost) and nobody gets it twice, but for the messages
that were being handed to the SMTP server at the instant of the kill: those are resent
with the same Message-ID, which is what a mail server deduplicates on (docs/journeys.md).
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from polku_server import PolkuServer, free_port, polku_servers

PEOPLE = 1500
SENDER_THREADS = 4  # polku.journeys.sender.Sender's default pool

JOURNEY = {
    "key": "reminder",
    "trigger": {"event": "Ping"},
    "steps": [
        {"id": "wait", "wait": "3s"},
        {
            "id": "mail",
            "send": "email",
            "purpose": "transactional",
            "content": {"en": {"subject": "Reminder", "text": "Hello {{ profile.traits.n }}"}},
        },
    ],
}


class Sink:
    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or envelope.content or b"")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self.lock:
            self.ids[str(message["Message-ID"])] += 1
        return "250 OK"

    def distinct(self) -> int:
        with self.lock:
            return len(self.ids)


def _load(server: PolkuServer) -> None:
    with httpx.Client(base_url=server.url, auth=(server.write_key, ""), timeout=30) as client:
        for start in range(0, PEOPLE, 100):
            batch: list[dict[str, Any]] = []
            for n in range(start, min(start + 100, PEOPLE)):
                user = f"person-{n}"
                batch.append(
                    {
                        "type": "identify",
                        "userId": user,
                        "traits": {"email": f"{user}@example.fi", "n": n},
                    }
                )
                batch.append({"type": "track", "userId": user, "event": "Ping"})
            response = client.post("/v1/batch", json={"batch": batch})
            assert response.status_code == 200, response.text


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_waiting_people_survive_sigkill_and_nobody_gets_it_twice(tmp_path: Path) -> None:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    env = {"POLKU_SMTP_URL": f"smtp://127.0.0.1:{port}", "POLKU_JOURNEYS_TICK": "0.05"}
    try:
        with polku_servers(tmp_path) as start:
            server = start(env=env)
            admin = {"Authorization": f"Bearer {server.admin_token}"}
            httpx.put(
                f"{server.url}/v1/journeys/settings", json={"holdout_percent": 0}, headers=admin
            ).raise_for_status()
            saved = httpx.put(
                f"{server.url}/v1/journeys/reminder",
                json=JOURNEY,
                params={"enabled": "true"},
                headers=admin,
            )
            assert saved.status_code == 201, saved.text
            _load(server)
            # Kill while the reminders go out: some sent, most not yet.
            _wait(lambda: sink.distinct() >= PEOPLE // 10, 120, "the first reminders")
            assert server.children(), "the pipeline runs in a child process"
            server.kill(children=True)
            before = sink.distinct()
            assert before < PEOPLE, "killed too late to test anything"
            server.start()
            _wait(lambda: sink.distinct() >= PEOPLE, 180, "every reminder after the restart")
            time.sleep(1.0)  # anything sent twice would arrive now
            counts = sink.ids
            assert len(counts) == PEOPLE
            twice = [mid for mid, n in counts.items() if n > 1]
            assert len(twice) <= SENDER_THREADS, twice
            assert all(n <= 2 for n in counts.values())
            status = httpx.get(f"{server.url}/v1/journeys/reminder/stats", headers=admin).json()
            assert status["enrolled"] == PEOPLE
            assert status["status"] == {"finished": PEOPLE}
            sends = {s["step"]: s["sends"] for s in status["steps"]}
            assert sends["mail"] == {"sent": PEOPLE}
    finally:
        controller.stop()
