"""Stores and warehouses, their weekly opening hours and their dated exceptions."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Double,
    ForeignKeyConstraint,
    Index,
    String,
    Table,
    Text,
)

from polku.storage.metadata import metadata

__all__ = ["exceptions", "locations"]

locations = Table(
    "locations",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("location_id", String(100), primary_key=True),  # the retailer's own id, e.g. HEL-01
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # store | warehouse
    Column("address", Text, nullable=False, default="[]"),  # JSON list of address lines
    Column("postal_code", String(16), nullable=False),  # normalised (geo.normalise_postal_code)
    Column("city", String(100), nullable=False),
    Column("country", String(2), nullable=False),  # ISO 3166-1 alpha-2
    Column("latitude", Double, nullable=False),  # WGS84 degrees
    Column("longitude", Double, nullable=False),
    # "given", or "postal_code" when placed at the postal code's point for want of coordinates
    Column("coordinates_source", String(16), nullable=False),
    Column("timezone", String(64), nullable=False),  # IANA name
    # The weekly opening hours, always read and written whole: JSON, seven lists (Monday
    # first) of [opens, closes] in minutes from the day's local midnight, 0 <= opens < 1440,
    # opens < closes <= opens + 1440 (past 1440: into the next day; 22:00-02:00 is
    # [1320, 1560]). One column, so fifty locations' weeks are fifty rows, not a join.
    Column("weekly_hours", Text, nullable=False, default="[[],[],[],[],[],[],[]]"),
    Column("click_and_collect", Boolean, nullable=False),
    Column("phone", String(40), nullable=True),  # E.164
    Column("email", String(254), nullable=True),
    Column("active", Boolean, nullable=False),  # false: closed for good (kept for history)
    Column("created_at", BigInteger, nullable=False),  # epoch ms
    Column("updated_at", BigInteger, nullable=False),
)
Index("ix_locations_postal_code", locations.c.workspace_id, locations.c.postal_code)

exceptions = Table(
    "location_exceptions",
    metadata,
    # The hours of one date instead of its weekday's: a holiday, Christmas Eve's early close.
    Column("workspace_id", String(64), primary_key=True),
    Column("location_id", String(100), primary_key=True),
    Column("day", Date, primary_key=True),  # the local date
    Column("intervals", Text, nullable=False),  # JSON [[opens, closes], ...]; [] = closed
    Column("note", String(200), nullable=True),  # e.g. "Christmas Eve"
    ForeignKeyConstraint(
        ["workspace_id", "location_id"], ["locations.workspace_id", "locations.location_id"]
    ),
)
