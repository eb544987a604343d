"""What decides when a location is open, in the API's form and the tables' form.

- A **week** maps weekdays (``mon`` .. ``sun``) to intervals ``["09:00", "21:00"]``, several
  a day if need be. A missing or empty day is closed.
- An interval belongs to the day it **opens** on. One whose closing time is not after its
  opening time runs past midnight: ``["22:00", "02:00"]`` on Friday closes at 02:00 on
  Saturday. ``"24:00"`` closes at midnight; ``["00:00", "24:00"]`` is open all day.
- An **exception** gives one date's intervals instead of its weekday's: ``[]`` closes it all
  day (a holiday), ``[["08:00", "14:00"]]`` is Christmas Eve's early close. The night before
  still runs past midnight into it, as its own day says.

Times are wall-clock times in the location's time zone (an IANA name). The tables hold
intervals as minutes from the day's local midnight (22:00-02:00 is ``(1320, 1560)``).
Parsing raises `InvalidField` naming the day and interval at fault, so a bad week is a 400
that says which interval to fix.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import orjson

from polku.errors import InvalidField

__all__ = [
    "CLOSED_WEEK",
    "DAY_MINUTES",
    "MAX_YEAR",
    "MIN_YEAR",
    "WEEKDAYS",
    "DayException",
    "Interval",
    "Schedule",
    "Week",
    "check_timezone",
    "decode_intervals",
    "decode_week",
    "encode_intervals",
    "encode_week",
    "format_interval",
    "parse_date",
    "parse_day",
    "parse_exceptions",
    "parse_week",
]

DAY_MINUTES: Final = 24 * 60
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday keys of the week format, Monday first (`date.weekday()` order)."""

Interval = tuple[int, int]
"""(opens, closes) in minutes from the day's local midnight; closes > 1440 is the next day."""

Week = tuple[tuple[Interval, ...], ...]
"""Seven days of intervals, Monday first, each day's sorted by opening time."""

CLOSED_WEEK: Final[Week] = ((),) * 7

_MAX_EXCEPTIONS: Final = 1000
MIN_YEAR: Final = 1971
MAX_YEAR: Final = 9000
"""Years a date or an instant may fall in (the horizon of a year ahead stays in range)."""
_TIME: Final = re.compile(r"(\d{1,2}):(\d{2})")
_TIME_HINT: Final = (
    'Send [opens, closes] in 24-hour local time, e.g. ["09:00", "21:00"]; a closing time '
    'before the opening time runs past midnight (["22:00", "02:00"]), "24:00" is midnight.'
)


@dataclass(frozen=True, slots=True)
class DayException:
    """The hours of one local date instead of its weekday's; no intervals: closed all day."""

    day: date
    intervals: tuple[Interval, ...]
    note: str | None = None

    @property
    def closed(self) -> bool:
        return not self.intervals


@dataclass(frozen=True, slots=True)
class Schedule:
    """Everything that decides when one location is open, for dates up to `until`."""

    timezone: str
    week: Week = CLOSED_WEEK
    exceptions: Mapping[date, DayException] = field(default_factory=dict)
    until: date = date(MAX_YEAR + 1, 12, 31)  # exceptions are known up to this date

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        found = self.exceptions.get(day)
        return self.week[day.weekday()] if found is None else found.intervals


# -- the format ---------------------------------------------------------------------------


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(value: object, name: str = "timezone") -> str:
    """`value` if it is an IANA time zone name (``Europe/Helsinki``); InvalidField otherwise."""
    if isinstance(value, str) and value.strip() in _zone_names():
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return value.strip()
    shown = str(value)[:64] if isinstance(value, str) else type(value).__name__
    raise InvalidField(
        f"{name} {shown!r} is not an IANA time zone.",
        field=name,
        hint="Send a name such as Europe/Helsinki, Europe/Stockholm or Europe/Tallinn.",
    )


