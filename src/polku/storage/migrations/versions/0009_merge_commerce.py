"""merge the foundation and commerce branches into one line

Revision ID: 0009_merge
Revises: 0002b, 0003_catalog, 0004_locations, 0005_stock, 0006_carts, 0007_orders,
    0008_returns_giftcards
Create Date: 2026-12-01 22:20:00

Every commerce migration branched from 0002; later work revises this one instead.
"""

from __future__ import annotations

revision = "0009_merge"
down_revision = (
    "0002b",
    "0003_catalog",
    "0004_locations",
    "0005_stock",
    "0006_carts",
    "0007_orders",
    "0008_returns_giftcards",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
