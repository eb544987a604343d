"""collect: keep the hint of a rejection (what to do) beside its code, field and message

Revision ID: 0017_dead_letter_hints
Revises: 0016_interactions_by_product
Create Date: 2026-12-02 19:00:00

Why: the error answered to the client says what to do (`hint`), but the dead-letter store
kept only code, field and message, so the debugger could not show the same advice later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_dead_letter_hints"
down_revision = "0016_interactions_by_product"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("hint", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("hint")
