"""Reading returns: one return with its lines and history, lists, the units of an order
already on their way back, outlet listings, and the return rate and reasons of a product.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select

from polku.commerce.catalog.money import from_minor
from polku.commerce.catalog.queries import get_product, get_variant
from polku.commerce.orders.tables import order_changes, order_lines
from polku.commerce.returns.tables import history, lines, outlet_listings, returns
from polku.errors import NotFound
from polku.events import to_iso

__all__ = [
    "Listing",
    "Return",
    "ReturnLine",
    "get_listing",
    "get_return",
    "history_of",
    "list_listings",
    "list_returns",
    "return_stats",
    "returned_units",
]

_BACK = ("received", "inspected", "refunded")  # the goods have come back


def _money(minor: int | None, currency: str | None) -> str | None:
    if minor is None or currency is None:
        return None
    return str(from_minor(minor, currency))


def _iso(ms: int | None) -> str | None:
    return None if ms is None else to_iso(ms)


@dataclass(frozen=True, slots=True)
class ReturnLine:
    sku: str
    product_id: str | None
    name: str | None
    quantity: int
    reason: str
    note: str | None
    unit_paid_minor: int | None
    return_by: int
    restocked: int
    outlet: int
    disposed: int
    condition: str | None


@dataclass(frozen=True, slots=True)
class Return:
    return_id: str
    order_id: str
    channel: str
    status: str
    user_id: str | None
    anonymous_id: str | None
    partition_key: str
    currency: str | None
    return_method: str | None
    requested_at: int
    received_at: int | None
    inspected_at: int | None
    refunded_at: int | None
    cancelled_at: int | None
    location_id: str | None
    refund_method: str | None
    refund_minor: int | None
    giftcard_id: str | None
    lines: tuple[ReturnLine, ...]

    def as_dict(self) -> dict[str, Any]:
        currency = self.currency
        return {
            "return_id": self.return_id,
            "order_id": self.order_id,
            "status": self.status,
            "channel": self.channel,
            "return_method": self.return_method,
            "userId": self.user_id,
            "anonymousId": self.anonymous_id,
            "location_id": self.location_id,
            "currency": currency,
            "lines": [
                {
                    "sku": line.sku,
                    "product_id": line.product_id,
                    "name": line.name,
                    "quantity": line.quantity,
                    "reason": line.reason,
                    "note": line.note,
                    "unit_paid": _money(line.unit_paid_minor, currency),
                    "return_by": to_iso(line.return_by),
                    "restocked": line.restocked,
                    "outlet": line.outlet,
                    "disposed": line.disposed,
                    "condition": line.condition,
                }
                for line in self.lines
            ],
            "requested_at": to_iso(self.requested_at),
            "received_at": _iso(self.received_at),
            "inspected_at": _iso(self.inspected_at),
            "refunded_at": _iso(self.refunded_at),
            "cancelled_at": _iso(self.cancelled_at),
            "refund": None
            if self.refund_method is None
            else {
                "method": self.refund_method,
                "amount": _money(self.refund_minor, currency),
                "giftcard_id": self.giftcard_id,
            },
        }


def _lines_of(conn: Connection, ws: str, return_ids: Sequence[str]) -> dict[str, list[ReturnLine]]:
    found: dict[str, list[ReturnLine]] = defaultdict(list)
    if not return_ids:
        return found
    rows = conn.execute(
        select(lines)
        .where(lines.c.workspace_id == ws, lines.c.return_id.in_(list(return_ids)))
        .order_by(lines.c.return_id, lines.c.sku)
    )
    for r in rows:
        found[r.return_id].append(
            ReturnLine(
                sku=r.sku,
                product_id=r.product_id,
                name=r.name,
                quantity=int(r.quantity),
                reason=r.reason,
                note=r.note,
                unit_paid_minor=None if r.unit_paid_minor is None else int(r.unit_paid_minor),
                return_by=int(r.return_by),
                restocked=int(r.restocked),
                outlet=int(r.outlet),
                disposed=int(r.disposed),
                condition=r.condition,
            )
        )
    return found


def _returns(conn: Connection, ws: str, rows: Sequence[Any]) -> list[Return]:
    by_return = _lines_of(conn, ws, [r.return_id for r in rows])
    return [
        Return(
            return_id=r.return_id,
            order_id=r.order_id,
            channel=r.channel,
            status=r.status,
            user_id=r.user_id,
            anonymous_id=r.anonymous_id,
            partition_key=r.partition_key,
            currency=r.currency,
            return_method=r.return_method,
            requested_at=int(r.requested_at),
            received_at=r.received_at,
            inspected_at=r.inspected_at,
            refunded_at=r.refunded_at,
            cancelled_at=r.cancelled_at,
            location_id=r.location_id,
            refund_method=r.refund_method,
            refund_minor=None if r.refund_minor is None else int(r.refund_minor),
            giftcard_id=r.giftcard_id,
            lines=tuple(by_return.get(r.return_id, ())),
        )
        for r in rows
    ]


def get_return(
    conn: Connection, workspace_id: str, return_id: str, *, lock: bool = False
) -> Return | None:
    """The return `return_id` with its lines; with `lock`, its row stays locked until the
    transaction ends (PostgreSQL; SQLite's write transaction excludes other writers)."""
    query = select(returns).where(
        returns.c.workspace_id == workspace_id, returns.c.return_id == return_id[:200]
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = _returns(conn, workspace_id, conn.execute(query).all())
    return found[0] if found else None


def list_returns(
    conn: Connection,
    workspace_id: str,
    *,
    order_id: str | None = None,
    order_ids: Sequence[str] | None = None,
    status: str | None = None,
    location_id: str | None = None,
    limit: int = 100,
) -> list[Return]:
    """Returns, newest first, by order (or any of `order_ids`), status or receiving
    location."""
    query = select(returns).where(returns.c.workspace_id == workspace_id)
    if order_id is not None:
        query = query.where(returns.c.order_id == order_id)
    if order_ids is not None:
        query = query.where(returns.c.order_id.in_(list(order_ids)))
    if status is not None:
        query = query.where(returns.c.status == status)
    if location_id is not None:
        query = query.where(returns.c.location_id == location_id)
    query = query.order_by(returns.c.requested_at.desc(), returns.c.return_id).limit(limit)
    return _returns(conn, workspace_id, conn.execute(query).all())


def returned_units(conn: Connection, workspace_id: str, order_id: str) -> dict[str, int]:
    """Per SKU, the units of an order that are returned or on their way back (every return
    but the cancelled ones)."""
    rows = conn.execute(
        select(lines.c.sku, func.sum(lines.c.quantity))
        .select_from(
            lines.join(
                returns,
                and_(
                    returns.c.workspace_id == lines.c.workspace_id,
                    returns.c.return_id == lines.c.return_id,
                ),
            )
        )
        .where(
            returns.c.workspace_id == workspace_id,
            returns.c.order_id == order_id,
            returns.c.status != "cancelled",
        )
        .group_by(lines.c.sku)
    )
    return {sku: int(total) for sku, total in rows}


def history_of(conn: Connection, workspace_id: str, return_id: str) -> list[dict[str, Any]]:
    """The events of a return, oldest first."""
    rows = conn.execute(
        select(history.c.event, history.c.message_id, history.c.at)
        .where(history.c.workspace_id == workspace_id, history.c.return_id == return_id)
        .order_by(history.c.seq)
    )
    return [{"event": e, "messageId": m, "at": to_iso(int(at))} for e, m, at in rows]


# -- outlet listings -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    listing_id: str
    return_id: str
    sku: str
    product_id: str | None
    name: str | None
    location_id: str
    condition: str | None
    currency: str
    price_minor: int
    original_price_minor: int
    discount_percent: int
    status: str  # as stored: available, reserved, sold
    listed_at: int
    reserved_until: int | None
    reserved_user_id: str | None
    reserved_anonymous_id: str | None
    sold_at: int | None
    receipt_id: str | None

    def status_at(self, now_ms: int) -> str:
        """A reservation that ran out reads as available again."""
        if self.status == "reserved" and (self.reserved_until or 0) <= now_ms:
            return "available"
        return self.status

    def as_dict(self, now_ms: int) -> dict[str, Any]:
        status = self.status_at(now_ms)
        return {
            "listing_id": self.listing_id,
            "return_id": self.return_id,
            "sku": self.sku,
            "product_id": self.product_id,
            "name": self.name,
            "location_id": self.location_id,
            "condition": self.condition,
            "currency": self.currency,
            "price": str(from_minor(self.price_minor, self.currency)),
            "original_price": str(from_minor(self.original_price_minor, self.currency)),
            "discount_percent": self.discount_percent,
            "status": status,
            "listed_at": to_iso(self.listed_at),
            "reserved_until": _iso(self.reserved_until) if status == "reserved" else None,
            "sold_at": _iso(self.sold_at),
            "receipt_id": self.receipt_id,
        }


def _listing(r: Any) -> Listing:
    return Listing(
        listing_id=r.listing_id,
        return_id=r.return_id,
        sku=r.sku,
        product_id=r.product_id,
        name=r.name,
        location_id=r.location_id,
        condition=r.condition,
        currency=r.currency,
        price_minor=int(r.price_minor),
        original_price_minor=int(r.original_price_minor),
        discount_percent=int(r.discount_percent),
        status=r.status,
        listed_at=int(r.listed_at),
        reserved_until=None if r.reserved_until is None else int(r.reserved_until),
        reserved_user_id=r.reserved_user_id,
        reserved_anonymous_id=r.reserved_anonymous_id,
        sold_at=None if r.sold_at is None else int(r.sold_at),
        receipt_id=r.receipt_id,
    )


def get_listing(
    conn: Connection, workspace_id: str, listing_id: str, *, lock: bool = False
) -> Listing | None:
    query = select(outlet_listings).where(
        outlet_listings.c.workspace_id == workspace_id,
        outlet_listings.c.listing_id == listing_id[:200],
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _listing(row)


def list_listings(
    conn: Connection,
    workspace_id: str,
    *,
    now_ms: int,
    location_id: str | None = None,
    sku: str | None = None,
    status: str | None = None,
    return_id: str | None = None,
    limit: int = 200,
) -> list[Listing]:
    """Outlet listings, oldest first: a store's shelf (`location_id`, `status=available`)."""
    query = select(outlet_listings).where(outlet_listings.c.workspace_id == workspace_id)
    if location_id is not None:
        query = query.where(outlet_listings.c.location_id == location_id)
    if sku is not None:
        query = query.where(outlet_listings.c.sku == sku)
    if return_id is not None:
        query = query.where(outlet_listings.c.return_id == return_id)
    col = outlet_listings.c
    lapsed = and_(col.status == "reserved", col.reserved_until <= now_ms)
    if status == "available":
        query = query.where(or_(col.status == "available", lapsed))
    elif status == "reserved":
        query = query.where(col.status == "reserved", col.reserved_until > now_ms)
    elif status is not None:
        query = query.where(col.status == status)
    query = query.order_by(col.listed_at, col.listing_id).limit(limit)
    return [_listing(r) for r in conn.execute(query)]


# -- return rate and reasons -----------------------------------------------------------------


def _skus_of(
    conn: Connection, ws: str, product_id: str | None, sku: str | None
) -> tuple[str, list[str]]:
    """The product asked about and its SKUs (raises NotFound for an unknown one)."""
    if sku is not None:
        variant = get_variant(conn, ws, sku)
        if variant is None:
            raise NotFound(
                f"Unknown SKU {sku!r}.",
                field="sku",
                code="unknown_sku",
                params={"sku": sku},
            )
        return variant.product_id, [sku]
    assert product_id is not None
    product = get_product(conn, ws, product_id)
    if product is None:
        raise NotFound(
            f"Unknown product {product_id!r}.",
            field="product_id",
            code="unknown_product",
            params={"product": product_id},
        )
    return product_id, [v.sku for v in product.variants]


def _sold(conn: Connection, ws: str, keys: Iterable[str]) -> dict[str, int]:
    """Units sold per SKU (a product without variants: its product id), from the orders
    projection, cancelled orders left out."""
    wanted = sorted(set(keys))
    ol, oc = order_lines.c, order_changes.c
    cancelled = exists().where(
        oc.workspace_id == ol.workspace_id, oc.order_id == ol.order_id, oc.kind == "cancelled"
    )
    key = func.coalesce(ol.sku, ol.product_id)
    rows = conn.execute(
        select(key, func.sum(ol.quantity))
        .where(
            ol.workspace_id == ws,
            or_(ol.sku.in_(wanted), and_(ol.sku.is_(None), ol.product_id.in_(wanted))),
            ~cancelled,
        )
        .group_by(key)
    )
    return {k: int(q) for k, q in rows}


def return_stats(
    conn: Connection, workspace_id: str, *, product_id: str | None = None, sku: str | None = None
) -> dict[str, Any]:
    """A product's (or one SKU's) return rate, units returned / units sold, with the
    reasons and inspection outcomes of the returned units, overall and per SKU. Units on
    their way back (requested, not received) are counted apart, not in the rate."""
    product, skus = _skus_of(conn, workspace_id, product_id, sku)
    keys = skus if sku is not None else [*skus, product]
    sold = _sold(conn, workspace_id, keys)
    rows = conn.execute(
        select(
            lines.c.sku,
            lines.c.reason,
            returns.c.status,
            func.sum(lines.c.quantity),
            func.sum(lines.c.restocked),
            func.sum(lines.c.outlet),
            func.sum(lines.c.disposed),
        )
        .select_from(
            lines.join(
                returns,
                and_(
                    returns.c.workspace_id == lines.c.workspace_id,
                    returns.c.return_id == lines.c.return_id,
                ),
            )
        )
        .where(lines.c.workspace_id == workspace_id, lines.c.sku.in_(keys))
        .group_by(lines.c.sku, lines.c.reason, returns.c.status)
    )
    returned: Counter[str] = Counter()
    pending: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for line_sku, reason, status, quantity, restocked, outlet, disposed in rows:
        if status in _BACK:
            returned[line_sku] += int(quantity)
            reasons[line_sku][reason] += int(quantity)
            outcomes[line_sku].update(
                restocked=int(restocked), outlet=int(outlet), disposed=int(disposed)
            )
        elif status == "requested":
            pending[line_sku] += int(quantity)

    def summary(of: Sequence[str]) -> dict[str, Any]:
        units_sold = sum(sold.get(k, 0) for k in of)
        units_returned = sum(returned[k] for k in of)
        why: Counter[str] = sum((reasons[k] for k in of), Counter())
        done: Counter[str] = sum((outcomes[k] for k in of), Counter())
        return {
            "units_sold": units_sold,
            "units_returned": units_returned,
            "units_on_their_way_back": sum(pending[k] for k in of),
            "return_rate": round(units_returned / units_sold, 4) if units_sold else None,
            "reasons": dict(why.most_common()),
            "outcomes": {k: done.get(k, 0) for k in ("restocked", "outlet", "disposed")},
        }

    body: dict[str, Any] = {"product_id": product, **summary(keys)}
    if sku is not None:
        body["sku"] = sku
    else:
        body["skus"] = [{"sku": k, **summary([k])} for k in skus]
    return body
