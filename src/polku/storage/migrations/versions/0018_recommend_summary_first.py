"""recommend: on SQLite, store the models' summary before their payload

Revision ID: 0018_recommend_summary_first
Revises: 0017_dead_letter_hints
Create Date: 2026-12-03 07:20:00

Why: `GET /v1/recommendations/status` reads `summary`, which stood after the ~80 MB
`payload` of a large catalogue. SQLite keeps a row's columns in order, so reaching the
summary walked the blob's overflow pages (~26 ms per request at 50,000 items). The table is
rebuilt with the summary first. PostgreSQL stores a large bytea out of line (TOAST), so the
order costs it nothing and it is left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_recommend_summary_first"
down_revision = "0017_dead_letter_hints"
branch_labels = None
depends_on = None

_KEEP = "workspace_id, version, trained_at"


def _rebuild(order: tuple[str, str]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    columns: dict[str, sa.Column[object]] = {
        "summary": sa.Column("summary", sa.Text(), nullable=False),
        "payload": sa.Column("payload", sa.LargeBinary(), nullable=False),
    }
    op.create_table(
        "_recommend_models_rebuilt",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("trained_at", sa.BigInteger(), nullable=False),
        *(columns[name] for name in order),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_recommend_models")),
    )
    names = f"{_KEEP}, {order[0]}, {order[1]}"
    op.execute(
        sa.text(
            f"INSERT INTO _recommend_models_rebuilt ({names}) SELECT {names} FROM recommend_models"
        )
    )
    op.drop_table("recommend_models")
    op.rename_table("_recommend_models_rebuilt", "recommend_models")


def upgrade() -> None:
    _rebuild(("summary", "payload"))


def downgrade() -> None:
    _rebuild(("payload", "summary"))
