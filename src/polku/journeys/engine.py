"""Walking a person through a journey: enroll, take steps until a wait, act, finish.

`Work` is one transaction's worth of journey work, shared by the pipeline consumer (steps
an event caused, at the event's time) and the timer run (steps a due wait released, at the
clock's time). It reads each person once, collects every write, and `flush` writes them
in a few statements: enrollments, sends, trace rows and the events it records (through the
outbox, in the same transaction).

Every effect is idempotent so that a redelivered batch, a replay or a second worker
changes nothing twice: an enrollment's id comes from the journey, the person and the
triggering event; a send's id (its idempotency key) from the enrollment, its step count
and the step; the events recorded carry message ids made from the same key; alerts are
routed once per key (`polku.signals.routing.route`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from sqlalchemy import Connection, select

from polku.channels.queries import event_carrier
from polku.collect.internal import InternalEventError, internal_event
from polku.commerce.carts.owners import Shopper
from polku.commerce.carts.queries import get_cart
from polku.errors import Conflict, NotFound
from polku.events import NewEvent, to_iso
from polku.identity.identifiers import IdentityConfig
from polku.journeys import guards
from polku.journeys.conditions import Facts, evaluate
from polku.journeys.config import JourneyConfig, bucket, config_of
from polku.journeys.definition import (
    END,
    Branch,
    EventMatch,
    Journey,
    Send,
    Split,
    Wait,
    WaitFor,
    WaitUntil,
)
from polku.journeys.tables import enrollments, sends, trace
from polku.journeys.versions import version_of as _version_of
from polku.log.outbox import stage
from polku.signals.candidates import Candidate, Reason
from polku.signals.routing import route
from polku.storage.bulk import fetch_in, fetch_rows, insert_rows, update_rows

__all__ = [
    "Enrollment",
    "Work",
    "carrier_of",
    "coupon_code",
    "enter_segment",
    "event_counts",
    "event_name",
    "history_of",
    "matches",
    "order_dates",
    "select_enrollments",
]

logger = logging.getLogger(__name__)

_DAY_MS: Final = 86_400_000
_MAX_STEPS: Final = 200  # per advance: a journey is checked for loops without waits
_COLUMNS: Final = tuple(c.name for c in enrollments.columns)
_CHANGING: Final = tuple(c for c in _COLUMNS if c != "enrollment_id")


def event_name(message: Mapping[str, Any]) -> str:
    """What a trigger's `event:` is compared with: a track event's name, else its type."""
    kind = str(message.get("type") or "")
    return str(message.get("event") or "") if kind == "track" else kind


def matches(match: EventMatch, message: Mapping[str, Any], facts: Facts) -> tuple[bool, list[Any]]:
    if event_name(message) not in match.events:
        return False, []
    if not match.where:
        return True, []
    return evaluate(match.where, facts)


@dataclass
class Enrollment:
    enrollment_id: str
    workspace_id: str
    journey_key: str
    version: int
    profile_id: str
    arm: str
    status: str
    step_id: str | None
    waiting: str | None
    due_at: int | None
    entered_at: int
    updated_at: int
    ended_at: int | None
    end_reason: str | None
    goal_at: int | None
    revenue: int | None
    trigger_id: str
    data: dict[str, Any]
    visits: int
    new: bool = False

    @classmethod
    def from_row(cls, row: Any) -> Enrollment:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["data"] = orjson.loads(values["data"])
        return cls(**values)

    def row(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in _COLUMNS}
        values["data"] = orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS).decode()
        return values


def event_counts(conn: Connection, workspace_id: str, profile_id: str) -> dict[str, int]:
    """How many events of each name (`event_name`) the profile has: `counts.<name>`."""
    rows = fetch_rows(
        conn,
        "SELECT type, event, COUNT(*) FROM identity_event_profiles "
        "WHERE workspace_id = ? AND profile_id = ? GROUP BY type, event",
        (workspace_id, profile_id),
    )
    counts: dict[str, int] = {}
    for kind, name, count in rows:
        label = name if kind == "track" else kind
        if label:
            counts[label] = counts.get(label, 0) + int(count)
    return counts


def order_dates(
    conn: Connection, workspace_id: str, profile_id: str
) -> tuple[int | None, int | None]:
    """When the person's first and latest orders (web or till) were placed."""
    row = fetch_rows(
        conn,
        "SELECT MIN(o.placed_at), MAX(o.placed_at) FROM orders o "
        'JOIN identity_event_profiles ep ON ep."offset" = o."offset" '
        "WHERE o.workspace_id = ? AND ep.profile_id = ?",
        (workspace_id, profile_id),
    )[0]
    return (None if row[0] is None else int(row[0]), None if row[1] is None else int(row[1]))


