"""Read what arrived: the newest accepted events of a workspace, as stored in the log."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, select

from polku.events import to_iso
from polku.log.tables import log_events

__all__ = ["recent_events"]


def recent_events(
    conn: Connection,
    workspace_id: str,
    *,
    limit: int = 50,
    before_offset: int | None = None,
    message_id: str | None = None,
) -> list[dict[str, Any]]:
    query = (
        select(log_events)
        .where(log_events.c.workspace_id == workspace_id)
        .order_by(log_events.c.offset.desc())
        .limit(limit)
    )
    if before_offset is not None:
        query = query.where(log_events.c.offset < before_offset)
    if message_id is not None:
        query = query.where(log_events.c.message_id == message_id)
    return [
        {
            "offset": r.offset,
            "messageId": r.message_id,
            "sourceId": r.source_id,
            "type": r.type,
            "event": r.event,
            "receivedAt": to_iso(r.received_at),
            "message": orjson.loads(r.payload),
        }
        for r in conn.execute(query)
    ]
