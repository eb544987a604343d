"""The event model every part of Polku speaks.

A leaf module: it imports nothing from polku, so anything may import it. An event is a Segment
message (track, identify, page, screen, group, alias) after collection has validated and stamped
it; internal facts that Polku itself records (an un-merge, a consent change made in the console)
are events too, with ``type`` starting with ``polku.``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

__all__ = [
    "CHANNELS",
    "INTERNAL_PREFIX",
    "MESSAGE_TYPES",
    "LoggedEvent",
    "NewEvent",
    "Receipt",
    "from_ms",
    "to_iso",
    "to_ms",
]

MESSAGE_TYPES: Final = frozenset({"track", "identify", "page", "screen", "group", "alias"})
"""The Segment message types the collection API accepts."""

INTERNAL_PREFIX: Final = "polku."
"""Event types Polku writes itself (never accepted from clients)."""

CHANNELS: Final = ("web", "app", "store", "chat", "email", "sms", "phone")
"""Values of ``context.channel``: where the interaction happened."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended to the log; ``payload`` is the stamped message as JSON."""

    workspace_id: str
    message_id: str
    type: str
    partition_key: str
    received_at: int  # epoch milliseconds
    timestamp: int  # epoch milliseconds, after the Segment timestamp correction
    payload: bytes
    source_id: str = ""
    event: str | None = None


@dataclass(slots=True)
class LoggedEvent:
    """An event read back from the log, with its position (``offset``) in it."""

    offset: int
    workspace_id: str
    message_id: str
    type: str
    partition_key: str
    received_at: int
    timestamp: int
    payload: bytes
    source_id: str = ""
    event: str | None = None
    partition: int = 0  # the log partition it came from (always 0 in the embedded mode)
    _message: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def message(self) -> dict[str, Any]:
        """The stamped Segment message, parsed once on first use."""
        if self._message is None:
            self._message = orjson.loads(self.payload)
        return self._message


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where an appended event went: its offset, and the key that chose its partition (what a
    caller needs to wait until the pipeline has processed it)."""

    offset: int
    partition_key: str


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@functools.lru_cache(maxsize=16384)
def to_iso(ms: int) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, the form Segment uses.

    Cached: on the ingest path the same instants (receivedAt, sentAt of a batch) repeat.
    """
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
