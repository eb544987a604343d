"""What a pipeline consumer is: a named projection fed with events in log order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeAlias

from sqlalchemy import Connection

from polku.events import LoggedEvent

__all__ = ["Apply", "Consumer", "Contended"]

Apply: TypeAlias = Callable[[Connection], None]
"""Writes a prepared batch; runs inside the transaction that also moves the checkpoint."""


class Consumer(Protocol):
    """Maintains one projection, in two steps per batch of events:

    `prepare` reads what it needs and computes the changes outside any write lock (on SQLite
    the database has one writer at a time, and the log's appends must not wait for Python
    work), and returns an `Apply` that writes them. The runner calls that inside the
    transaction that also moves the checkpoint, so a batch is applied exactly once even if the
    process dies. Only the pipeline writes projection tables, so what `prepare` read is still
    true when `Apply` runs; the runner re-prepares under the lock if another worker moved the
    checkpoint in between.
    """

    name: str

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        """Compute the effect of `events` (in log order, all after the checkpoint).

        `shared`: other workers are processing other partitions of the log into the same
        tables right now (the production mode). `conn` is then the write transaction itself,
        and the consumer first takes the locks that keep its reads true until it commits; if
        it finds it cannot, it raises `Contended` and the runner tries the batch again.
        """
        ...

    def reset(self, conn: Connection) -> None:
        """Delete everything this consumer has built, before a replay from offset 0."""
        ...

    # Optional, not part of the protocol: ``warm()``, called once when a background
    # pipeline starts, loads what the first batch would otherwise wait for (a model).


class Contended(Exception):
    """A consumer could not lock what it needs in this attempt (another worker moved it);
    the runner rolls the transaction back and tries the batch again."""
