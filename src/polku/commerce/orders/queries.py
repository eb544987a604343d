"""Read orders: one order by id, a till receipt by store and receipt number, and a person's
order history across channels (web, app, store), newest first.

An order's profile is whoever identity says its completing event belongs to now
(`identity_event_profiles`), so a merge or an un-merge moves orders with the events. A
profile id that was merged into another one reads as the profile that holds it now.

Every function is scoped to one workspace: an id from another workspace reads as unknown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import orjson
from sqlalchemy import Connection, and_, or_, select

from polku.commerce.catalog.money import minor_digits
from polku.commerce.orders.facts import PLACING_EVENTS, Change, Line, amount, status_of
from polku.commerce.orders.tables import order_changes, order_lines, orders
from polku.identity.tables import event_profiles
from polku.profiles.queries import resolve

__all__ = [
    "Order",
    "OrderLine",
    "Refund",
    "get_order",
    "get_receipt",
    "orders_of",
]

_IN_CHUNK: Final = 400
_MAX_ID: Final = 200


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of an order: what, how many, at what unit price."""

    sku: str | None
    product_id: str | None
    name: str | None
    quantity: int
    price: Decimal | None  # unit price, with the currency's decimals when it is known


@dataclass(frozen=True, slots=True)
class Refund:
    """One `Order Refunded` event of an order."""

    message_id: str
    at: int  # event time, epoch ms
    total: Decimal | None  # amount refunded, positive; None when the event named none
    lines: tuple[OrderLine, ...]  # the refunded lines, quantities positive


@dataclass(frozen=True, slots=True)
class Order:
    """An order from any channel, as the orders projection holds it now.

    `channel` is where it was placed (`web`, `app`, `store`); `store_id` the store of a till
    receipt or of an online order's pickup; `status` is ``completed``, ``cancelled``,
    ``refunded`` or ``partly_refunded``. `profile_id` is the profile its completing event
    belongs to now (None when the event identified nobody, e.g. an anonymous till sale).
    """

    order_id: str
    channel: str
    store_id: str | None
    placed_at: int  # event time of the completing event, epoch ms
    currency: str | None
    total: Decimal | None
    payment_method: str | None  # a method type (card, cash, mobile) or a provider's token
    shipping_method: str | None
    status: str
    lines: tuple[OrderLine, ...]
    profile_id: str | None
    message_id: str  # messageId of the completing event
    receipt_id: str | None = None  # a till receipt's number
    offset: int = 0  # log offset of the completing event (with placed_at, the paging key)
    cancelled_at: int | None = None  # event time of the first cancellation
    refunds: tuple[Refund, ...] = ()  # oldest first

    @property
    def refunded_total(self) -> Decimal | None:
        """The amounts refunded so far, or None when no refund named an amount."""
        amounts = [r.total for r in self.refunds if r.total is not None]
        return sum(amounts, Decimal(0)) if amounts else None


def _money(text: str | None, currency: str | None) -> Decimal | None:
    """Stored decimal text as a Decimal, with the currency's decimals when it has no more
    (``129.9`` EUR reads ``129.90``; an over-precise amount is shown as sent)."""
    number = amount(text) if text is not None else None
    if number is None or currency is None:
        return number
    try:
        places = Decimal(1).scaleb(-minor_digits(currency))
    except KeyError:
        return number
    exact = number.quantize(places)
    return exact if exact == number else number


def _line(row: Any, currency: str | None) -> OrderLine:
    return OrderLine(
        sku=row.sku,
        product_id=row.product_id,
        name=row.name,
        quantity=int(row.quantity),
        price=_money(row.price, currency),
    )


def _refund_lines(raw: str | None, currency: str | None) -> tuple[OrderLine, ...]:
    if not raw:
        return ()
    return tuple(
        OrderLine(
            sku=item.get("sku"),
            product_id=item.get("product_id"),
            name=item.get("name"),
            quantity=int(item.get("quantity", 0)),
            price=_money(item.get("price"), currency),
        )
        for item in orjson.loads(raw)
    )


def _as_fact(line: OrderLine) -> Line:
    return Line(line.sku, line.product_id, line.name, line.quantity, line.price)


