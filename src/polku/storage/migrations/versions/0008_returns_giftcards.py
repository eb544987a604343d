"""commerce: returns, outlet listings, gift cards and their ledgers

Revision ID: 0008_returns_giftcards
Revises: 0002
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_returns_giftcards"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "giftcards",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("giftcard_id", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("code_last4", sa.String(length=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.String(length=300), nullable=True),
        sa.Column("anonymous_id", sa.String(length=300), nullable=True),
        sa.Column("partition_key", sa.String(length=300), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=True),
        sa.Column("return_id", sa.String(length=200), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "giftcard_id", name=op.f("pk_giftcards")),
    )
    op.create_index("uq_giftcards_code", "giftcards", ["workspace_id", "code_hash"], unique=True)
    op.create_index("ix_giftcards_due", "giftcards", ["status", "expires_at"])
    op.create_index("ix_giftcards_owner", "giftcards", ["workspace_id", "user_id"])
    op.create_table(
        "giftcard_entries",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.String(length=200), nullable=False),
        sa.Column("giftcard_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("redemption_id", sa.String(length=200), nullable=True),
        sa.Column("order_id", sa.String(length=200), nullable=True),
        sa.Column("store_id", sa.String(length=100), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "entry_id", name=op.f("pk_giftcard_entries")),
    )
    op.create_index(
        "ix_giftcard_entries_card", "giftcard_entries", ["workspace_id", "giftcard_id", "seq"]
    )


def downgrade() -> None:
    op.drop_index("ix_giftcard_entries_card", table_name="giftcard_entries")
    op.drop_table("giftcard_entries")
    op.drop_index("ix_giftcards_owner", table_name="giftcards")
    op.drop_index("ix_giftcards_due", table_name="giftcards")
    op.drop_index("uq_giftcards_code", table_name="giftcards")
    op.drop_table("giftcards")
