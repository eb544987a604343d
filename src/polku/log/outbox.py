"""Recording the facts of a decision in the transaction that makes it.

Most events arrive from outside and are simply appended. Some are decided by Polku itself
against current state: a reservation takes the last two units of a jacket, a gift card pays
part of an order. Such a decision and its event must commit together: a reservation whose
event is lost would never reach the profiles, journeys or signals; an event whose
reservation was rolled back would announce stock that is not held.

    with outbox.transaction() as tx:          # one transaction on the state database
        ...lock rows, check, write state...
        tx.record(event)                      # staged in the same transaction
    # committed: the event is durable in the outbox, and by now appended to the log too

The log is not in the state database's transaction in either mode: the production mode's is
NATS, and the embedded mode's is a SQLite file of its own (one writer per file: appends must
never wait for projection commits). So the events go into the `log_outbox` table in the
decision's transaction, are appended to the log right after the commit, then deleted from
the outbox. If the process dies between the commit and the append, whoever runs the pipeline
appends them (`Relay`: the embedded pipeline's chore, or the production worker that holds the
event's partition) a few seconds later; the log's messageId deduplication makes a double
append harmless.
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
from polku.log.base import EventLog
from polku.log.nats import partition_of
from polku.log.tables import outbox
from polku.storage.engine import translate_errors, writing

__all__ = ["Backends", "Outbox", "Relay", "Transaction", "stage"]

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
        """Make `events` part of this transaction: in the outbox exactly when it commits."""
        self.events.extend(events)


class Backends(Protocol):
    """What an action that decides needs: the state database and the outbox (a `Runtime`
    is one; a worker builds its own for the timers it runs)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def outbox(self) -> Outbox: ...


class Outbox:
    """Write transactions whose recorded events commit with them (see the module doc).

    `partitions`: the log's partition count (1 in the embedded mode), so each staged event
    is relayed by the owner of its partition.
    """

    def __init__(self, engine: Engine, log: EventLog, partitions: int = 1) -> None:
        self._engine = engine
        self._log = log
        self._partitions = partitions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with translate_errors("recording a decision"), writing(self._engine) as conn:
            tx = Transaction(conn)
            yield tx
            ids = stage(conn, tx.events, self._partitions)
        if not ids:
            return
        try:
            self._log.append_sync(tx.events)
        except Unavailable as exc:  # committed and safe in the outbox: the relay sends it
            logger.warning("appending %d recorded event(s) later: %s", len(ids), exc)
            return
        with contextlib.suppress(Unavailable):  # else the relay deletes them after sending
            _delete(self._engine, ids)


def stage(conn: Connection, events: Sequence[NewEvent], partitions: int) -> list[int]:
    """Put `events` into the outbox as part of `conn`'s transaction; return their ids."""
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
    """Appends one partition's outbox entries that their recording process did not get to
    append (it died after the commit), oldest first; run by the partition's owner."""

    def __init__(
        self, engine: Engine, log: EventLog, partition: int = 0, *, grace: float = 2.0
    ) -> None:
        self._engine = engine
        self._log = log
        self._partition = partition
        self._grace_ms = int(grace * 1000)

    def run_once(self, limit: int = 500) -> int:
        """Append and delete what is older than the grace time; return how many."""
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
        self._log.append_sync([_event(r) for r in rows])
        _delete(self._engine, [r.id for r in rows])
        logger.info(
            "partition %d: appended %d event(s) left in the outbox",
            self._partition,
            len(rows),
            extra={"partition": self._partition},
        )
        return len(rows)
