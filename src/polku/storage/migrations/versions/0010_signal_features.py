"""signals: the features' state per profile, page statistics and idle-cart timers

Revision ID: 0010_signal_features
Revises: 0011_signal_routing, 0012_recommend (both revise 0009_merge; this joins them)
Create Date: 2026-12-01 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_signal_features"
down_revision = ("0011_signal_routing", "0012_recommend")  # joins the two lines from 0009
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_people",
        sa.Column("key", sa.String(length=140), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("person", sa.LargeBinary(), nullable=False),
        sa.Column("session", sa.LargeBinary(), nullable=True),
        sa.Column("memory", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "signal_pages",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("page", sa.String(length=300), nullable=False),
        sa.Column("entrances", sa.BigInteger(), nullable=False),
        sa.Column("bounces", sa.BigInteger(), nullable=False),
        sa.Column("views", sa.BigInteger(), nullable=False),
        sa.Column("exits", sa.BigInteger(), nullable=False),
        sa.Column("unique_views", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "page"),
    )
    op.create_table(
        "signal_timers",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "profile_id", "rule"),
    )
    op.create_index("signal_timers_due", "signal_timers", ["workspace_id", "due_at"])


def downgrade() -> None:
    op.drop_index("signal_timers_due", table_name="signal_timers")
    op.drop_table("signal_timers")
    op.drop_table("signal_pages")
    op.drop_table("signal_people")
