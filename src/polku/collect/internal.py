"""Events Polku records itself (a reservation decided, a price changed, stock received).

They are stamped like collected events, and their properties checked against the same
vocabulary, so every consumer reads them like any other. An event about a customer carries
their userId or anonymousId (and joins their profile); one about no customer (a delivery to
a store, a price change) carries neither: identity and profiles pass it by. Its partition
key is then the entity's (``sku:<sku>``, ``location:<id>``), so one entity's events stay in
order in the production log.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from polku.collect.vocabulary import check_properties
from polku.events import NewEvent, to_iso

__all__ = ["InternalEventError", "internal_event"]

_LIBRARY = {"name": "polku", "version": "internal"}


class InternalEventError(ValueError):
    """Polku built an event its own vocabulary refuses: a programming error, not bad input
    (callers validate input before deciding)."""


def internal_event(
    workspace_id: str,
    event: str,
    properties: Mapping[str, Any],
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    partition_key: str | None = None,
    channel: str | None = None,
    at_ms: int | None = None,
    message_id: str | None = None,
    source_id: str = "",
) -> NewEvent:
    """A stamped track event, ready for `Transaction.record`.

    `partition_key` defaults to the customer (userId, else anonymousId); an event about no
    customer must name its entity's key. `at_ms` is the event time (default: now).
    """
    key = partition_key or user_id or anonymous_id
    if not key:
        raise InternalEventError(f"{event}: give a customer or a partition key")
    problems = check_properties(event, properties)
    if problems:
        raise InternalEventError(
            f"{event}: " + "; ".join(f"{p.field}: {p.message}" for p in problems)
        )
    now = int(time.time() * 1000)
    at = now if at_ms is None else at_ms
    mid = message_id or f"polku-{uuid.uuid4().hex}"
    context: dict[str, Any] = {"library": _LIBRARY}
    if channel is not None:
        context["channel"] = channel
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "messageId": mid,
        "properties": dict(properties),
        "context": context,
        "timestamp": to_iso(at),
        "receivedAt": to_iso(now),
    }
    if user_id is not None:
        message["userId"] = user_id
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id
    return NewEvent(
        workspace_id=workspace_id,
        message_id=mid,
        type="track",
        partition_key=key,
        received_at=now,
        timestamp=at,
        payload=orjson.dumps(message),
        source_id=source_id,
        event=event,
    )
