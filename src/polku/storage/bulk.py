"""Fast multi-row inserts for the hot paths (log appends, projections).

SQLAlchemy Core builds a parameter dictionary per row; at tens of thousands of rows a second
that costs more than the database itself. These helpers hand tuples straight to the driver's
``executemany`` with SQL rendered once per table, columns and dialect.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect

__all__ = ["insert_rows", "update_rows"]


@functools.lru_cache(maxsize=256)
def _insert_sql(dialect: Dialect, table: Table, columns: tuple[str, ...], ignore: str) -> str:
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    values = ", ".join([marker] * len(columns))
    head = "INSERT OR IGNORE INTO" if ignore and dialect.name == "sqlite" else "INSERT INTO"
    sql = f"{head} {quote(table.name)} ({names}) VALUES ({values})"
    if ignore and dialect.name == "postgresql":
        sql += f" ON CONFLICT ({ignore}) DO NOTHING"
    return sql


def insert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts_on: Sequence[str] = (),
) -> None:
    """Insert `rows` (tuples in `columns` order); with `ignore_conflicts_on`, rows that clash
    with that unique key are skipped (deduplication)."""
    if not rows:
        return
    dialect = conn.dialect
    ignore = ", ".join(dialect.identifier_preparer.quote(c) for c in ignore_conflicts_on)
    sql = _insert_sql(dialect, table, tuple(columns), ignore)
    conn.exec_driver_sql(sql, list(rows))


@functools.lru_cache(maxsize=256)
def _update_sql(dialect: Dialect, table: Table, columns: tuple[str, ...], key: str) -> str:
    quote = dialect.identifier_preparer.quote
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    assignments = ", ".join(f"{quote(c)} = {marker}" for c in columns)
    return f"UPDATE {quote(table.name)} SET {assignments} WHERE {quote(key)} = {marker}"


def update_rows(
    conn: Connection,
    table: Table,
    key: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Update one row per tuple: the tuple holds `columns` values, then the `key` value."""
    if not rows:
        return
    conn.exec_driver_sql(_update_sql(conn.dialect, table, tuple(columns), key), list(rows))
