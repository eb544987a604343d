"""What the console's event debugger reads: one workspace's accepted events and rejections,
each filtered by source in SQL and paged by a cursor (the log offset, the dead letter's id),
one rejection in full with the body as it was received, and a marker that changes when
either list grows (the live list's stream compares it once a second).

Accepted events are `queries.recent_events` (with its source filter); this module adds the
rejections with the console's filters and the marker.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from sqlalchemy import Connection, select

from polku.collect.queries import newest_first_of
from polku.collect.tables import dead_letters
from polku.log.tables import log_events

__all__ = ["debugger_marker", "rejection", "rejections"]


_LISTED = (
    dead_letters.c.id,
    dead_letters.c.source_id,
    dead_letters.c.received_at,
    dead_letters.c.endpoint,
    dead_letters.c.batch_index,
    dead_letters.c.message_id,
    dead_letters.c.code,
    dead_letters.c.field,
    dead_letters.c.message,
)


def rejections(
    conn: Connection,
    workspace_id: str,
    *,
    source_id: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The workspace's rejections, newest first, without their bodies; only `source_id`'s
    when given, only those older than `before_id` when given. Requests with an unknown
    write key belong to no workspace and are not among them."""
    query = (
        select(*_LISTED)
        .where(newest_first_of(conn, dead_letters.c.workspace_id, workspace_id))
        .order_by(dead_letters.c.id.desc())
        .limit(limit)
    )
    if source_id is not None:
        query = query.where(dead_letters.c.source_id == source_id)
    if before_id is not None:
        query = query.where(dead_letters.c.id < before_id)
    return [dict(row._mapping) for row in conn.execute(query)]


def rejection(conn: Connection, workspace_id: str, rejection_id: int) -> dict[str, Any] | None:
    """One rejection of the workspace with its body: `body` is the text as received (cut at
    64 KB, card numbers masked), `parsed` the JSON value when the text parses (else None)."""
    row = conn.execute(
        select(*_LISTED, dead_letters.c.hint, dead_letters.c.payload).where(
            dead_letters.c.workspace_id == workspace_id, dead_letters.c.id == rejection_id
        )
    ).first()
    if row is None:
        return None
    item = dict(row._mapping)
    raw = item.pop("payload")
    item["body"] = None if raw is None else bytes(raw).decode("utf-8", "replace")
    item["parsed"] = None
    if raw is not None:
        with contextlib.suppress(orjson.JSONDecodeError):
            item["parsed"] = orjson.loads(raw)
    return item


def debugger_marker(conn: Connection, workspace_id: str) -> str:
    """The workspace's newest log offset and newest rejection id, as ``"<offset>.<id>"``:
    it changes whenever an event is accepted or refused in the workspace. Two reads that
    walk the tables' primary keys from the newest row."""
    offset = conn.execute(
        select(log_events.c.offset)
        .where(newest_first_of(conn, log_events.c.workspace_id, workspace_id))
        .order_by(log_events.c.offset.desc())
        .limit(1)
    ).scalar()
    rejected = conn.execute(
        select(dead_letters.c.id)
        .where(newest_first_of(conn, dead_letters.c.workspace_id, workspace_id))
        .order_by(dead_letters.c.id.desc())
        .limit(1)
    ).scalar()
    return f"{offset or 0}.{rejected or 0}"
