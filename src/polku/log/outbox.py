"""Recording the facts of a decision in the transaction that makes it.

Most events arrive from outside and are simply appended. Some are decided by Polku itself
against current state: a reservation takes the last two units of a jacket, a gift card pays
part of an order. Such a decision and its event must commit together: a reservation whose
event is lost would never reach the profiles, journeys or signals; an event whose
reservation was rolled back would announce stock that is not held.

    with outbox.transaction() as tx:          # one database transaction
        ...lock rows, check, write state...
        tx.record(event)                      # the event, in the same transaction
    # committed: the event is durable; in the production mode it is also published by now

- **Embedded mode**: the log is a table in the same database, so `record`ed events are
  inserted into it in the transaction itself (`SqlLog.append_within`), last, because on
  PostgreSQL the insert holds the lock that orders appends until the commit.
- **Production mode**: the log is NATS, outside the transaction; the events go into the
  `log_outbox` table in the transaction, are published to the stream right after the
  commit (and acknowledged by JetStream), then deleted from the outbox. If the process dies
  between the commit and the publish, the worker that holds the event's partition publishes
  it (`Relay`, a few seconds later); JetStream's and PostgreSQL's messageId deduplication
  make a double publish harmless.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, delete, insert, select

from polku.errors import Unavailable
from polku.events import NewEvent
from polku.log.nats import NatsLog, partition_of
from polku.log.sql import SqlLog
from polku.log.tables import outbox
from polku.storage.engine import translate_errors, writing

__all__ = ["NatsOutbox", "Outbox", "Relay", "TableOutbox", "Transaction"]

logger = logging.getLogger(__name__)

_COLUMNS = (
    "workspace_id",
    "source_id",
    "message_id",
    "type",
    "event",
    "partition_key",
    "received_at",
    "timestamp",
    "payload",
)


@dataclass
class Transaction:
    """A write transaction on the state database that can record events."""

    conn: Connection
    events: list[NewEvent] = field(default_factory=list)

    def record(self, *events: NewEvent) -> None:
        """Make `events` part of this transaction: in the log exactly when it commits."""
        self.events.extend(events)


class Outbox(Protocol):
    def transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """A write transaction whose recorded events commit with it (see the module doc)."""
        ...


class TableOutbox:
    """The embedded mode: the log is a table of the same database."""

    def __init__(self, engine: Engine, log: SqlLog) -> None:
        self._engine = engine
        self._log = log

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with translate_errors("recording a decision"), writing(self._engine) as conn:
            tx = Transaction(conn)
            yield tx
            if tx.events:
                self._log.append_within(conn, tx.events)
        if tx.events:
            self._log.appended()


class NatsOutbox:
    """The production mode: an outbox table, published to NATS right after the commit."""

    def __init__(self, engine: Engine, log: NatsLog) -> None:
        self._engine = engine
        self._log = log

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with translate_errors("recording a decision"), writing(self._engine) as conn:
            tx = Transaction(conn)
            yield tx
            ids = _stage(conn, tx.events, self._log.partitions)
        if ids:
            try:
                self._log.append_sync(tx.events)
            except Unavailable as exc:  # committed and safe in the outbox: the relay sends it
                logger.warning(
                    "published %d recorded event(s) later: %s", len(ids), exc, extra={"ids": ids}
                )
                return
            with contextlib.suppress(Unavailable):  # else the relay deletes them after sending
                _delete(self._engine, ids)


def _stage(conn: Connection, events: Sequence[NewEvent], partitions: int) -> list[int]:
    if not events:
        return []
    now = int(time.time() * 1000)
    ids: list[int] = []
    for e in events:  # one by one for the ids: decisions record an event or two, not batches
        values = {column: getattr(e, column) for column in _COLUMNS}
        row = conn.execute(
            insert(outbox)
            .values(partition=partition_of(e.partition_key, partitions), created_at=now, **values)
            .returning(outbox.c.id)
        )
        ids.append(int(row.scalar_one()))
    return ids


def _event(row: Any) -> NewEvent:
    values = {column: getattr(row, column) for column in _COLUMNS}
    values["payload"] = bytes(values["payload"])
    return NewEvent(**values)


def _delete(engine: Engine, ids: Sequence[int]) -> None:
    with translate_errors("clearing the outbox"), writing(engine) as conn:
        conn.execute(delete(outbox).where(outbox.c.id.in_(list(ids))))


class Relay:
    """Publishes one partition's outbox entries that their recording process did not get to
    publish (it died after the commit), oldest first; run by the partition's owner."""

    def __init__(self, engine: Engine, log: NatsLog, partition: int, *, grace: float = 2.0) -> None:
        self._engine = engine
        self._log = log
        self._partition = partition
        self._grace_ms = int(grace * 1000)

    def run_once(self, limit: int = 500) -> int:
        """Publish and delete what is older than the grace time; return how many."""
        cutoff = int(time.time() * 1000) - self._grace_ms
        with translate_errors("reading the outbox"), self._engine.connect() as conn:
            rows = conn.execute(
                select(outbox)
                .where(outbox.c.partition == self._partition, outbox.c.created_at <= cutoff)
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
        if not rows:
            return 0
        events = [_event(r) for r in rows]
        self._log.append_sync(events)
        _delete(self._engine, [r.id for r in rows])
        logger.info(
            "partition %d: published %d event(s) left in the outbox",
            self._partition,
            len(rows),
            extra={"partition": self._partition},
        )
        return len(rows)
