"""Due waits: the enrollments whose `wait`, `wait_until` or `wait_for` timeout has come.

A waiting enrollment is a row with `due_at`; `run_due` takes the due ones in due order (an
index read), moves each on from its wait at the clock's time, and commits them with what
their steps queued, in one transaction per batch. Nothing sleeps per person, so a restart
loses no wait: the rows are still there, and the next run takes them. On PostgreSQL the
rows are locked with SKIP LOCKED, so several workers can run timers side by side.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, select

from polku.identity.identifiers import IdentityConfig
from polku.journeys.clock import Clock
from polku.journeys.engine import Enrollment, Work, select_enrollments
from polku.journeys.tables import enrollments
from polku.storage.engine import writing

__all__ = ["run_due"]

logger = logging.getLogger(__name__)


def run_due(
    engine: Engine,
    identity: IdentityConfig,
    clock: Clock,
    *,
    partitions: int = 1,
    limit: int = 500,
) -> int:
    """Move on every enrollment whose wait is over (up to `limit`); how many moved."""
    now = clock.now_ms()
    e = enrollments.c
    # An idle tick only reads: on SQLite a write transaction every tick would make every
    # other writer of the file queue behind it.
    with engine.connect() as conn:
        first = conn.execute(
            select(e.enrollment_id).where(e.status == "active", e.due_at <= now).limit(1)
        ).first()
    if first is None:
        return 0
    with writing(engine) as conn:
        query = (
            select_enrollments()
            .where(e.status == "active", e.due_at <= now)
            .order_by(e.due_at)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        if not rows:
            return 0
        work = Work(conn, identity, partitions, now_ms=now)
        due = [Enrollment.from_row(row) for row in rows]
        by_ws: dict[str, list[str]] = {}
        for enrollment in due:
            by_ws.setdefault(enrollment.workspace_id, []).append(enrollment.profile_id)
        for ws, profiles in by_ws.items():
            work.preload(ws, profiles)
        for enrollment in due:
            journey = work.journey(
                enrollment.workspace_id, enrollment.journey_key, enrollment.version
            )
            if journey is None or enrollment.step_id is None:
                work.finish(enrollment, now, "exited", "journey_version_missing")
                continue
            try:
                work.resume(journey, enrollment, now, event=False)
            except Exception:
                logger.exception(
                    "journeys: enrollment %s failed at step %s; ended",
                    enrollment.enrollment_id,
                    enrollment.step_id,
                )
                work.finish(enrollment, now, "exited", "step_failed")
        work.flush()
        return len(rows)
