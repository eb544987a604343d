"""Open now? When does it close, and when does it open next?

Answers come from a location's `Schedule` (its week and dated exceptions, see `schedule`)
in its own time zone, read with `zoneinfo`, so a store that opens at 10:00 opens at 10:00 in
summer and in winter. On the night the clocks go forward, a time that does not exist (03:30
in Helsinki) is read an hour later; on the night they go back, a time that happens twice is
its first occurrence. Instants are compared as UTC timestamps, never as wall-clock times.

`status_at` is a pure function of a `Schedule`; `opening_statuses` loads the schedules of
many locations in two queries, so the availability API can afford to ask for fifty.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from polku.commerce.locations.queries import unknown_location
from polku.commerce.locations.schedule import (
    MAX_YEAR,
    MIN_YEAR,
    DayException,
    Schedule,
    decode_intervals,
    decode_week,
)
from polku.commerce.locations.tables import exceptions as exceptions_table
from polku.commerce.locations.tables import locations
from polku.errors import InvalidField

__all__ = [
    "OpeningStatus",
    "Schedule",
    "load_schedules",
    "opening_status",
    "opening_statuses",
    "schedule_of",
    "status_at",
]

_FIRST_HORIZON: Final = 14  # days looked ahead on the first try: covers Christmas to Epiphany
_HORIZON: Final = 366  # days looked ahead at most; beyond, `next_opening` is None


@dataclass(frozen=True, slots=True)
class OpeningStatus:
    """Whether a location is open at an instant, when it closes, and when it opens next.

    Times are aware datetimes in the location's time zone. `closes_at` is set when open (None:
    it does not close within a year); `next_opening` is the next time it opens after `at`
    (after `closes_at` when open now; None: not within a year). `note` is the exception of
    the local date of `at`, e.g. "Christmas Eve".
    """

    open_now: bool
    closes_at: datetime | None
    next_opening: datetime | None
    note: str | None = None


# -- open now? ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=16384)
def _instant(timezone: str, day: date, minutes: int) -> float:
    """The UTC timestamp of `minutes` after local midnight of `day`, wall-clock (see module
    doc for the nights the clocks change). Cached: a chain's stores share their hours."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return (midnight + timedelta(minutes=minutes)).timestamp()


@functools.lru_cache(maxsize=16384)
def _local(timestamp: float, timezone: str) -> datetime:
    return datetime.fromtimestamp(timestamp, ZoneInfo(timezone))


def _spans(schedule: Schedule, first: date, last: date) -> Iterator[tuple[float, float | None]]:
    """Opening spans (UTC timestamps) of the days `first` to `last`, with intervals that
    touch or overlap joined (a 24/7 week is one span). A span that reaches the end of `last`
    ends with None: when it closes is not known."""
    zone = schedule.timezone
    current: list[float] | None = None
    day = first
    while day <= last:
        for opens, closes in schedule.intervals_on(day):
            start, end = _instant(zone, day, opens), _instant(zone, day, closes)
            if end <= start:  # wholly in the hour the clocks skip
                continue
            if current is None:
                current = [start, end]
            elif start <= current[1]:
                current[0], current[1] = min(current[0], start), max(current[1], end)
            else:
                yield current[0], current[1]
                current = [start, end]
        day += timedelta(days=1)
    if current is not None:
        yield current[0], current[1] if current[1] < _instant(zone, day, 0) else None


def _checked(at: datetime) -> datetime:
    moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise InvalidField(
            f"at {moment.isoformat()} is outside the years {MIN_YEAR}..{MAX_YEAR}.",
            field="at",
            hint="Ask about a date-time in this millennium, e.g. 2026-12-24T12:00:00+02:00.",
        )
    return moment


def _status(schedule: Schedule, at: datetime) -> tuple[OpeningStatus, bool]:
    """The status, and whether it was settled within `schedule.until`."""
    now = _checked(at).timestamp()
    today = datetime.fromtimestamp(now, ZoneInfo(schedule.timezone)).date()
    last = min(schedule.until, today + timedelta(days=_HORIZON))
    found = schedule.exceptions.get(today)
    note = found.note if found is not None else None
    open_now, closes, opening = False, None, None
    settled = False
    # The day before: its night may run past midnight into today.
    for start, end in _spans(schedule, today - timedelta(days=1), last):
        if end is not None and end <= now:
            continue
        if start <= now:
            open_now, closes = True, end
            if end is None:
                # Open beyond the window (a 24/7 store): settled, with no closing in sight.
                # Looking a year ahead would only find the same, at 26 times the cost.
                settled = True
                break
            continue
        opening, settled = start, True
        break
    zone = schedule.timezone
    return (
        OpeningStatus(
            open_now=open_now,
            closes_at=None if closes is None else _local(closes, zone),
            next_opening=None if opening is None else _local(opening, zone),
            note=note,
        ),
        settled,
    )


