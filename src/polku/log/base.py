"""The log interface: what every backend (SQL table now, NATS JetStream later) provides.

Producers call `append` and get control back only once the events are durable; consumers
read in order after a checkpoint. Nothing else in Polku touches a backend directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from polku.events import LoggedEvent, NewEvent

__all__ = ["AppendListener", "EventLog", "LogReader"]

AppendListener = Callable[[int], None]
"""Called with the log's head offset after each durable append (in the writer's thread)."""


class LogReader(Protocol):
    """What a pipeline needs of a log: read it in order, know its head, hear of appends."""

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Up to `limit` events with offset greater than `after`, in log order."""
        ...

    def head(self) -> int:
        """The offset of the last durable event (0 when the log is empty)."""
        ...

    def subscribe(self, listener: AppendListener) -> None:
        """Call `listener` after every append (how consumers wake up without polling)."""
        ...


class EventLog(LogReader, Protocol):
    async def append(self, events: Sequence[NewEvent]) -> int:
        """Make `events` durable (deduplicated by workspace + messageId); return the head offset.

        Raises `polku.errors.Unavailable` when the events could not be made durable.
        """
        ...

    def append_sync(self, events: Sequence[NewEvent]) -> int:
        """`append` for code that runs outside an event loop (CLI, worker threads)."""
        ...

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Up to `limit` events with offset greater than `after`, in log order."""
        ...

    def head(self) -> int:
        """The offset of the last durable event (0 when the log is empty)."""
        ...

    def subscribe(self, listener: AppendListener) -> None:
        """Call `listener` after every append (how consumers wake up without polling)."""
        ...

    def start(self) -> None: ...

    def close(self) -> None: ...
