"""The stock consumer: apply every event that moves stock, once.

`apply_event` is the one place an event changes stock state. A decision of the stock API
calls it inside its own transaction for the event it records (so the state and the event
commit together); the consumer calls it again when the event comes through the log and
finds it applied; a replay calls it for every event in order and rebuilds the same state.

Reservations are Polku's own decisions: their events (`Click and Collect Reserved`,
`... Ready`, `... Picked Up`, `... Released`) change stock only when Polku recorded them
(an internal event has no source; collected events always have one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from polku.commerce.stock.facts import effect_of, lines_of
from polku.commerce.stock.levels import Move, apply_moves, is_applied, lock_batch, lock_levels
from polku.commerce.stock.tables import levels, movements, reservation_lines, reservations
from polku.events import LoggedEvent, NewEvent, to_ms
from polku.pipeline.consumer import Apply

__all__ = [
    "RESERVATION_EVENTS",
    "StockConsumer",
    "apply_event",
]

RESERVED = "Click and Collect Reserved"
READY = "Click and Collect Ready"
PICKED_UP = "Click and Collect Picked Up"
RELEASED = "Click and Collect Released"
RESERVATION_EVENTS = frozenset({RESERVED, READY, PICKED_UP, RELEASED})


def apply_event(conn: Connection, event: LoggedEvent | NewEvent, message: dict[str, Any]) -> bool:
    """Apply one event to stock; False when it moves no stock or was applied before."""
    name = event.event
    properties = message.get("properties")
    if not isinstance(properties, dict) or name is None:
        return False
    ws = event.workspace_id
    if name in RESERVATION_EVENTS:
        if event.source_id:  # sent by another system: Polku holds no units for it
            return False
        return _reservation(conn, ws, event, name, properties, message)
    effect = effect_of(name, properties)
    if effect is None or is_applied(conn, ws, event.message_id):
        return False
    moves = list(effect.moves)
    if effect.counts:
        current = lock_levels(conn, ws, [(c.location_id, c.sku) for c in effect.counts])
        moves += [  # a line that changes nothing is kept too: the count happened
            Move(c.location_id, c.sku, on_hand=c.quantity - current[(c.location_id, c.sku)].on_hand)
            for c in effect.counts
        ]
    return apply_moves(
        conn,
        ws,
        event.message_id,
        effect.kind,
        moves,
        at=event.timestamp,
        reference=effect.reference,
    )


def _reservation(
    conn: Connection,
    ws: str,
    event: LoggedEvent | NewEvent,
    name: str,
    properties: dict[str, Any],
    message: dict[str, Any],
) -> bool:
    reservation_id = str(properties.get("order_id", ""))[:200]
    store = str(properties.get("store_id", ""))[:100]
    if not reservation_id or not store or is_applied(conn, ws, event.message_id):
        return False
    at = event.timestamp
    key = (reservations.c.workspace_id == ws, reservations.c.reservation_id == reservation_id)
    if name == RESERVED:
        lines = lines_of(properties)
        expires = _ms(properties.get("collect_by"), default=at)
        conn.execute(
            insert(reservations).values(
                workspace_id=ws,
                reservation_id=reservation_id,
                location_id=store,
                status="held",
                user_id=message.get("userId"),
                anonymous_id=message.get("anonymousId"),
                created_at=at,
                expires_at=expires,
            )
        )
        conn.execute(
            insert(reservation_lines),
            [
                {"workspace_id": ws, "reservation_id": reservation_id, "sku": sku, "quantity": q}
                for sku, q in lines
            ],
        )
        moves = [Move(store, sku, reserved=q) for sku, q in lines]
        return apply_moves(
            conn, ws, event.message_id, "reserved", moves, at=at, reference=reservation_id
        )
    held = _lines(conn, ws, reservation_id)
    if name == READY:
        expires = _ms(properties.get("collect_by"), default=None)
        values: dict[str, Any] = {"status": "ready", "ready_at": at}
        if expires is not None:
            values["expires_at"] = expires
        conn.execute(update(reservations).where(*key).values(**values))
        # Movements that move nothing mark the event as applied, so a later read of it from
        # the log cannot set a collected reservation back to ready.
        moves = [Move(store, sku) for sku, _ in held]
        return apply_moves(
            conn, ws, event.message_id, "ready", moves, at=at, reference=reservation_id
        )
    if name == PICKED_UP:
        conn.execute(
            update(reservations)
            .where(*key)
            .values(status="collected", closed_at=at, close_reason="collected")
        )
        moves = [Move(store, sku, on_hand=-q, reserved=-q) for sku, q in held]
        return apply_moves(
            conn, ws, event.message_id, "collected", moves, at=at, reference=reservation_id
        )
    reason = str(properties.get("reason") or "cancelled")[:32]
    conn.execute(
        update(reservations)
        .where(*key)
        .values(status="released", closed_at=at, close_reason=reason)
    )
    moves = [Move(store, sku, reserved=-q) for sku, q in held]
    return apply_moves(
        conn, ws, event.message_id, "released", moves, at=at, reference=reservation_id
    )


def _lines(conn: Connection, ws: str, reservation_id: str) -> list[tuple[str, int]]:
    rows = conn.execute(
        select(reservation_lines.c.sku, reservation_lines.c.quantity)
        .where(
            reservation_lines.c.workspace_id == ws,
            reservation_lines.c.reservation_id == reservation_id,
        )
        .order_by(reservation_lines.c.sku)
    )
    return [(sku, int(quantity)) for sku, quantity in rows]


def _ms(value: Any, *, default: int | None) -> int | None:
    if isinstance(value, str):
        try:
            return to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return default
    return default


class StockConsumer:
    """Keeps stock levels, movements and reservations from the log (see the module doc)."""

    name = "stock"

    def reset(self, conn: Connection) -> None:
        for table in (reservation_lines, reservations, movements, levels):
            conn.execute(delete(table))

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        # Stock changes need the rows of the moment they are applied (a count reads the
        # level; a reservation's release reads its lines), so all the work is in `apply`,
        # in the writing transaction. Only events that can move stock are kept.
        relevant = [e for e in events if e.event is not None and _may_move(e.event)]

        def apply(writer: Connection) -> None:
            if shared:
                lock_batch(writer, (key for event in relevant for key in _keys(event)))
            for event in relevant:
                apply_event(writer, event, event.message)

        return apply


_FACTS = frozenset(
    {
        "Stock Received",
        "Stock Transferred",
        "Stock Adjusted",
        "Stock Counted",
        "POS Order Completed",
        "Return Inspected",  # its restocked units (facts.effect_of)
    }
)


def _keys(event: LoggedEvent) -> list[tuple[str, str, str]]:
    """The (workspace, location, SKU) levels an event may move, from the event alone."""
    properties = event.message.get("properties")
    if not isinstance(properties, dict):
        return []
    places = [
        properties.get(key)
        for key in ("location_id", "store_id", "from_location_id", "to_location_id")
    ]
    found = [str(p)[:100] for p in places if isinstance(p, (str, int)) and str(p)]
    return [(event.workspace_id, loc, sku) for loc in found for sku, _ in lines_of(properties)]


def _may_move(name: str) -> bool:
    return name in RESERVATION_EVENTS or name in _FACTS
