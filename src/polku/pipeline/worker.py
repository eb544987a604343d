"""`polku worker`: the production mode's projection process.

A worker holds some of the NATS log's partitions (`polku.pipeline.leases`) and, for each, runs
a `PartitionRunner` thread that

1. reads the partition in order with its own durable JetStream consumer
   (`polku.log.nats.PartitionReader`),
2. copies each batch into the state database's `log_events` with the partition's ``archive``
   checkpoint in the same transaction, then acknowledges it to JetStream (and, about once a
   second, publishes the partition's outbox entries that an API process committed but did
   not get to publish: `polku.log.outbox.Relay`),
3. runs the consumers (identity, then profiles, ...) over what was copied, each with its own
   checkpoint per partition, as `Pipeline` does in the embedded mode.

Delivery is at-least-once everywhere (a batch can be fetched again after a crash or a lost
ack); effects are exactly-once because every step claims its checkpoint inside the
transaction that writes. Any failure of NATS or PostgreSQL makes the runner back off
(0.1 s doubling to 10 s) and start again from its committed checkpoint, re-reading NATS from
there, so nothing is skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from polku.errors import Unavailable
from polku.events import LoggedEvent
from polku.log.nats import NatsLog, PartitionReader
from polku.log.outbox import Relay
from polku.log.sql import SqlPartition, store_copies
from polku.ops.metrics import CONSUMER_BATCH_SECONDS, CONSUMER_ERRORS, CONSUMER_EVENTS, CONSUMER_LAG
from polku.pipeline import checkpoints
from polku.pipeline.consumer import Consumer, Contended
from polku.pipeline.leases import Assignment, Leases
from polku.pipeline.runner import Pipeline
from polku.storage.engine import describe_error, translate_errors, writing

__all__ = ["ARCHIVE", "PartitionRunner", "Worker", "archive"]

logger = logging.getLogger(__name__)

ARCHIVE = "archive"
"""The checkpoint name of the copy of the NATS log into `log_events`."""

_FAILURES = (Unavailable, OperationalError, Contended)
_RELAY_SECONDS = 1.0
_CHORE_SECONDS = 1.0


def archive(engine: Engine, partition: int, events: Sequence[LoggedEvent]) -> int:
    """Copy one batch of a partition into `log_events` exactly once; return the checkpoint."""
    name = checkpoints.scoped(ARCHIVE, partition)
    with translate_errors("copying events into the database"), writing(engine) as conn:
        todo = checkpoints.claim(conn, name, events)
        if not todo:
            return checkpoints.read(conn, name)
        store_copies(conn, todo)
        checkpoints.write(conn, name, todo[-1].offset)
        return todo[-1].offset


class PartitionRunner:
    """Processes one partition for as long as this worker holds it (see the module doc)."""

    def __init__(
        self,
        engine: Engine,
        log: NatsLog,
        assignment: Assignment,
        consumers: Sequence[Consumer],
        *,
        batch: int,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.assignment = assignment
        self._engine = engine
        self._log = log
        self._batch = batch
        self._on_batch = on_batch
        p = assignment.partition
        self._archived = SqlPartition(engine, p, checkpoints.scoped(ARCHIVE, p))
        self.pipeline = Pipeline(
            engine, self._archived, consumers, batch=batch, scope=f".p{p}", shared=True
        )
        self._relay = Relay(engine, log, p)
        self._relayed_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"polku-p{p}", daemon=True)
        self.lag = 0  # events in NATS after the last one read

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        p = self.assignment.partition
        reader: PartitionReader | None = None
        backoff = 0.1
        busy = False
        while not self._stop.is_set():
            try:
                if reader is None:
                    reader = self._open()
                events = reader.fetch(self._batch, timeout=0.05 if busy else 1.0)
                self.lag = reader.pending
                CONSUMER_LAG.labels(ARCHIVE, str(p)).set(reader.pending)
                if events:
                    started = time.perf_counter()
                    head = archive(self._engine, p, events)
                    reader.ack()
                    CONSUMER_BATCH_SECONDS.labels(ARCHIVE).observe(time.perf_counter() - started)
                    CONSUMER_EVENTS.labels(ARCHIVE).inc(len(events))
                    self._archived.appended(head)
                if time.monotonic() - self._relayed_at > _RELAY_SECONDS:
                    self._relay.run_once()  # events an API process recorded but never sent
                    self._relayed_at = time.monotonic()
                seen = self.pipeline.run_once()
                busy = bool(events) or seen > 0
                if self._on_batch is not None and (events or seen):
                    self._on_batch(p, len(events))
                backoff = 0.1
            except _FAILURES as exc:
                CONSUMER_ERRORS.labels(ARCHIVE, "unavailable").inc()
                logger.warning(
                    "partition %d: %s; starting again from the checkpoint in %.1f s",
                    p,
                    describe_error(exc),
                    backoff,
                    extra={"partition": p},
                )
                reader = self._discard(reader)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:
                CONSUMER_ERRORS.labels(ARCHIVE, "unexpected").inc()
                logger.exception("partition %d: unexpected failure", p, extra={"partition": p})
                reader = self._discard(reader)
                self._stop.wait(1.0)
        self._discard(reader)

    def _open(self) -> PartitionReader:
        """A reader at the partition's archive checkpoint + 1, after removing the consumers
        of the partition's earlier owners."""
        p = self.assignment.partition
        with translate_errors("reading a checkpoint"), self._engine.connect() as conn:
            start = checkpoints.read(conn, checkpoints.scoped(ARCHIVE, p)) + 1
        self._log.delete_consumers(f"polku-p{p}-", keep=self.assignment.consumer_name)
        logger.info(
            "partition %d: reading from %d (epoch %d)",
            p,
            start,
            self.assignment.epoch,
            extra={"partition": p},
        )
        return self._log.open_reader(p, self.assignment.consumer_name, start)

    @staticmethod
    def _discard(reader: PartitionReader | None) -> None:
        if reader is not None:
            try:
                reader.close()
            except Exception:  # NATS is down: the server forgets the subscription anyway
                logger.debug("closing a partition reader failed", exc_info=True)
        return None


