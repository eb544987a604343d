"""Checkpoints: how far each consumer (per partition, in the production mode) has got.

A checkpoint moves in the same transaction as the consumer's writes, after `claim` has read
it again under a lock, so a batch is applied exactly once however often it is delivered and
however many workers race for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Connection, select, text
from sqlalchemy.dialects import postgresql, sqlite

from polku.events import LoggedEvent
from polku.log.tables import checkpoints
from polku.storage.bulk import fetch_in

__all__ = ["claim", "read", "read_many", "scoped", "write", "write_many"]


def scoped(consumer: str, partition: int | None) -> str:
    """The checkpoint name of `consumer` on one partition (``identity.p3``), or overall."""
    return consumer if partition is None else f"{consumer}.p{partition}"


def read(conn: Connection, name: str) -> int:
    value = conn.execute(select(checkpoints.c.offset).where(checkpoints.c.consumer == name))
    return int(value.scalar() or 0)


def read_many(conn: Connection, names: Iterable[str]) -> dict[str, int]:
    """Checkpoints by name; a consumer that never ran stands at 0."""
    wanted = list(names)
    if not wanted:
        return {}
    rows = fetch_in(conn, _READ_MANY, wanted)  # plain SQL: the pipeline asks every cycle
    found = {name: int(offset) for name, offset in rows}
    return {name: found.get(name, 0) for name in wanted}


_READ_MANY = 'SELECT consumer, "offset" FROM log_checkpoints WHERE consumer IN (?*)'
_WRITE_MANY = (
    'INSERT INTO log_checkpoints (consumer, "offset") VALUES (?, ?) '
    'ON CONFLICT (consumer) DO UPDATE SET "offset" = excluded."offset"'
)


def write_many(conn: Connection, offsets: Mapping[str, int]) -> None:
    """Move several checkpoints in one statement (the embedded cycle's, at its commit)."""
    if offsets:
        sql = _WRITE_MANY if conn.dialect.paramstyle == "qmark" else _WRITE_MANY.replace("?", "%s")
        conn.exec_driver_sql(sql, list(offsets.items()))


def write(conn: Connection, name: str, offset: int) -> None:
    values = {"consumer": name, "offset": offset}
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(checkpoints).values(values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["consumer"], set_=values))
    else:
        stmt2 = sqlite.insert(checkpoints).values(values)
        conn.execute(stmt2.on_conflict_do_update(index_elements=["consumer"], set_=values))


def claim(conn: Connection, name: str, events: Sequence[LoggedEvent]) -> list[LoggedEvent]:
    """The events still to process, checked inside the transaction that will move the
    checkpoint, so that two workers running the same consumer never both apply an event.

    On PostgreSQL a transaction-level advisory lock per checkpoint makes the second worker
    wait for the first one's commit; SQLite's ``BEGIN IMMEDIATE`` (see
    `polku.storage.engine.writing`) already admits one writer at a time.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(name)})
    done = read(conn, name)
    return [e for e in events if e.offset > done]


def _lock_key(name: str) -> int:
    """The PostgreSQL advisory lock key of one checkpoint: a signed 64-bit hash of its name."""
    digest = hashlib.blake2b(f"polku.pipeline\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
