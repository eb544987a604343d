"""A decision and its events commit together (`polku.log.outbox`), in both modes.

The events are staged in the outbox in the decision's transaction and appended to the log
right after the commit; the production mode's relay: tests/production/test_outbox_relay.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from conftest import Polku
from polku.collect.validate import prepare
from polku.events import NewEvent
from polku.identity.identifiers import IdentityConfig
from polku.log.tables import log_events
from polku.runtime import Runtime
from polku.storage.engine import writing

decisions_metadata = MetaData()
decisions = Table(
    "test_decisions",
    decisions_metadata,
    Column("id", Integer, primary_key=True),
    Column("what", String(50), nullable=False),
)


def decided(user: str, event: str = "Reservation Decided") -> NewEvent:
    return prepare(
        {"type": "track", "userId": user, "event": event, "messageId": f"d-{uuid.uuid4().hex}"},
        implied_type=None,
        received_at=int(time.time() * 1000),
        batch_sent_at=None,
        workspace_id="default",
        source_id="",
        max_event_bytes=32 * 1024,
        identity=IdentityConfig(),
    )


def logged(runtime: Runtime, message_id: str) -> int:
    with runtime.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(log_events)
                .where(log_events.c.message_id == message_id)
            ).scalar_one()
        )


@pytest.fixture
def with_decisions(polku: Polku) -> Iterator[Polku]:
    # BEGIN IMMEDIATE: a plain transaction that reads the schema first cannot upgrade to a
    # write while the pipeline commits ("database is locked" at once, no busy wait).
    with writing(polku.runtime.engine) as conn:
        decisions_metadata.create_all(conn)
    yield polku


def test_a_committed_decision_is_in_the_log_and_projected(with_decisions: Polku) -> None:
    polku = with_decisions
    event = decided("outbox-user")
    with polku.runtime.outbox.transaction() as tx:
        tx.conn.execute(insert(decisions).values(what="reserved"))
        tx.record(event)
    assert logged(polku.runtime, event.message_id) == 1
    polku.settle()
    response = polku.client.get(
        "/v1/profiles/lookup",
        params={"type": "user_id", "value": "outbox-user"},
        headers=polku.admin,
    )
    assert response.status_code == 200 and response.json()["event_count"] == 1


def test_a_rolled_back_decision_leaves_no_event(with_decisions: Polku) -> None:
    polku = with_decisions
    event = decided("outbox-rollback")
    with (
        pytest.raises(RuntimeError, match="changed my mind"),
        polku.runtime.outbox.transaction() as tx,
    ):
        tx.conn.execute(insert(decisions).values(what="reserved"))
        tx.record(event)
        raise RuntimeError("changed my mind")
    assert logged(polku.runtime, event.message_id) == 0
    with polku.runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(decisions)).scalar_one() == 0
