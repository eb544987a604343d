"""Runs the consumers over the log in order, each with its own checkpoint.

Consumers form a chain (identity, then profiles, ...): a consumer never gets ahead of the one
before it, because it may read what that one wrote. The runner wakes up when the log tells it
about an append, so an event is usually projected milliseconds after it was acknowledged.

Failures: a database outage makes the runner back off and retry the same events (nothing is
skipped); an event that a consumer cannot process even on its own is recorded as a dead letter
with the reason, and the consumer moves past it so one bad event cannot stop the pipeline.
Each batch is checked against the consumer's checkpoint inside the transaction that moves it,
so a log that redelivers events, or two workers running the same consumer, never apply an
event twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from polku.collect.deadletters import record_pipeline_failure
from polku.errors import Unavailable
from polku.events import INTERNAL_PREFIX, LoggedEvent
from polku.log.base import LogReader
from polku.ops.metrics import (
    CONSUMER_BATCH_SECONDS,
    CONSUMER_ERRORS,
    CONSUMER_EVENTS,
    CONSUMER_LAG,
    PIPELINE_POSITION,
)
from polku.pipeline import checkpoints
from polku.pipeline.consumer import Consumer, Contended
from polku.storage.engine import describe_error, writing

__all__ = ["Pipeline"]

logger = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        log: LogReader,
        consumers: Sequence[Consumer],
        *,
        batch: int = 2000,
        scope: str = "",
        shared: bool = False,
        commit_after: Sequence[str] = (),
    ) -> None:
        """`scope` is added to every consumer's checkpoint name (``.p3``: partition 3 of the
        NATS log); `shared` says that other pipelines write the same projections at the same
        time (see `Consumer.prepare`); `commit_after` names the consumers whose results
        should be committed as soon as they are applied, before the rest of the chain runs
        (the embedded mode otherwise commits the chain once per cycle)."""
        self._engine = engine
        self._log = log
        self.consumers = tuple(consumers)
        self._batch = batch
        self._scope = scope
        self._shared = shared
        self._commit_after = frozenset(commit_after)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle_poll = 1.0
        self._thread: threading.Thread | None = None
        self._chores: list[Callable[[], object]] = []
        self._chores_at = 0.0
        log.subscribe(lambda _head: self._wake.set())

    def add_chore(self, chore: Callable[[], object]) -> None:
        """Run `chore` about once a second while the pipeline runs in the background (due
        timers: reservations that ran out). A failing chore is logged and tried again."""
        self._chores.append(chore)

    def run_chores(self) -> None:
        for chore in self._chores:
            try:
                chore()
            except (OperationalError, Unavailable) as exc:
                logger.warning(
                    "chore %s waits for the database: %s", _name(chore), describe_error(exc)
                )
            except Exception:
                CONSUMER_ERRORS.labels("chores", "unexpected").inc()
                logger.exception("chore %s failed", _name(chore))

    # -- checkpoints ---------------------------------------------------------------------

    def checkpoint(self, name: str) -> int:
        """Offset up to which consumer `name` has processed this pipeline's log."""
        with self._engine.connect() as conn:
            return checkpoints.read(conn, name + self._scope)

    def _set_checkpoint(self, conn: Connection, consumer: str, offset: int) -> None:
        checkpoints.write(conn, consumer + self._scope, offset)

    @property
    def position(self) -> int:
        """Offset up to which every consumer has processed the log (read from the database,
        so it is right whichever process runs the consumers)."""
        with self._engine.connect() as conn:
            found = checkpoints.read_many(conn, [c.name + self._scope for c in self.consumers])
        return min(found.values(), default=0)

    def lags(self) -> dict[str, int]:
        """Events each consumer has yet to process: the log head minus its checkpoint."""
        head = self._log.head()
        with self._engine.connect() as conn:
            found = checkpoints.read_many(conn, [c.name + self._scope for c in self.consumers])
        return {c.name: max(0, head - found[c.name + self._scope]) for c in self.consumers}

    # -- processing ----------------------------------------------------------------------

    def run_once(self) -> int:
        """Process what the log holds now, up to one batch per consumer; return events seen.

        Embedded (one pipeline owns the projections): the whole chain in one transaction,
        so a small batch near the log's head costs one commit, not one per consumer. If
        any consumer fails in it, the cycle is rolled back and run consumer by consumer,
        which finds and sets aside the event that broke it. Shared: consumer by consumer,
        each with the locks `Consumer.prepare` takes.
        """
        if not self._shared:
            try:
                together = self._run_together()
            except (OperationalError, Unavailable, Contended):
                raise
            except Exception:
                logger.exception(
                    "pipeline cycle failed as one transaction; retrying it consumer by consumer"
                )
            else:
                if together is not None:
                    return together
        return self._run_separately()

    def _run_together(self) -> int | None:
        """The chain in one write transaction per segment (a segment ends after each of
        `commit_after`, so what they decide is visible without waiting for the rest of
        the chain); None when the checkpoints moved meanwhile (another process ran a
        consumer), so that the careful path takes over."""
        names = [c.name + self._scope for c in self.consumers]
        with self._engine.connect() as conn:
            marks = checkpoints.read_many(conn, names)
        lowest = min(marks.values(), default=0)
        chunk = self._log.read(lowest, self._batch)
        if not chunk:
            self._record_lag({c.name: marks[n] for c, n in zip(self.consumers, names, strict=True)})
            return 0
        seen = 0
        done: dict[str, int] = {}
        upstream: int | None = None
        for segment in self._segments():
            timings: list[tuple[str, float, int]] = []
            moved: dict[str, int] = {}
            with writing(self._engine) as conn:
                own = [names[i] for i in segment]
                if checkpoints.read_many(conn, own) != {n: marks[n] for n in own}:
                    return None
                for i in segment:
                    consumer, name = self.consumers[i], names[i]
                    start = marks[name]
                    events = _due(chunk, start, upstream)
                    if events:
                        started = time.perf_counter()
                        consumer.prepare(conn, events)(conn)
                        moved[name] = events[-1].offset
                        timings.append((consumer.name, time.perf_counter() - started, len(events)))
                        seen += len(events)
                        start = events[-1].offset
                    upstream = done[consumer.name] = start
                checkpoints.write_many(conn, moved)
            for consumer_name, seconds, count in timings:
                CONSUMER_BATCH_SECONDS.labels(consumer_name).observe(seconds)
                CONSUMER_EVENTS.labels(consumer_name).inc(count)
        self._record_lag(done)
        return seen

    def _segments(self) -> list[list[int]]:
        """The consumers' indexes, cut after each consumer named in `commit_after`."""
        segments: list[list[int]] = [[]]
        for i, consumer in enumerate(self.consumers):
            segments[-1].append(i)
            if consumer.name in self._commit_after and i + 1 < len(self.consumers):
                segments.append([])
        return segments

    def _run_separately(self) -> int:
        """Each consumer in transactions of its own (see `_process`)."""
        seen = 0
        done: dict[str, int] = {}
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
            events = _due(events, start, upstream)
            if events:
                started = time.perf_counter()
                self._apply(consumer, events)
                CONSUMER_BATCH_SECONDS.labels(consumer.name).observe(time.perf_counter() - started)
                CONSUMER_EVENTS.labels(consumer.name).inc(len(events))
                seen += len(events)
            upstream = self.checkpoint(consumer.name)
            done[consumer.name] = upstream
        self._record_lag(done)
        return seen

    def _record_lag(self, done: dict[str, int]) -> None:
        """Export how far each consumer is behind the log head (and, for the embedded mode's
        one pipeline, its position)."""
        head = self._log.head()
        partition = self._scope.removeprefix(".p") or "0"
        for name, offset in done.items():
            CONSUMER_LAG.labels(name, partition).set(max(0, head - offset))
        if not self._scope:
            PIPELINE_POSITION.set(min(done.values(), default=0))

    def _claim(
        self, conn: Connection, consumer: str, events: Sequence[LoggedEvent]
    ) -> list[LoggedEvent]:
        return checkpoints.claim(conn, consumer + self._scope, events)

    def _process(self, consumer: Consumer, events: list[LoggedEvent]) -> None:
        """Prepare outside the write lock, then apply and move the checkpoint in one
        transaction; prepare again under the lock if another worker got there first.

        Shared (other partitions are being processed into the same tables at the same time):
        prepare inside the transaction, after the consumer's own locks, and try again when
        the consumer reports contention or the database a deadlock."""
        if self._shared:
            for attempt in range(_ATTEMPTS):
                try:
                    with writing(self._engine) as conn:
                        todo = self._claim(conn, consumer.name, events)
                        if todo:
                            consumer.prepare(conn, todo, shared=True)(conn)
                            self._set_checkpoint(conn, consumer.name, todo[-1].offset)
                    return
                except (Contended, OperationalError) as exc:
                    if attempt + 1 == _ATTEMPTS or not _retryable(exc):
                        raise
                    time.sleep(0.01 * (attempt + 1))
            return
        with self._engine.connect() as reader, reader.begin():
            apply = consumer.prepare(reader, events)
        with writing(self._engine) as conn:
            todo = self._claim(conn, consumer.name, events)
            if not todo:
                return
            if len(todo) != len(events):
                apply = consumer.prepare(conn, todo)
            apply(conn)
            self._set_checkpoint(conn, consumer.name, todo[-1].offset)

    def _apply(self, consumer: Consumer, events: list[LoggedEvent]) -> None:
        try:
            self._process(consumer, events)
            return
        except (OperationalError, Unavailable, Contended):
            raise
        except Exception:
            logger.exception(
                "consumer %s failed on offsets %d..%d; retrying one by one",
                consumer.name,
                events[0].offset,
                events[-1].offset,
                extra={"consumer": consumer.name + self._scope, "offset": events[0].offset},
            )
        for event in events:
            try:
                self._process(consumer, [event])
            except (OperationalError, Unavailable, Contended):
                raise
            except Exception as exc:
                CONSUMER_ERRORS.labels(consumer.name, "poison").inc()
                logger.error(
                    "consumer %s set event %s aside as a dead letter: %s",
                    consumer.name,
                    event.message_id,
                    exc,
                    extra={
                        "consumer": consumer.name + self._scope,
                        "offset": event.offset,
                        "message_id": event.message_id,
                        "workspace_id": event.workspace_id,
                    },
                )
                with writing(self._engine) as conn:
                    if self._claim(conn, consumer.name, [event]):
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
        """Rebuild every projection from the log: reset all consumers, then process it all.

        A background thread that was running is stopped for the rebuild and started again.
        """
        was_running = self._thread is not None
        self.stop()
        try:
            with writing(self._engine) as conn:
                for consumer in reversed(self.consumers):
                    consumer.reset(conn)
                    self._set_checkpoint(conn, consumer.name, 0)
            return self.run_until_caught_up(timeout=24 * 3600)
        finally:
            if was_running:
                self.start()

    # -- background thread ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="polku-pipeline", daemon=True)
        self._thread.start()

    def run_forever(self, idle_poll: float = 1.0) -> None:
        """Process the log until `stop()`; wait `idle_poll` s for an append when idle."""
        self._idle_poll = idle_poll
        self._run()

    def _run(self) -> None:
        for consumer in self.consumers:  # optional: load what the first batch would wait for
            warm = getattr(consumer, "warm", None)
            if callable(warm):
                try:
                    warm()
                except Exception:
                    logger.exception("consumer %s failed to warm up", consumer.name)
        backoff = 0.1
        while not self._stop.is_set():
            # Cleared before the cycle, not after it: an append that lands while the cycle
            # runs must wake the next wait instead of being lost for `idle_poll` seconds.
            self._wake.clear()
            try:
                seen = self.run_once()
                backoff = 0.1
            except (OperationalError, Unavailable, Contended) as exc:
                CONSUMER_ERRORS.labels("pipeline", "unavailable").inc()
                logger.warning(
                    "pipeline waiting for the database (%s); retry in %.1fs",
                    describe_error(exc),
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            except Exception:
                CONSUMER_ERRORS.labels("pipeline", "unexpected").inc()
                logger.exception("pipeline cycle failed")
                self._stop.wait(1.0)
                continue
            if self._chores and time.monotonic() - self._chores_at >= _CHORE_SECONDS:
                self._chores_at = time.monotonic()
                self.run_chores()
            if seen == 0:
                self._wake.wait(min(self._idle_poll, _CHORE_SECONDS))

    def wake(self) -> None:
        """Start the next cycle now: the log has grown (from another process's append)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


_ATTEMPTS = 8
_CHORE_SECONDS = 1.0


def _name(chore: Callable[[], object]) -> str:
    return getattr(chore, "__name__", None) or repr(chore)


_RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def _retryable(exc: BaseException) -> bool:
    """A conflict between concurrent workers, which the next attempt resolves."""
    if isinstance(exc, Contended):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRY_SQLSTATES


def _due(events: list[LoggedEvent], start: int, upstream: int | None) -> list[LoggedEvent]:
    """What a consumer at `start` takes of `events`: after its checkpoint (an at-least-once
    log may hand back events it has already processed), not past the consumer before it
    (`upstream`), and cut before a control event."""
    events = [e for e in events if e.offset > start]
    if upstream is not None:
        events = [e for e in events if e.offset <= upstream]
    return _until_control(events)


def _until_control(events: list[LoggedEvent]) -> list[LoggedEvent]:
    """Cut a chunk so that a control event (``polku.*``, e.g. an un-merge) is processed alone.

    Control events change what earlier events mean (which profile they belong to); handling
    one alone, after every consumer has caught up to it, keeps each consumer simple.
    """
    for position, event in enumerate(events):
        if event.type.startswith(INTERNAL_PREFIX):
            return events[: max(position, 1)]
    return events