class Worker:
    """Holds a fair share of the partitions and runs one `PartitionRunner` per partition."""

    def __init__(
        self,
        engine: Engine,
        log: NatsLog,
        consumers: Callable[[], Sequence[Consumer]],
        *,
        worker_id: str,
        lease_seconds: float,
        batch: int,
        on_batch: Callable[[int, int], None] | None = None,
        chores: Sequence[Callable[[], object]] = (),
    ) -> None:
        self._engine = engine
        self._log = log
        self._consumers = consumers
        self._chores = tuple(chores)
        self._batch = batch
        self._on_batch = on_batch
        self.leases = Leases(engine, worker_id, lease_seconds)
        self._lease_seconds = lease_seconds
        self.runners: dict[int, PartitionRunner] = {}
        self._stop = threading.Event()
        self.ready = threading.Event()  # set after the first successful heartbeat

    @property
    def worker_id(self) -> str:
        return self.leases.worker_id

    def run(self) -> None:
        """Heartbeat and rebalance until `stop()`; then stop the runners and hand back."""
        interval = self._lease_seconds / 3
        backoff = 0.1
        last_ok = time.monotonic()
        while not self._stop.is_set():
            try:
                held = self.leases.heartbeat()
            except _FAILURES as exc:
                logger.warning(
                    "heartbeat failed (%s); retry in %.1f s", describe_error(exc), backoff
                )
                if time.monotonic() - last_ok > self._lease_seconds:
                    self._reconcile({})  # the leases have lapsed: others may own them now
                self._stop.wait(backoff)
                backoff = min(backoff * 2, interval)
                continue
            last_ok = time.monotonic()
            backoff = 0.1
            self._reconcile(held)
            self.ready.set()
            if 0 in held:  # one worker at a time: the holder of partition 0
                self._run_chores()
            self._stop.wait(min(interval, _CHORE_SECONDS))
        self._reconcile({})
        try:
            self.leases.release()
        except _FAILURES as exc:
            logger.warning(
                "could not hand the partitions back (%s); they expire", describe_error(exc)
            )

    def stop(self) -> None:
        self._stop.set()

    def _run_chores(self) -> None:
        """Due timers (reservations that ran out); each chore is safe to run twice."""
        for chore in self._chores:
            try:
                chore()
            except _FAILURES as exc:
                logger.warning("chore waits for a backend: %s", exc)
            except Exception:
                CONSUMER_ERRORS.labels("chores", "unexpected").inc()
                logger.exception("chore failed")

    def _reconcile(self, held: dict[int, Assignment]) -> None:
        gone = [r for p, r in self.runners.items() if held.get(p) != r.assignment]
        for runner in gone:
            runner.stop()
        for runner in gone:
            runner.join(timeout=30)
            p = runner.assignment.partition
            del self.runners[p]
            logger.info("partition %d: released", p, extra={"partition": p})
        for p, assignment in held.items():
            if p not in self.runners:
                runner = PartitionRunner(
                    self._engine,
                    self._log,
                    assignment,
                    self._consumers(),
                    batch=self._batch,
                    on_batch=self._on_batch,
                )
                self.runners[p] = runner
                runner.start()
                logger.info(
                    "partition %d: taken (epoch %d)", p, assignment.epoch, extra={"partition": p}
                )
