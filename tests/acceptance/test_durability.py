"""An acknowledged event is never lost: SIGKILL `polku serve` under load and count.

Several threads post batches as fast as the server takes them and remember which messageIds
got a 2xx. The server is killed with SIGKILL in the middle of that, restarted on the same
database, and every acknowledged messageId must be in the log exactly once. Resending what
was never acknowledged (as an SDK would) then stores each of those once too.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from polku_server import PolkuServer, polku_servers

pytestmark = pytest.mark.slow

THREADS = 6
BATCH = 50
KILL_AFTER_EVENTS = 8000  # acknowledged events before the kill ...
KILL_AFTER_SECONDS = 6.0  # ... or this long, whichever comes first
LOAD_DEADLINE = 15.0  # a sender never runs longer than this


@dataclass
class Load:
    """What the senders saw; lists are appended to from several threads (GIL-atomic)."""

    acked: list[str] = field(default_factory=list)
    unacked: list[list[dict[str, Any]]] = field(default_factory=list)  # batches to resend
    transport_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def _batch(sender: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "userId": f"durable-{sender}-{n % 7}",
            "event": "Product Viewed",
            "messageId": str(uuid.uuid4()),
            "properties": {"product_id": f"sku-{n}", "price": 12.9},
        }
        for n in range(BATCH)
    ]


def _send(server: PolkuServer, sender: int, load: Load) -> None:
    deadline = time.monotonic() + LOAD_DEADLINE
    with httpx.Client(base_url=server.url, auth=(server.write_key, ""), timeout=10.0) as client:
        while time.monotonic() < deadline:
            batch = _batch(sender)
            try:
                response = client.post("/v1/batch", json={"batch": batch})
            except httpx.TransportError as exc:  # the kill: this request may or may not be in
                load.unacked.append(batch)
                load.transport_errors.append(repr(exc))
                return
            if response.status_code == 200 and response.json().get("accepted") == BATCH:
                load.acked.extend(m["messageId"] for m in batch)
            else:
                load.unacked.append(batch)
                load.unexpected.append(f"{response.status_code} {response.text[:300]}")


def _log_counts(url: str, message_ids: list[str]) -> dict[str, int]:
    """How often each of `message_ids` is in log_events, read straight from the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT message_id, COUNT(*) FROM log_events GROUP BY message_id")
            ).all()
    finally:
        engine.dispose()
    counts = {str(message_id): int(count) for message_id, count in rows}
    return {m: counts.get(m, 0) for m in message_ids}


def _kill_under_load(server: PolkuServer) -> Load:
    load = Load()
    senders = [
        threading.Thread(target=_send, args=(server, n, load), name=f"sender-{n}")
        for n in range(THREADS)
    ]
    for sender in senders:
        sender.start()
    started = time.monotonic()
    while len(load.acked) < KILL_AFTER_EVENTS and time.monotonic() - started < KILL_AFTER_SECONDS:
        time.sleep(0.01)
    server.kill()
    for sender in senders:
        sender.join(timeout=LOAD_DEADLINE)
    assert not any(sender.is_alive() for sender in senders)
    return load


def _check(server: PolkuServer, database_url: str) -> None:
    load = _kill_under_load(server)
    assert load.unexpected == [], load.unexpected[:5]
    assert load.acked, "no batch was acknowledged before the kill"
    # Every sender was cut off by the kill, not by its deadline: the kill came mid-load.
    assert len(load.transport_errors) == THREADS, load.transport_errors

    server.start()  # the same database, recovered after the crash
    counts = _log_counts(database_url, load.acked)
    lost = [m for m, n in counts.items() if n == 0]
    doubled = [m for m, n in counts.items() if n > 1]
    assert lost == [], f"{len(lost)} of {len(load.acked)} acknowledged events lost"
    assert doubled == [], f"{len(doubled)} acknowledged events stored twice"

    # The SDKs retry what was not acknowledged; the log keeps each messageId once.
    with httpx.Client(base_url=server.url, auth=(server.write_key, ""), timeout=10.0) as client:
        for batch in load.unacked:
            response = client.post("/v1/batch", json={"batch": batch})
            assert response.status_code == 200, response.text
    resent = [m["messageId"] for batch in load.unacked for m in batch]
    everything = _log_counts(database_url, load.acked + resent)
    assert set(everything.values()) == {1}
    health = httpx.get(f"{server.url}/health").json()
    assert health["log_head"] >= len(everything)


def test_acknowledged_events_survive_sigkill_on_sqlite(tmp_path: Path) -> None:
    with polku_servers(tmp_path) as start:
        server = start()  # SQLite, POLKU_SQLITE_SYNCHRONOUS at its default (FULL)
        _check(server, f"sqlite:///{server.log_sqlite_path}")


@pytest.mark.postgres
def test_acknowledged_events_survive_sigkill_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    with polku_servers(tmp_path) as start:
        server = start(database_url=postgres_url)
        _check(server, postgres_url)
