"""An in-process production-mode Polku for tests: the API on a NATS log, and workers.

The API runtime appends to a JetStream stream of the test's own (a unique name and subject
prefix on the real NATS server, deleted afterwards); workers run in threads of the test
process, on the test's own PostgreSQL schema. Tests that kill processes use real
`polku serve` / `polku worker` processes instead (see `processes.py`).

Imported as ``from cluster import ...`` (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.js.errors
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from conftest import NATS_URL, require_nats
from polku.app import create_app
from polku.identity.identifiers import IdentityConfig
from polku.log.tables import log_events
from polku.pipeline import checkpoints
from polku.pipeline.worker import ARCHIVE, Worker
from polku.runtime import Runtime, consumers, migrate, nats_log
from polku.settings import Settings

__all__ = ["Production", "delete_stream", "production_settings", "running"]


def production_settings(postgres_url: str, nats_url: str = NATS_URL, **values: Any) -> Settings:
    """Settings of a fresh production-mode Polku: its own stream, 4 partitions, short leases."""
    tag = uuid.uuid4().hex[:10]
    values.setdefault("partitions", 4)
    values.setdefault("lease_seconds", 2.0)
    values.setdefault("worker_batch", 50)
    return Settings.build(
        database_url=postgres_url,
        log_url=nats_url,
        nats_stream=f"TEST_{tag}",
        nats_subject_prefix=f"t{tag}.events",
        **values,
    )


def delete_stream(settings: Settings) -> None:
    async def run() -> None:
        nc = await nats.connect(settings.log_url.split(",")[0], connect_timeout=2)
        try:
            await nc.jetstream().delete_stream(settings.nats_stream)
        except nats.js.errors.NotFoundError:
            pass
        finally:
            await nc.close()

    asyncio.run(run())


@dataclass
class Production:
    """The API (an in-process client) and any number of worker threads."""

    settings: Settings
    runtime: Runtime
    client: TestClient
    write_key: str
    admin_token: str
    workers: dict[str, tuple[Worker, threading.Thread]] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def send(self, *messages: dict[str, Any]) -> Any:
        response = self.client.post(
            "/v1/batch", json={"batch": list(messages)}, auth=(self.write_key, "")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("accepted") == len(messages), body
        return body

    def start_worker(self, name: str) -> Worker:
        identity = IdentityConfig(
            default_region=self.settings.phone_region,
            shared_devices=self.settings.shared_devices,
        )
        log = nats_log(self.settings)
        worker = Worker(
            self.engine,
            log,
            lambda: consumers(identity),
            worker_id=name,
            lease_seconds=self.settings.lease_seconds,
            batch=self.settings.worker_batch,
        )

        def run() -> None:
            try:
                worker.run()
            finally:
                log.close()

        thread = threading.Thread(target=run, name=f"test-worker-{name}", daemon=True)
        self.workers[name] = (worker, thread)
        thread.start()
        assert worker.ready.wait(10), f"worker {name} never heartbeat"
        return worker

    def stop_worker(self, name: str) -> None:
        worker, thread = self.workers.pop(name)
        worker.stop()
        thread.join(30)
        assert not thread.is_alive(), f"worker {name} did not stop"

    def stored(self) -> int:
        """Events copied into PostgreSQL."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(log_events)).scalar_one())

    def caught_up(self) -> bool:
        """Whether every partition's consumers have processed everything copied so far."""
        names = [c.name for c in consumers(IdentityConfig())]
        with self.engine.connect() as conn:
            for p in range(self.settings.partitions):
                copied = checkpoints.read(conn, checkpoints.scoped(ARCHIVE, p))
                done = checkpoints.read_many(conn, [checkpoints.scoped(n, p) for n in names])
                if any(offset < copied for offset in done.values()):
                    return False
        return True

    def settle(self, events: int, timeout: float = 30.0) -> None:
        """Wait until `events` events are in PostgreSQL and fully projected."""
        deadline = time.monotonic() + timeout
        while not (self.stored() >= events and self.caught_up()):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not settled after {timeout} s: {self.stored()} of {events} stored, "
                    f"caught up: {self.caught_up()}"
                )
            time.sleep(0.05)


@contextmanager
def running(settings: Settings) -> Iterator[Production]:
    """Migrate, start the API and yield; stop every worker and delete the stream after."""
    require_nats()
    migrate(settings)
    runtime = Runtime.open(settings)
    created = runtime.bootstrap()
    assert created is not None
    key, token = created
    app = create_app(settings, runtime)
    production: Production | None = None
    try:
        with TestClient(app) as client:
            production = Production(settings, runtime, client, key, token.token)
            yield production
    finally:
        if production is not None:
            for name in list(production.workers):
                production.stop_worker(name)
        runtime.close()
        delete_stream(settings)
