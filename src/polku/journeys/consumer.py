"""The journeys consumer: the last in the pipeline's chain, it sees each event after
identity, profiles, commerce and buying signals have.

For every event on a profile, in log order: the person's open enrollments leave when an
exit condition matches, count a goal when it is reached, and go on when the event a
`wait_for` step waits for comes; then every enabled journey whose trigger the event
matches enrolls them (entry rules permitting) and takes its first steps, which may queue
a message at once. Buying signals that the batch's events raised trigger `signal`
journeys; stock and price events trigger `stock` journeys for the people they concern
(`polku.journeys.stock`).

Everything happens inside the transaction that moves the checkpoint (`Work.flush`), so a
redelivered batch changes nothing twice. A journey that fails on one event is logged
with the event's messageId and skipped; the pipeline goes on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

import orjson
from sqlalchemy import Connection, select

from polku.channels.actions import CLICK_EVENT, REPORT_EVENT
from polku.events import LoggedEvent
from polku.identity.identifiers import IdentityConfig
from polku.journeys import stock
from polku.journeys.clock import Clock, SystemClock
from polku.journeys.engine import (
    Enrollment,
    Work,
    enter_segment,
    event_name,
    history_of,
    matches,
    select_enrollments,
)
from polku.journeys.queries import Live, live_journeys
from polku.journeys.segments import Segment, evaluate_member, segments_of
from polku.journeys.tables import enrollments, trace
from polku.pipeline.consumer import Apply
from polku.signals.tables import signals
from polku.storage.bulk import fetch_in

__all__ = ["JourneysConsumer"]

logger = logging.getLogger(__name__)

_TYPES: Final = frozenset({"track", "page", "screen", "identify"})
_FEEDBACK: Final = frozenset({REPORT_EVENT, CLICK_EVENT})
_GOAL_LOOKBACK_MS: Final = 90 * 86_400_000


class JourneysConsumer:
    name = "journeys"

    def __init__(
        self, identity: IdentityConfig, *, clock: Clock | None = None, partitions: int = 1
    ) -> None:
        self._identity = identity
        self.clock: Clock = clock or SystemClock()
        self._partitions = partitions

    def reset(self, conn: Connection) -> None:
        """Nothing: enrollments are decisions already acted on (messages sent, coupons
        issued), not a view to rebuild. A replay runs the log through them idempotently:
        an event that enrolled someone before finds its enrollment, and an event older than
        an enrollment's last step cannot move it (see `_event`)."""

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        return lambda writer: self.apply(writer, events)

    # -- a batch ------------------------------------------------------------------------

    def apply(self, conn: Connection, events: Sequence[LoggedEvent]) -> None:
        relevant = [e for e in events if e.type in _TYPES]
        stocked = [e for e in events if e.event in stock.EVENTS]
        feedback = [e for e in relevant if e.event in _FEEDBACK]
        if feedback:
            _feedback(conn, feedback)
        if not relevant and not stocked:
            return
        self.clock.saw(max(e.timestamp for e in (*relevant, *stocked)))
        workspaces = {e.workspace_id for e in (*relevant, *stocked)}
        library = {ws: live_journeys(conn, ws) for ws in workspaces}
        saved = {ws: segments_of(conn, ws) for ws in workspaces}
        if not any(library.values()) and not any(saved.values()):
            return
        now = self.clock.now_ms()
        work = Work(conn, self._identity, self._partitions, now_ms=now)
        if relevant:
            owner: dict[int, str] = dict(
                fetch_in(
                    conn,
                    'SELECT "offset", profile_id FROM identity_event_profiles '
                    'WHERE "offset" IN (?*)',
                    [e.offset for e in relevant],
                )
            )
            people = sorted(
                {(e.workspace_id, owner[e.offset]) for e in relevant if e.offset in owner}
            )
            open_ = self._open(conn, people, now)
            for ws in workspaces:
                work.preload(ws, [p for w, p in people if w == ws])
            triggered = _signals_of(conn, [e.offset for e in relevant])
            for event in relevant:
                profile = owner.get(event.offset)
                if profile is None:
                    continue
                try:
                    self._event(
                        work,
                        library[event.workspace_id],
                        event,
                        profile,
                        open_[(event.workspace_id, profile)],
                        now,
                    )
                    for signal in triggered.get(event.offset, ()):
                        self._signal(
                            work,
                            library[event.workspace_id],
                            event,
                            signal,
                            open_[(event.workspace_id, profile)],
                            now,
                        )
                except Exception:
                    logger.exception("journeys: event %s failed; skipped", event.message_id)
            last_at: dict[tuple[str, str], int] = {}
            for event in relevant:
                if event.offset in owner:
                    last_at[(event.workspace_id, owner[event.offset])] = event.timestamp
            for (ws, profile), at in last_at.items():
                if saved[ws]:
                    try:
                        self._segments(work, library[ws], saved[ws], ws, profile, at, now)
                    except Exception:
                        logger.exception("journeys: segments of %s failed; skipped", profile)
        for event in stocked:
            try:
                for journey, version, profile, data in stock.triggered(
                    conn, library[event.workspace_id], event, self._identity
                ):
                    history = self._history(conn, event.workspace_id, profile, journey.key)
                    work.enroll(
                        journey,
                        version,
                        event.workspace_id,
                        profile,
                        trigger_id=f"{event.message_id}:{profile}",
                        at=event.timestamp,
                        data=data,
                        history=history,
                        now_ms=now,
                    )
            except Exception:
                logger.exception("journeys: stock event %s failed; skipped", event.message_id)
        work.flush()

    def _open(
        self, conn: Connection, people: Sequence[tuple[str, str]], now: int
    ) -> defaultdict[tuple[str, str], list[Enrollment]]:
        """Each person's enrollments, newest first: the open ones an event may change, and
        the rest for the entry rules (one query per 500 people, not one per trigger)."""
        found: defaultdict[tuple[str, str], list[Enrollment]] = defaultdict(list)
        by_ws: defaultdict[str, list[str]] = defaultdict(list)
        for ws, profile in people:
            by_ws[ws].append(profile)
        e = enrollments.c
        for ws, profiles in by_ws.items():
            for start in range(0, len(profiles), 500):
                rows = conn.execute(
                    select_enrollments()
                    .where(
                        e.workspace_id == ws,
                        e.profile_id.in_(profiles[start : start + 500]),
                    )
                    .order_by(e.entered_at.desc())
                ).all()
                for row in rows:
                    enrollment = Enrollment.from_row(row)
                    found[(ws, enrollment.profile_id)].append(enrollment)
        return found

    def _segments(
        self,
        work: Work,
        library: Sequence[Live],
        saved: Sequence[Segment],
        ws: str,
        profile: str,
        at: int,
        now: int,
    ) -> None:
        person = work.person(ws, profile)
        if person is None:
            return
        holder = person.profile_id
        facts = work.facts(ws, holder)
        for segment, trigger_id in evaluate_member(work.conn, ws, holder, saved, facts, at):
            enter_segment(work, library, ws, holder, segment.key, trigger_id, at, now)

    def _history(self, conn: Connection, ws: str, profile: str, key: str) -> list[Enrollment]:
        return history_of(conn, ws, profile, key)

    def _event(
        self,
        work: Work,
        library: Sequence[Live],
        event: LoggedEvent,
        profile: str,
        mine: list[Enrollment],
        now: int,
    ) -> None:
        ws = event.workspace_id
        message = event.message
        at = event.timestamp
        facts_event = _event_facts(message)
        for enrollment in list(mine):
            if enrollment.status != "active" and (
                enrollment.goal_at is not None or enrollment.entered_at < now - _GOAL_LOOKBACK_MS
            ):
                continue
            journey = work.journey(ws, enrollment.journey_key, enrollment.version)
            if journey is None:
                continue
            facts = work.facts(ws, profile, event=facts_event, enrollment=enrollment)
            if enrollment.status == "active" and at >= enrollment.entered_at:
                for exit_ in journey.exits:
                    held, seen = matches(exit_, message, facts)
                    if held:
                        work.finish(enrollment, at, "exited", f"exit:{event_name(message)}")
                        work.note(
                            ws,
                            profile,
                            journey.key,
                            at,
                            "exit",
                            "matched",
                            enrollment=enrollment,
                            event=event.message_id,
                            conditions=seen,
                        )
                        break
            goal = journey.goal
            if (
                goal is not None
                and enrollment.goal_at is None
                and at >= enrollment.entered_at
                and at - enrollment.entered_at <= goal.within_ms
                and event.message_id != enrollment.trigger_id
            ):
                held, seen = matches(goal.match, message, facts)
                if held:
                    enrollment.goal_at = at
                    enrollment.revenue = _revenue(message)
                    work.touched[enrollment.enrollment_id] = enrollment
                    work.note(
                        ws,
                        profile,
                        journey.key,
                        at,
                        "goal",
                        "reached",
                        enrollment=enrollment,
                        event=event.message_id,
                        revenue_minor=enrollment.revenue,
                    )
            if enrollment.status == "active" and enrollment.waiting == "event":
                step = journey.step(enrollment.step_id or journey.first)
                match = getattr(step, "match", None)
                if match is not None and enrollment.updated_at <= at <= (enrollment.due_at or at):
                    held, _ = matches(match, message, facts)
                    if held:
                        enrollment.data["event"] = facts_event
                        work.resume(journey, enrollment, at, event=True)
        for live in library:
            trigger = live.journey.trigger
            if trigger.kind != "event" or trigger.match is None:
                continue
            if event_name(message) not in trigger.match.events:
                continue
            facts = work.facts(ws, profile, event=facts_event)
            held, seen = matches(trigger.match, message, facts)
            if not held:
                work.note(
                    ws,
                    profile,
                    live.journey.key,
                    at,
                    "trigger",
                    "filters_failed",
                    event=event.message_id,
                    conditions=seen,
                )
                continue
            _enter(
                work,
                live,
                ws,
                profile,
                mine,
                trigger_id=event.message_id,
                at=at,
                data={"event": facts_event, "offset": event.offset, "products": _products(message)},
                now=now,
                event=event.message_id,
                conditions=seen,
            )

    def _signal(
        self,
        work: Work,
        library: Sequence[Live],
        event: LoggedEvent,
        signal: dict[str, Any],
        mine: list[Enrollment],
        now: int,
    ) -> None:
        ws, profile = event.workspace_id, str(signal["profile_id"])
        for live in library:
            trigger = live.journey.trigger
            if trigger.kind != "signal":
                continue
            if trigger.signal_kind is not None and trigger.signal_kind != signal["kind"]:
                continue
            if float(signal["score"]) < trigger.min_score:
                work.note(
                    ws,
                    profile,
                    live.journey.key,
                    event.timestamp,
                    "trigger",
                    "score_too_low",
                    signal=signal["id"],
                    score=signal["score"],
                    min_score=trigger.min_score,
                )
                continue
            _enter(
                work,
                live,
                ws,
                profile,
                mine,
                trigger_id=f"signal:{signal['id']}",
                at=event.timestamp,
                data={
                    "signal": signal,
                    "event": _event_facts(event.message),
                    "offset": event.offset,
                    "products": signal["products"],
                },
                now=now,
                signal=signal["id"],
                signal_kind=signal["kind"],
            )


