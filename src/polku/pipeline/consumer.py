"""What a pipeline consumer is: a named projection fed with events in log order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeAlias

from sqlalchemy import Connection

from polku.events import LoggedEvent

__all__ = ["Apply", "Consumer"]

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

    def prepare(self, conn: Connection, events: Sequence[LoggedEvent]) -> Apply:
        """Compute the effect of `events` (in log order, all after the checkpoint)."""
        ...

    def reset(self, conn: Connection) -> None:
        """Delete everything this consumer has built, before a replay from offset 0."""
        ...
