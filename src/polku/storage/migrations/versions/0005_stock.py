"""commerce: stock levels, movements and reservations

Revision ID: 0005_stock
Revises: 0002
Create Date: 2026-12-01 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_stock"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_levels",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("reserved", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "location_id", "sku", name=op.f("pk_stock_levels")),
    )
    op.create_index("ix_stock_levels_sku", "stock_levels", ["workspace_id", "sku"])
    op.create_table(
        "stock_movements",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("movement_id", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("location_id", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("on_hand_delta", sa.Integer(), nullable=False),
        sa.Column("reserved_delta", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "movement_id", "line", name=op.f("pk_stock_movements")
        ),
    )
    op.create_index(
        "ix_stock_movements_sku_at",
        "stock_movements",
        ["workspace_id", "sku", "location_id", "at"],
    )
    op.create_table(
        "stock_reservations",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("reservation_id", sa.String(length=200), nullable=False),
        sa.Column("location_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=300), nullable=True),
        sa.Column("anonymous_id", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("ready_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("close_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint(
            "workspace_id", "reservation_id", name=op.f("pk_stock_reservations")
        ),
    )
    op.create_index("ix_stock_reservations_due", "stock_reservations", ["status", "expires_at"])
    op.create_table(
        "stock_reservation_lines",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("reservation_id", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "reservation_id", "sku", name=op.f("pk_stock_reservation_lines")
        ),
    )


def downgrade() -> None:
    op.drop_table("stock_reservation_lines")
    op.drop_index("ix_stock_reservations_due", table_name="stock_reservations")
    op.drop_table("stock_reservations")
    op.drop_index("ix_stock_movements_sku_at", table_name="stock_movements")
    op.drop_table("stock_movements")
    op.drop_index("ix_stock_levels_sku", table_name="stock_levels")
    op.drop_table("stock_levels")
