"""The orders consumer: keep an order row per order id, its lines, and its cancellations and
refunds, from `Order Completed`, `POS Order Completed`, `Order Cancelled` and `Order
Refunded` events.

`apply_event` is the one place an event changes the orders projection; the consumer calls it
for each order event, and `polku replay` rebuilds the same rows through it.

- **Idempotent, and the same whatever the interleaving.** An order's row comes from its
  completing event with the lowest log offset (a second `Order Completed` for the same id is
  a resend: the first one stands, whichever partition's worker gets to it first). A change
  is a row keyed by its event's messageId, and an order's status is computed from its
  changes when read, so a refund read before its order (another partition) still counts,
  and redelivery adds nothing.
- **No profile on the order.** Which person an order belongs to is identity's answer for its
  completing event (`identity_event_profiles`), read with the order; merges and un-merges
  move orders with no work here.
- **Concurrent workers** (production: other partitions at the same time) meet only on the
  same order id. The placing upsert locks the order's row (PostgreSQL's ``INSERT ... ON
  CONFLICT DO UPDATE`` waits for, then re-checks against, a concurrent writer of the same
  key), and a batch writes its orders in id order, so two workers never deadlock; only the
  holder of that row lock rewrites the order's lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Insert, delete
from sqlalchemy.dialects import postgresql, sqlite

from polku.commerce.orders.facts import (
    ORDER_EVENTS,
    Change,
    Placed,
    change_of,
    placed_of,
)
from polku.commerce.orders.tables import order_changes, order_lines, orders
from polku.events import LoggedEvent
from polku.pipeline.consumer import Apply
from polku.storage.bulk import insert_rows

__all__ = ["OrdersConsumer", "apply_event"]

_LINE_COLUMNS = (
    "workspace_id",
    "order_id",
    "line",
    "sku",
    "product_id",
    "name",
    "quantity",
    "price",
)


def apply_event(conn: Connection, event: LoggedEvent) -> bool:
    """Apply one event to the orders projection; False when it is no order event, or
    changes nothing (applied before, or a later resend of a placed order)."""
    placed = placed_of(event, event.message)
    if placed is not None:
        return _place(conn, event, placed)
    change = change_of(event, event.message)
    if change is not None:
        return _change(conn, event, change)
    return False


def _decimal_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _place(conn: Connection, event: LoggedEvent, placed: Placed) -> bool:
    ws = event.workspace_id
    values = {
        "workspace_id": ws,
        "order_id": placed.order_id,
        "offset": event.offset,
        "message_id": event.message_id,
        "channel": placed.channel,
        "store_id": placed.store_id,
        "receipt_id": placed.receipt_id,
        "placed_at": event.timestamp,
        "currency": placed.currency,
        "total": _decimal_text(placed.total),
        "payment_method": placed.payment_method,
        "shipping_method": placed.shipping_method,
    }
    taken = conn.execute(_upsert(conn).values(values)).first()
    if taken is None:  # this order's row comes from an earlier event, or from this one before
        return False
    conn.execute(
        delete(order_lines).where(
            order_lines.c.workspace_id == ws, order_lines.c.order_id == placed.order_id
        )
    )
    insert_rows(
        conn,
        order_lines,
        _LINE_COLUMNS,
        [
            (
                ws,
                placed.order_id,
                position,
                line.sku,
                line.product_id,
                line.name,
                line.quantity,
                _decimal_text(line.price),
            )
            for position, line in enumerate(placed.lines)
        ],
    )
    return True


def _upsert(conn: Connection) -> Insert:
    """INSERT the order, or replace it when this event comes earlier in the log than the one
    it holds; RETURNING a row only when it wrote."""
    columns = [c.name for c in orders.columns if c.name not in ("workspace_id", "order_id")]
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(orders)
        return pg.on_conflict_do_update(
            index_elements=["workspace_id", "order_id"],
            set_={name: pg.excluded[name] for name in columns},
            where=orders.c.offset > pg.excluded.offset,
        ).returning(orders.c.offset)
    lite = sqlite.insert(orders)
    return lite.on_conflict_do_update(
        index_elements=["workspace_id", "order_id"],
        set_={name: lite.excluded[name] for name in columns},
        where=orders.c.offset > lite.excluded.offset,
    ).returning(orders.c.offset)


def _change(conn: Connection, event: LoggedEvent, change: Change) -> bool:
    lines = None
    if change.lines:
        lines = orjson.dumps(
            [
                {
                    "sku": line.sku,
                    "product_id": line.product_id,
                    "name": line.name,
                    "quantity": line.quantity,
                    "price": _decimal_text(line.price),
                }
                for line in change.lines
            ],
            option=orjson.OPT_SORT_KEYS,
        ).decode()
    values = {
        "workspace_id": event.workspace_id,
        "message_id": event.message_id,
        "order_id": change.order_id,
        "offset": event.offset,
        "kind": change.kind,
        "at": event.timestamp,
        "total": _decimal_text(change.total),
        "lines": lines,
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(order_changes)
        .values(values)
        .on_conflict_do_nothing(index_elements=["workspace_id", "message_id"])
        .returning(order_changes.c.offset)
    )
    return conn.execute(statement).first() is not None


def _order_key(event: LoggedEvent) -> tuple[str, int]:
    found = placed_of(event, event.message) or change_of(event, event.message)
    return ("" if found is None else found.order_id, event.offset)


class OrdersConsumer:
    """Keeps orders, their lines and their changes from the log (see the module doc)."""

    name = "orders"

    def reset(self, conn: Connection) -> None:
        for table in (order_changes, order_lines, orders):
            conn.execute(delete(table))

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        # Nothing to read ahead: each order event is one upsert or insert. Sorting by order id
        # makes concurrent workers lock orders in the same order (see the module doc).
        relevant = sorted(
            (e for e in events if e.event is not None and e.event in ORDER_EVENTS),
            key=_order_key,
        )

        def apply(writer: Connection) -> None:
            for event in relevant:
                apply_event(writer, event)

        return apply