def _enter(
    work: Work,
    live: Live,
    ws: str,
    profile: str,
    mine: list[Enrollment],
    *,
    trigger_id: str,
    at: int,
    data: dict[str, Any],
    now: int,
    **why: Any,
) -> None:
    """The trigger matched (`why` says how, for the trace): enroll, entry rules permitting,
    with the person's earlier enrollments in the journey (`mine`, which gains the new one)."""
    history = sorted(
        (e for e in mine if e.journey_key == live.journey.key),
        key=lambda e: e.entered_at,
        reverse=True,
    )
    work.note(ws, profile, live.journey.key, at, "trigger", "matched", **why)
    enrolled = work.enroll(
        live.journey,
        live.version,
        ws,
        profile,
        trigger_id=trigger_id,
        at=at,
        data=data,
        history=history,
        now_ms=now,
    )
    if enrolled is not None:
        mine.insert(0, enrolled)


def _feedback(conn: Connection, events: Sequence[LoggedEvent]) -> None:
    """What happened to messages after they left: the SMS gateway's delivery reports and
    clicks on tracked links, noted in the decision trace of the send they are about."""
    keys: dict[str, tuple[LoggedEvent, str]] = {}
    for event in events:
        props = event.message.get("properties") or {}
        key = props.get("reference") if event.event == REPORT_EVENT else props.get("send_id")
        if isinstance(key, str) and key:
            outcome = "clicked" if event.event == CLICK_EVENT else str(props.get("status"))[:40]
            keys[key] = (event, outcome)
    if not keys:
        return
    rows = fetch_in(
        conn,
        "SELECT send_id, workspace_id, profile_id, journey_key, enrollment_id, step_id, channel "
        "FROM journey_sends WHERE send_id IN (?*)",
        sorted(keys),
    )
    notes = []
    for send_id, ws, profile, key, enrollment, step, channel in rows:
        event, outcome = keys[send_id]
        if event.workspace_id != ws:
            continue
        props = event.message.get("properties") or {}
        detail = {"send_id": send_id, "channel": channel, "event": event.message_id}
        if event.event == CLICK_EVENT:
            detail["url"] = props.get("url")
        notes.append(
            {
                "workspace_id": ws,
                "profile_id": profile,
                "journey_key": key,
                "enrollment_id": enrollment,
                "at": event.timestamp,
                "step_id": step,
                "kind": "feedback",
                "outcome": outcome,
                "detail": orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode(),
            }
        )
    if notes:
        conn.execute(trace.insert(), notes)


