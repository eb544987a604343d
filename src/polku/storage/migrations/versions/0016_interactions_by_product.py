"""recommend: look interactions up by product (who viewed it lately)

Revision ID: 0016_interactions_by_product
Revises: 0015_console_users
Create Date: 2026-12-02 08:00:00

Why: the journeys' back-in-stock and price-drop triggers ask, for each restocked or cheaper
product, who viewed or carted it in the last 30 days. Without an index that read scanned
every interaction of the workspace on every stock movement.
"""

from __future__ import annotations

from alembic import op

revision = "0016_interactions_by_product"
down_revision = "0015_console_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_recommend_interactions_product",
        "recommend_interactions",
        ["workspace_id", "product_id", "at"],
    )


def downgrade() -> None:
    op.drop_index("ix_recommend_interactions_product", table_name="recommend_interactions")
