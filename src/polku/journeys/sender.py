"""Sending what journeys queued: render, check once more, deliver, record.

`Sender.run_once` takes the due rows of `journey_sends` (queued, held until quiet hours
ended, or retrying), leases them (status ``sending``, due again after `LEASE_MS` should the
process die mid-send), and for each one:

1. checks consent and suppression again at the moment of sending (a customer may have
   unsubscribed while the message waited for quiet hours to end);
2. renders the step's template with the person's context (`polku.journeys.context`);
3. hands it to the channel (`polku.channels`), blocking, on a pool of threads;
4. records the result: ``sent`` (with the provider's id), a retry after 1, 4, 16, ...
   minutes for a temporary failure, or ``failed``; and appends a ``Message Sent`` or
   ``Message Failed`` event for the profile's timeline, through the outbox.

Idempotency: the row, keyed by its idempotency key, exists before the channel is called.
A batch is first ``claimed`` (leased), and each message is marked ``sending``, committed,
just before its channel is called, then ``sent``. A crash leaves claimed rows (never
tried: sent normally once due again) and at most one ``sending`` row per sender thread:
those are sent again *with the same key* (the SMTP Message-ID, the gateway's and the
webhook's Idempotency-Key), which is what the far side deduplicates on. Everything not in
flight at the moment of a crash is sent exactly once.

A gift card step is a send too (channel ``giftcard``): issuing it is an action with effects
outside the journey, so it goes through the same ledger, and the messages after it can
show its code (kept in the enrollment's data).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from sqlalchemy import Connection, select, update

from polku.channels.base import Message, SendResult
from polku.channels.registry import Channels
from polku.collect.internal import InternalEventError, internal_event
from polku.commerce.giftcards.actions import issue
from polku.errors import PolkuError
from polku.identity.identifiers import IdentityConfig
from polku.journeys import guards
from polku.journeys.clock import Clock
from polku.journeys.config import config_of
from polku.journeys.content import Content
from polku.journeys.context import Links, message_context
from polku.journeys.definition import Send
from polku.journeys.engine import Enrollment, carrier_of, select_enrollments
from polku.journeys.queries import version_of
from polku.journeys.tables import enrollments, sends, trace
from polku.log.outbox import Backends
from polku.storage.engine import translate_errors, writing

__all__ = ["LEASE_MS", "MAX_ATTEMPTS", "Sender", "retry_delay_ms"]

logger = logging.getLogger(__name__)

LEASE_MS: Final = 120_000
MAX_ATTEMPTS: Final = 6
_BATCH: Final = 200


def retry_delay_ms(attempts: int) -> int:
    """1 min, 4 min, 16 min, ... after the `attempts`-th failure."""
    return int(60_000 * 4 ** max(0, attempts - 1))


@dataclass
class _Job:
    row: dict[str, Any]
    enrollment: Enrollment | None
    step: Send | None


class Sender:
    """Delivers due journey sends (see the module doc); one per process that runs timers."""

    def __init__(
        self,
        backends: Backends,
        channels: Channels,
        clock: Clock,
        identity: IdentityConfig,
        *,
        content: Content | None = None,
        workers: int = 4,
        shop_url: str = "",
    ) -> None:
        self._backends = backends
        self._channels = channels
        self._clock = clock
        self._identity = identity
        self._content = content or Content()
        self._shop_url = shop_url
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="polku-send")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- taking ---------------------------------------------------------------------------

    def _take(self, limit: int) -> list[_Job]:
        now = self._clock.now_ms()
        s = sends.c
        due = s.status.in_(("queued", "held", "claimed", "sending")), s.due_at <= now
        with self._backends.engine.connect() as conn:  # an idle tick only reads
            if conn.execute(select(s.send_id).where(*due).limit(1)).first() is None:
                return []
        with writing(self._backends.engine) as conn:
            query = (
                select(sends).where(*due).order_by(s.due_at, s.created_at, s.send_id).limit(limit)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = [dict(r._mapping) for r in conn.execute(query).all()]
            if not rows:
                return []
            conn.execute(
                update(sends)
                .where(s.send_id.in_([r["send_id"] for r in rows]))
                .values(status="claimed", due_at=now + LEASE_MS, attempts=s.attempts + 1)
            )
            jobs = []
            # One object per enrollment: a gift card issued for it shows in its next message.
            loaded: dict[str, Enrollment | None] = {}
            for row in rows:
                row["attempts"] = int(row["attempts"]) + 1
                if row["enrollment_id"] not in loaded:
                    loaded[row["enrollment_id"]] = _enrollment(conn, row["enrollment_id"])
                enrollment = loaded[row["enrollment_id"]]
                journey = version_of(
                    conn, row["workspace_id"], row["journey_key"], int(row["version"])
                )
                step = journey.step(row["step_id"]) if journey is not None else None
                jobs.append(_Job(row, enrollment, step if isinstance(step, Send) else None))
            return jobs

    def run_once(self, limit: int = _BATCH) -> int:
        """Send what is due now; returns how many sends it settled."""
        with self._lock:  # one run at a time per process: a lease is taken once
            jobs = self._take(limit)
            if not jobs:
                return 0
            # Gift cards first, in order: the messages after them show their codes.
            for job in jobs:
                if job.row["channel"] == "giftcard":
                    self._settle_giftcard(job)
            messages = [job for job in jobs if job.row["channel"] != "giftcard"]
            list(self._pool.map(self._deliver, messages))
            return len(jobs)

    # -- one message ----------------------------------------------------------------------

    def _deliver(self, job: _Job) -> None:
        try:
            self._deliver_one(job)
        except Exception as exc:  # a bug must not stop the other messages
            logger.exception("journeys: send %s failed unexpectedly", job.row["send_id"])
            self._settle(job, SendResult(ok=False, error=f"internal: {exc}"[:500]))

    def _deliver_one(self, job: _Job) -> None:
        row = job.row
        now = self._clock.now_ms()
        if job.step is None or job.enrollment is None:
            self._drop(job, "journey_version_missing", now)
            return
        ws, profile = row["workspace_id"], row["profile_id"]
        channel = row["channel"]
        with (
            translate_errors("reading the person to send to"),
            self._backends.engine.connect() as conn,
        ):
            person = guards.person_of(conn, ws, profile)
            if channel in ("email", "sms"):
                decision = guards.check(
                    conn,
                    workspace_id=ws,
                    person=person,
                    channel=channel,
                    purpose=row["purpose"],
                    arm=job.enrollment.arm,
                    now_ms=now,
                    config=config_of(conn, ws),
                    skip_caps=True,  # this send was counted when it was queued
                )
                if decision.status == "dropped":
                    self._drop(job, decision.reason or "guard", now, list(decision.checks))
                    return
                if decision.status == "held":
                    self._hold(job, decision.due_at, now)
                    return
                to = decision.to or ""
            else:
                to = str(job.step.options.get("url") or "")
            locale = person.locale if person else "en"
            holder = person.profile_id if person else profile
            links = Links(
                self._channels.base_url,
                self._channels.secret,
                ws,
                holder,
                row["send_id"],
                shop_url=self._shop_url,
            )
            context = message_context(
                conn,
                ws,
                holder,
                event=job.enrollment.data.get("event"),
                send_id=row["send_id"],
                links=links,
                locale=locale,
                coupon=job.enrollment.data.get("coupon"),
                giftcard=job.enrollment.data.get("giftcard"),
                purpose=row["purpose"],
                channel=channel,
                at=datetime.fromtimestamp(now / 1000, UTC),
                extra=_values(job.step),
            )
        context = dict(context)
        for extra in ("coupon", "giftcard", "signal"):
            if extra in job.enrollment.data:
                context[extra] = job.enrollment.data[extra]
        context["journey"] = {"key": row["journey_key"], "step": row["step_id"]}
        unsubscribe = ""
        if row["purpose"] != "transactional" and channel in ("email", "sms"):
            unsubscribe = self._channels.unsubscribe_url(
                ws, holder, row["purpose"], channel, locale
            )
            context["unsubscribe_url"] = unsubscribe
        template = job.step.template
        try:
            if channel == "webhook" and template is None:
                text, subject, html = (
                    orjson.dumps(_webhook_body(row, context), default=str).decode(),
                    "",
                    "",
                )
            else:
                assert template is not None
                rendered = self._content.render(template, channel, context)
                text, subject, html = rendered.text, rendered.subject, rendered.html
        except PolkuError as exc:
            self._settle(job, SendResult(ok=False, error=f"template: {exc.message}"[:500]))
            return
        message = Message(
            channel=channel,
            to=to,
            text=text,
            idempotency_key=row["send_id"],
            workspace_id=ws,
            profile_id=holder,
            purpose=row["purpose"],
            subject=subject,
            html=html,
            locale=locale,
            unsubscribe_url=unsubscribe,
            secret=str(job.step.options.get("secret") or self._channels.secret),
        )
        if not self._mark_sending(row["send_id"]):
            return  # another process took it over (its lease ran out): it sends it
        result = self._channels.get(channel).send(message)
        self._settle(job, result, to=to, subject=subject)

    def _mark_sending(self, send_id: str) -> bool:
        """Record, committed, that the channel is about to be called: from here on a crash
        leaves the message "maybe sent" (resent with the same key), never "not sent"."""
        s = sends.c
        with writing(self._backends.engine) as conn:
            done = conn.execute(
                update(sends)
                .where(s.send_id == send_id, s.status == "claimed")
                .values(status="sending")
            )
            return bool(done.rowcount)

    def recover(self) -> int:
        """After a restart of the only sender (the embedded mode): what the dead process had
        claimed is due again at once, instead of when its lease runs out; what it was
        sending is resent with the same idempotency key."""
        s = sends.c
        with writing(self._backends.engine) as conn:
            done = conn.execute(
                update(sends)
                .where(s.status.in_(("claimed", "sending")))
                .values(status="queued", due_at=self._clock.now_ms())
            )
            return int(done.rowcount or 0)

    # -- settling -------------------------------------------------------------------------

    def _settle(
        self, job: _Job, result: SendResult, *, to: str | None = None, subject: str = ""
    ) -> None:
        row = job.row
        now = self._clock.now_ms()
        s = sends.c
        if result.ok:
            values: dict[str, Any] = {
                "status": "sent",
                "sent_at": now,
                "error": None,
                "provider_id": result.provider_id or None,
            }
            outcome, event = "sent", "Message Sent"
        elif result.retry and row["attempts"] < MAX_ATTEMPTS:
            values = {
                "status": "queued",
                "due_at": now + retry_delay_ms(row["attempts"]),
                "error": result.error[:2000],
            }
            outcome, event = "retrying", None
        else:
            values = {"status": "failed", "error": result.error[:2000]}
            outcome, event = "failed", "Message Failed"
        if to:
            values["to_address"] = to[:320]
        with self._backends.outbox.transaction() as tx:
            tx.conn.execute(update(sends).where(s.send_id == row["send_id"]).values(**values))
            _note(
                tx.conn,
                row,
                now,
                "delivery",
                outcome,
                error=result.error or None,
                provider_id=result.provider_id or None,
                attempt=row["attempts"],
                status=result.status,
            )
            if event is not None:
                recorded = self._event(
                    tx.conn,
                    row,
                    event,
                    now,
                    {
                        "channel": row["channel"],
                        "journey": row["journey_key"],
                        "step": row["step_id"],
                        "send_id": row["send_id"],
                        **({"subject": subject} if subject else {}),
                        **({"error": result.error[:300]} if not result.ok else {}),
                    },
                )
                if recorded is not None:
                    tx.record(recorded)

    def _drop(
        self, job: _Job, reason: str, now: int, checks: list[dict[str, Any]] | None = None
    ) -> None:
        row = job.row
        with writing(self._backends.engine) as conn:
            conn.execute(
                update(sends)
                .where(sends.c.send_id == row["send_id"])
                .values(status="dropped", reason=reason)
            )
            _note(conn, row, now, "delivery", "dropped", reason=reason, guards=checks or [])

    def _hold(self, job: _Job, until: int, now: int) -> None:
        row = job.row
        with writing(self._backends.engine) as conn:
            conn.execute(
                update(sends)
                .where(sends.c.send_id == row["send_id"])
                .values(
                    status="held", reason="quiet_hours", due_at=until, attempts=sends.c.attempts - 1
                )
            )
            _note(conn, row, now, "delivery", "held", reason="quiet_hours", until=until)

    def _settle_giftcard(self, job: _Job) -> None:
        row, now = job.row, self._clock.now_ms()
        if job.step is None or job.enrollment is None:
            self._drop(job, "journey_version_missing", now)
            return
        if job.enrollment.arm != "journey":
            self._drop(job, job.enrollment.arm, now)
            return
        if row["status"] == "sending":
            # The process that was issuing it died: the card may exist, and its code was
            # shown only to that process. Money is issued at most once: ask a person.
            self._settle(
                job,
                SendResult(
                    ok=False,
                    error="in doubt after a restart: look for "
                    f"a gift card noted 'journey send {row['send_id']}'",
                ),
            )
            return
        if not self._mark_sending(row["send_id"]):
            return
        options = job.step.options
        days = int(options.get("valid_days", 365))
        try:
            issued = issue(
                self._backends,
                row["workspace_id"],
                options.get("amount"),
                options.get("currency", "EUR"),
                reason="goodwill",
                expires_at=datetime.now(UTC) + timedelta(days=days),
                profile_id=row["profile_id"],
                identity=self._identity,
                note=f"journey send {row['send_id']}"[:500],
            )
        except PolkuError as exc:
            self._settle(job, SendResult(ok=False, error=exc.message))
            return
        card = {
            "code": issued.code,
            "amount": options.get("amount"),
            "currency": options.get("currency", "EUR"),
            "giftcard_id": issued.card.giftcard_id,
        }
        with writing(self._backends.engine) as conn:
            e = enrollments.c
            raw = conn.execute(
                select(e.data).where(e.enrollment_id == row["enrollment_id"])
            ).scalar()
            data = orjson.loads(raw) if raw else {}
            data["giftcard"] = card
            conn.execute(
                update(enrollments)
                .where(e.enrollment_id == row["enrollment_id"])
                .values(data=orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode())
            )
        job.enrollment.data["giftcard"] = card
        self._settle(job, SendResult(ok=True, provider_id=issued.card.giftcard_id))

    def _event(
        self, conn: Connection, row: dict[str, Any], name: str, at: int, properties: dict[str, Any]
    ) -> Any:
        carrier = carrier_of(conn, row["workspace_id"], row["profile_id"], self._identity)
        if carrier is None:
            return None
        user, anonymous = carrier.get("userId"), carrier.get("anonymousId")
        try:
            return internal_event(
                row["workspace_id"],
                name,
                properties,
                user_id=user,
                anonymous_id=anonymous,
                channel=row["channel"] if row["channel"] in ("email", "sms") else None,
                at_ms=at,
                message_id=f"journey-{name.split()[1].lower()}-{row['send_id']}"[:200],
            )
        except InternalEventError:
            logger.exception("journeys: could not record %s for %s", name, row["send_id"])
            return None


def _values(step: Send) -> dict[str, Any] | None:
    """A step's own template values (`values:`, e.g. a survey link or a partner)."""
    values = step.options.get("values")
    return dict(values) if isinstance(values, dict) else None


