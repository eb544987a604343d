"""commerce: carts (owners, lines, the ledger of changes)

Revision ID: 0006_carts
Revises: 0002
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_carts"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cart_owners",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=330), nullable=False),
        sa.Column("cart_id", sa.String(length=40), nullable=False),
        sa.Column("id_type", sa.String(length=64), nullable=True),
        sa.Column("id_value", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "owner", name=op.f("pk_cart_owners")),
    )
    op.create_index(
        "ix_cart_owners_identifier", "cart_owners", ["workspace_id", "id_type", "id_value"]
    )
    op.create_table(
        "cart_lines",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=330), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("added_price_minor", sa.BigInteger(), nullable=True),
        sa.Column("added_currency", sa.String(length=3), nullable=True),
        sa.Column("price_at", sa.BigInteger(), nullable=False),
        sa.Column("added_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "owner", "sku", name=op.f("pk_cart_lines")),
    )
    op.create_table(
        "cart_changes",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=330), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "message_id", name=op.f("pk_cart_changes")),
    )
    op.create_index("ix_cart_changes_owner", "cart_changes", ["workspace_id", "owner"])


def downgrade() -> None:
    op.drop_index("ix_cart_changes_owner", table_name="cart_changes")
    op.drop_table("cart_changes")
    op.drop_table("cart_lines")
    op.drop_index("ix_cart_owners_identifier", table_name="cart_owners")
    op.drop_table("cart_owners")
