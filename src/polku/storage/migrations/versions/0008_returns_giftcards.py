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
    op.create_table(
        "return_policies",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("default_window_days", sa.Integer(), nullable=False),
        sa.Column("outlet_discount_percent", sa.Integer(), nullable=False),
        sa.Column("gift_card_bonus_percent", sa.Integer(), nullable=False),
        sa.Column("gift_card_validity_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_return_policies")),
    )
    op.create_table(
        "return_windows",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=500), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "category", name=op.f("pk_return_windows")),
    )
    op.create_table(
        "returns",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("return_id", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=300), nullable=True),
        sa.Column("anonymous_id", sa.String(length=300), nullable=True),
        sa.Column("partition_key", sa.String(length=300), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("return_method", sa.String(length=16), nullable=True),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=True),
        sa.Column("inspected_at", sa.BigInteger(), nullable=True),
        sa.Column("refunded_at", sa.BigInteger(), nullable=True),
        sa.Column("cancelled_at", sa.BigInteger(), nullable=True),
        sa.Column("location_id", sa.String(length=100), nullable=True),
        sa.Column("refund_method", sa.String(length=32), nullable=True),
        sa.Column("refund_minor", sa.BigInteger(), nullable=True),
        sa.Column("giftcard_id", sa.String(length=64), nullable=True),
        sa.Column("refund_message_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "return_id", name=op.f("pk_returns")),
    )
    op.create_index("ix_returns_order", "returns", ["workspace_id", "order_id"])
    op.create_index("ix_returns_status", "returns", ["workspace_id", "status", "requested_at"])
    op.create_table(
        "return_lines",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("return_id", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("unit_paid_minor", sa.BigInteger(), nullable=True),
        sa.Column("return_by", sa.BigInteger(), nullable=False),
        sa.Column("restocked", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("outlet", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("disposed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("condition", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "return_id", "sku", name=op.f("pk_return_lines")),
    )
    op.create_index("ix_return_lines_sku", "return_lines", ["workspace_id", "sku"])
    op.create_index("ix_return_lines_product", "return_lines", ["workspace_id", "product_id"])
    op.create_table(
        "return_history",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("return_id", sa.String(length=200), nullable=True),
        sa.Column("listing_id", sa.String(length=200), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "message_id", name=op.f("pk_return_history")),
    )
    op.create_index(
        "ix_return_history_return", "return_history", ["workspace_id", "return_id", "seq"]
    )
    op.create_table(
        "outlet_listings",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("listing_id", sa.String(length=200), nullable=False),
        sa.Column("return_id", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("location_id", sa.String(length=100), nullable=False),
        sa.Column("condition", sa.String(length=500), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("original_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_percent", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("listed_at", sa.BigInteger(), nullable=False),
        sa.Column("reserved_until", sa.BigInteger(), nullable=True),
        sa.Column("reserved_user_id", sa.String(length=300), nullable=True),
        sa.Column("reserved_anonymous_id", sa.String(length=300), nullable=True),
        sa.Column("sold_at", sa.BigInteger(), nullable=True),
        sa.Column("receipt_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "listing_id", name=op.f("pk_outlet_listings")),
    )
    op.create_index(
        "ix_outlet_listings_store", "outlet_listings", ["workspace_id", "location_id", "status"]
    )
    op.create_index("ix_outlet_listings_sku", "outlet_listings", ["workspace_id", "sku"])


def downgrade() -> None:
    op.drop_index("ix_outlet_listings_sku", table_name="outlet_listings")
    op.drop_index("ix_outlet_listings_store", table_name="outlet_listings")
    op.drop_table("outlet_listings")
    op.drop_index("ix_return_history_return", table_name="return_history")
    op.drop_table("return_history")
    op.drop_index("ix_return_lines_product", table_name="return_lines")
    op.drop_index("ix_return_lines_sku", table_name="return_lines")
    op.drop_table("return_lines")
    op.drop_index("ix_returns_status", table_name="returns")
    op.drop_index("ix_returns_order", table_name="returns")
    op.drop_table("returns")
    op.drop_table("return_windows")
    op.drop_table("return_policies")
    op.drop_index("ix_giftcard_entries_card", table_name="giftcard_entries")
    op.drop_table("giftcard_entries")
    op.drop_index("ix_giftcards_owner", table_name="giftcards")
    op.drop_index("ix_giftcards_due", table_name="giftcards")
    op.drop_index("uq_giftcards_code", table_name="giftcards")
    op.drop_table("giftcards")
