"""Console users, the stores a store clerk works for, sessions, and failed sign-ins.

A session row is the truth about a signed-in browser: its cookie holds a random token and
the row only the token's SHA-256, so a copy of the database signs nobody in. Signing out
sets `ended_at`, so a stolen cookie stops working at once, not at expiry.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, String, Table

from polku.storage.metadata import OffsetType, metadata

__all__ = ["console_login_failures", "console_sessions", "console_user_stores", "console_users"]

console_users = Table(
    "console_users",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("workspace_id", String(64), nullable=False),
    Column("email", String(254), nullable=False, unique=True),  # normalised: lower case
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("locale", String(8), nullable=True),  # None: the browser's Accept-Language
    Column("active", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

console_user_stores = Table(
    "console_user_stores",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("location_id", String(100), primary_key=True),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    Index("ix_console_sessions_user", "user_id"),
)

console_login_failures = Table(
    "console_login_failures",
    metadata,
    Column("failure_id", OffsetType, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_console_login_failures_email_at", "email", "at"),
)
