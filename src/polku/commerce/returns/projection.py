"""The returns consumer: every event of a return or an outlet listing, applied once.

`apply_event` is the one place such an event changes the returns tables. A decision of
`actions` or `outlet` calls it inside its own transaction for the event it records; the
consumer calls it again when the event comes through the log and finds it in
`return_history` (keyed by messageId); a replay calls it for every event in order and
rebuilds the same returns, lines and listings. Every event carries what was decided (the
deadline of each line, the unit price paid, each outlet price), so nothing is read from the
catalogue or the policy, which may have changed since.

Only Polku's own events count (an internal event has no source): `Return Requested` or
`Return Received` sent by another system through the collection API stay on the
customer's timeline; Polku tracks only the returns it decided. Stock is not touched here:
the restocked units of `Return Inspected` are a stock fact (`polku.commerce.stock.facts`),
applied by the stock consumer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, delete, exists, func, insert, select, update

from polku.commerce.catalog.money import price_minor
from polku.commerce.returns.tables import history, lines, outlet_listings, returns
from polku.events import LoggedEvent, NewEvent, to_ms
from polku.pipeline.consumer import Apply

__all__ = [
    "CANCELLED",
    "EVENTS",
    "INSPECTED",
    "OUTCOMES",
    "OUTLET_RELEASED",
    "OUTLET_RESERVED",
    "OUTLET_SOLD",
    "RECEIVED",
    "REFUNDED",
    "REQUESTED",
    "ReturnsConsumer",
    "apply_event",
]

REQUESTED = "Return Requested"
RECEIVED = "Return Received"
INSPECTED = "Return Inspected"
CANCELLED = "Return Cancelled"
REFUNDED = "Order Refunded"  # the Segment event, with the return_id of Polku's refunds
OUTLET_RESERVED = "Outlet Item Reserved"
OUTLET_RELEASED = "Outlet Item Released"
OUTLET_SOLD = "Outlet Item Sold"
EVENTS = frozenset(
    {
        REQUESTED,
        RECEIVED,
        INSPECTED,
        CANCELLED,
        REFUNDED,
        OUTLET_RESERVED,
        OUTLET_RELEASED,
        OUTLET_SOLD,
    }
)
OUTCOMES: Final = {"restock": "restocked", "outlet": "outlet", "dispose": "disposed"}
"""An inspected unit's outcome -> the column of `return_lines` that counts it."""


def _text(value: Any, limit: int) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)[:limit]
    return None


def _ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _minor(value: Any, currency: str | None) -> int | None:
    if value is None or currency is None:
        return None
    return price_minor(value, currency, "price")