def _minutes(value: object, name: str, *, closing: bool) -> int:
    found = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is not None:
        hour, minute = int(found.group(1)), int(found.group(2))
        if minute < 60 and (hour < 24 or (closing and hour == 24 and minute == 0)):
            return hour * 60 + minute
    shown = repr(value)[:40]
    raise InvalidField(f"{name} {shown} is not a time of day.", field=name, hint=_TIME_HINT)


def _interval(value: object, name: str) -> Interval:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InvalidField(f"{name} must be a pair [opens, closes].", field=name, hint=_TIME_HINT)
    opens = _minutes(value[0], f"{name}[0]", closing=False)
    closes = _minutes(value[1], f"{name}[1]", closing=True)
    if closes == opens:
        raise InvalidField(
            f"{name} opens and closes at the same time.",
            field=name,
            hint='For open all day send ["00:00", "24:00"]; for closed send no interval.',
        )
    if closes < opens:
        closes += DAY_MINUTES  # past midnight
    return opens, closes


def _clock(minutes: int) -> str:
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}:{minute:02d}"


def format_interval(interval: Interval) -> list[str]:
    """The API form of an interval: ``[1320, 1560]`` → ``["22:00", "02:00"]``."""
    opens, closes = interval
    return [_clock(opens), "24:00" if closes == DAY_MINUTES else _clock(closes % DAY_MINUTES)]


def _overlap(name: str, first: str, second: str) -> InvalidField:
    return InvalidField(
        f"{name}: the interval {first} overlaps {second}.",
        field=name,
        hint="Give each opening once; join intervals that touch into one "
        '(["09:00", "21:00"]), and remember an interval belongs to the day it opens on.',
    )


