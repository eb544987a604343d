"""What a pipeline consumer is: a named projection fed with events in log order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Connection

from polku.events import LoggedEvent

__all__ = ["Consumer"]


class Consumer(Protocol):
    """Maintains one projection. `handle` runs inside the transaction that also moves the
    consumer's checkpoint, so a batch is applied exactly once even if the process dies."""

    name: str

    def handle(self, conn: Connection, events: Sequence[LoggedEvent]) -> None:
        """Apply `events` (in log order, all after this consumer's checkpoint)."""
        ...

    def reset(self, conn: Connection) -> None:
        """Delete everything this consumer has built, before a replay from offset 0."""
        ...