def _signals_of(conn: Connection, offsets: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    s = signals.c
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for start in range(0, len(offsets), 500):
        rows = conn.execute(
            select(s.id, s.profile_id, s.kind, s.score, s.products, s.store_id, s.offset)
            .where(s.offset.in_(list(offsets[start : start + 500])))
            .order_by(s.id)
        ).all()
        for row in rows:
            found[int(row.offset)].append(
                {
                    "id": int(row.id),
                    "profile_id": row.profile_id,
                    "kind": row.kind,
                    "score": float(row.score),
                    "products": orjson.loads(row.products),
                    "store_id": row.store_id,
                }
            )
    return found


def _event_facts(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": event_name(message),
        "type": message.get("type"),
        "messageId": message.get("messageId"),
        "properties": message.get("properties") or {},
        "context": {
            k: v for k, v in (message.get("context") or {}).items() if k in ("channel", "page")
        },
        "traits": message.get("traits") or {},
        "timestamp": message.get("timestamp"),
    }


def _products(message: dict[str, Any]) -> list[str]:
    props = message.get("properties") or {}
    found: list[str] = []
    for key in ("product_id", "sku"):
        if isinstance(props.get(key), str):
            found.append(props[key])
    for item in props.get("products") or []:
        if isinstance(item, dict) and isinstance(item.get("product_id"), str):
            found.append(item["product_id"])
    return found[:20]


def _revenue(message: dict[str, Any]) -> int | None:
    props = message.get("properties") or {}
    for key in ("total", "revenue", "value"):
        value = props.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return round(value * 100)
    return None