def _details(
    conn: Connection, workspace_id: str, order_ids: Sequence[str]
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The lines and the changes of these orders, each in order, in two queries a chunk."""
    lines: dict[str, list[Any]] = defaultdict(list)
    changes: dict[str, list[Any]] = defaultdict(list)
    ids = sorted(set(order_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        part = ids[start : start + _IN_CHUNK]
        for row in conn.execute(
            select(order_lines)
            .where(order_lines.c.workspace_id == workspace_id, order_lines.c.order_id.in_(part))
            .order_by(order_lines.c.order_id, order_lines.c.line)
        ):
            lines[row.order_id].append(row)
        for row in conn.execute(
            select(order_changes)
            .where(
                order_changes.c.workspace_id == workspace_id,
                order_changes.c.order_id.in_(part),
            )
            .order_by(order_changes.c.order_id, order_changes.c.at, order_changes.c.offset)
        ):
            changes[row.order_id].append(row)
    return lines, changes


def _orders(conn: Connection, workspace_id: str, rows: Sequence[Any]) -> list[Order]:
    """Orders from rows of `orders` (with a `profile_id` column), lines and changes added."""
    lines, changes = _details(conn, workspace_id, [row.order_id for row in rows])
    found: list[Order] = []
    for row in rows:
        currency = row.currency
        total = _money(row.total, currency)
        own = tuple(_line(line, currency) for line in lines.get(row.order_id, ()))
        cancelled_at = next(
            (c.at for c in changes.get(row.order_id, ()) if c.kind == "cancelled"), None
        )
        refunds = tuple(
            Refund(
                message_id=c.message_id,
                at=int(c.at),
                total=_money(c.total, currency),
                lines=_refund_lines(c.lines, currency),
            )
            for c in changes.get(row.order_id, ())
            if c.kind == "refunded"
        )
        status = status_of(
            total,
            [_as_fact(line) for line in own],
            cancelled_at is not None,
            [
                Change(row.order_id, "refunded", r.total, tuple(_as_fact(x) for x in r.lines))
                for r in refunds
            ],
        )
        found.append(
            Order(
                order_id=row.order_id,
                channel=row.channel,
                store_id=row.store_id,
                placed_at=int(row.placed_at),
                currency=currency,
                total=total,
                payment_method=row.payment_method,
                shipping_method=row.shipping_method,
                status=status,
                lines=own,
                profile_id=row.profile_id,
                message_id=row.message_id,
                receipt_id=row.receipt_id,
                offset=int(row.offset),
                cancelled_at=None if cancelled_at is None else int(cancelled_at),
                refunds=refunds,
            )
        )
    return found


def _with_profile() -> Any:
    return select(orders, event_profiles.c.profile_id).select_from(
        orders.outerjoin(event_profiles, event_profiles.c.offset == orders.c.offset)
    )


def get_order(conn: Connection, workspace_id: str, order_id: str) -> Order | None:
    """The order `order_id` (a till receipt's is ``pos:<store_id>:<receipt_id>`` unless the
    till sent an order id), or None if the workspace has none by that id."""
    if not 0 < len(order_id) <= _MAX_ID or "\x00" in order_id:
        return None
    rows = conn.execute(
        _with_profile().where(orders.c.workspace_id == workspace_id, orders.c.order_id == order_id)
    ).all()
    found = _orders(conn, workspace_id, rows)
    return found[0] if found else None


def get_receipt(
    conn: Connection, workspace_id: str, store_id: str, receipt_id: str
) -> Order | None:
    """The till receipt `receipt_id` of store `store_id`, whatever order id it was stored
    under (the till's own order id, or ``pos:...``); None when unknown."""
    if not (0 < len(store_id) <= 100 and 0 < len(receipt_id) <= _MAX_ID):
        return None
    if "\x00" in store_id or "\x00" in receipt_id:
        return None
    rows = conn.execute(
        _with_profile()
        .where(
            orders.c.workspace_id == workspace_id,
            orders.c.store_id == store_id,
            orders.c.receipt_id == receipt_id,
        )
        .order_by(orders.c.offset)
        .limit(1)
    ).all()
    found = _orders(conn, workspace_id, rows)
    return found[0] if found else None


def orders_of(
    conn: Connection,
    workspace_id: str,
    profile_id: str,
    *,
    limit: int,
    before: tuple[int, int] | None = None,
) -> list[Order]:
    """The orders of `profile_id` (or of the profile it was merged into) from every channel,
    newest first (by event time, then log offset).

    `before` is the ``(placed_at, offset)`` of the last order of the previous page: only
    older orders are returned (keyset paging, stable while new orders arrive). An unknown
    profile has no orders.
    """
    holder = resolve(conn, workspace_id, profile_id)
    if holder is None or limit < 1:
        return []
    ep = event_profiles.c
    conditions = [
        ep.workspace_id == workspace_id,
        ep.profile_id == holder,
        ep.event.in_(sorted(PLACING_EVENTS)),
        # No condition on orders.workspace_id: the join on the (unique) log offset implies
        # it, and with it SQLite's planner scanned the workspace's orders first instead of
        # going from the person's events (ms per call once there are many orders).
    ]
    if before is not None:
        at, offset = before
        conditions.append(or_(ep.timestamp < at, and_(ep.timestamp == at, ep.offset < offset)))
    rows = conn.execute(
        select(orders, ep.profile_id)
        .select_from(event_profiles.join(orders, orders.c.offset == ep.offset))
        .where(*conditions)
        .order_by(ep.timestamp.desc(), ep.offset.desc())
        .limit(limit)
    ).all()
    return _orders(conn, workspace_id, rows)
