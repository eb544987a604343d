"""Journeys: definitions with every version, enrollments with their timers, the sends ledger
and the decision trace.

Times are epoch ms. An enrollment waiting on a timer has `due_at`; the timer run takes the
due ones in `due_at` order, so thousands of waiting people cost one indexed read, not a
sleeping task each. `journey_sends` is the ledger of messages: a row (keyed by the
idempotency key) is written in the transaction that decides to send, moved to ``sending``
before the channel is called and to ``sent``/``failed`` after; a replay of the log
rebuilds enrollments and the trace but never this ledger, so it never sends twice.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from polku.storage.metadata import OffsetType, metadata

__all__ = [
    "enrollments",
    "journey_settings",
    "journey_states",
    "journey_versions",
    "segment_members",
    "segments",
    "sends",
    "trace",
]

journey_versions = Table(
    "journey_versions",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("journey_key", String(80), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("document", Text, nullable=False),  # JSON, as written
    Column("checksum", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(100), nullable=False),
)

journey_states = Table(
    "journey_states",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("journey_key", String(80), primary_key=True),
    Column("version", Integer, nullable=False),  # the version new enrollments start on
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

journey_settings = Table(
    "journey_settings",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("config", Text, nullable=False),  # JSON: caps, quiet hours, holdout, time zone
    Column("updated_at", BigInteger, nullable=False),
)

enrollments = Table(
    "journey_enrollments",
    metadata,
    Column("enrollment_id", String(64), primary_key=True),
    Column("workspace_id", String(64), nullable=False),
    Column("journey_key", String(80), nullable=False),
    Column("version", Integer, nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("arm", String(16), nullable=False),  # journey, control (the journey's), holdout
    Column("status", String(16), nullable=False),  # active, finished, exited
    Column("step_id", String(80), nullable=True),  # where it waits
    Column("waiting", String(16), nullable=True),  # timer, event
    Column("due_at", BigInteger, nullable=True),
    Column("entered_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    Column("end_reason", String(60), nullable=True),
    Column("goal_at", BigInteger, nullable=True),
    Column("revenue", BigInteger, nullable=True),  # minor units of the goal event's total
    Column("trigger_id", String(200), nullable=False),  # the triggering event's messageId
    Column("data", Text, nullable=False),  # JSON: the trigger's event, signal, coupon, ...
    Column("visits", Integer, nullable=False),  # steps taken: part of each send's key
)
Index(
    "ix_journey_enrollments_profile",
    enrollments.c.workspace_id,
    enrollments.c.profile_id,
    enrollments.c.status,
)
Index("ix_journey_enrollments_due", enrollments.c.status, enrollments.c.due_at)
Index(
    "ix_journey_enrollments_journey",
    enrollments.c.workspace_id,
    enrollments.c.journey_key,
    enrollments.c.entered_at,
)

sends = Table(
    "journey_sends",
    metadata,
    Column("send_id", String(120), primary_key=True),  # the idempotency key
    Column("workspace_id", String(64), nullable=False),
    Column("enrollment_id", String(64), nullable=False),
    Column("journey_key", String(80), nullable=False),
    Column("version", Integer, nullable=False),
    Column("step_id", String(80), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column(
        "status", String(16), nullable=False
    ),  # queued, held, claimed, sending, sent, failed, dropped
    Column("reason", String(60), nullable=True),
    Column("due_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Column("to_address", String(320), nullable=True),
    Column("provider_id", String(200), nullable=True),
    Column("error", Text, nullable=True),
    Column("marketing", Boolean, nullable=False),  # counts towards the frequency caps
)
Index("ix_journey_sends_due", sends.c.status, sends.c.due_at)
Index(
    "ix_journey_sends_profile",
    sends.c.workspace_id,
    sends.c.profile_id,
    sends.c.channel,
    sends.c.sent_at,
)
Index("ix_journey_sends_enrollment", sends.c.enrollment_id)

trace = Table(
    "journey_trace",
    metadata,
    Column("id", OffsetType, primary_key=True, autoincrement=True),
    Column("workspace_id", String(64), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("journey_key", String(80), nullable=False),
    Column("enrollment_id", String(64), nullable=True),
    Column("at", BigInteger, nullable=False),
    Column("step_id", String(80), nullable=True),
    Column("kind", String(24), nullable=False),  # trigger, entry, condition, guard, send, ...
    Column("outcome", String(60), nullable=False),
    Column("detail", Text, nullable=False),  # JSON
)
Index(
    "ix_journey_trace_profile",
    trace.c.workspace_id,
    trace.c.profile_id,
    trace.c.journey_key,
    trace.c.id,
)

segments = Table(
    "journey_segments",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("segment_key", String(80), primary_key=True),
    Column("document", Text, nullable=False),  # JSON: key, name, where
    Column("updated_at", BigInteger, nullable=False),
)

segment_members = Table(
    "journey_segment_members",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("segment_key", String(80), primary_key=True),
    Column("profile_id", String(64), primary_key=True),
    Column("entered_at", BigInteger, nullable=False),
)
Index(
    "ix_journey_segment_members_profile",
    segment_members.c.workspace_id,
    segment_members.c.profile_id,
)
