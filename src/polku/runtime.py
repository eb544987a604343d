"""Everything a running Polku holds: engine, log, pipeline, and the services built on them.

`Runtime.open(settings)` builds it, and `start`/`close` bring the background parts (the log
writer, the pipeline) up and down. The HTTP app, the CLI and the tests all use this one
assembly, so there is exactly one way the parts are wired together.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine

from polku.access.actions import NewAdminToken, ensure_default_workspace
from polku.access.queries import KeyCache
from polku.collect.intake import Intake
from polku.gctune import tune_for_throughput
from polku.identity.identifiers import IdentityConfig
from polku.identity.projection import IdentityConsumer
from polku.log.base import EventLog
from polku.log.sql import SqlLog
from polku.pipeline.runner import Pipeline
from polku.profiles.projection import ProfilesConsumer
from polku.settings import Settings
from polku.storage.engine import make_engine, writing
from polku.storage.migrate import upgrade

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    log: EventLog
    pipeline: Pipeline
    keys: KeyCache
    intake: Intake
    identity: IdentityConfig
    _process: multiprocessing.process.BaseProcess | None = None

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool | None = None) -> Runtime:
        engine = make_engine(settings)
        if settings.auto_migrate if migrate is None else migrate:
            upgrade(engine)
        identity = IdentityConfig(
            default_region=settings.phone_region, shared_devices=settings.shared_devices
        )
        log = SqlLog(engine)
        pipeline = Pipeline(
            engine,
            log,
            [IdentityConsumer(identity), ProfilesConsumer()],
            batch=settings.pipeline_batch,
        )
        keys = KeyCache(engine)
        return cls(
            settings=settings,
            engine=engine,
            log=log,
            pipeline=pipeline,
            keys=keys,
            intake=Intake(settings, engine, log, keys, identity),
            identity=identity,
        )

    def bootstrap(self) -> tuple[str, NewAdminToken] | None:
        """Create the default workspace, write key and admin token on a fresh database."""
        with writing(self.engine) as conn:
            return ensure_default_workspace(conn)

    def start(self) -> None:
        self.log.start()
        if self.settings.pipeline == "thread":
            self.pipeline.start()
        elif self.settings.pipeline == "process" and self._process is None:
            context = multiprocessing.get_context("spawn")
            self._process = context.Process(
                target=run_pipeline_process,
                args=(self.settings, os.getpid()),
                name="polku-pipeline",
                daemon=True,
            )
            self._process.start()

    def close(self) -> None:
        self.pipeline.stop()
        if self._process is not None:
            self._process.terminate()
            self._process.join(timeout=30)
            self._process = None
        self.log.close()
        self.engine.dispose()


def run_pipeline_process(settings: Settings, parent_pid: int) -> None:
    """Body of the pipeline child process: run the consumers until the parent goes away.

    It learns about new events by polling the log head every 20 ms (a cheap indexed read);
    it stops when terminated or when its parent process has died.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Projections can always be rebuilt from the log, and each consumer's checkpoint commits
    # with its writes, so the pipeline's own commits need not wait for the disk: after a
    # power loss it resumes from an older, consistent checkpoint. The log stays FULL.
    runtime = Runtime.open(settings.replace(sqlite_synchronous="NORMAL"), migrate=False)
    pipeline = runtime.pipeline
    tune_for_throughput()

    def watch_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        pipeline.stop()

    threading.Thread(target=watch_parent, name="polku-parent-watch", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: pipeline.stop())
    try:
        pipeline.run_forever(idle_poll=0.02)
    finally:
        runtime.engine.dispose()
