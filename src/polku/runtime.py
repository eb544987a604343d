"""Everything a running Polku holds: engine, log, pipeline, and the services built on them.

`Runtime.open(settings)` builds it, and `start`/`close` bring the background parts (the log
writer, the pipeline) up and down. The HTTP app, the CLI and the tests all use this one
assembly, so there is exactly one way the parts are wired together.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine, func, select

from polku.access.actions import NewAdminToken, ensure_default_workspace
from polku.access.queries import KeyCache
from polku.channels.registry import Channels
from polku.collect.intake import Intake
from polku.collect.live import LiveFeed, NatsFeed, TableFeed
from polku.commerce.carts.projection import CartsConsumer
from polku.commerce.catalog.related import BoughtTogether
from polku.commerce.giftcards.actions import expire_due
from polku.commerce.giftcards.projection import GiftCardsConsumer
from polku.commerce.orders.projection import OrdersConsumer
from polku.commerce.returns.projection import ReturnsConsumer
from polku.commerce.stock.actions import release_expired
from polku.commerce.stock.projection import StockConsumer
from polku.errors import PolkuError, Unavailable
from polku.gctune import tune_for_throughput
from polku.identity.identifiers import IdentityConfig
from polku.identity.projection import IdentityConsumer
from polku.journeys.clock import Clock, FollowingClock, SystemClock
from polku.journeys.consumer import JourneysConsumer
from polku.journeys.runner import JourneyRunner
from polku.journeys.sender import Sender
from polku.log.base import EventLog
from polku.log.nats import NatsLog
from polku.log.outbox import Outbox, Relay
from polku.log.sql import SqlLog
from polku.log.tables import log_events
from polku.ops.logs import configure_logging
from polku.pipeline import checkpoints
from polku.pipeline.consumer import Consumer
from polku.pipeline.leases import check_partitions, ensure_partitions, live_workers
from polku.pipeline.progress import PartitionedProgress, PipelineProgress, Progress
from polku.pipeline.runner import Pipeline
from polku.pipeline.worker import ARCHIVE, Worker
from polku.profiles.projection import ProfilesConsumer
from polku.recommend.interactions import InteractionsConsumer
from polku.recommend.serving import forget as forget_recommendations
from polku.settings import Settings
from polku.signals.consumer import SignalsConsumer
from polku.signals.rules import RuleBook, load_rules
from polku.signals.webhooks import Deliverer
from polku.storage.engine import make_engine, translate_errors, writing
from polku.storage.migrate import upgrade

__all__ = ["Runtime", "consumers", "migrate", "replay_partitions", "run_worker", "signal_rules"]

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    log: EventLog
    pipeline: Pipeline | None  # None in the production mode: `polku worker`s run it
    progress: Progress
    keys: KeyCache
    intake: Intake
    identity: IdentityConfig
    live: LiveFeed
    outbox: Outbox  # write transactions that record the events of their decisions
    clock: Clock  # the journeys' clock (a hand-moved one in tests)
    journeys: JourneyRunner | None  # due waits and sends; None where the pipeline is not
    _process: multiprocessing.process.BaseProcess | None = None
    _nudger: _Nudger | None = None
    _own_channels: Channels | None = None  # made here from the settings, so closed here

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        migrate: bool | None = None,
        clock: Clock | None = None,
        channels: Channels | None = None,
    ) -> Runtime:
        """The parts for `settings`: the embedded mode (log in the database, pipeline here),
        or with a NATS log URL the production API mode (log in JetStream, no pipeline).
        `clock` and `channels` replace the wall clock and the configured channels (tests)."""
        clock = clock or (
            FollowingClock() if settings.journeys_clock == "events" else SystemClock()
        )
        engine = make_engine(settings)
        identity = IdentityConfig(
            default_region=settings.phone_region, shared_devices=settings.shared_devices
        )
        log: EventLog
        pipeline: Pipeline | None
        progress: Progress
        live: LiveFeed
        outbox: Outbox
        if settings.uses_nats:
            require_postgres(settings)
            if migrate:
                upgrade(engine)
            log = live_log = nats_log(settings)
            live = NatsFeed(live_log)
            outbox = Outbox(engine, live_log, settings.partitions)
            pipeline = None
            progress = PartitionedProgress(
                engine, settings.partitions, [c.name for c in consumers(identity)]
            )
        else:
            if settings.auto_migrate if migrate is None else migrate:
                upgrade(engine)
            log = table_log = SqlLog(engine)
            live = TableFeed(engine, table_log)
            outbox = Outbox(engine, table_log)
            chain = consumers(identity, signal_rules(settings), clock=clock)
            pipeline = Pipeline(
                engine, log, chain, batch=settings.pipeline_batch, commit_after=URGENT
            )
            progress = PipelineProgress(pipeline)
        keys = KeyCache(engine)
        runtime = cls(
            settings=settings,
            engine=engine,
            log=log,
            pipeline=pipeline,
            progress=progress,
            keys=keys,
            intake=Intake(settings, engine, log, keys, identity, live),
            identity=identity,
            live=live,
            outbox=outbox,
            clock=clock,
            journeys=None,
        )
        if pipeline is not None:
            if channels is None:
                channels = runtime._own_channels = Channels.from_settings(settings)
            runtime.journeys = JourneyRunner(
                engine,
                identity,
                clock,
                Sender(
                    runtime,
                    channels,
                    clock,
                    identity,
                    shop_url=settings.shop_url,
                ),
                tick=settings.journeys_tick,
            )
            pipeline.add_chore(Relay(engine, log).run_once)  # what a crash left in the outbox
            pipeline.add_chore(functools.partial(release_expired, runtime))
            pipeline.add_chore(functools.partial(expire_due, runtime))
            pipeline.add_chore(Deliverer(runtime))  # CRM webhooks, sent on threads of their own
        return runtime

    def bootstrap(self) -> tuple[str, NewAdminToken] | None:
        """Create the default workspace, write key and admin token on a fresh database."""
        with writing(self.engine) as conn:
            return ensure_default_workspace(conn)

    def start(self) -> None:
        if self.pipeline is None:  # production mode: check the setup, connect to NATS
            try:
                check_partitions(self.engine, self.settings.partitions)
                self.log.start()
            except Unavailable as exc:  # answer 503 until it is back, rather than not start
                logger.warning("starting without the log or the database: %s", exc)
            return
        self.log.start()
        if self.settings.pipeline == "thread":
            self.pipeline.start()
            if self.journeys is not None:
                self.journeys.start(sole=True)
        elif self.settings.pipeline == "process" and self._process is None:
            context = multiprocessing.get_context("spawn")
            wake_reader, wake_writer = context.Pipe(duplex=False)
            self._process = context.Process(
                target=run_pipeline_process,
                args=(self.settings, os.getpid(), wake_reader),
                name="polku-pipeline",
                daemon=True,
            )
            self._process.start()
            wake_reader.close()
            self._nudger = _Nudger(wake_writer)
            self.log.subscribe(self._nudger)

    def close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.journeys is not None:
            self.journeys.stop()
        if self._own_channels is not None:
            self._own_channels.close()
            self._own_channels = None
        if self._process is not None:
            self._process.terminate()
            self._process.join(timeout=30)
            self._process = None
        if self._nudger is not None:
            self._nudger.close()
            self._nudger = None
        self.log.close()
        forget_recommendations(self.engine)  # stops its background training runs first
        self.engine.dispose()


@dataclass(frozen=True)
class ChoreBackends:
    """The state database and the outbox, for work outside a `Runtime` (a worker's chores)."""

    engine: Engine
    outbox: Outbox


def signal_rules(settings: Settings) -> RuleBook:
    """The buying-signal rules of POLKU_SIGNAL_RULES (or the shipped ones), checked."""
    return load_rules(settings.signal_rules or None)


URGENT: Final = ("signals",)
"""Consumers whose results are committed as soon as they are applied, not with the rest
of the chain: a buying signal is worth most in its first seconds."""


def consumers(
    identity: IdentityConfig,
    rules: RuleBook | None = None,
    *,
    clock: Clock | None = None,
    partitions: int = 1,
) -> list[Consumer]:
    """The pipeline's consumers, in the order each depends on the one before (`rules`:
    the signals consumer's; None: the shipped ones; `clock`: the journeys')."""
    return [
        IdentityConsumer(identity),
        ProfilesConsumer(),
        StockConsumer(),
        CartsConsumer(identity),  # in identity's transaction: a cart follows its merges at once
        OrdersConsumer(),
        # Buying signals need who the person is (identity), their traits (profiles) and
        # their preferred store (orders): they come right after, and the embedded cycle
        # commits there (URGENT), before the rest of the chain takes its turn.
        SignalsConsumer(identity, rules=rules),
        BoughtTogether(),
        GiftCardsConsumer(),
        ReturnsConsumer(),
        InteractionsConsumer(),
        # Journeys act on everything above: the person, their cart, their signals, what
        # they viewed (back in stock). Last, so a trigger sees the whole picture.
        JourneysConsumer(identity, clock=clock, partitions=partitions),
    ]


def require_postgres(settings: Settings) -> None:
    if settings.is_sqlite:
        raise PolkuError(
            "The production mode (a NATS log) keeps its state in PostgreSQL, not SQLite.",
            field="POLKU_DATABASE_URL",
            hint="Set POLKU_DATABASE_URL=postgresql://user@host/dbname, or unset POLKU_LOG_URL "
            "for the embedded mode.",
        )


def nats_log(settings: Settings) -> NatsLog:
    """The production log as the settings describe it."""
    return NatsLog(
        [url.strip() for url in settings.log_url.split(",") if url.strip()],
        stream=settings.nats_stream,
        subject_prefix=settings.nats_subject_prefix,
        partitions=settings.partitions,
        max_age=settings.nats_max_age_days * 24 * 3600,
        duplicate_window=settings.nats_duplicate_window,
        replicas=settings.nats_replicas,
    )


def migrate(settings: Settings) -> None:
    """`polku migrate`: the database schema, and in the production mode the stream and the
    partitions too (idempotent; run once per deployment, before the new processes start)."""
    engine = make_engine(settings)
    try:
        upgrade(engine)
        if settings.uses_nats:
            require_postgres(settings)
            ensure_partitions(engine, settings.partitions)
            log = nats_log(settings)
            try:
                log.run(log.ensure_stream)
                check_stream_continues(engine, log)
            finally:
                log.close()
    finally:
        engine.dispose()


def replay_partitions(settings: Settings, *, echo: Callable[[str], None]) -> int:
    """`polku replay` in the production mode: rebuild the projections from the events copied
    into PostgreSQL, in stream order across all partitions (so the result does not depend on
    how the partitions interleaved live), then point every partition's checkpoints at what
    was replayed. The workers must be stopped."""
    require_postgres(settings)
    engine = make_engine(settings)
    try:
        check_partitions(engine, settings.partitions)
        with engine.connect() as conn:
            if live_workers(conn, settings.lease_seconds):
                raise PolkuError(
                    "Workers are running; a replay would race with them.",
                    hint="Stop every `polku worker` first (their leases then lapse within "
                    f"{settings.lease_seconds:g} s), and start them again after the replay.",
                )
        identity = IdentityConfig(
            default_region=settings.phone_region, shared_devices=settings.shared_devices
        )
        chain = consumers(identity, signal_rules(settings))
        archive_names = [checkpoints.scoped(ARCHIVE, p) for p in range(settings.partitions)]
        with engine.connect() as conn:
            copied = checkpoints.read_many(conn, archive_names)
        everything = SqlLog(engine)
        pipeline = Pipeline(engine, everything, chain, batch=settings.pipeline_batch)
        echo(f"Replaying {everything.head()} events…")
        seen = pipeline.replay()
        with writing(engine) as conn:
            for p in range(settings.partitions):
                for consumer in chain:
                    checkpoints.write(
                        conn, checkpoints.scoped(consumer.name, p), copied[archive_names[p]]
                    )
        everything.close()
        return seen
    finally:
        engine.dispose()


def check_stream_continues(engine: Engine, log: NatsLog) -> None:
    """Refuse a stream that ends before the events already copied into PostgreSQL.

    Offsets are the stream's sequence numbers. A stream deleted and made anew starts again
    at 1: workers would wait for sequences they think they have, and then collide with the
    copied events. Restore the stream from a backup instead (docs/deploy.md).
    """
    with translate_errors("reading the copied log"), engine.connect() as conn:
        copied = int(conn.execute(select(func.max(log_events.c.offset))).scalar() or 0)
    head = log.head()
    if head < copied:
        raise PolkuError(
            f"The NATS stream {log.stream} ends at sequence {head}, but PostgreSQL already "
            f"holds events up to offset {copied}: the stream was deleted or replaced.",
            field="POLKU_NATS_STREAM",
            hint="Restore the stream from its backup (`nats stream restore`), or point "
            "POLKU_NATS_STREAM at the original stream. If PostgreSQL already holds every "
            "event the stream has (a stream backup older than the database), move the "
            f"stream past them: `nats stream purge {log.stream} --seq {copied + 1}`. See "
            "docs/deploy.md, 'Backup and restore'.",
        )


def run_worker(settings: Settings, worker_id: str, *, ready: Callable[[Worker], None]) -> None:
    """Body of `polku worker`: hold a share of the partitions and project them until SIGTERM
    or SIGINT, then hand the partitions back."""
    if not settings.uses_nats:
        raise PolkuError(
            "`polku worker` runs the production mode's pipeline, which reads a NATS log.",
            field="POLKU_LOG_URL",
            hint="Set POLKU_LOG_URL=nats://host:4222 (and POLKU_DATABASE_URL to PostgreSQL); "
            "in the embedded mode `polku serve` runs the pipeline itself.",
        )
    require_postgres(settings)
    # One connection per partition runner, plus the heartbeat and the metrics' reads.
    engine = make_engine(settings, pool_size=settings.partitions + 4)
    identity = IdentityConfig(
        default_region=settings.phone_region, shared_devices=settings.shared_devices
    )
    rules = signal_rules(settings)
    log = nats_log(settings)
    backends = ChoreBackends(engine, Outbox(engine, log, settings.partitions))
    worker = Worker(
        engine,
        log,
        lambda: consumers(identity, rules, partitions=settings.partitions),
        worker_id=worker_id,
        lease_seconds=settings.lease_seconds,
        batch=settings.worker_batch,
        chores=[
            functools.partial(release_expired, backends),
            functools.partial(expire_due, backends),
            Deliverer(backends),
        ],
    )
    clock = SystemClock()
    journeys = JourneyRunner(
        engine,
        identity,
        clock,
        Sender(
            backends, Channels.from_settings(settings), clock, identity, shop_url=settings.shop_url
        ),
        tick=settings.journeys_tick,
        partitions=settings.partitions,
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    try:
        check_partitions(engine, settings.partitions)
        check_stream_continues(engine, log)
        ready(worker)
        journeys.start()
        worker.run()
    finally:
        journeys.stop()
        log.close()
        engine.dispose()


class _Nudger:
    """A log listener that wakes the pipeline process after each append: one byte down a
    pipe, never blocking (a full pipe already holds a wake-up; a broken one means the
    process has gone, and `Runtime.close` deals with that)."""

    def __init__(self, pipe: multiprocessing.connection.Connection) -> None:
        self._pipe = pipe
        self._fd: int | None = pipe.fileno()
        os.set_blocking(self._fd, False)

    def __call__(self, _head: int) -> None:
        fd = self._fd
        if fd is None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(fd, b"\0")

    def close(self) -> None:
        self._fd = None  # before the descriptor can be reused by anything else
        self._pipe.close()


def run_pipeline_process(
    settings: Settings,
    parent_pid: int,
    wake: multiprocessing.connection.Connection | None = None,
) -> None:
    """Body of the pipeline child process: run the consumers until the parent goes away.

    The parent writes a byte down `wake` after every append to the log, so an event is
    projected as soon as it is acknowledged; without that pipe (or as a safety net) it polls
    the log head (a cheap indexed read). It stops when terminated, when the pipe reports
    the parent's end closed, or when its parent process has died.
    """
    configure_logging(settings)
    # Projections can always be rebuilt from the log, and each consumer's checkpoint commits
    # with its writes, so the pipeline's own commits need not wait for the disk: after a
    # power loss it resumes from an older, consistent checkpoint. The log stays FULL.
    runtime = Runtime.open(settings.replace(sqlite_synchronous="NORMAL"), migrate=False)
    pipeline = runtime.pipeline
    assert pipeline is not None, "the embedded mode always has a pipeline"
    tune_for_throughput()

    def watch_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        pipeline.stop()

    def listen(pipe: multiprocessing.connection.Connection) -> None:
        fd = pipe.fileno()
        while True:
            try:
                if not os.read(fd, 4096):  # the parent's end is closed
                    break
            except OSError:
                break
            pipeline.wake()

    threading.Thread(target=watch_parent, name="polku-parent-watch", daemon=True).start()
    if wake is not None:
        threading.Thread(target=listen, args=(wake,), name="polku-wake", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: pipeline.stop())
    if runtime.journeys is not None:
        runtime.journeys.start(sole=True)
    try:
        pipeline.run_forever(idle_poll=0.02 if wake is None else 0.25)
    finally:
        if runtime.journeys is not None:
            runtime.journeys.stop()
        runtime.engine.dispose()