def carrier_of(
    conn: Connection, workspace_id: str, profile_id: str, identity: IdentityConfig
) -> dict[str, Any] | None:
    """The userId (else anonymousId) an event recorded for the person carries, so identity
    gives it to their profile (`polku.channels.queries.event_carrier`); None when they have
    neither, and nothing can be recorded for them."""
    try:
        carrier = event_carrier(conn, workspace_id, profile_id, identity)
    except (NotFound, Conflict):
        return None
    return None if "properties" in carrier else carrier


def select_enrollments() -> Any:
    return select(*[enrollments.c[name] for name in _COLUMNS])


def _short_hash(*parts: str, size: int = 16) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=size).hexdigest()


def coupon_code(send_id: str) -> str:
    digest = hashlib.blake2b(send_id.encode(), digest_size=10).digest()
    text = base64.b32encode(digest).decode().rstrip("=")
    return f"{text[:4]}-{text[4:8]}-{text[8:12]}"


@dataclass
class Work:
    """One transaction's journey work (see the module doc)."""

    conn: Connection
    identity: IdentityConfig
    partitions: int = 1
    configs: dict[str, JourneyConfig] = field(default_factory=dict)
    people: dict[tuple[str, str], guards.Person | None] = field(default_factory=dict)
    carts: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    touched: dict[str, Enrollment] = field(default_factory=dict)
    send_rows: list[dict[str, Any]] = field(default_factory=list)
    trace_rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    alerts: list[tuple[Candidate, str]] = field(default_factory=list)
    now_ms: int = 0  # the time `days_since_*` facts are measured at
    versions: dict[tuple[str, str, int], Journey | None] = field(default_factory=dict)

    # -- reading ------------------------------------------------------------------------

    def config(self, workspace_id: str) -> JourneyConfig:
        found = self.configs.get(workspace_id)
        if found is None:
            found = self.configs[workspace_id] = config_of(self.conn, workspace_id)
        return found

    def person(self, workspace_id: str, profile_id: str) -> guards.Person | None:
        key = (workspace_id, profile_id)
        if key not in self.people:
            self.people[key] = guards.person_of(self.conn, workspace_id, profile_id)
        return self.people[key]

    def preload(self, workspace_id: str, profile_ids: Sequence[str]) -> None:
        """Read the people a batch will need in one query instead of one each."""
        missing = [p for p in profile_ids if (workspace_id, p) not in self.people]
        if missing:
            for profile_id, person in guards.people_of(self.conn, workspace_id, missing).items():
                self.people[(workspace_id, profile_id)] = person

    def journey(self, workspace_id: str, key: str, version: int) -> Journey | None:
        """A version of a journey, read once per batch (versions never change)."""
        cache_key = (workspace_id, key, version)
        if cache_key not in self.versions:
            self.versions[cache_key] = _version_of(self.conn, workspace_id, key, version)
        return self.versions[cache_key]

    def cart(self, workspace_id: str, profile_id: str) -> dict[str, Any] | None:
        key = (workspace_id, profile_id)
        if key not in self.carts:
            found = get_cart(self.conn, workspace_id, Shopper(profile_id=profile_id), self.identity)
            body = found.as_dict()
            totals = body.get("totals") or []
            body["value"] = float(totals[0]["subtotal"]) if totals else 0.0
            body["currency"] = totals[0]["currency"] if totals else None
            body["items"] = body.get("lines") or []
            self.carts[key] = body
        return self.carts[key]

    def counts(self, workspace_id: str, profile_id: str) -> dict[str, int]:
        person = self.person(workspace_id, profile_id)
        return event_counts(self.conn, workspace_id, person.profile_id if person else profile_id)

    def facts(
        self,
        workspace_id: str,
        profile_id: str,
        *,
        event: Mapping[str, Any] | None = None,
        enrollment: Enrollment | None = None,
    ) -> Facts:
        def profile() -> Any:
            found = self.person(workspace_id, profile_id)
            if found is None:
                return None
            facts = found.facts()
            first, last = (
                order_dates(self.conn, workspace_id, found.profile_id)
                if found.order_count
                else (None, None)
            )
            now = self.now_ms
            facts["first_order_at"], facts["last_order_at"] = first, last
            facts["days_since_last_order"] = None if last is None else (now - last) // _DAY_MS
            facts["days_since_first_order"] = None if first is None else (now - first) // _DAY_MS
            facts["days_since_last_seen"] = (now - found.last_seen) // _DAY_MS
            return facts

        known: dict[str, Any] = {}
        if event is not None:
            known["event"] = event
        elif enrollment is not None:
            known["event"] = enrollment.data.get("event")
        if enrollment is not None and "signal" in enrollment.data:
            known["signal"] = enrollment.data["signal"]
        return Facts(
            {
                "profile": profile,
                "cart": lambda: self.cart(workspace_id, profile_id),
                "counts": lambda: self.counts(workspace_id, profile_id),
            },
            known,
        )

    # -- the trace ----------------------------------------------------------------------

    def note(
        self,
        workspace_id: str,
        profile_id: str,
        journey_key: str,
        at: int,
        kind: str,
        outcome: str,
        *,
        enrollment: Enrollment | None = None,
        step: str | None = None,
        **detail: Any,
    ) -> None:
        self.trace_rows.append(
            {
                "workspace_id": workspace_id,
                "profile_id": profile_id,
                "journey_key": journey_key,
                "enrollment_id": enrollment.enrollment_id if enrollment else None,
                "at": at,
                "step_id": step,
                "kind": kind,
                "outcome": outcome,
                "detail": orjson.dumps(detail, default=str, option=orjson.OPT_SORT_KEYS).decode(),
            }
        )

    # -- entering -----------------------------------------------------------------------

    def enroll(
        self,
        journey: Journey,
        version: int,
        workspace_id: str,
        profile_id: str,
        *,
        trigger_id: str,
        at: int,
        data: dict[str, Any],
        history: Sequence[Enrollment],
        now_ms: int,
    ) -> Enrollment | None:
        """Enter `profile_id` into `journey` (its entry rules permitting) and take its first
        steps; `history` is their earlier enrollments in this journey, newest first."""
        key = journey.key
        entry = journey.entry
        if now_ms - at > entry.max_event_age_ms:
            self.note(
                workspace_id,
                profile_id,
                key,
                at,
                "entry",
                "event_too_old",
                trigger=trigger_id,
                age_ms=now_ms - at,
                limit_ms=entry.max_event_age_ms,
            )
            return None
        enrollment_id = _short_hash(workspace_id, key, profile_id, trigger_id)
        if any(e.enrollment_id == enrollment_id for e in history):
            return None  # this event enrolled them before (a redelivery or a replay)
        active = [e for e in history if e.status == "active"]
        if active:
            self.note(
                workspace_id,
                profile_id,
                key,
                at,
                "entry",
                "already_enrolled",
                trigger=trigger_id,
                current=active[0].enrollment_id,
            )
            return None
        if history and entry.re_entry == "never":
            self.note(
                workspace_id,
                profile_id,
                key,
                at,
                "entry",
                "re_entry_never",
                trigger=trigger_id,
                entered_at=history[0].entered_at,
            )
            return None
        if (
            history
            and isinstance(entry.re_entry, int)
            and at - history[0].entered_at < entry.re_entry
        ):
            self.note(
                workspace_id,
                profile_id,
                key,
                at,
                "entry",
                "re_entry_too_soon",
                trigger=trigger_id,
                entered_at=history[0].entered_at,
                wait_ms=entry.re_entry,
            )
            return None
        config = self.config(workspace_id)
        if bucket("holdout", workspace_id, profile_id) < config.holdout_percent:
            arm = "holdout"
        elif bucket("control", key, profile_id) < entry.control:
            arm = "control"
        else:
            arm = "journey"
        enrollment = Enrollment(
            enrollment_id=enrollment_id,
            workspace_id=workspace_id,
            journey_key=key,
            version=version,
            profile_id=profile_id,
            arm=arm,
            status="active",
            step_id=None,
            waiting=None,
            due_at=None,
            entered_at=at,
            updated_at=at,
            ended_at=None,
            end_reason=None,
            goal_at=None,
            revenue=None,
            trigger_id=trigger_id,
            data=data,
            visits=0,
            new=True,
        )
        self.touched[enrollment_id] = enrollment
        self.note(
            workspace_id,
            profile_id,
            key,
            at,
            "entry",
            "enrolled",
            enrollment=enrollment,
            trigger=trigger_id,
            version=version,
            arm=arm,
        )
        self.advance(journey, enrollment, journey.first, at)
        return enrollment

    # -- moving -------------------------------------------------------------------------

    def finish(self, enrollment: Enrollment, at: int, status: str, reason: str) -> None:
        enrollment.status = status
        enrollment.end_reason = reason
        enrollment.ended_at = at
        enrollment.updated_at = at
        enrollment.waiting = None
        enrollment.due_at = None
        self.touched[enrollment.enrollment_id] = enrollment
        self.note(
            enrollment.workspace_id,
            enrollment.profile_id,
            enrollment.journey_key,
            at,
            "end",
            reason,
            enrollment=enrollment,
            step=enrollment.step_id,
        )

    def resume(self, journey: Journey, enrollment: Enrollment, now: int, *, event: bool) -> None:
        """Continue after the wait the enrollment is in: its timer ran out, or (`event`)
        the event a `wait_for` waited for came."""
        step = journey.step(enrollment.step_id or journey.first)
        default = step.next or journey.following(step.id)
        if isinstance(step, WaitFor):
            target = (step.on_event if event else step.on_timeout) or default
            self.note(
                enrollment.workspace_id,
                enrollment.profile_id,
                journey.key,
                now,
                "wait",
                "event_came" if event else "timed_out",
                enrollment=enrollment,
                step=step.id,
                next=target,
            )
        else:
            target = default
        self.advance(journey, enrollment, target, now)

    def advance(self, journey: Journey, enrollment: Enrollment, target: str, now: int) -> None:
        ws, pid, key = enrollment.workspace_id, enrollment.profile_id, journey.key
        self.touched[enrollment.enrollment_id] = enrollment
        enrollment.updated_at = max(enrollment.updated_at, now)
        enrollment.waiting = None
        enrollment.due_at = None
        for _ in range(_MAX_STEPS):
            if target == END:
                self.finish(enrollment, now, "finished", "completed")
                return
            step = journey.step(target)
            enrollment.step_id = step.id
            enrollment.visits += 1
            default = step.next or journey.following(step.id)
            if isinstance(step, Wait):
                enrollment.waiting, enrollment.due_at = "timer", now + step.ms
                self.note(
                    ws,
                    pid,
                    key,
                    now,
                    "wait",
                    "waiting",
                    enrollment=enrollment,
                    step=step.id,
                    until=to_iso(enrollment.due_at),
                )
                return
            if isinstance(step, WaitUntil):
                zone = guards.local_zone(self.person(ws, pid), self.config(ws))
                due = guards.next_time_of_day(now, step.hour, step.minute, zone)
                if due - now < 60_000:
                    target = default
                    continue
                enrollment.waiting, enrollment.due_at = "timer", due
                self.note(
                    ws,
                    pid,
                    key,
                    now,
                    "wait",
                    "waiting",
                    enrollment=enrollment,
                    step=step.id,
                    until=to_iso(due),
                    timezone=str(zone),
                )
                return
            if isinstance(step, WaitFor):
                enrollment.waiting, enrollment.due_at = "event", now + step.timeout_ms
                self.note(
                    ws,
                    pid,
                    key,
                    now,
                    "wait",
                    "waiting_for_event",
                    enrollment=enrollment,
                    step=step.id,
                    events=list(step.match.events),
                    timeout=to_iso(enrollment.due_at),
                )
                return
            if isinstance(step, Branch):
                held, seen = evaluate(step.tests, self.facts(ws, pid, enrollment=enrollment))
                target = (step.then if held else step.otherwise) or default
                self.note(
                    ws,
                    pid,
                    key,
                    now,
                    "condition",
                    "true" if held else "false",
                    enrollment=enrollment,
                    step=step.id,
                    conditions=seen,
                    next=target,
                )
                continue
            if isinstance(step, Split):
                point = bucket("split", key, step.id, pid) / 100 * sum(w for w, _ in step.branches)
                chosen = step.branches[-1][1]
                for weight, branch_target in step.branches:
                    if point < weight:
                        chosen = branch_target
                        break
                    point -= weight
                self.note(ws, pid, key, now, "split", chosen, enrollment=enrollment, step=step.id)
                target = chosen
                continue
            assert isinstance(step, Send)
            self.act(journey, enrollment, step, now)
            target = default
        logger.error(
            "journey %s: enrollment %s took %d steps at once; stopped",
            key,
            enrollment.enrollment_id,
            _MAX_STEPS,
        )
        self.finish(enrollment, now, "exited", "too_many_steps")

    # -- acting -------------------------------------------------------------------------

    def send_id(self, enrollment: Enrollment, step: Send) -> str:
        return f"{enrollment.enrollment_id}:{enrollment.visits:04d}:{step.id}"[:120]

    def act(self, journey: Journey, enrollment: Enrollment, step: Send, now: int) -> None:
        ws, pid, key = enrollment.workspace_id, enrollment.profile_id, journey.key
        send_id = self.send_id(enrollment, step)
        if step.kind in ("email", "sms", "webhook", "giftcard"):
            self._queue(journey, enrollment, step, send_id, now)
            return
        if step.kind == "coupon":
            if enrollment.arm != "journey":
                self.note(
                    ws,
                    pid,
                    key,
                    now,
                    "action",
                    enrollment.arm,
                    enrollment=enrollment,
                    step=step.id,
                    action="coupon",
                )
                return
            days = int(step.options.get("valid_days", 30))
            coupon = {
                "code": coupon_code(send_id),
                "valid_until": to_iso(now + days * 86_400_000),
                **{
                    k: step.options[k]
                    for k in ("percent", "amount", "currency")
                    if k in step.options
                },
            }
            enrollment.data["coupon"] = coupon
            self._record(
                ws,
                pid,
                "Coupon Issued",
                send_id,
                now,
                {
                    "coupon": coupon["code"],
                    "journey": key,
                    "step": step.id,
                    **{k: v for k, v in coupon.items() if k != "code"},
                },
            )
            self.note(
                ws,
                pid,
                key,
                now,
                "action",
                "coupon_issued",
                enrollment=enrollment,
                step=step.id,
                coupon=coupon["code"],
            )
            return
        if step.kind == "trait":
            traits = dict(step.options.get("traits") or {})
            self._identify(ws, pid, send_id, now, traits)
            self.note(
                ws,
                pid,
                key,
                now,
                "action",
                "traits_set",
                enrollment=enrollment,
                step=step.id,
                traits=traits,
            )
            return
        assert step.kind == "alert"
        queue = str(step.options.get("queue", "agent"))
        note = str(step.options.get("note") or journey.name_in("en"))
        products = [str(p) for p in (enrollment.data.get("products") or [])][:10]
        candidate = Candidate(
            workspace_id=ws,
            profile_id=pid,
            kind=f"journey:{key}"[:100],
            score=1.0,
            event_id=enrollment.trigger_id,
            offset=int(enrollment.data.get("offset") or 0),
            at_ms=now,
            dedupe_key=f"journey:{send_id}"[:300],
            products=tuple(products),
            store_id=step.options.get("store"),
            reasons=(
                Reason(
                    code="journey",
                    en=f"{journey.name_in('en')}: {note}",
                    fi=f"{journey.name_in('fi')}: {note}",
                    weight=1.0,
                ),
            ),
            details={"journey": key, "step": step.id},
        )
        self.alerts.append((candidate, "store" if queue == "store" else "agents"))
        self.note(
            ws,
            pid,
            key,
            now,
            "action",
            "alert_raised",
            enrollment=enrollment,
            step=step.id,
            queue=queue,
        )

    def _queue(
        self, journey: Journey, enrollment: Enrollment, step: Send, send_id: str, now: int
    ) -> None:
        ws, pid, key = enrollment.workspace_id, enrollment.profile_id, journey.key
        channel = step.kind
        person = self.person(ws, pid)
        if channel in ("email", "sms"):
            decision = guards.check(
                self.conn,
                workspace_id=ws,
                person=person,
                channel=channel,
                purpose=step.purpose,
                arm=enrollment.arm,
                now_ms=now,
                config=self.config(ws),
            )
            status, reason, due, to = (
                decision.status,
                decision.reason,
                decision.due_at,
                decision.to,
            )
            checks: list[dict[str, Any]] = list(decision.checks)
            # Caps count the messages queued in this very batch too.
            if status == "queued" and step.purpose != "transactional":
                status, reason, checks = self._caps_in_batch(
                    ws, pid, channel, now, status, reason, checks
                )
        elif enrollment.arm != "journey" and step.purpose != "transactional":
            status, reason, due, to = "dropped", enrollment.arm, now, None
            checks = [{"guard": enrollment.arm, "passed": False}]
        else:
            status, reason, due = "queued", None, now
            to = str(step.options.get("url")) if channel == "webhook" else None
            checks = []
        self.send_rows.append(
            {
                "send_id": send_id,
                "workspace_id": ws,
                "enrollment_id": enrollment.enrollment_id,
                "journey_key": key,
                "version": enrollment.version,
                "step_id": step.id,
                "profile_id": person.profile_id if person else pid,
                "channel": channel,
                "purpose": step.purpose,
                "status": status,
                "reason": reason,
                "due_at": due,
                "attempts": 0,
                "created_at": now,
                "sent_at": None,
                "to_address": to,
                "provider_id": None,
                "error": None,
                "marketing": step.purpose != "transactional" and channel in ("email", "sms"),
            }
        )
        outcome = {"queued": "queued", "held": "held", "dropped": "dropped"}[status]
        self.note(
            ws,
            pid,
            key,
            now,
            "send",
            outcome,
            enrollment=enrollment,
            step=step.id,
            channel=channel,
            send_id=send_id,
            reason=reason,
            guards=checks,
            due=to_iso(due),
        )

    def _caps_in_batch(
        self,
        ws: str,
        pid: str,
        channel: str,
        now: int,
        status: str,
        reason: str | None,
        checks: list[dict[str, Any]],
    ) -> tuple[str, str | None, list[dict[str, Any]]]:
        config = self.config(ws)
        pending = [
            r
            for r in self.send_rows
            if r["workspace_id"] == ws
            and r["profile_id"] == pid
            and r["marketing"]
            and r["status"] in guards.COUNTED
        ]
        if not pending:
            return status, reason, checks
        for cap in config.caps:
            if cap.channel not in ("*", channel):
                continue
            mine = [r for r in pending if cap.channel == "*" or r["channel"] == channel]
            mine = [r for r in mine if r["created_at"] > now - cap.window_ms]
            from_db = guards._sent_within(self.conn, ws, pid, cap.channel, now - cap.window_ms)
            if len(mine) + from_db >= cap.limit:
                checks = [c for c in checks if c.get("guard") != "frequency_caps"]
                checks.append(
                    {
                        "guard": "frequency_cap",
                        "passed": False,
                        "cap": cap.label,
                        "sent": len(mine) + from_db,
                    }
                )
                return "dropped", "frequency_cap", checks
        return status, reason, checks

    def _carrier(self, ws: str, pid: str) -> dict[str, Any] | None:
        return carrier_of(self.conn, ws, pid, self.identity)

    def _record(
        self, ws: str, pid: str, name: str, key: str, at: int, properties: dict[str, Any]
    ) -> None:
        carrier = self._carrier(ws, pid)
        if carrier is None:
            return
        try:
            event = internal_event(
                ws,
                name,
                properties,
                user_id=carrier.get("userId"),
                anonymous_id=carrier.get("anonymousId"),
                at_ms=at,
                message_id=f"journey-{_short_hash(name, key)}",
            )
        except InternalEventError:
            logger.exception("journeys: could not record %s for %s", name, key)
            return
        self.events.append(event)

    def _identify(self, ws: str, pid: str, key: str, at: int, traits: dict[str, Any]) -> None:
        carrier = self._carrier(ws, pid)
        if carrier is None:
            return
        message_id = f"journey-{_short_hash('identify', key)}"
        message = {
            "type": "identify",
            "messageId": message_id,
            "traits": traits,
            "context": {"library": {"name": "polku-journeys", "version": "1"}},
            "timestamp": to_iso(at),
            "receivedAt": to_iso(at),
            **carrier,
        }
        self.events.append(
            NewEvent(
                workspace_id=ws,
                message_id=message_id,
                type="identify",
                partition_key=str(carrier.get("userId") or carrier.get("anonymousId")),
                received_at=at,
                timestamp=at,
                payload=orjson.dumps(message),
            )
        )

    # -- writing ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything collected, in `conn`'s transaction."""
        conn = self.conn
        if self.touched:
            fresh = [e.row() for e in self.touched.values() if e.new]
            known = [e for e in self.touched.values() if not e.new]
            if fresh:
                existing = set(
                    fetch_in(
                        conn,
                        "SELECT enrollment_id FROM journey_enrollments WHERE enrollment_id IN (?*)",
                        [row["enrollment_id"] for row in fresh],
                    )
                )
                fresh = [r for r in fresh if (r["enrollment_id"],) not in existing]
                if fresh:
                    insert_rows(
                        conn, enrollments, _COLUMNS, [tuple(r[c] for c in _COLUMNS) for r in fresh]
                    )
            if known:
                rows = [enrollment.row() for enrollment in known]
                update_rows(
                    conn,
                    enrollments,
                    "enrollment_id",
                    _CHANGING,
                    [(*(row[name] for name in _CHANGING), row["enrollment_id"]) for row in rows],
                )
            for enrollment in self.touched.values():
                enrollment.new = False
            self.touched.clear()
        if self.send_rows:
            existing = set(
                fetch_in(
                    conn,
                    "SELECT send_id FROM journey_sends WHERE send_id IN (?*)",
                    [row["send_id"] for row in self.send_rows],
                )
            )
            rows = [r for r in self.send_rows if (r["send_id"],) not in existing]
            if rows:
                names = tuple(rows[0])
                insert_rows(conn, sends, names, [tuple(r[c] for c in names) for r in rows])
            self.send_rows.clear()
        if self.trace_rows:
            names = tuple(self.trace_rows[0])
            insert_rows(conn, trace, names, [tuple(r[c] for c in names) for r in self.trace_rows])
            self.trace_rows.clear()
        if self.alerts:
            for candidate, to in self.alerts:
                route(conn, [candidate], to=to)
            self.alerts.clear()
        if self.events:
            stage(conn, self.events, self.partitions)
            self.events.clear()


