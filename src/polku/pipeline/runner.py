"""Runs the consumers over the log in order, each with its own checkpoint.

Consumers form a chain (identity, then profiles, ...): a consumer never gets ahead of the one
before it, because it may read what that one wrote. The runner wakes up when the log tells it
about an append, so an event is usually projected milliseconds after it was acknowledged.

Failures: a database outage makes the runner back off and retry the same events (nothing is
skipped); an event that a consumer cannot process even on its own is recorded as a dead letter
with the reason, and the consumer moves past it so one bad event cannot stop the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from polku.collect.deadletters import record_pipeline_failure
from polku.errors import Unavailable
from polku.events import INTERNAL_PREFIX, LoggedEvent
from polku.log.base import EventLog
from polku.log.tables import checkpoints
from polku.pipeline.consumer import Consumer
from polku.storage.engine import writing

__all__ = ["Pipeline"]

logger = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        log: EventLog,
        consumers: Sequence[Consumer],
        *,
        batch: int = 2000,
    ) -> None:
        self._engine = engine
        self._log = log
        self.consumers = tuple(consumers)
        self._batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._position = -1  # lowest checkpoint of all consumers, once known
        log.subscribe(lambda _head: self._wake.set())

    # -- checkpoints ---------------------------------------------------------------------

    def checkpoint(self, name: str) -> int:
        with self._engine.connect() as conn:
            value = conn.execute(
                select(checkpoints.c.offset).where(checkpoints.c.consumer == name)
            ).scalar()
        return int(value or 0)

    def _set_checkpoint(self, conn: Connection, name: str, offset: int) -> None:
        values = {"consumer": name, "offset": offset}
        if conn.dialect.name == "postgresql":
            stmt = postgresql.insert(checkpoints).values(values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["consumer"], set_=values))
        else:
            stmt2 = sqlite.insert(checkpoints).values(values)
            conn.execute(stmt2.on_conflict_do_update(index_elements=["consumer"], set_=values))

    @property
    def position(self) -> int:
        """Offset up to which every consumer has processed the log."""
        if self._position < 0:
            self._position = min((self.checkpoint(c.name) for c in self.consumers), default=0)
        return self._position

    # -- processing ----------------------------------------------------------------------

    def run_once(self) -> int:
        """Process what the log holds now, up to one batch per consumer; return events seen."""
        seen = 0
        upstream: int | None = None
        cached: tuple[int, list[LoggedEvent]] | None = None
        for consumer in self.consumers:
            start = self.checkpoint(consumer.name)
            # Consumers usually stand at the same offset: read (and parse) the chunk once.
            if cached is not None and cached[0] == start:
                events = cached[1]
            else:
                events = self._log.read(start, self._batch)
                cached = (start, events)
            if upstream is not None:
                events = [e for e in events if e.offset <= upstream]
            events = _until_control(events)
            if events:
                self._apply(consumer, events)
                seen += len(events)
            upstream = self.checkpoint(consumer.name)
        self._position = min((self.checkpoint(c.name) for c in self.consumers), default=0)
        return seen

    def _apply(self, consumer: Consumer, events: list[LoggedEvent]) -> None:
        try:
            with writing(self._engine) as conn:
                consumer.handle(conn, events)
                self._set_checkpoint(conn, consumer.name, events[-1].offset)
            return
        except (OperationalError, Unavailable):
            raise
        except Exception:
            logger.exception(
                "consumer %s failed on offsets %d..%d; retrying one by one",
                consumer.name,
                events[0].offset,
                events[-1].offset,
            )
        for event in events:
            try:
                with writing(self._engine) as conn:
                    consumer.handle(conn, [event])
                    self._set_checkpoint(conn, consumer.name, event.offset)
            except (OperationalError, Unavailable):
                raise
            except Exception as exc:
                with writing(self._engine) as conn:
                    record_pipeline_failure(conn, consumer.name, event, exc)
                    self._set_checkpoint(conn, consumer.name, event.offset)

    def run_until_caught_up(self, timeout: float = 60.0) -> int:
        """Process until every consumer has reached the log's head (CLI, tests, replay)."""
        deadline = time.monotonic() + timeout
        head = self._log.head()
        total = 0
        while self.position < head:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pipeline at {self.position}, log head at {head}")
            total += self.run_once()
        return total

    def replay(self) -> int:
        """Rebuild every projection from the log: reset all consumers, then process it all."""
        self.stop()
        with writing(self._engine) as conn:
            for consumer in reversed(self.consumers):
                consumer.reset(conn)
                self._set_checkpoint(conn, consumer.name, 0)
        self._position = 0
        return self.run_until_caught_up(timeout=24 * 3600)

    # -- background thread ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="polku-pipeline", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                seen = self.run_once()
                backoff = 0.1
            except (OperationalError, Unavailable) as exc:
                logger.warning(
                    "pipeline waiting for the database (%s); retry in %.1fs", exc, backoff
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            except Exception:
                logger.exception("pipeline cycle failed")
                self._stop.wait(1.0)
                continue
            if seen == 0:
                self._wake.wait(1.0)
                self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    async def wait_for(self, offset: int, timeout: float = 10.0) -> bool:
        """Wait until every consumer has processed the log up to `offset` (read-your-writes)."""
        deadline = time.monotonic() + timeout
        while self._position < offset:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True


def _until_control(events: list[LoggedEvent]) -> list[LoggedEvent]:
    """Cut a chunk so that a control event (``polku.*``, e.g. an un-merge) is processed alone.

    Control events change what earlier events mean (which profile they belong to); handling
    one alone, after every consumer has caught up to it, keeps each consumer simple.
    """
    for position, event in enumerate(events):
        if event.type.startswith(INTERNAL_PREFIX):
            return events[: max(position, 1)]
    return events