def parse_day(value: object, name: str) -> tuple[Interval, ...]:
    """One day's intervals from the API form (a list of pairs), sorted; InvalidField naming
    the interval at fault when one is malformed or two overlap."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise InvalidField(
            f"{name} must be a list of [opens, closes] pairs.", field=name, hint=_TIME_HINT
        )
    if len(value) > 12:
        raise InvalidField(
            f"{name} has {len(value)} intervals; at most 12 a day are allowed.",
            field=name,
            hint="Join the intervals that touch.",
        )
    found = sorted(
        ((_interval(raw, f"{name}[{i}]"), i) for i, raw in enumerate(value)),
        key=lambda pair: pair[0],
    )
    for (before, i), (after, j) in itertools.pairwise(found):
        if after[0] < before[1]:
            raise _overlap(f"{name}[{j}]", "-".join(format_interval(after)), f"{name}[{i}]")
    return tuple(interval for interval, _ in found)


def parse_week(value: object, name: str = "hours") -> Week:
    """A week from the API form ``{"mon": [["09:00", "21:00"]], ...}``; InvalidField for an
    unknown day, a malformed interval, or intervals that overlap (also across midnight, and
    from Sunday night into Monday)."""
    if not isinstance(value, Mapping):
        raise InvalidField(
            f"{name} must be an object of weekdays.",
            field=name,
            hint='Send {"mon": [["09:00", "21:00"]], ..., "sun": []}.',
        )
    unknown = sorted(str(key) for key in value if key not in WEEKDAYS)
    if unknown:
        raise InvalidField(
            f"{name} has an unknown day {unknown[0][:20]!r}.",
            field=f"{name}.{unknown[0][:20]}",
            hint=f"Use the days {', '.join(WEEKDAYS)}; leave a closed day out or send [].",
        )
    week = tuple(parse_day(value.get(day), f"{name}.{day}") for day in WEEKDAYS)
    # Across days: a night's interval must end before the next day's first one starts.
    for weekday, intervals in enumerate(week):
        if not intervals or intervals[-1][1] <= DAY_MINUTES:
            continue
        following = (weekday + 1) % 7
        spill = intervals[-1][1] - DAY_MINUTES
        if week[following] and week[following][0][0] < spill:
            last = f"{name}.{WEEKDAYS[weekday]}[{len(intervals) - 1}]"
            raise _overlap(
                last,
                "-".join(format_interval(intervals[-1])),
                f"{name}.{WEEKDAYS[following]}[0]",
            )
    return week


def parse_date(value: object, name: str = "date") -> date:
    """A calendar date from ``YYYY-MM-DD``; InvalidField otherwise."""
    if isinstance(value, str):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if MIN_YEAR <= day.year <= MAX_YEAR:
                return day
    raise InvalidField(
        f"{name} {str(value)[:40]!r} is not a date.",
        field=name,
        hint="Send the local date as YYYY-MM-DD, e.g. 2026-12-24.",
    )


def parse_exceptions(value: object, name: str = "exceptions") -> list[DayException]:
    """Dated exceptions from the API form: a list of ``{"date": "2026-12-24", "hours":
    [["08:00", "14:00"]], "note": "Christmas Eve"}``, or ``"closed": true`` instead of hours
    for closed all day. InvalidField naming the item at fault; a date may appear once."""
    if not isinstance(value, (list, tuple)):
        raise InvalidField(
            f"{name} must be a list of dated exceptions.",
            field=name,
            hint='Send [{"date": "2026-12-25", "closed": true, "note": "Christmas Day"}].',
        )
    if len(value) > _MAX_EXCEPTIONS:
        raise InvalidField(
            f"{name} has {len(value)} items; at most {_MAX_EXCEPTIONS} fit in one request.",
            field=name,
            hint="Send them in several requests.",
        )
    found: dict[date, DayException] = {}
    for index, item in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidField(
                f"{where} must be an object.",
                field=where,
                hint='Send {"date": "2026-12-24", "hours": [["08:00", "14:00"]]}.',
            )
        unknown = sorted(str(key) for key in item if key not in ("date", "hours", "closed", "note"))
        if unknown:
            raise InvalidField(
                f"{where} has an unknown field {unknown[0][:40]!r}.",
                field=f"{where}.{unknown[0][:40]}",
                hint="An exception has date, hours or closed, and note.",
            )
        day = parse_date(item.get("date"), f"{where}.date")
        if day in found:
            raise InvalidField(
                f"{where}.date {day.isoformat()} appears twice.",
                field=f"{where}.date",
                hint="Give each date once, with all of its intervals.",
            )
        closed, hours = item.get("closed"), item.get("hours")
        if closed is not None and not isinstance(closed, bool):
            raise InvalidField(
                f"{where}.closed must be true or false.",
                field=f"{where}.closed",
                hint="Send a JSON boolean.",
            )
        if (closed is True and hours) or (hours is None and closed is not True):
            raise InvalidField(
                f"{where} needs either hours or closed: true.",
                field=f"{where}.hours",
                hint='Send "closed": true for closed all day, or the day\'s "hours".',
            )
        note = item.get("note")
        if note is not None and (not isinstance(note, str) or len(note.strip()) > 200):
            raise InvalidField(
                f"{where}.note must be text of at most 200 characters.",
                field=f"{where}.note",
                hint='e.g. "Christmas Eve".',
            )
        found[day] = DayException(
            day, parse_day(hours, f"{where}.hours"), (note or "").strip() or None
        )
    return list(found.values())


# -- the tables' form ---------------------------------------------------------------


def encode_intervals(intervals: tuple[Interval, ...]) -> str:
    """The stored form of one date's intervals (`tables.exceptions.intervals`)."""
    return orjson.dumps([list(interval) for interval in intervals]).decode()


def decode_intervals(raw: str) -> tuple[Interval, ...]:
    return tuple((int(opens), int(closes)) for opens, closes in orjson.loads(raw))


def encode_week(week: Week) -> str:
    """The stored form of a week (`tables.locations.weekly_hours`)."""
    return orjson.dumps([[list(interval) for interval in day] for day in week]).decode()


@functools.lru_cache(maxsize=4096)
def decode_week(raw: str) -> Week:
    """A week from its stored form. Cached: a chain's stores share their hours."""
    days = orjson.loads(raw)
    return tuple(tuple((int(o), int(c)) for o, c in day) for day in days)
