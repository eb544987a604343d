"""production mode: log partitions, partition leases, workers, the outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("log_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("partition", sa.Integer(), nullable=False, server_default="0")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_log_events_partition_offset", "log_events", ["partition", "offset"], unique=False
        )
    op.create_table(
        "pipeline_leases",
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("expires_at", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("partition", name=op.f("pk_pipeline_leases")),
    )
    op.create_table(
        "pipeline_workers",
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("partitions", sa.String(length=2000), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_pipeline_workers")),
    )
    op.create_table(
        "log_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=True),
        sa.Column("partition_key", sa.String(length=300), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_outbox")),
    )
    op.create_index("ix_log_outbox_partition_id", "log_outbox", ["partition", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_log_outbox_partition_id", table_name="log_outbox")
    op.drop_table("log_outbox")
    op.drop_table("pipeline_workers")
    op.drop_table("pipeline_leases")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_log_events_partition_offset", table_name="log_events")
    with op.batch_alter_table("log_events", schema=None) as batch_op:
        batch_op.drop_column("partition")
