"""SQLite: the log moves to a file of its own (polku-log.db beside polku.db)

Why: SQLite has one writer per file; see `polku.storage.engine`. The state database attaches
the log file read-only as schema ``log``, so unqualified ``log_events`` still names the log
once the table has left the state file. PostgreSQL (and an in-memory SQLite) keep the log
where it is: nothing to do.

The rows are copied into the log file in its own transactions (``INSERT OR IGNORE`` on the
offset, so a migration interrupted after the copy simply copies again), then the table is
dropped from the state file in the migration's transaction.

Revision ID: 0002b
Revises: 0002
Create Date: 2026-12-01 19:20:00
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from polku.storage.engine import log_file

revision = "0002b"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = (
    '"offset", workspace_id, source_id, message_id, type, event, partition_key, '
    'received_at, "timestamp", payload, partition'
)
_CREATE = (
    "CREATE TABLE IF NOT EXISTS log_events ("
    '"offset" INTEGER NOT NULL, '
    "workspace_id VARCHAR(64) NOT NULL, "
    "source_id VARCHAR(64) NOT NULL, "
    "message_id VARCHAR(200) NOT NULL, "
    "type VARCHAR(32) NOT NULL, "
    "event VARCHAR(200), "
    "partition_key VARCHAR(300) NOT NULL, "
    "received_at BIGINT NOT NULL, "
    '"timestamp" BIGINT NOT NULL, '
    "payload BLOB NOT NULL, "
    "partition INTEGER NOT NULL DEFAULT 0, "
    'CONSTRAINT pk_log_events PRIMARY KEY ("offset"), '
    "CONSTRAINT uq_log_events_workspace_id_message_id UNIQUE (workspace_id, message_id))"
)
_INDEX = "CREATE INDEX IF NOT EXISTS ix_log_events_received_at ON log_events (received_at)"
_COPY_BATCH = 10_000


def _log_path() -> Path | None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    return log_file(bind.engine.url.database)


def _in_state_file(table: str) -> bool:
    found = op.get_bind().exec_driver_sql(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?", (table,)
    )
    return found.first() is not None


def upgrade() -> None:
    path = _log_path()
    if path is None:
        return
    target = sqlite3.connect(path, isolation_level=None)
    try:
        target.execute("PRAGMA journal_mode=WAL")
        target.execute("PRAGMA synchronous=FULL")
        target.execute(_CREATE)
        target.execute(_INDEX)
        if _in_state_file("log_events"):
            rows = op.get_bind().exec_driver_sql(
                f'SELECT {_COLUMNS} FROM main.log_events ORDER BY "offset"'
            )
            while batch := rows.fetchmany(_COPY_BATCH):
                target.execute("BEGIN IMMEDIATE")
                target.executemany(
                    f"INSERT OR IGNORE INTO log_events ({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [tuple(row) for row in batch],
                )
                target.execute("COMMIT")
    finally:
        target.close()
    if _in_state_file("log_events"):
        op.execute(sa.text("DROP INDEX IF EXISTS main.ix_log_events_received_at"))
        op.execute(sa.text("DROP TABLE main.log_events"))


def downgrade() -> None:
    path = _log_path()
    if path is None or _in_state_file("log_events"):
        return
    bind = op.get_bind()
    bind.exec_driver_sql(
        _CREATE.replace("IF NOT EXISTS log_events", "IF NOT EXISTS main.log_events")
    )
    bind.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS main.ix_log_events_received_at ON log_events (received_at)"
    )
    # The attached log (read-only) still holds the rows; the state file's table now shadows it.
    bind.exec_driver_sql(
        f"INSERT INTO main.log_events ({_COLUMNS}) SELECT {_COLUMNS} FROM log.log_events"
    )
