"""commerce: locations (with their weekly opening hours) and their dated exceptions

Revision ID: 0004_locations
Revises: 0002
Create Date: 2026-12-01 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_locations"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "locations",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("postal_code", sa.String(length=16), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=False),
        sa.Column("longitude", sa.Double(), nullable=False),
        sa.Column("coordinates_source", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("weekly_hours", sa.Text(), nullable=False),
        sa.Column("click_and_collect", sa.Boolean(), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "location_id", name=op.f("pk_locations")),
    )
    op.create_index(
        "ix_locations_postal_code", "locations", ["workspace_id", "postal_code"], unique=False
    )
    op.create_table(
        "location_exceptions",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("intervals", sa.Text(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id", "location_id"],
            ["locations.workspace_id", "locations.location_id"],
            name=op.f("fk_location_exceptions_workspace_id_locations"),
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "location_id", "day", name=op.f("pk_location_exceptions")
        ),
    )


def downgrade() -> None:
    op.drop_table("location_exceptions")
    op.drop_index("ix_locations_postal_code", table_name="locations")
    op.drop_table("locations")
