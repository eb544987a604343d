"""journeys: versions, states, settings, enrollments with timers, the sends ledger, the trace

Revision ID: 0014_journeys
Revises: 0013_identity_members_index
Create Date: 2026-12-02 06:08:29.386812
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_journeys"
down_revision = "0013_identity_members_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journey_enrollments",
        sa.Column("enrollment_id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("journey_key", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step_id", sa.String(length=80), nullable=True),
        sa.Column("waiting", sa.String(length=16), nullable=True),
        sa.Column("due_at", sa.BigInteger(), nullable=True),
        sa.Column("entered_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("end_reason", sa.String(length=60), nullable=True),
        sa.Column("goal_at", sa.BigInteger(), nullable=True),
        sa.Column("revenue", sa.BigInteger(), nullable=True),
        sa.Column("trigger_id", sa.String(length=200), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("enrollment_id", name=op.f("pk_journey_enrollments")),
    )
    with op.batch_alter_table("journey_enrollments", schema=None) as batch_op:
        batch_op.create_index("ix_journey_enrollments_due", ["status", "due_at"], unique=False)
        batch_op.create_index(
            "ix_journey_enrollments_journey",
            ["workspace_id", "journey_key", "entered_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_journey_enrollments_profile", ["workspace_id", "profile_id", "status"], unique=False
        )

    op.create_table(
        "journey_sends",
        sa.Column("send_id", sa.String(length=120), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("enrollment_id", sa.String(length=64), nullable=False),
        sa.Column("journey_key", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(length=80), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=True),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=True),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("marketing", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("send_id", name=op.f("pk_journey_sends")),
    )
    with op.batch_alter_table("journey_sends", schema=None) as batch_op:
        batch_op.create_index("ix_journey_sends_due", ["status", "due_at"], unique=False)
        batch_op.create_index("ix_journey_sends_enrollment", ["enrollment_id"], unique=False)
        batch_op.create_index(
            "ix_journey_sends_profile",
            ["workspace_id", "profile_id", "channel", "sent_at"],
            unique=False,
        )

    op.create_table(
        "journey_settings",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_journey_settings")),
    )
    op.create_table(
        "journey_states",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("journey_key", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "journey_key", name=op.f("pk_journey_states")),
    )
    op.create_table(
        "journey_trace",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("journey_key", sa.String(length=80), nullable=False),
        sa.Column("enrollment_id", sa.String(length=64), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("step_id", sa.String(length=80), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("outcome", sa.String(length=60), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_trace")),
    )
    with op.batch_alter_table("journey_trace", schema=None) as batch_op:
        batch_op.create_index(
            "ix_journey_trace_profile",
            ["workspace_id", "profile_id", "journey_key", "id"],
            unique=False,
        )

    op.create_table(
        "journey_versions",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("journey_key", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "journey_key", "version", name=op.f("pk_journey_versions")
        ),
    )

    op.create_table(
        "journey_segments",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("segment_key", sa.String(length=80), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "segment_key", name=op.f("pk_journey_segments")),
    )
    op.create_table(
        "journey_segment_members",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("segment_key", sa.String(length=80), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("entered_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "segment_key", "profile_id", name=op.f("pk_journey_segment_members")
        ),
    )
    op.create_index(
        "ix_journey_segment_members_profile",
        "journey_segment_members",
        ["workspace_id", "profile_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_journey_segment_members_profile", table_name="journey_segment_members")
    op.drop_table("journey_segment_members")
    op.drop_table("journey_segments")
    op.drop_table("journey_versions")
    with op.batch_alter_table("journey_trace", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_trace_profile")

    op.drop_table("journey_trace")
    op.drop_table("journey_states")
    op.drop_table("journey_settings")
    with op.batch_alter_table("journey_sends", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_sends_profile")
        batch_op.drop_index("ix_journey_sends_enrollment")
        batch_op.drop_index("ix_journey_sends_due")

    op.drop_table("journey_sends")
    with op.batch_alter_table("journey_enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_enrollments_profile")
        batch_op.drop_index("ix_journey_enrollments_journey")
        batch_op.drop_index("ix_journey_enrollments_due")

    op.drop_table("journey_enrollments")