def _items(properties: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    found = properties.get(key)
    if not isinstance(found, list):
        return []
    return [item for item in found if isinstance(item, Mapping)]


def _quantity(item: Mapping[str, Any]) -> int:
    value = item.get("quantity", 0)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def is_applied(conn: Connection, workspace_id: str, message_id: str) -> bool:
    query = select(
        exists().where(history.c.workspace_id == workspace_id, history.c.message_id == message_id)
    )
    return bool(conn.execute(query).scalar())


def _return_key(ws: str, return_id: str) -> tuple[Any, Any]:
    return (returns.c.workspace_id == ws, returns.c.return_id == return_id)


def _has_return(conn: Connection, ws: str, return_id: str) -> bool:
    return bool(conn.execute(select(exists().where(*_return_key(ws, return_id)))).scalar())


def apply_event(conn: Connection, event: LoggedEvent | NewEvent, message: dict[str, Any]) -> bool:
    """Apply one event to returns and outlet listings; False when it is not one of Polku's
    returns events or was applied before."""
    name = event.event
    properties = message.get("properties")
    if name not in EVENTS or event.source_id or not isinstance(properties, dict):
        return False
    ws = event.workspace_id
    if is_applied(conn, ws, event.message_id):
        return False
    return_id = _text(properties.get("return_id"), 200)
    listing_id = _text(properties.get("listing_id"), 200)
    at = event.timestamp
    if name == REQUESTED and return_id is not None:
        done = _requested(conn, ws, return_id, event, properties, message)
    elif name in (RECEIVED, INSPECTED, CANCELLED, REFUNDED) and return_id is not None:
        done = _has_return(conn, ws, return_id)
        if done:
            _step(conn, ws, return_id, name, properties, at, event.message_id)
    elif name in (OUTLET_RESERVED, OUTLET_RELEASED, OUTLET_SOLD) and listing_id is not None:
        done = _outlet(conn, ws, listing_id, name, properties, message, at)
    else:
        done = False
    if done:
        of = history.c.return_id == return_id if return_id else history.c.listing_id == listing_id
        seq = conn.execute(
            select(func.count()).select_from(history).where(history.c.workspace_id == ws, of)
        ).scalar()
        conn.execute(
            insert(history).values(
                workspace_id=ws,
                message_id=event.message_id,
                event=name,
                return_id=return_id,
                listing_id=listing_id,
                seq=int(seq or 0) + 1,
                at=at,
            )
        )
    return done


def _requested(
    conn: Connection,
    ws: str,
    return_id: str,
    event: LoggedEvent | NewEvent,
    properties: dict[str, Any],
    message: dict[str, Any],
) -> bool:
    if _has_return(conn, ws, return_id):
        return False
    currency = _text(properties.get("currency"), 3)
    context = message.get("context")
    channel = context.get("channel") if isinstance(context, dict) else None
    conn.execute(
        insert(returns).values(
            workspace_id=ws,
            return_id=return_id,
            order_id=_text(properties.get("order_id"), 200) or "",
            channel=_text(channel, 16) or "web",
            status="requested",
            user_id=message.get("userId"),
            anonymous_id=message.get("anonymousId"),
            partition_key=event.partition_key,
            currency=currency,
            return_method=_text(properties.get("return_method"), 16),
            requested_at=event.timestamp,
        )
    )
    rows = [
        {
            "workspace_id": ws,
            "return_id": return_id,
            "sku": _text(item.get("sku"), 200) or "",
            "product_id": _text(item.get("product_id"), 200),
            "name": _text(item.get("name"), 500),
            "quantity": _quantity(item),
            "reason": _text(item.get("reason"), 32) or "other",
            "note": _text(item.get("note"), 500),
            "unit_paid_minor": _minor(item.get("price"), currency),
            "return_by": _ms(item.get("return_by")) or event.timestamp,
        }
        for item in _items(properties, "products")
    ]
    if rows:
        conn.execute(insert(lines), rows)
    return True


def _step(
    conn: Connection,
    ws: str,
    return_id: str,
    name: str,
    properties: dict[str, Any],
    at: int,
    message_id: str,
) -> None:
    key = _return_key(ws, return_id)
    if name == RECEIVED:
        location = _text(properties.get("location_id") or properties.get("store_id"), 100)
        conn.execute(
            update(returns)
            .where(*key)
            .values(status="received", received_at=at, location_id=location)
        )
    elif name == CANCELLED:
        conn.execute(update(returns).where(*key).values(status="cancelled", cancelled_at=at))
    elif name == INSPECTED:
        _inspected(conn, ws, return_id, properties, at)
    else:  # REFUNDED
        currency = _text(properties.get("currency"), 3)
        conn.execute(
            update(returns)
            .where(*key)
            .values(
                status="refunded",
                refunded_at=at,
                refund_method=_text(properties.get("refund_method"), 32),
                refund_minor=_minor(properties.get("total"), currency),
                giftcard_id=_text(properties.get("giftcard_id"), 64),
                refund_message_id=message_id,
            )
        )


def _inspected(
    conn: Connection, ws: str, return_id: str, properties: dict[str, Any], at: int
) -> None:
    counts: dict[str, dict[str, int]] = {}
    conditions: dict[str, str] = {}
    for item in _items(properties, "products"):
        sku = _text(item.get("sku"), 200)
        column = OUTCOMES.get(str(item.get("outcome")))
        if sku is None or column is None:
            continue
        per_sku = counts.setdefault(sku, {"restocked": 0, "outlet": 0, "disposed": 0})
        per_sku[column] += _quantity(item)
        condition = _text(item.get("condition"), 500)
        if condition:
            conditions[sku] = condition
    for sku, values in sorted(counts.items()):
        conn.execute(
            update(lines)
            .where(lines.c.workspace_id == ws, lines.c.return_id == return_id, lines.c.sku == sku)
            .values(condition=conditions.get(sku), **values)
        )
    conn.execute(
        update(returns)
        .where(*_return_key(ws, return_id))
        .values(status="inspected", inspected_at=at)
    )
    location = _text(properties.get("location_id"), 100) or ""
    currency = _text(properties.get("currency"), 3) or ""
    listed = [
        {
            "workspace_id": ws,
            "listing_id": _text(item.get("listing_id"), 200),
            "return_id": return_id,
            "sku": _text(item.get("sku"), 200) or "",
            "product_id": _text(item.get("product_id"), 200),
            "name": _text(item.get("name"), 500),
            "location_id": location,
            "condition": _text(item.get("condition"), 500),
            "currency": currency,
            "price_minor": _minor(item.get("price"), currency) or 0,
            "original_price_minor": _minor(item.get("original_price"), currency) or 0,
            "discount_percent": _quantity({"quantity": item.get("discount_percent", 0)}),
            "status": "available",
            "listed_at": at,
        }
        for item in _items(properties, "outlet")
        if _text(item.get("listing_id"), 200) is not None
    ]
    if listed:
        conn.execute(insert(outlet_listings), listed)


def _outlet(
    conn: Connection,
    ws: str,
    listing_id: str,
    name: str,
    properties: dict[str, Any],
    message: dict[str, Any],
    at: int,
) -> bool:
    key = (outlet_listings.c.workspace_id == ws, outlet_listings.c.listing_id == listing_id)
    if not conn.execute(select(exists().where(*key))).scalar():
        return False
    values: dict[str, Any]
    if name == OUTLET_RESERVED:
        values = {
            "status": "reserved",
            "reserved_until": _ms(properties.get("reserved_until")),
            "reserved_user_id": message.get("userId"),
            "reserved_anonymous_id": message.get("anonymousId"),
        }
    elif name == OUTLET_RELEASED:
        values = {
            "status": "available",
            "reserved_until": None,
            "reserved_user_id": None,
            "reserved_anonymous_id": None,
        }
    else:  # OUTLET_SOLD
        values = {
            "status": "sold",
            "sold_at": at,
            "receipt_id": _text(properties.get("receipt_id"), 200),
        }
    conn.execute(update(outlet_listings).where(*key).values(**values))
    return True


class ReturnsConsumer:
    """Keeps returns and outlet listings from the log (see the module doc)."""

    name = "returns"

    def reset(self, conn: Connection) -> None:
        for table in (history, outlet_listings, lines, returns):
            conn.execute(delete(table))

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        # Each event changes the rows of one return or listing as they are when it is
        # applied, so the work is in `apply`, in the writing transaction; every decision
        # already applied its own event, which the consumer then finds in the history.
        relevant = [e for e in events if e.event in EVENTS and not e.source_id]

        def apply(writer: Connection) -> None:
            for event in relevant:
                apply_event(writer, event, event.message)

        return apply
