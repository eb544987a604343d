"""Where the signals consumer keeps the features' state between batches.

* `signal_people`: per profile, its `PersonState`, its current `SessionState` and its rules'
  hysteresis memory, as compact JSON (orjson), read for a whole batch in one query and
  written back in one statement;
* `signal_pages`: per workspace and page, the counters behind bounce rate, exit rate and
  page value, only ever changed by increments (``x = x + ?``), which commute, so workers
  on different partitions can add to the same row in any order;
* `signal_timers`: the due time of each idle-cart rule for a person's open cart (a durable
  timer: a row, not a sleeping task), fired when later events of the workspace pass it.

Rows are in a fixed order (sorted keys) whenever several are locked or written at once, so
two workers never wait for each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    delete,
)

from polku.signals.features import PAGE_FIELDS, PageStats, PersonState, SessionState
from polku.signals.rules import Memory, Timer
from polku.storage.bulk import fetch_in, insert_rows, update_rows
from polku.storage.metadata import metadata

__all__ = [
    "Stored",
    "TimerRow",
    "add_pages",
    "due_timers",
    "lock_people",
    "read_pages",
    "read_people",
    "reset",
    "set_timers",
    "signal_pages",
    "signal_people",
    "signal_timers",
    "write_people",
]

signal_people = Table(
    "signal_people",
    metadata,
    Column("key", String(140), primary_key=True),  # "<workspace_id>/<profile_id>"
    Column("workspace_id", String(64), nullable=False),
    Column("person", LargeBinary, nullable=False),  # PersonState.to_bytes()
    Column("session", LargeBinary, nullable=True),  # SessionState.to_bytes()
    Column("memory", LargeBinary, nullable=False),  # {"<rule>|<product>": fired at ms}
    Column("updated_at", BigInteger, nullable=False),  # event time of the last event
)

signal_pages = Table(
    "signal_pages",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("page", String(300), primary_key=True),  # features.page_key
    Column("entrances", BigInteger, nullable=False),
    Column("bounces", BigInteger, nullable=False),
    Column("views", BigInteger, nullable=False),
    Column("exits", BigInteger, nullable=False),
    Column("unique_views", BigInteger, nullable=False),
    Column("value", Double, nullable=False),  # revenue of sessions that bought after it
)

signal_timers = Table(
    "signal_timers",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("profile_id", String(64), primary_key=True),
    Column("rule", String(64), primary_key=True),
    Column("due_at", BigInteger, nullable=False),  # event time, ms
    Column("event_id", String(200), nullable=False),  # the cart event that set it
    Column("offset", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),  # JSON: products, cart value, items, channel
    Index("signal_timers_due", "workspace_id", "due_at"),
)


@dataclass(slots=True)
class Stored:
    """One profile's state as read (or new)."""

    person: PersonState
    session: SessionState | None
    memory: Memory
    exists: bool


def _key(workspace_id: str, profile_id: str) -> str:
    return f"{workspace_id}/{profile_id}"


def read_people(
    conn: Connection, people: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Stored]:
    """The states of `people` ((workspace, profile) pairs); a new state for one not seen."""
    wanted = sorted(set(people))
    keys = [_key(ws, pid) for ws, pid in wanted]
    found: dict[str, Any] = {}
    if keys:
        rows = fetch_in(
            conn,
            'SELECT "key", person, session, memory FROM signal_people WHERE "key" IN (?*)',
            keys,
        )
        found = {row[0]: row for row in rows}
    states: dict[tuple[str, str], Stored] = {}
    for pair, key in zip(wanted, keys, strict=True):
        row = found.get(key)
        if row is None:
            states[pair] = Stored(PersonState(), None, {}, exists=False)
        else:
            session = SessionState.from_bytes(bytes(row[2])) if row[2] is not None else None
            memory = orjson.loads(bytes(row[3]))
            states[pair] = Stored(PersonState.from_bytes(bytes(row[1])), session, memory, True)
    return states


def lock_people(conn: Connection, people: Iterable[tuple[str, str]], at_ms: int) -> None:
    """Make a row for each of `people` and lock them all, in key order (the production mode,
    where several workers may hold events of one profile after a merge)."""
    wanted = sorted({_key(ws, pid): ws for ws, pid in people}.items())
    if not wanted:
        return
    empty = PersonState().to_bytes()
    insert_rows(
        conn,
        signal_people,
        ("key", "workspace_id", "person", "session", "memory", "updated_at"),
        [(key, ws, empty, None, b"{}", at_ms) for key, ws in wanted],
        ignore_conflicts_on=("key",),
    )
    if conn.dialect.name == "postgresql":
        fetch_in(
            conn,
            'SELECT "key" FROM signal_people WHERE "key" IN (?*) ORDER BY "key" FOR UPDATE',
            [key for key, _ in wanted],
            chunk=10_000,
        )


def write_people(
    conn: Connection, states: Mapping[tuple[str, str], Stored], at_ms: Mapping[tuple[str, str], int]
) -> None:
    """Store the changed states of a batch: new rows in one insert, the others in one update."""
    new: list[tuple[Any, ...]] = []
    changed: list[tuple[Any, ...]] = []
    for (ws, pid), stored in sorted(states.items()):
        if (ws, pid) not in at_ms:
            continue
        person = stored.person.to_bytes()
        session = stored.session.to_bytes() if stored.session is not None else None
        memory = orjson.dumps(stored.memory)
        key = _key(ws, pid)
        if stored.exists:
            changed.append((person, session, memory, at_ms[(ws, pid)], key))
        else:
            new.append((key, ws, person, session, memory, at_ms[(ws, pid)]))
    insert_rows(
        conn,
        signal_people,
        ("key", "workspace_id", "person", "session", "memory", "updated_at"),
        new,
    )
    update_rows(conn, signal_people, "key", ("person", "session", "memory", "updated_at"), changed)


