"""What time alone changes: date triggers (birthdays, first-purchase anniversaries) and the
segments whose conditions count days (`days_since_last_order`, ...).

No event says "today is her birthday" or "it has been 90 days", so the journeys' loop
runs `sweep` every `INTERVAL_MS`: it reads each workspace's profiles once and enrolls the
people whose date comes round today (in their time zone, `days_before` ahead), and
re-evaluates the time-based segments. Enrollments take deterministic trigger ids
(``date:<trait>:<year>``), so sweeping again the same day enrolls nobody twice.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any, Final

import orjson
from sqlalchemy import Engine, select

from polku.identity.identifiers import IdentityConfig
from polku.journeys import guards
from polku.journeys.clock import Clock
from polku.journeys.engine import Work, enter_segment, history_of, order_dates
from polku.journeys.queries import Live, live_journeys
from polku.journeys.segments import evaluate_member, segments_of, time_based
from polku.journeys.tables import journey_states, segments
from polku.profiles.tables import profiles
from polku.storage.engine import writing

__all__ = ["INTERVAL_MS", "date_of", "sweep"]

logger = logging.getLogger(__name__)

INTERVAL_MS: Final = 10 * 60_000
_CHUNK: Final = 1_000


def date_of(value: Any) -> date | None:
    """A date trait as a date: ISO ``1990-05-17`` (or a timestamp), or ``--05-17``/``05-17``
    when only the month and day are known."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000).date()
    if not isinstance(value, str):
        return None
    text = value.strip()[:10]
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    month_day = text.lstrip("-")
    try:
        month, day = (int(part) for part in month_day.split("-"))
        return date(2000, month, day)  # a leap year, so 29 February is a date
    except (ValueError, TypeError):
        return None


def _comes_round(when: date, today: date) -> bool:
    if (when.month, when.day) == (today.month, today.day):
        return True
    # Born on 29 February: celebrated on 28 February in other years.
    leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    return (when.month, when.day) == (2, 29) and not leap and (today.month, today.day) == (2, 28)


def _workspaces(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        found = {
            str(r[0])
            for r in conn.execute(
                select(journey_states.c.workspace_id).where(journey_states.c.enabled.is_(True))
            )
        }
        found |= {str(r[0]) for r in conn.execute(select(segments.c.workspace_id).distinct())}
    return sorted(found)


def sweep(engine: Engine, identity: IdentityConfig, clock: Clock, *, partitions: int = 1) -> int:
    """Run the date triggers and the time-based segments for every workspace; how many
    people it enrolled or moved into a segment."""
    done = 0
    for ws in _workspaces(engine):
        try:
            done += _sweep_workspace(engine, identity, clock, ws, partitions)
        except Exception:
            logger.exception("journeys: the sweep of workspace %s failed", ws)
    return done


def _sweep_workspace(
    engine: Engine, identity: IdentityConfig, clock: Clock, ws: str, partitions: int
) -> int:
    now = clock.now_ms()
    with engine.connect() as conn:
        library = live_journeys(conn, ws)
        timed = time_based(segments_of(conn, ws))
    dated = [live for live in library if live.journey.trigger.kind == "date"]
    if not dated and not timed:
        return 0
    done = 0
    after = ""
    p = profiles.c
    while True:
        with writing(engine) as conn:
            rows = conn.execute(
                select(p.profile_id)
                .where(p.workspace_id == ws, p.merged_into.is_(None), p.profile_id > after)
                .order_by(p.profile_id)
                .limit(_CHUNK)
            ).all()
            if not rows:
                return done
            work = Work(conn, identity, partitions, now_ms=now)
            for (profile_id,) in rows:
                done += _person(work, ws, str(profile_id), dated, library, timed, now)
            work.flush()
            after = str(rows[-1][0])


def _person(
    work: Work,
    ws: str,
    profile_id: str,
    dated: list[Live],
    library: list[Live],
    timed: list[Any],
    now: int,
) -> int:
    done = 0
    person = work.person(ws, profile_id)
    if person is None:
        return 0
    if timed:
        facts = work.facts(ws, profile_id)
        for segment, trigger_id in evaluate_member(work.conn, ws, profile_id, timed, facts, now):
            enter_segment(work, library, ws, profile_id, segment.key, trigger_id, now, now)
            done += 1
    if not dated:
        return done
    zone = guards.local_zone(person, work.config(ws))
    today = datetime.fromtimestamp(now / 1000, zone).date()
    for live in dated:
        trigger = live.journey.trigger
        trait = trigger.date_trait or ""
        if trait == "first_order":
            first, _ = order_dates(work.conn, ws, profile_id)
            when = None if first is None else datetime.fromtimestamp(first / 1000, zone).date()
            if when is not None and when.year == today.year:
                continue  # the first purchase itself is not its anniversary
        else:
            when = date_of(person.traits.get(trait))
        target = today + timedelta(days=trigger.days_before)
        if when is None or not _comes_round(when, target):
            continue
        trigger_id = f"date:{trait}:{target.year}"
        history = history_of(work.conn, ws, profile_id, live.journey.key)
        if any(e.trigger_id == trigger_id for e in history):
            continue
        work.note(
            ws,
            profile_id,
            live.journey.key,
            now,
            "trigger",
            "matched",
            date=trait,
            day=target.isoformat(),
        )
        enrolled = work.enroll(
            live.journey,
            live.version,
            ws,
            profile_id,
            trigger_id=trigger_id,
            at=now,
            data={
                "date": {
                    "trait": trait,
                    "day": target.isoformat(),
                    "value": orjson.loads(orjson.dumps(person.traits.get(trait))),
                }
            },
            history=history,
            now_ms=now,
        )
        done += enrolled is not None
    return done
