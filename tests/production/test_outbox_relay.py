"""The production mode's outbox: a decision recorded in a transaction is published to NATS
after the commit, and by the partition's worker if the recording process never got to it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from cluster import Production, production_settings, running
from sqlalchemy import func, select

from log.test_outbox import decided, logged
from polku.log.outbox import stage
from polku.log.tables import outbox
from polku.runtime import Runtime

pytestmark = pytest.mark.postgres


@pytest.fixture
def production(postgres_url: str) -> Iterator[Production]:
    with running(production_settings(postgres_url)) as cluster:
        yield cluster


def wait_logged(runtime: Runtime, message_id: str, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while (count := logged(runtime, message_id)) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def test_production_publishes_a_decision_after_the_commit(production: Production) -> None:
    production.start_worker("w1")
    event = decided("outbox-nats")
    with production.runtime.outbox.transaction() as tx:
        tx.record(event)
    assert wait_logged(production.runtime, event.message_id) == 1
    with production.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0


def test_production_relays_what_a_dead_process_committed_but_never_published(
    production: Production,
) -> None:
    # A process that died right after its commit: the event sits in the outbox only.
    event = decided("outbox-orphan")
    with production.runtime.engine.begin() as conn:
        stage(conn, [event], production.settings.partitions)
    production.start_worker("w1")
    assert wait_logged(production.runtime, event.message_id) == 1
    deadline = time.monotonic() + 10
    while True:
        with production.engine.connect() as conn:
            left = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert left == 0
