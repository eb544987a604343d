"""Workspaces, sources with their write keys, and hashed admin tokens."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, String, Table

from polku.storage.metadata import metadata

__all__ = ["admin_tokens", "workspaces", "write_keys"]

workspaces = Table(
    "workspaces",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

write_keys = Table(
    "write_keys",
    metadata,
    Column("write_key", String(128), primary_key=True),
    Column("workspace_id", String(64), ForeignKey("workspaces.workspace_id"), nullable=False),
    Column("source_id", String(64), nullable=False),
    Column("source_name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("token_prefix", String(16), nullable=False),
    Column("workspace_id", String(64), ForeignKey("workspaces.workspace_id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)
