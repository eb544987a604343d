"""Reading journeys: the live definitions, versions, enrollments, the decision trace and
the numbers per step.

Parsed versions are cached per process: a stored version never changes (a new document is
a new version), so the cache can never be stale; which version is live and enabled is
read from the database on every call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, select

from polku.errors import NotFound
from polku.journeys.definition import Journey
from polku.journeys.engine import Enrollment, event_counts, select_enrollments
from polku.journeys.tables import enrollments, journey_states, journey_versions, sends, trace
from polku.journeys.versions import parsed, version_of
from polku.profiles.queries import resolve
from polku.profiles.tables import profiles

__all__ = [
    "Live",
    "drop_reasons",
    "enrollments_of",
    "entered_by_arm",
    "explain",
    "get_journey",
    "journey_stats",
    "list_journeys",
    "live_journeys",
    "parsed",
    "resolve",
    "sends_of",
    "trace_of",
    "unknown_profile",
    "version_of",
    "versions_of",
]


@dataclass(frozen=True, slots=True)
class Live:
    journey: Journey
    version: int


def live_journeys(conn: Connection, workspace_id: str) -> list[Live]:
    """The enabled journeys of the workspace, each at the version new entrants start on."""
    v, s = journey_versions.c, journey_states.c
    rows = conn.execute(
        select(v.document, v.version)
        .join(
            journey_states,
            and_(
                s.workspace_id == v.workspace_id,
                s.journey_key == v.journey_key,
                s.version == v.version,
            ),
        )
        .where(s.workspace_id == workspace_id, s.enabled.is_(True))
        .order_by(v.journey_key)
    ).all()
    return [Live(parsed(row.document), int(row.version)) for row in rows]


def _unknown(key: str) -> NotFound:
    return NotFound(
        f"No journey {key!r} in this workspace.",
        field="key",
        hint="List the journeys with GET /v1/journeys, or install one from the library.",
        message_id="unknown_journey",
        params={"journey": key},
    )


def _summary(row: Any) -> dict[str, Any]:
    journey = parsed(row.document)
    return {
        "key": journey.key,
        "name": dict(journey.name),
        "description": journey.description,
        "trigger": journey.trigger.kind,
        "enabled": bool(row.enabled),
        "version": int(row.version),
        "updated_at": int(row.updated_at),
    }


def list_journeys(conn: Connection, workspace_id: str) -> list[dict[str, Any]]:
    v, s = journey_versions.c, journey_states.c
    rows = conn.execute(
        select(v.document, s.version, s.enabled, s.updated_at)
        .join(
            journey_states,
            and_(
                s.workspace_id == v.workspace_id,
                s.journey_key == v.journey_key,
                s.version == v.version,
            ),
        )
        .where(s.workspace_id == workspace_id)
        .order_by(v.journey_key)
    ).all()
    return [_summary(row) for row in rows]


def get_journey(
    conn: Connection, workspace_id: str, key: str, version: int | None = None
) -> dict[str, Any]:
    """A journey's state and one version's document (the live one by default)."""
    s = journey_states.c
    state = conn.execute(
        select(s.version, s.enabled, s.updated_at).where(
            s.workspace_id == workspace_id, s.journey_key == key
        )
    ).first()
    if state is None:
        raise _unknown(key)
    wanted = int(state.version) if version is None else version
    v = journey_versions.c
    row = conn.execute(
        select(v.document, v.version, v.created_at, v.created_by, v.checksum).where(
            v.workspace_id == workspace_id, v.journey_key == key, v.version == wanted
        )
    ).first()
    if row is None:
        raise NotFound(
            f"Journey {key!r} has no version {wanted}.",
            field="version",
            hint=f"GET /v1/journeys/{key}/versions lists them.",
            message_id="unknown_journey_version",
            params={"journey": key, "version": wanted},
        )
    return {
        "key": key,
        "enabled": bool(state.enabled),
        "live_version": int(state.version),
        "version": int(row.version),
        "created_at": int(row.created_at),
        "created_by": row.created_by,
        "checksum": row.checksum,
        "document": orjson.loads(row.document),
    }


def versions_of(conn: Connection, workspace_id: str, key: str) -> list[dict[str, Any]]:
    v = journey_versions.c
    rows = conn.execute(
        select(v.version, v.created_at, v.created_by, v.checksum)
        .where(v.workspace_id == workspace_id, v.journey_key == key)
        .order_by(v.version.desc())
    ).all()
    if not rows:
        raise _unknown(key)
    return [
        {
            "version": int(r.version),
            "created_at": int(r.created_at),
            "created_by": r.created_by,
            "checksum": r.checksum,
        }
        for r in rows
    ]


def enrollments_of(
    conn: Connection,
    workspace_id: str,
    *,
    profile_ids: Sequence[str] | None = None,
    key: str | None = None,
    limit: int = 100,
) -> list[Enrollment]:
    e = enrollments.c
    query = select_enrollments().where(e.workspace_id == workspace_id)
    if profile_ids is not None:
        query = query.where(e.profile_id.in_(list(profile_ids)))
    if key is not None:
        query = query.where(e.journey_key == key)
    rows = conn.execute(query.order_by(e.entered_at.desc()).limit(limit)).all()
    return [Enrollment.from_row(row) for row in rows]


def sends_of(
    conn: Connection,
    workspace_id: str,
    *,
    profile_ids: Sequence[str] | None = None,
    enrollment_id: str | None = None,
    key: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    s = sends.c
    query = select(sends).where(s.workspace_id == workspace_id)
    if profile_ids is not None:
        query = query.where(s.profile_id.in_(list(profile_ids)))
    if enrollment_id is not None:
        query = query.where(s.enrollment_id == enrollment_id)
    if key is not None:
        query = query.where(s.journey_key == key)
    rows = conn.execute(query.order_by(s.created_at.desc(), s.send_id).limit(limit)).all()
    return [dict(row._mapping) for row in rows]


def trace_of(
    conn: Connection,
    workspace_id: str,
    profile_ids: Sequence[str],
    key: str,
    *,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """The decisions taken for the person in this journey, oldest first."""
    t = trace.c
    rows = conn.execute(
        select(t.id, t.at, t.enrollment_id, t.step_id, t.kind, t.outcome, t.detail)
        .where(
            t.workspace_id == workspace_id,
            t.profile_id.in_(list(profile_ids)),
            t.journey_key == key,
        )
        .order_by(t.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "at": int(r.at),
            "enrollment_id": r.enrollment_id,
            "step": r.step_id,
            "kind": r.kind,
            "outcome": r.outcome,
            "detail": orjson.loads(r.detail),
        }
        for r in reversed(rows)
    ]


def journey_stats(
    conn: Connection, workspace_id: str, key: str, *, since: int = 0
) -> dict[str, Any]:
    """Per step: entered, waiting there now, exited there, sends by status, delivery
    reports and clicks; and per arm: enrolled, goal
    reached, conversion and attributed revenue; uplift of the journey over the holdout and
    the control group (conversion difference, in percentage points)."""
    e = enrollments.c
    base = and_(e.workspace_id == workspace_id, e.journey_key == key, e.entered_at >= since)
    arms: dict[str, dict[str, Any]] = {}
    for row in conn.execute(
        select(
            e.arm,
            func.count(),
            func.count(e.goal_at),
            func.coalesce(func.sum(e.revenue), 0),
        )
        .where(base)
        .group_by(e.arm)
    ).all():
        enrolled, goals = int(row[1]), int(row[2])
        arms[row[0]] = {
            "enrolled": enrolled,
            "goal_reached": goals,
            "conversion": goals / enrolled if enrolled else 0.0,
            "revenue_minor": int(row[3]),
        }
    status = Counter[str]()
    for row in conn.execute(select(e.status, func.count()).where(base).group_by(e.status)):
        status[row[0]] = int(row[1])
    waiting = Counter[str]()
    for row in conn.execute(
        select(e.step_id, func.count()).where(base, e.status == "active").group_by(e.step_id)
    ):
        waiting[str(row[0])] = int(row[1])
    exited = Counter[str]()
    for row in conn.execute(
        select(e.step_id, func.count()).where(base, e.status == "exited").group_by(e.step_id)
    ):
        exited[str(row[0])] = int(row[1])
    t = trace.c
    entered = Counter[str]()
    for row in conn.execute(
        select(t.step_id, func.count(func.distinct(t.enrollment_id)))
        .where(
            t.workspace_id == workspace_id,
            t.journey_key == key,
            t.at >= since,
            t.step_id.is_not(None),
            t.kind != "end",
        )
        .group_by(t.step_id)
    ):
        entered[str(row[0])] = int(row[1])
    s = sends.c
    sent: dict[str, dict[str, int]] = {}
    for row in conn.execute(
        select(s.step_id, s.status, func.count())
        .where(s.workspace_id == workspace_id, s.journey_key == key, s.created_at >= since)
        .group_by(s.step_id, s.status)
    ):
        sent.setdefault(str(row[0]), {})[row[1]] = int(row[2])
    feedback: dict[str, dict[str, int]] = {}
    for row in conn.execute(
        select(t.step_id, t.outcome, func.count())
        .where(
            t.workspace_id == workspace_id,
            t.journey_key == key,
            t.at >= since,
            t.kind == "feedback",
        )
        .group_by(t.step_id, t.outcome)
    ):
        feedback.setdefault(str(row[0]), {})[row[1]] = int(row[2])
    uplift: dict[str, float] = {}
    treated = arms.get("journey")
    for other in ("holdout", "control"):
        if treated and other in arms and arms[other]["enrolled"]:
            uplift[f"vs_{other}"] = round(
                100 * (treated["conversion"] - arms[other]["conversion"]), 2
            )
    steps = sorted(set(entered) | set(waiting) | set(exited) | set(sent))
    return {
        "key": key,
        "since": since,
        "enrolled": sum(a["enrolled"] for a in arms.values()),
        "status": dict(status),
        "arms": arms,
        "uplift_points": uplift,
        "steps": [
            {
                "step": step,
                "entered": entered.get(step, 0),
                "waiting": waiting.get(step, 0),
                "exited": exited.get(step, 0),
                "sends": sent.get(step, {}),
                "feedback": feedback.get(step, {}),  # delivery reports, clicks
            }
            for step in steps
        ],
    }


def _verdict(
    state: dict[str, Any] | None,
    enrolled: list[Enrollment],
    sent: list[dict[str, Any]],
    entries: list[dict[str, Any]],
    triggers_seen: int,
    trigger_events: Sequence[str],
) -> tuple[str, str, dict[str, Any]]:
    """The one-line verdict in English, with its code and values (for the console, which
    says it in the user's language: `verdict_<code>`)."""
    if state is None:
        return "The workspace has no such journey.", "no_journey", {}
    delivered = [s for s in sent if s["status"] == "sent"]
    if delivered:
        last = delivered[0]
        return (
            f"Sent: {last['channel']} at step {last['step_id']!r} "
            f"({len(delivered)} message(s) in all).",
            "sent",
            {"channel": last["channel"], "step": last["step_id"], "count": len(delivered)},
        )
    stopped = [s for s in sent if s["status"] in ("dropped", "failed")]
    if stopped:
        last = stopped[0]
        why = last["reason"] or (last["error"] or "")[:120]
        return (
            f"Not sent: the {last['channel']} of step {last['step_id']!r} was "
            f"{'dropped' if last['status'] == 'dropped' else 'not delivered'} ({why}).",
            "dropped" if last["status"] == "dropped" else "failed",
            {
                "channel": last["channel"],
                "step": last["step_id"],
                "reason": last["reason"] or "",
                "error": (last["error"] or "")[:120],
            },
        )
    waiting = [s for s in sent if s["status"] in ("queued", "held", "sending")]
    if waiting:
        last = waiting[0]
        return (
            f"Not sent yet: the {last['channel']} of step {last['step_id']!r} is {last['status']}.",
            "waiting",
            {"channel": last["channel"], "step": last["step_id"], "status": last["status"]},
        )
    if enrolled:
        current = enrolled[0]
        if current.status == "active":
            return (
                f"In the journey, at step {current.step_id!r}"
                + (f", waiting ({current.waiting})" if current.waiting else "")
                + "; no message yet.",
                "active_waiting" if current.waiting else "active",
                {"step": current.step_id, "waiting": current.waiting or ""},
            )
        return (
            f"Was in the journey ({current.status}: {current.end_reason}); no message was due.",
            "ended",
            {"status": current.status, "reason": current.end_reason or ""},
        )
    refusals = [
        e for e in entries if e["kind"] in ("entry", "trigger") and e["outcome"] != "matched"
    ]
    if refusals:
        last = refusals[-1]
        return (
            f"Not enrolled: {last['kind']} {last['outcome'].replace('_', ' ')}.",
            "refused",
            {"kind": last["kind"], "outcome": last["outcome"]},
        )
    if not state["enabled"]:
        return "Not enrolled: the journey is disabled.", "disabled", {}
    if trigger_events and not triggers_seen:
        return (
            f"Not enrolled: the profile has no {' or '.join(trigger_events)} event.",
            "no_trigger_event",
            {"events": list(trigger_events)},
        )
    return (
        "Not enrolled: nothing the trigger waits for has happened to this profile.",
        "nothing_happened",
        {},
    )


def explain(conn: Connection, workspace_id: str, profile_id: str, key: str) -> dict[str, Any]:
    """Why the person did or did not get this journey's messages: the journey's state, their
    enrollments, each send with its guard, every decision in order, and a one-line verdict."""
    holder = resolve(conn, workspace_id, profile_id)
    if holder is None:
        raise NotFound(
            f"No profile {profile_id!r}.",
            field="profile",
            hint="Look the person up with GET /v1/profiles?email=...",
            message_id="unknown_profile",
            params={"profile": profile_id},
        )
    ids = sorted({profile_id, holder} | _merged_into(conn, workspace_id, holder))
    s = journey_states.c
    row = conn.execute(
        select(s.version, s.enabled).where(s.workspace_id == workspace_id, s.journey_key == key)
    ).first()
    state = None if row is None else {"version": int(row.version), "enabled": bool(row.enabled)}
    if state is None:
        raise NotFound(
            f"No journey {key!r} in this workspace.",
            field="journey",
            hint="List the journeys with GET /v1/journeys.",
            message_id="unknown_journey",
            params={"journey": key},
        )
    live = version_of(conn, workspace_id, key, state["version"])
    trigger_events: tuple[str, ...] = ()
    if live is not None and live.trigger.match is not None:
        trigger_events = live.trigger.match.events
    counts = event_counts(conn, workspace_id, holder)
    seen = sum(counts.get(name, 0) for name in trigger_events)
    enrolled = enrollments_of(conn, workspace_id, profile_ids=ids, key=key, limit=50)
    sent = sends_of(conn, workspace_id, profile_ids=ids, key=key, limit=100)
    entries = trace_of(conn, workspace_id, ids, key)
    verdict, verdict_code, verdict_params = _verdict(
        state, enrolled, sent, entries, seen, trigger_events
    )
    return {
        "profile_id": holder,
        "journey": key,
        "journey_state": state,
        "trigger": {
            "kind": live.trigger.kind if live else None,
            "events": list(trigger_events),
            "events_on_profile": seen,
        },
        "verdict": verdict,
        "verdict_code": verdict_code,
        "verdict_params": verdict_params,
        "enrollments": [
            {
                "enrollment_id": e.enrollment_id,
                "version": e.version,
                "arm": e.arm,
                "status": e.status,
                "step": e.step_id,
                "waiting": e.waiting,
                "due_at": e.due_at,
                "entered_at": e.entered_at,
                "ended_at": e.ended_at,
                "end_reason": e.end_reason,
                "goal_at": e.goal_at,
            }
            for e in enrolled
        ],
        "sends": [
            {
                k: v
                for k, v in s.items()
                if k
                in (
                    "send_id",
                    "step_id",
                    "channel",
                    "purpose",
                    "status",
                    "reason",
                    "due_at",
                    "attempts",
                    "created_at",
                    "sent_at",
                    "to_address",
                    "provider_id",
                    "error",
                )
            }
            for s in sent
        ],
        "decisions": entries,
    }


def unknown_profile(profile_id: str) -> NotFound:
    return NotFound(
        f"No profile {profile_id!r}.",
        field="profile_id",
        hint="Look the person up with GET /v1/profiles?email=...",
        message_id="unknown_profile",
        params={"profile": profile_id},
    )


def _merged_into(conn: Connection, workspace_id: str, holder: str) -> set[str]:
    """The profiles merged into `holder` (their enrollments are the person's too)."""
    rows = conn.execute(
        select(profiles.c.profile_id).where(
            profiles.c.workspace_id == workspace_id, profiles.c.merged_into == holder
        )
    ).all()
    return {str(r[0]) for r in rows}


def drop_reasons(
    conn: Connection, workspace_id: str, key: str, *, since: int = 0
) -> dict[str, dict[str, int]]:
    """Per step, how many sends were dropped or failed for each reason (a guard's reason:
    ``no_consent``, ``frequency_cap``, ...; ``failed`` when delivery failed)."""
    s = sends.c
    found: dict[str, dict[str, int]] = {}
    for row in conn.execute(
        select(s.step_id, s.status, s.reason, func.count())
        .where(
            s.workspace_id == workspace_id,
            s.journey_key == key,
            s.created_at >= since,
            s.status.in_(("dropped", "failed")),
        )
        .group_by(s.step_id, s.status, s.reason)
    ):
        reason = str(row[2] or row[1])
        step = found.setdefault(str(row[0]), {})
        step[reason] = step.get(reason, 0) + int(row[3])
    return found


def entered_by_arm(
    conn: Connection, workspace_id: str, key: str, *, since: int = 0
) -> dict[str, dict[str, int]]:
    """Per step, how many enrollments of each arm (journey, control, holdout) reached it."""
    t, e = trace.c, enrollments.c
    found: dict[str, dict[str, int]] = {}
    for row in conn.execute(
        select(t.step_id, e.arm, func.count(func.distinct(t.enrollment_id)))
        .join(enrollments, e.enrollment_id == t.enrollment_id)
        .where(
            t.workspace_id == workspace_id,
            t.journey_key == key,
            t.at >= since,
            t.step_id.is_not(None),
            t.kind != "end",
        )
        .group_by(t.step_id, e.arm)
    ):
        found.setdefault(str(row[0]), {})[str(row[1])] = int(row[2])
    return found
