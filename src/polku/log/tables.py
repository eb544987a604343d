"""Tables of the SQL log backend: the events themselves and each consumer's checkpoint."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, String, Table, UniqueConstraint

from polku.storage.metadata import OffsetType, metadata

__all__ = ["checkpoints", "log_events"]

log_events = Table(
    "log_events",
    metadata,
    Column("offset", OffsetType, primary_key=True, autoincrement=True),
    Column("workspace_id", String(64), nullable=False),
    Column("source_id", String(64), nullable=False, default=""),
    Column("message_id", String(200), nullable=False),
    Column("type", String(32), nullable=False),
    Column("event", String(200), nullable=True),
    Column("partition_key", String(300), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    UniqueConstraint("workspace_id", "message_id"),
)
Index("ix_log_events_received_at", log_events.c.received_at)

checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("offset", BigInteger, nullable=False),
)
