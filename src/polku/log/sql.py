"""The log as a SQL table (the embedded mode's backend): on PostgreSQL in the state database,
on SQLite in a file of its own that the state database attaches (see `polku.storage.engine`).

Appends from all concurrent requests are queued to one writer thread, which commits whatever
has gathered in a single transaction (group commit) and only then releases the waiting
requests: every acknowledged event is on disk, and a busy server amortises each commit over
many batches. Offsets are the table's integer key; on PostgreSQL an advisory lock orders the
appending transactions so a reader never sees a later offset committed before an earlier one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text

from polku.errors import Unavailable
from polku.events import LoggedEvent, NewEvent
from polku.log.base import AppendListener
from polku.log.tables import checkpoints, log_events
from polku.storage.bulk import fetch_rows, insert_rows
from polku.storage.engine import log_engine, translate_errors, writing

__all__ = ["SqlLog", "SqlPartition", "event_from_row", "read_events", "store_copies"]

logger = logging.getLogger(__name__)

_APPEND_LOCK_KEY = 0x706F6C6B75  # "polku": the advisory lock that orders appends on PostgreSQL
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


# The consumers' read: plain SQL and positional rows (SQLAlchemy's result processing cost
# more per event than SQLite's own work).
_READ = (
    'SELECT "offset", workspace_id, message_id, type, partition_key, received_at, '
    '"timestamp", payload, source_id, event FROM log_events '
    'WHERE "offset" > ? ORDER BY "offset" LIMIT ?'
)


@dataclass(slots=True)
class _Pending:
    rows: list[tuple[Any, ...]]
    future: asyncio.Future[int] | concurrent.futures.Future[int]
    loop: asyncio.AbstractEventLoop | None


class SqlLog:
    """`EventLog` on a SQL table, with group commit through one writer thread."""

    def __init__(self, engine: Engine, *, max_group_rows: int = 20_000) -> None:
        """`engine` is the state database's; the log is written through its `log_engine`."""
        self._engine = log_engine(engine)
        self._owns_engine = self._engine is not engine
        self._max_group_rows = max_group_rows
        self._pending: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._listeners: list[AppendListener] = []
        self._is_postgres = engine.dialect.name == "postgresql"

    # -- producer side -------------------------------------------------------------------

    async def append(self, events: Sequence[NewEvent]) -> int:
        if not events:
            return self.head()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._enqueue(_Pending(_rows(events), future, loop))
        return await future

    def append_sync(self, events: Sequence[NewEvent]) -> int:
        if not events:
            return self.head()
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._enqueue(_Pending(_rows(events), future, None))
        return future.result()

    def _enqueue(self, pending: _Pending) -> None:
        with self._cond:
            if self._closed:
                raise Unavailable("The log is shutting down.", hint="Retry in a few seconds.")
            if self._thread is None:
                self._start_locked()
            self._pending.append(pending)
            self._cond.notify()

    # -- the writer thread ---------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self._thread is None:
                self._start_locked()

    def _start_locked(self) -> None:
        self._thread = threading.Thread(target=self._run, name="polku-log-writer", daemon=True)
        self._thread.start()

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            taken: list[_Pending] = []
            rows = 0
            while self._pending and (not taken or rows < self._max_group_rows):
                item = self._pending.popleft()
                taken.append(item)
                rows += len(item.rows)
            return taken

    def _run(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            try:
                head = self._commit([row for item in group for row in item.rows])
            except Unavailable as exc:  # the database is down: nobody's events are stored
                for item in group:
                    _settle(item, None, exc)
                continue
            except Exception:
                # Something in one request broke the shared commit; commit each request on
                # its own so the others are still stored and only the culprit is refused.
                logger.exception("grouped log append failed; retrying requests one by one")
                head = self._commit_one_by_one(group)
            else:
                for item in group:
                    _settle(item, head, None)
            for listener in list(self._listeners):
                try:
                    listener(head)
                except Exception:  # a listener must never break the writer
                    logger.exception("log listener failed")

    def _commit_one_by_one(self, group: list[_Pending]) -> int:
        head = 0
        for item in group:
            try:
                head = self._commit(item.rows)
            except Exception as exc:
                if not isinstance(exc, Unavailable):
                    logger.exception("log append failed")
                    exc = Unavailable(
                        "The events could not be stored; nothing was acknowledged.",
                        hint="Retry the request; Polku deduplicates by messageId.",
                    )
                _settle(item, None, exc)
            else:
                _settle(item, head, None)
        return head

    def _commit(self, rows: list[tuple[Any, ...]]) -> int:
        with translate_errors("appending events to the log"), writing(self._engine) as conn:
            _insert(conn, rows)
            head = conn.execute(select(func.max(log_events.c.offset))).scalar()
        return int(head or 0)

    # -- consumer side -------------------------------------------------------------------

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        with translate_errors("reading the log"), self._engine.connect() as conn:
            rows = fetch_rows(conn, _READ, (after, limit))
        # The columns come in `LoggedEvent`'s field order; drivers hand BLOB/bytea as bytes.
        return [
            LoggedEvent(o, w, m, t, k, r, ts, p if type(p) is bytes else bytes(p), s, e)
            for o, w, m, t, k, r, ts, p, s, e in rows
        ]

    def head(self) -> int:
        with translate_errors("reading the log"), self._engine.connect() as conn:
            return int(conn.execute(select(func.max(log_events.c.offset))).scalar() or 0)

    def subscribe(self, listener: AppendListener) -> None:
        self._listeners.append(listener)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
        if self._owns_engine:
            self._engine.dispose()


class SqlPartition:
    """One partition of the production mode's log, as copied into the state database.

    Workers copy each NATS partition into `log_events` (see `store_copies`); the consumers
    after that read their partition from here, so they see each event once, in order, with
    its stream sequence as offset. `head` is how far the copy has got (its checkpoint).
    """

    def __init__(self, engine: Engine, partition: int, head_checkpoint: str) -> None:
        self._engine = engine
        self.partition = partition
        self._head_checkpoint = head_checkpoint
        self._listeners: list[AppendListener] = []

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        return read_events(self._engine, after, limit, partition=self.partition)

    def head(self) -> int:
        with translate_errors("reading the log"), self._engine.connect() as conn:
            value = conn.execute(
                select(checkpoints.c.offset).where(checkpoints.c.consumer == self._head_checkpoint)
            ).scalar()
        return int(value or 0)

    def subscribe(self, listener: AppendListener) -> None:
        self._listeners.append(listener)

    def appended(self, head: int) -> None:
        """Tell the listeners that the copy reached `head` (called by the worker)."""
        for listener in list(self._listeners):
            listener(head)


def read_events(
    engine: Engine, after: int, limit: int, *, partition: int | None = None
) -> list[LoggedEvent]:
    """Up to `limit` events after offset `after` in log order (of one partition, if given)."""
    query = select(log_events).where(log_events.c.offset > after)
    if partition is not None:
        query = query.where(log_events.c.partition == partition)
    query = query.order_by(log_events.c.offset).limit(limit)
    with translate_errors("reading the log"), engine.connect() as conn:
        return [event_from_row(r) for r in conn.execute(query)]


def store_copies(conn: Connection, events: Sequence[LoggedEvent]) -> None:
    """Insert events read from the NATS log, keeping their offsets and partitions.

    A messageId stored before (a client's retry after the stream's duplicate window) is
    skipped, so every acknowledged messageId is in the table exactly once.
    """
    rows = [(e.offset, e.partition, *_values(e)) for e in events]
    insert_rows(
        conn,
        log_events,
        ("offset", "partition", *_COLUMNS),
        rows,
        ignore_conflicts_on=("workspace_id", "message_id"),
    )


def event_from_row(r: Any) -> LoggedEvent:
    """A `log_events` row as the event it holds."""
    return LoggedEvent(
        offset=r.offset,
        workspace_id=r.workspace_id,
        message_id=r.message_id,
        type=r.type,
        partition_key=r.partition_key,
        received_at=r.received_at,
        timestamp=r.timestamp,
        payload=bytes(r.payload),
        source_id=r.source_id,
        event=r.event,
        partition=r.partition,
    )


def _insert(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert new events; a messageId already in the workspace's log is skipped (dedupe).

    On PostgreSQL, appending transactions take one advisory lock first, so offsets commit in
    order and a consumer reading `offset > checkpoint` never skips a row a slower
    transaction commits later."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK_KEY})
    insert_rows(
        conn, log_events, _COLUMNS, rows, ignore_conflicts_on=("workspace_id", "message_id")
    )


def _values(e: NewEvent | LoggedEvent) -> tuple[Any, ...]:
    """An event's values in `_COLUMNS` order."""
    return (
        e.workspace_id,
        e.source_id,
        e.message_id,
        e.type,
        e.event,
        e.partition_key,
        e.received_at,
        e.timestamp,
        e.payload,
    )


def _rows(events: Sequence[NewEvent]) -> list[tuple[Any, ...]]:
    return [_values(e) for e in events]


def _settle(item: _Pending, head: int | None, exc: BaseException | None) -> None:
    future = item.future
    if item.loop is None:
        assert isinstance(future, concurrent.futures.Future)
        if exc is None:
            future.set_result(head or 0)
        else:
            future.set_exception(exc)
        return
    assert isinstance(future, asyncio.Future)

    def settle() -> None:
        if future.done():  # the request was cancelled (client went away)
            return
        if exc is None:
            future.set_result(head or 0)
        else:
            future.set_exception(exc)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        item.loop.call_soon_threadsafe(settle)
