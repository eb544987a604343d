"""The journeys' clock: the wall clock in production, a hand-moved one in tests.

Steps taken because of an event run at the event's time (a replay gives the same waits);
the timer run and the sender ask the clock what time it is now, so a test can move time
forward by a day and see the reminders go out without waiting for it.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "FollowingClock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def saw(self, at_ms: int) -> None:
        """The journeys consumer reports the newest event time of each batch."""


class SystemClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def saw(self, at_ms: int) -> None:
        pass


class FollowingClock:
    """The wall clock, or the newest event's time when that is later: for simulated data
    whose time runs faster than real time (`polku demo`), so that its waits end and its
    messages go out in its own time. Per process: set by the consumer running there."""

    def __init__(self) -> None:
        self._newest = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return max(int(time.time() * 1000), self._newest)

    def saw(self, at_ms: int) -> None:
        with self._lock:
            self._newest = max(self._newest, at_ms)


class ManualClock:
    """A clock that only moves when told (`advance`, `set`); safe across threads."""

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = int(time.time() * 1000) if start_ms is None else start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def saw(self, at_ms: int) -> None:
        pass

    def advance(
        self, *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> int:
        step = int((seconds + minutes * 60 + hours * 3600 + days * 86400) * 1000)
        with self._lock:
            self._now += step
            return self._now

    def set(self, now_ms: int) -> None:
        with self._lock:
            self._now = now_ms
