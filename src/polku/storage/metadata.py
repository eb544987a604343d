"""The one `MetaData` every domain's `tables.py` declares its tables on, and portable types."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

__all__ = ["OffsetType", "metadata"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

OffsetType = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit integer key; plain INTEGER on SQLite so a primary key becomes the rowid."""
