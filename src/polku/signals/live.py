"""The live feed of a queue: each newly routed signal, pushed to the staff watching it.

Signals are rows written by whoever runs the pipeline: a thread of this process (embedded
mode, ``POLKU_PIPELINE=thread``), a child process (embedded, the default), or the
production workers on other machines. So the feed reads the `signals` table, woken by:

- a commit in this process that routed a signal (`routing.ROUTED` in the connection's
  info, seen by an engine ``commit`` listener): at once;
- from other processes: on PostgreSQL, routing's ``NOTIFY`` (heard on a connection the feed
  keeps while anyone watches, delivered when the routing transaction commits); on SQLite
  (or if LISTEN fails), a thread that looks at ``max(signals.id)`` every `poll` seconds
  (10 ms on SQLite, 50 ms on PostgreSQL) while anyone watches;
- and every second regardless, reading back a few seconds, since with several writers a
  later commit can hold a lower id than one already sent.

A watcher keeps the ids it sent, so nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import psycopg
from sqlalchemy import Connection, Engine, event, func, select

from polku.signals.queries import newer_signals
from polku.signals.routing import NOTIFY_CHANNEL, ROUTED
from polku.signals.tables import signals
from polku.storage.engine import translate_errors

__all__ = ["SignalFeed"]

logger = logging.getLogger(__name__)

_SWEEP_SECONDS: Final = 1.0
_LOOKBACK_MS: Final = 10_000
_READ_LIMIT: Final = 500


class SignalFeed:
    """Per-queue watchers over the signals table of `engine` (see the module doc)."""

    def __init__(self, engine: Engine, poll: float | None = None) -> None:
        self._engine = engine
        self._poll = (
            poll if poll is not None else (0.01 if engine.dialect.name == "sqlite" else 0.05)
        )
        self._lock = threading.Lock()
        self._wakers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._thread: threading.Thread | None = None
        event.listen(engine, "commit", self._committed)
        event.listen(engine, "rollback", self._rolled_back)

    # -- waking ----------------------------------------------------------------------------

    def _committed(self, conn: Connection) -> None:
        if conn.info.pop(ROUTED, False):
            self._wake()

    @staticmethod
    def _rolled_back(conn: Connection) -> None:
        conn.info.pop(ROUTED, None)

    def _wake(self) -> None:
        with self._lock:
            wakers = list(self._wakers)
        for loop, flag in wakers:
            if not loop.is_closed():
                loop.call_soon_threadsafe(flag.set)

    def _head(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.max(signals.c.id))).scalar() or 0)

    def _watching(self) -> bool:
        with self._lock:
            if not self._wakers:
                self._thread = None
                return False
            return True

    def _watch_head(self) -> None:
        """While anyone watches: wake them when another process routed a signal."""
        if self._engine.dialect.name == "postgresql" and self._listen():
            return
        head = -1
        while self._watching():
            try:
                latest = self._head()
            except Exception as exc:  # the database is away: the sweeps go on trying
                logger.debug("signal feed: %s", exc)
                latest = head
            if latest != head:
                if head >= 0:
                    self._wake()
                head = latest
            time.sleep(self._poll)

    def _listen(self) -> bool:
        """PostgreSQL: wait for routing's ``NOTIFY`` on a connection of the feed's own
        (delivered when the routing transaction commits, from any process) until no one
        watches any more (True), or until listening fails (False: the caller polls)."""
        conninfo = self._engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                while self._watching():
                    for _ in conn.notifies(timeout=_SWEEP_SECONDS, stop_after=1):
                        self._wake()
                return True
        except psycopg.Error as exc:
            logger.warning("signal feed: cannot LISTEN (%s); polling the table instead", exc)
            return False

    # -- watching --------------------------------------------------------------------------

    def _start(self, waker: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._wakers.add(waker)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch_head, name="polku-signal-feed", daemon=True
                )
                self._thread.start()

    def _stop(self, waker: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._wakers.discard(waker)

    def _begin(self, workspace_id: str, queue: str) -> tuple[int, set[int]]:
        since = int(time.time() * 1000) - _LOOKBACK_MS
        with translate_errors("starting the signal feed"), self._engine.connect() as conn:
            head = int(conn.execute(select(func.max(signals.c.id))).scalar() or 0)
            seen = {
                s.signal_id
                for s in newer_signals(conn, workspace_id, queue, head, since, _READ_LIMIT)
            }
        return head, seen

    def _read(self, workspace_id: str, queue: str, after: int) -> list[dict[str, Any]]:
        since = int(time.time() * 1000) - _LOOKBACK_MS
        with translate_errors("reading the signal feed"), self._engine.connect() as conn:
            found = newer_signals(conn, workspace_id, queue, after, since, _READ_LIMIT)
        return [s.as_dict() for s in found]

    async def watch(
        self, workspace_id: str, queue: str
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(``"ready"``, {}) once watching, then (``"signal"``, signal) for each signal newly
        routed to `queue`."""
        flag = asyncio.Event()
        waker = (asyncio.get_running_loop(), flag)
        self._start(waker)
        try:
            after, sent = await asyncio.to_thread(self._begin, workspace_id, queue)
            yield "ready", {}
            while True:
                flag.clear()  # before reading: a commit during the read wakes the next wait
                found = await asyncio.to_thread(self._read, workspace_id, queue, after)
                for item in found:
                    signal_id = int(item["id"])
                    after = max(after, signal_id)
                    if signal_id in sent:
                        continue
                    sent.add(signal_id)
                    yield "signal", item
                if len(sent) > 10 * _READ_LIMIT:  # old ids are past the look-back anyway
                    sent = {i for i in sent if i > after - _READ_LIMIT}
                if len(found) < _READ_LIMIT:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(flag.wait(), _SWEEP_SECONDS)
        finally:
            self._stop(waker)
