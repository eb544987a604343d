"""The dead-letter store: every rejected event or request, with the reason, for the debugger."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from polku.storage.metadata import OffsetType, metadata

__all__ = ["dead_letters"]

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", OffsetType, primary_key=True, autoincrement=True),
    Column("workspace_id", String(64), nullable=True),  # null when the write key was unknown
    Column("source_id", String(64), nullable=True),
    Column("received_at", BigInteger, nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("batch_index", Integer, nullable=True),
    Column("message_id", String(200), nullable=True),
    Column("code", String(64), nullable=False),
    Column("field", String(200), nullable=True),
    Column("message", Text, nullable=False),
    Column("hint", Text, nullable=True),  # what to do, as the client was told (0017)
    Column("payload", LargeBinary, nullable=True),  # the rejected JSON, cut at 64 KB
)
Index("ix_dead_letters_ws_received", dead_letters.c.workspace_id, dead_letters.c.received_at)
