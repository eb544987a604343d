"""How far the pipeline has processed the log, asked by the API (read-your-writes, health).

Answered from the checkpoints in the database, so it is right whichever process runs the
consumers. In the embedded mode the log has one order and one position; in the production
mode each partition has its own, and an event is processed once the last consumer of its
partition has passed its offset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Engine

from polku.events import Receipt
from polku.log.nats import partition_of
from polku.pipeline import checkpoints
from polku.pipeline.runner import Pipeline
from polku.pipeline.worker import ARCHIVE
from polku.storage.engine import translate_errors

__all__ = ["PartitionedProgress", "PipelineProgress", "Progress"]


class Progress(Protocol):
    def processed(self, receipt: Receipt) -> bool:
        """Whether every consumer has processed the event behind `receipt`."""
        ...

    def positions(self) -> dict[str, int]:
        """Checkpoints worth showing (``pipeline``, or one per partition)."""
        ...

    def lags(self) -> dict[tuple[str, int], int]:
        """Events each consumer has yet to process, by (consumer, partition), from the
        checkpoints in the database (so right whichever process runs the consumers)."""
        ...

    async def wait_for(self, receipt: Receipt, timeout: float = 10.0) -> bool:
        """Wait until `processed(receipt)`; False if that took longer than `timeout` s."""
        ...


class _Waiting:
    async def wait_for(self, receipt: Receipt, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self.processed, receipt):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def processed(self, receipt: Receipt) -> bool:
        raise NotImplementedError


class PipelineProgress(_Waiting):
    """The embedded mode: one log, one position."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def processed(self, receipt: Receipt) -> bool:
        return self._pipeline.position >= receipt.offset

    def positions(self) -> dict[str, int]:
        return {"pipeline": self._pipeline.position}

    def lags(self) -> dict[tuple[str, int], int]:
        return {(name, 0): lag for name, lag in self._pipeline.lags().items()}


class PartitionedProgress(_Waiting):
    """The production mode: the last consumer's checkpoint on the event's partition."""

    def __init__(self, engine: Engine, partitions: int, consumers: Sequence[str]) -> None:
        self._engine = engine
        self._partitions = partitions
        self._consumers = tuple(consumers)
        self._last = consumers[-1]

    def processed(self, receipt: Receipt) -> bool:
        partition = partition_of(receipt.partition_key, self._partitions)
        name = checkpoints.scoped(self._last, partition)
        with translate_errors("reading the pipeline's progress"), self._engine.connect() as conn:
            return checkpoints.read(conn, name) >= receipt.offset

    def positions(self) -> dict[str, int]:
        names = [checkpoints.scoped(self._last, p) for p in range(self._partitions)]
        with translate_errors("reading the pipeline's progress"), self._engine.connect() as conn:
            return checkpoints.read_many(conn, names)

    def lags(self) -> dict[tuple[str, int], int]:
        """Behind the copy in PostgreSQL; how far the copy is behind NATS only the workers
        know (their `polku_consumer_lag_events{consumer="archive"}`)."""
        names = [
            checkpoints.scoped(name, p)
            for p in range(self._partitions)
            for name in (ARCHIVE, *self._consumers)
        ]
        with translate_errors("reading the pipeline's progress"), self._engine.connect() as conn:
            found = checkpoints.read_many(conn, names)
        lags: dict[tuple[str, int], int] = {}
        for p in range(self._partitions):
            copied = found[checkpoints.scoped(ARCHIVE, p)]
            for name in self._consumers:
                lags[(name, p)] = max(0, copied - found[checkpoints.scoped(name, p)])
        return lags
