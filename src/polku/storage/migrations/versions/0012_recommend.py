"""recommend: interactions, live session transitions, visitors' last items, trained models

Revision ID: 0012_recommend
Revises: 0010_signal_features (one line of history)
Create Date: 2026-12-01 22:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_recommend"
down_revision = "0010_signal_features"
branch_labels = None
depends_on = None

_OFFSET = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recommend_interactions",
        sa.Column("offset", _OFFSET, autoincrement=False, nullable=False),
        sa.Column("line", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("store_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("offset", "line", name=op.f("pk_recommend_interactions")),
    )
    op.create_index(
        "ix_recommend_interactions_workspace",
        "recommend_interactions",
        ["workspace_id", "offset"],
    )
    op.create_table(
        "recommend_transitions",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("next_id", sa.String(length=200), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "product_id", "next_id", name=op.f("pk_recommend_transitions")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "recommend_visitors",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("visitor", sa.String(length=300), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "visitor", name=op.f("pk_recommend_visitors")),
    )
    op.create_table(
        "recommend_models",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("trained_at", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_recommend_models")),
    )


def downgrade() -> None:
    op.drop_table("recommend_models")
    op.drop_table("recommend_visitors")
    op.drop_table("recommend_transitions")
    op.drop_index("ix_recommend_interactions_workspace", table_name="recommend_interactions")
    op.drop_table("recommend_interactions")