def read_pages(conn: Connection, workspace_id: str, pages: Sequence[str]) -> dict[str, PageStats]:
    """The stored statistics of `pages` in a workspace (pages never viewed are left out)."""
    if not pages:
        return {}
    rows = fetch_in(
        conn,
        "SELECT page, entrances, bounces, views, exits, unique_views, value FROM signal_pages "
        "WHERE workspace_id = ? AND page IN (?*)",
        sorted(set(pages)),
        (workspace_id,),
    )
    return {
        row[0]: PageStats(
            entrances=int(row[1]),
            bounces=int(row[2]),
            views=int(row[3]),
            exits=int(row[4]),
            unique_views=int(row[5]),
            value=float(row[6]),
        )
        for row in rows
    }


_ADD_PAGES = (
    "INSERT INTO signal_pages (workspace_id, page, {fields}) VALUES (?, ?, {markers}) "
    "ON CONFLICT (workspace_id, page) DO UPDATE SET {sums}"
).format(
    fields=", ".join(PAGE_FIELDS),
    markers=", ".join("?" * len(PAGE_FIELDS)),
    sums=", ".join(f"{f} = signal_pages.{f} + excluded.{f}" for f in PAGE_FIELDS),
)


def add_pages(conn: Connection, deltas: Mapping[tuple[str, str], Sequence[float]]) -> None:
    """Add the increments of a batch to the page rows (creating them), in key order."""
    rows = [
        (ws, page, *(int(d) for d in delta[:5]), float(delta[5]))
        for (ws, page), delta in sorted(deltas.items())
        if any(delta)
    ]
    if rows:
        sql = _ADD_PAGES if conn.dialect.paramstyle == "qmark" else _ADD_PAGES.replace("?", "%s")
        conn.exec_driver_sql(sql, rows)


@dataclass(frozen=True, slots=True)
class TimerRow:
    """A stored idle-cart timer with what its signal needs."""

    workspace_id: str
    profile_id: str
    timer: Timer
    event_id: str
    offset: int
    channel: str | None
    session_id: str | None


def set_timers(
    conn: Connection,
    changes: Mapping[tuple[str, str, str], TimerRow | None],
) -> None:
    """Set or cancel (None) each (workspace, profile, rule)'s timer, in key order."""
    keys = sorted(changes)
    gone = [key for key in keys if changes[key] is None]
    if gone:
        sql = "DELETE FROM signal_timers WHERE workspace_id = ? AND profile_id = ? AND rule = ?"
        conn.exec_driver_sql(_native(conn, sql), gone)
    rows = []
    for key in keys:
        row = changes[key]
        if row is None:
            continue
        timer = row.timer
        payload = orjson.dumps(
            {
                "products": list(timer.products),
                "cart_value": timer.cart_value,
                "cart_items": timer.cart_items,
                "channel": row.channel,
                "session_id": row.session_id,
            }
        ).decode()
        rows.append((*key, timer.due_ms, row.event_id, row.offset, payload))
    if rows:
        sql = (
            "INSERT INTO signal_timers (workspace_id, profile_id, rule, due_at, event_id, "
            '"offset", payload) VALUES (?, ?, ?, ?, ?, ?, ?) '
            "ON CONFLICT (workspace_id, profile_id, rule) DO UPDATE SET due_at = excluded.due_at, "
            'event_id = excluded.event_id, "offset" = excluded."offset", payload = excluded.payload'
        )
        conn.exec_driver_sql(_native(conn, sql), rows)


def due_timers(
    conn: Connection, workspace_id: str, now_ms: int, *, shared: bool, limit: int = 500
) -> list[TimerRow]:
    """Take (read and delete) the workspace's timers due by `now_ms` (event time); with
    `shared`, timers another worker is taking are left to it."""
    sql = (
        'SELECT profile_id, rule, due_at, event_id, "offset", payload FROM signal_timers '
        "WHERE workspace_id = ? AND due_at <= ? ORDER BY due_at, profile_id, rule LIMIT ?"
    )
    if shared and conn.dialect.name == "postgresql":
        sql += " FOR UPDATE SKIP LOCKED"
    rows = conn.exec_driver_sql(_native(conn, sql), (workspace_id, now_ms, limit)).all()
    if not rows:
        return []
    conn.exec_driver_sql(
        _native(
            conn, "DELETE FROM signal_timers WHERE workspace_id = ? AND profile_id = ? AND rule = ?"
        ),
        [(workspace_id, row[0], row[1]) for row in rows],
    )
    taken = []
    for profile_id, rule, due_at, event_id, offset, payload in rows:
        data = orjson.loads(payload)
        timer = Timer(
            rule,
            int(due_at),
            tuple(data["products"]),
            float(data["cart_value"]),
            int(data["cart_items"]),
        )
        taken.append(
            TimerRow(
                workspace_id,
                profile_id,
                timer,
                event_id,
                int(offset),
                data.get("channel"),
                data.get("session_id"),
            )
        )
    return taken


def _native(conn: Connection, sql: str) -> str:
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def reset(conn: Connection) -> None:
    """Forget all features, page statistics and timers (before a replay)."""
    for table in (signal_people, signal_pages, signal_timers):
        conn.execute(delete(table))