def status_at(schedule: Schedule, at: datetime) -> OpeningStatus:
    """Whether the location of `schedule` is open at `at` (aware; naive is read as UTC), when
    it closes, and when it opens next. Pure: no I/O."""
    return _status(schedule, at)[0]


# -- loading --------------------------------------------------------------------------


def _window(at: datetime, days: int) -> tuple[date, date]:
    """Dates that cover the local day before `at` to `days` after it, in any time zone."""
    utc_day = _checked(at).astimezone(UTC).date()
    return utc_day - timedelta(days=2), utc_day + timedelta(days=days + 1)


def load_schedules(
    conn: Connection,
    workspace_id: str,
    location_ids: Iterable[str],
    first: date,
    until: date,
) -> dict[str, Schedule]:
    """The schedules of `location_ids` (unknown ids are left out), with the exceptions from
    `first` to `until`: one query for the locations' weeks, one for the exceptions."""
    ids = sorted(set(location_ids))
    if not ids:
        return {}
    weeks = conn.execute(
        select(locations.c.location_id, locations.c.timezone, locations.c.weekly_hours).where(
            locations.c.workspace_id == workspace_id, locations.c.location_id.in_(ids)
        )
    ).all()
    dated: dict[str, dict[date, DayException]] = {}
    if weeks:
        for location_id, day, intervals, note in conn.execute(
            select(
                exceptions_table.c.location_id,
                exceptions_table.c.day,
                exceptions_table.c.intervals,
                exceptions_table.c.note,
            ).where(
                exceptions_table.c.workspace_id == workspace_id,
                exceptions_table.c.location_id.in_([row[0] for row in weeks]),
                exceptions_table.c.day.between(first, until),
            )
        ).all():
            dated.setdefault(location_id, {})[day] = DayException(
                day, decode_intervals(intervals), note
            )
    return {
        location_id: Schedule(timezone, decode_week(raw), dated.get(location_id, {}), until)
        for location_id, timezone, raw in weeks
    }


def opening_statuses(
    conn: Connection, workspace_id: str, location_ids: Sequence[str], at: datetime
) -> dict[str, OpeningStatus]:
    """The opening status at `at` of each of `location_ids` that exists in the workspace.

    Two queries for all of them; the few locations that stay closed beyond two weeks (closed
    for a renovation, no weekly hours) are looked at again up to a year ahead.
    """
    first, until = _window(at, _FIRST_HORIZON)
    schedules = load_schedules(conn, workspace_id, location_ids, first, until)
    found: dict[str, OpeningStatus] = {}
    unsettled: list[str] = []
    for location_id, schedule in schedules.items():
        status, settled = _status(schedule, at)
        found[location_id] = status
        if not settled:
            unsettled.append(location_id)
    if unsettled:
        first, until = _window(at, _HORIZON)
        for location_id, schedule in load_schedules(
            conn, workspace_id, unsettled, first, until
        ).items():
            found[location_id] = status_at(schedule, at)
    return found


def opening_status(
    conn: Connection, workspace_id: str, location_id: str, at: datetime
) -> OpeningStatus:
    """The opening status of one location at `at`; `NotFound` when the workspace has no
    such location."""
    found = opening_statuses(conn, workspace_id, [location_id], at).get(location_id)
    if found is None:
        raise unknown_location(location_id)
    return found


def schedule_of(
    conn: Connection, workspace_id: str, location_id: str, at: datetime, days: int = 90
) -> Schedule:
    """The location's week, and its exceptions from the local date of `at` for `days` days
    (what is coming up); `NotFound` when the workspace has no such location."""
    first, until = _window(at, days)
    found = load_schedules(conn, workspace_id, [location_id], first, until).get(location_id)
    if found is None:
        raise unknown_location(location_id)
    today = _checked(at).astimezone(ZoneInfo(found.timezone)).date()
    last = today + timedelta(days=days)
    coming = {day: item for day, item in found.exceptions.items() if today <= day <= last}
    return Schedule(found.timezone, found.week, dict(sorted(coming.items())), last)
