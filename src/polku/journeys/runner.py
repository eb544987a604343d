"""The journeys' background loop: due waits, then due sends, every `tick` seconds.

It runs where the pipeline runs (the embedded pipeline's thread or process; each
production worker, safe side by side thanks to row locks), so a message queued by an event
goes out within a tick of the pipeline committing it.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from polku.errors import Unavailable
from polku.identity.identifiers import IdentityConfig
from polku.journeys.clock import Clock
from polku.journeys.sender import Sender
from polku.journeys.sweep import INTERVAL_MS, sweep
from polku.journeys.timers import run_due
from polku.storage.engine import describe_error

__all__ = ["JourneyRunner"]

logger = logging.getLogger(__name__)


class JourneyRunner:
    def __init__(
        self,
        engine: Engine,
        identity: IdentityConfig,
        clock: Clock,
        sender: Sender,
        *,
        tick: float = 0.1,
        partitions: int = 1,
    ) -> None:
        self._engine = engine
        self._identity = identity
        self.clock = clock
        self.sender = sender
        self._tick = tick
        self._partitions = partitions
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._swept_at: int | None = None

    def sweep(self) -> int:
        """Date triggers and time-based segments now (the loop does it every 10 minutes)."""
        self._swept_at = self.clock.now_ms()
        return sweep(self._engine, self._identity, self.clock, partitions=self._partitions)

    def run_once(self) -> int:
        """Take due waits until none is left, then send what is due: the work done (and,
        every `INTERVAL_MS`, the sweep of date triggers and time-based segments)."""
        done = 0
        if self._swept_at is None or self.clock.now_ms() - self._swept_at >= INTERVAL_MS:
            done += self.sweep()
        while True:
            moved = run_due(self._engine, self._identity, self.clock, partitions=self._partitions)
            done += moved
            if moved < 500:
                break
        while True:
            sent = self.sender.run_once()
            done += sent
            if sent == 0:
                break
        return done

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except (OperationalError, Unavailable) as exc:
                logger.warning("journeys wait for the database: %s", describe_error(exc))
            except Exception:
                logger.exception("journeys: the timer run failed; trying again")
            self._wake.wait(self._tick)
            self._wake.clear()

    def start(self, *, sole: bool = False) -> None:
        """Run in the background; `sole`: no other process sends (the embedded mode), so
        what a crashed predecessor left claimed or in flight is taken over at once."""
        if sole:
            try:
                self.sender.recover()
            except (OperationalError, Unavailable) as exc:
                logger.warning("journeys could not recover sends: %s", describe_error(exc))
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="polku-journeys", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.sender.close()
