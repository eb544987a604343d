"""commerce: orders from every channel, their lines and changes

Revision ID: 0007_orders
Revises: 0002
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_orders"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("store_id", sa.String(length=100), nullable=True),
        sa.Column("receipt_id", sa.String(length=200), nullable=True),
        sa.Column("placed_at", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("total", sa.String(length=40), nullable=True),
        sa.Column("payment_method", sa.String(length=200), nullable=True),
        sa.Column("shipping_method", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "order_id", name=op.f("pk_orders")),
    )
    op.create_index("ix_orders_offset", "orders", ["offset"])
    op.create_index("ix_orders_receipt", "orders", ["workspace_id", "store_id", "receipt_id"])
    op.create_table(
        "order_lines",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=True),
        sa.Column("product_id", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "order_id", "line", name=op.f("pk_order_lines")),
    )
    op.create_table(
        "order_changes",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.String(length=40), nullable=True),
        sa.Column("lines", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "message_id", name=op.f("pk_order_changes")),
    )
    op.create_index("ix_order_changes_order", "order_changes", ["workspace_id", "order_id"])


def downgrade() -> None:
    op.drop_index("ix_order_changes_order", table_name="order_changes")
    op.drop_table("order_changes")
    op.drop_table("order_lines")
    op.drop_index("ix_orders_receipt", table_name="orders")
    op.drop_index("ix_orders_offset", table_name="orders")
    op.drop_table("orders")