def history_of(conn: Connection, workspace_id: str, profile_id: str, key: str) -> list[Enrollment]:
    """The person's latest enrollments in journey `key`, newest first (for entry rules)."""
    e = enrollments.c
    rows = conn.execute(
        select_enrollments()
        .where(e.workspace_id == workspace_id, e.profile_id == profile_id, e.journey_key == key)
        .order_by(e.entered_at.desc())
        .limit(20)
    ).all()
    return [Enrollment.from_row(row) for row in rows]


def enter_segment(
    work: Work,
    library: Sequence[Any],
    workspace_id: str,
    profile_id: str,
    segment: str,
    trigger_id: str,
    at: int,
    now: int,
) -> None:
    """The person entered `segment`: enroll them in the journeys it triggers (`library`:
    `polku.journeys.queries.Live` items)."""
    for live in library:
        trigger = live.journey.trigger
        if trigger.kind != "segment" or trigger.segment != segment:
            continue
        history = history_of(work.conn, workspace_id, profile_id, live.journey.key) + [
            e
            for e in work.touched.values()
            if e.new and e.journey_key == live.journey.key and e.profile_id == profile_id
        ]
        history.sort(key=lambda e: e.entered_at, reverse=True)
        work.note(
            workspace_id, profile_id, live.journey.key, at, "trigger", "matched", segment=segment
        )
        work.enroll(
            live.journey,
            live.version,
            workspace_id,
            profile_id,
            trigger_id=trigger_id,
            at=at,
            data={"segment": segment},
            history=history,
            now_ms=now,
        )
