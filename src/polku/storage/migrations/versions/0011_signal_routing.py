"""signals: routed signals, their queues, claims, outcomes, routing configs and webhooks

Revision ID: 0011_signal_routing
Revises: 0009_merge
Create Date: 2026-12-01 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_signal_routing"
down_revision = "0009_merge"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("products", sa.Text(), nullable=False),
        sa.Column("store_id", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("session_id", sa.String(length=200), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint(
            "workspace_id", "dedupe_key", name=op.f("uq_signals_workspace_id_dedupe_key")
        ),
    )
    op.create_index("ix_signals_profile", "signals", ["workspace_id", "profile_id", "at"])
    op.create_index("ix_signals_created", "signals", ["created_at"])
    op.create_table(
        "signal_routes",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("signal_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("queue", sa.String(length=120), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "signal_id", "queue", name=op.f("pk_signal_routes")
        ),
    )
    op.create_index(
        "ix_signal_routes_queue", "signal_routes", ["workspace_id", "queue", "signal_id"]
    )
    op.create_table(
        "signal_claims",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("signal_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("claim", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=100), nullable=False),
        sa.Column("claimed_at", sa.BigInteger(), nullable=False),
        sa.Column("released_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint(
            "workspace_id", "signal_id", "claim", name=op.f("pk_signal_claims")
        ),
    )
    op.create_index("ix_signal_claims_profile", "signal_claims", ["workspace_id", "profile_id"])
    op.create_table(
        "signal_outcomes",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("signal_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.String(length=100), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "signal_id", "seq", name=op.f("pk_signal_outcomes")
        ),
    )
    op.create_table(
        "signal_routing_configs",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_signal_routing_configs")),
    )
    op.create_table(
        "signal_webhooks",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("queues", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "endpoint_id", name=op.f("pk_signal_webhooks")),
    )
    op.create_table(
        "signal_deliveries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("signal_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_deliveries")),
        sa.UniqueConstraint(
            "endpoint_id", "signal_id", name=op.f("uq_signal_deliveries_endpoint_id_signal_id")
        ),
    )
    op.create_index("ix_signal_deliveries_due", "signal_deliveries", ["status", "due_at"])
    op.create_table(
        "signal_delivery_attempts",
        sa.Column("delivery_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("attempt", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", "attempt", name=op.f("pk_signal_delivery_attempts")),
    )


def downgrade() -> None:
    op.drop_table("signal_delivery_attempts")
    op.drop_index("ix_signal_deliveries_due", table_name="signal_deliveries")
    op.drop_table("signal_deliveries")
    op.drop_table("signal_webhooks")
    op.drop_table("signal_routing_configs")
    op.drop_table("signal_outcomes")
    op.drop_index("ix_signal_claims_profile", table_name="signal_claims")
    op.drop_table("signal_claims")
    op.drop_index("ix_signal_routes_queue", table_name="signal_routes")
    op.drop_table("signal_routes")
    op.drop_index("ix_signals_created", table_name="signals")
    op.drop_index("ix_signals_profile", table_name="signals")
    op.drop_table("signals")
