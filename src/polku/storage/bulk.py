"""Fast multi-row statements for the hot paths (log appends and reads, projections).

SQLAlchemy Core builds a parameter dictionary per row and compiles (or looks up) every
statement with its expanded ``IN`` lists; at tens of thousands of rows a second that costs
more than the database itself. These helpers hand tuples straight to the driver with SQL
rendered once per table, columns and dialect; errors still pass through SQLAlchemy, so
callers see its exceptions (and `translate_errors` turns outages into `Unavailable`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect

__all__ = ["fetch_in", "fetch_rows", "insert_rows", "update_rows"]


@functools.lru_cache(maxsize=256)
def _native(dialect: Dialect, sql: str, in_size: int) -> str:
    """`sql` in the driver's parameter style, its ``(?*)`` (if any) expanded to `in_size`
    markers. Hot-path SQL is written with ``?`` markers and has no literal ``?`` or ``%``."""
    if in_size:
        sql = sql.replace("(?*)", "(" + ", ".join(["?"] * in_size) + ")")
    return sql if dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def fetch_rows(conn: Connection, sql: str, params: Sequence[Any] = ()) -> Sequence[Any]:
    """All rows of `sql` (``?`` markers), as tuple-like rows."""
    return conn.exec_driver_sql(_native(conn.dialect, sql, 0), tuple(params)).all()


def fetch_in(
    conn: Connection,
    sql: str,
    values: Sequence[Any],
    params: Sequence[Any] = (),
    *,
    chunk: int = 500,
) -> list[Any]:
    """Rows of `sql` for every value of `values`, where `sql` has one ``IN (?*)`` list that
    takes them after the fixed `params`; split into statements of at most `chunk` values."""
    found: list[Any] = []
    dialect = conn.dialect
    for start in range(0, len(values), chunk):
        part = list(values[start : start + chunk])
        # Pad the list to a power of two (repeating a value changes nothing in an IN list),
        # so a handful of statement shapes serve every size and stay in the drivers' caches.
        size = min(chunk, 1 << (len(part) - 1).bit_length())
        part.extend([part[-1]] * (size - len(part)))
        native = _native(dialect, sql, size)
        found.extend(conn.exec_driver_sql(native, (*params, *part)).all())
    return found


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
