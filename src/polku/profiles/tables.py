"""One row per profile: traits with their times, consent, counters, and search columns."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from polku.storage.metadata import metadata

__all__ = ["profiles"]

profiles = Table(
    "profiles",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("workspace_id", String(64), nullable=False),
    Column("merged_into", String(64), nullable=True),
    # JSON {trait: value}; trait_times JSON {trait: event time ms} for last-write-wins
    Column("traits", Text, nullable=False, default="{}"),
    Column("trait_times", Text, nullable=False, default="{}"),
    # JSON {purpose: {channel: {"granted": bool, "at": ms, "source": str}}}
    Column("consent", Text, nullable=False, default="{}"),
    # JSON {channel: event count}
    Column("channels", Text, nullable=False, default="{}"),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("event_count", BigInteger, nullable=False, default=0),
    Column("order_count", BigInteger, nullable=False, default=0),
    Column("last_offset", BigInteger, nullable=False, default=0),
    # denormalised for search
    Column("email", String(300), nullable=True),
    Column("phone", String(40), nullable=True),
    Column("name", String(300), nullable=True),
)
Index("ix_profiles_ws_last_seen", profiles.c.workspace_id, profiles.c.last_seen)
Index("ix_profiles_email", profiles.c.email)
Index("ix_profiles_phone", profiles.c.phone)
Index("ix_profiles_name", profiles.c.name)