def _enrollment(conn: Connection, enrollment_id: str) -> Enrollment | None:
    found = conn.execute(
        select_enrollments().where(enrollments.c.enrollment_id == enrollment_id)
    ).first()
    return None if found is None else Enrollment.from_row(found)


def _note(
    conn: Connection, row: dict[str, Any], at: int, kind: str, outcome: str, **detail: Any
) -> None:
    conn.execute(
        trace.insert().values(
            workspace_id=row["workspace_id"],
            profile_id=row["profile_id"],
            journey_key=row["journey_key"],
            enrollment_id=row["enrollment_id"],
            at=at,
            step_id=row["step_id"],
            kind=kind,
            outcome=outcome,
            detail=orjson.dumps(
                {"send_id": row["send_id"], "channel": row["channel"], **detail},
                default=str,
                option=orjson.OPT_SORT_KEYS,
            ).decode(),
        )
    )


def _webhook_body(row: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    profile = context.get("profile") or {}
    return {
        "type": "journey.step",
        "send_id": row["send_id"],
        "journey": row["journey_key"],
        "step": row["step_id"],
        "profile_id": row["profile_id"],
        "traits": profile.get("traits") if isinstance(profile, dict) else None,
        "event": context.get("event"),
        "cart": context.get("cart"),
    }
