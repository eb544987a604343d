"""The figures of the console's signal report: signals, conversions and sales per day, per
queue and per kind over a period, for the queues a viewer may see.

A signal *converts* as in `queries.conversions`: its person places an order in any channel
within the routing config's `conversion_days` after the signal. A signal is *sold* when
staff recorded the outcome `sold`. Days are Finnish days (Europe/Helsinki), the console's
time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from polku.profiles.queries import resolve
from polku.signals.queries import orders_placed_at
from polku.signals.routing import config_of
from polku.signals.tables import routes, signals

__all__ = ["Figures", "Report", "signal_report"]

_ZONE: Final = ZoneInfo("Europe/Helsinki")
_DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class Figures:
    """One row of the report: what `label` names (a day's start in epoch ms as text, a
    queue or a kind) and its counts."""

    label: str
    signals: int = 0
    conversions: int = 0
    sold: int = 0

    @property
    def rate(self) -> float:
        return self.conversions / self.signals if self.signals else 0.0


@dataclass(frozen=True, slots=True)
class Report:
    """Signals of `queues` from `since` (epoch ms) for `len(days)` days."""

    since: int
    conversion_days: int
    total: Figures
    days: tuple[Figures, ...]  # oldest first, every day of the period, labels are epoch ms
    by_queue: tuple[Figures, ...]
    by_kind: tuple[Figures, ...]


def _day_starts(end_ms: int, days: int) -> list[int]:
    """The epoch-ms starts of the `days` Finnish days up to and including `end_ms`'s, and
    of the day after (the period's end)."""
    last = datetime.fromtimestamp(end_ms / 1000, UTC).astimezone(_ZONE).date()
    first = last - timedelta(days=days - 1)
    return [
        int(datetime.combine(first + timedelta(days=i), datetime.min.time(), _ZONE).timestamp())
        * 1000
        for i in range(days + 1)
    ]


def _converted(conn: Connection, workspace_id: str, rows: Sequence[Any], window: int) -> set[int]:
    by_profile: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_profile[row.profile_id].append(row)
    converted: set[int] = set()
    span = window * _DAY_MS
    for profile_id, items in by_profile.items():
        holder = resolve(conn, workspace_id, profile_id) or profile_id
        times = orders_placed_at(conn, workspace_id, holder, min(r.at for r in items))
        converted.update(r.id for r in items if any(r.at <= t <= r.at + span for t in times))
    return converted


def _count(labels: Sequence[str], hits: dict[str, list[int]]) -> tuple[Figures, ...]:
    return tuple(Figures(label, *hits.get(label, [0, 0, 0])) for label in labels)


def signal_report(
    conn: Connection, workspace_id: str, queues: Sequence[str], *, end_ms: int, days: int = 30
) -> Report:
    """The report of the signals on any of `queues` in the `days` Finnish days up to
    `end_ms` (see the module doc)."""
    *starts, end = _day_starts(end_ms, days)
    window = config_of(conn, workspace_id).conversion_days
    on: dict[int, set[str]] = defaultdict(set)
    for signal_id, queue in conn.execute(
        select(routes.c.signal_id, routes.c.queue).where(
            routes.c.workspace_id == workspace_id, routes.c.queue.in_(list(queues))
        )
    ):
        on[signal_id].add(queue)
    rows = [
        row
        for row in conn.execute(
            select(
                signals.c.id, signals.c.profile_id, signals.c.kind, signals.c.at, signals.c.outcome
            ).where(
                signals.c.workspace_id == workspace_id,
                signals.c.at >= starts[0],
                signals.c.at < end,
            )
        )
        if row.id in on
    ]
    converted = _converted(conn, workspace_id, rows, window)
    hits: dict[str, dict[str, list[int]]] = {
        "day": defaultdict(lambda: [0, 0, 0]),
        "queue": defaultdict(lambda: [0, 0, 0]),
        "kind": defaultdict(lambda: [0, 0, 0]),
    }
    total = [0, 0, 0]
    for row in rows:
        day = str(max(s for s in starts if s <= row.at))
        counts = (1, int(row.id in converted), int(row.outcome == "sold"))
        keys = [("day", day), ("kind", row.kind), *(("queue", q) for q in sorted(on[row.id]))]
        for group, label in keys:
            for i, n in enumerate(counts):
                hits[group][label][i] += n
        for i, n in enumerate(counts):
            total[i] += n
    return Report(
        since=starts[0],
        conversion_days=window,
        total=Figures("total", *total),
        days=_count([str(s) for s in starts], hits["day"]),
        by_queue=_count(sorted(hits["queue"]), hits["queue"]),
        by_kind=_count(sorted(hits["kind"]), hits["kind"]),
    )
