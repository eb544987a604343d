"""Reading stock: levels, movements, reservations, and the availability a product page shows.

Availability answers "where can I get this, and how soon": per variant, the units sellable
online (the warehouses) and in each store, a low-stock flag ("only 2 left"), and the
nearest stores that have it, with their distance and whether they are open, from
coordinates, a postal code, or the customer's preferred store. It reads the levels of the
product's SKUs in one query (the locations and their opening statuses come from a cache of
a few seconds, `reference.py`) and does the rest in Python, so it stays within a few
milliseconds for 50 locations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from polku.commerce.catalog.queries import Variant, get_product, get_variant
from polku.commerce.locations.geo import distance_km
from polku.commerce.locations.queries import Location
from polku.commerce.stock.reference import reference
from polku.commerce.stock.tables import levels, movements, reservation_lines, reservations
from polku.errors import NotFound
from polku.events import to_iso

__all__ = [
    "LOW_STOCK",
    "availability",
    "levels_of",
    "list_reservations",
    "movements_of",
    "reservations_of",
]

LOW_STOCK = 3
"""At or below this many sellable units a store shows "only N left"."""

_Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class _Cell:
    on_hand: int
    reserved: int

    @property
    def sellable(self) -> int:
        return max(0, self.on_hand - self.reserved)


def _cells(conn: Connection, ws: str, skus: Sequence[str]) -> dict[tuple[str, str], _Cell]:
    if not skus:
        return {}
    rows = conn.execute(
        select(levels.c.location_id, levels.c.sku, levels.c.on_hand, levels.c.reserved).where(
            levels.c.workspace_id == ws, levels.c.sku.in_(list(skus))
        )
    )
    return {(loc, sku): _Cell(int(on), int(res)) for loc, sku, on, res in rows}


def availability(
    conn: Connection,
    ws: str,
    *,
    product_id: str | None = None,
    sku: str | None = None,
    near: _Point | None = None,
    preferred_store: str | None = None,
    k: int = 5,
    at: datetime,
) -> dict[str, Any]:
    """Availability of a product (all its active variants) or of one SKU; see the module doc.

    Raises `NotFound` for an unknown product or SKU."""
    variants: list[Variant]
    if sku is not None:
        variant = get_variant(conn, ws, sku)
        if variant is None:
            raise NotFound(
                f"Unknown SKU {sku!r}.",
                field="sku",
                code="unknown_sku",
                hint="Use a SKU from the catalogue.",
                params={"sku": sku},
            )
        variants, pid = [variant], variant.product_id
    else:
        assert product_id is not None
        product = get_product(conn, ws, product_id)
        if product is None:
            raise NotFound(
                f"Unknown product {product_id!r}.",
                field="product_id",
                code="unknown_product",
                hint="Use a product id from the catalogue.",
                params={"product": product_id},
            )
        variants, pid = [v for v in product.variants if v.active], product.product_id
    known, statuses = reference(conn, ws, at)
    locations = known.locations
    by_id = known.by_id()
    stores = [loc for loc in locations if loc.kind == "store"]
    warehouses = [loc for loc in locations if loc.kind != "store"]
    cells = _cells(conn, ws, [v.sku for v in variants])
    if near is None and preferred_store is not None and preferred_store in by_id:
        home = by_id[preferred_store]
        near = (home.latitude, home.longitude) if home.latitude is not None else None

    def distance(loc: Location) -> float | None:
        if near is None or loc.latitude is None or loc.longitude is None:
            return None
        return round(distance_km(near[0], near[1], loc.latitude, loc.longitude), 2)

    distances = {s.location_id: distance(s) for s in stores}

    def nearest_first(store: Location) -> tuple[bool, float, str]:
        km = distances[store.location_id]
        return (km is None, km if km is not None else 0.0, store.name)

    order = sorted(stores, key=nearest_first)
    out_variants: list[dict[str, Any]] = []
    for v in variants:
        per_store: list[dict[str, Any]] = []
        for store in order:
            cell = cells.get((store.location_id, v.sku), _Cell(0, 0))
            status = statuses.get(store.location_id)
            per_store.append(
                {
                    "location_id": store.location_id,
                    "name": store.name,
                    "city": store.city,
                    "sellable": cell.sellable,
                    "low_stock": 0 < cell.sellable <= LOW_STOCK,
                    "distance_km": distances[store.location_id],
                    "click_and_collect": store.click_and_collect,
                    "open_now": status.open_now if status else False,
                    "closes_at": _iso(status.closes_at) if status else None,
                    "next_opening": _iso(status.next_opening) if status else None,
                    "preferred": store.location_id == preferred_store,
                }
            )
        online = sum(cells.get((w.location_id, v.sku), _Cell(0, 0)).sellable for w in warehouses)
        out_variants.append(
            {
                "sku": v.sku,
                "colour": v.colour,
                "size": v.size,
                "price": str(v.price),
                "currency": v.currency,
                "online": {"sellable": online, "low_stock": 0 < online <= LOW_STOCK},
                "in_stores": sum(row["sellable"] for row in per_store),
                "stores": per_store,
                "nearest_with_stock": [row for row in per_store if row["sellable"] > 0][:k],
            }
        )
    return {
        "product_id": pid,
        "reference": {"latitude": near[0], "longitude": near[1]} if near else None,
        "preferred_store": preferred_store,
        "low_stock_threshold": LOW_STOCK,
        "at": at.isoformat(),
        "variants": out_variants,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def levels_of(
    conn: Connection, ws: str, *, sku: str | None = None, location_id: str | None = None
) -> list[dict[str, Any]]:
    """Stock levels, filtered by SKU and/or location (at least one)."""
    query = select(levels).where(levels.c.workspace_id == ws)
    if sku is not None:
        query = query.where(levels.c.sku == sku)
    if location_id is not None:
        query = query.where(levels.c.location_id == location_id)
    query = query.order_by(levels.c.location_id, levels.c.sku).limit(5000)
    return [
        {
            "location_id": r.location_id,
            "sku": r.sku,
            "on_hand": r.on_hand,
            "reserved": r.reserved,
            "sellable": max(0, r.on_hand - r.reserved),
            "updated_at": to_iso(r.updated_at),
        }
        for r in conn.execute(query)
    ]


def movements_of(
    conn: Connection, ws: str, sku: str, *, location_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """A SKU's stock history, newest first: what moved, why, and which event did it."""
    query = select(movements).where(movements.c.workspace_id == ws, movements.c.sku == sku)
    if location_id is not None:
        query = query.where(movements.c.location_id == location_id)
    query = query.order_by(movements.c.at.desc(), movements.c.movement_id).limit(limit)
    return [
        {
            "message_id": r.movement_id,
            "location_id": r.location_id,
            "kind": r.kind,
            "on_hand_delta": r.on_hand_delta,
            "reserved_delta": r.reserved_delta,
            "reference": r.reference,
            "at": to_iso(r.at),
        }
        for r in conn.execute(query)
    ]


def list_reservations(
    conn: Connection,
    ws: str,
    *,
    location_id: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Reservations, oldest due first (a store's list of what to prepare and hand over)."""
    query = select(reservations).where(reservations.c.workspace_id == ws)
    if location_id is not None:
        query = query.where(reservations.c.location_id == location_id)
    if status is not None:
        query = query.where(reservations.c.status == status)
    rows = conn.execute(query.order_by(reservations.c.expires_at).limit(limit)).all()
    return _with_lines(conn, ws, rows, to_iso)


def _with_lines(
    conn: Connection, ws: str, rows: Sequence[Any], when: Callable[[int], Any]
) -> list[dict[str, Any]]:
    """Reservation rows as dicts with their lines, times through `when`."""
    ids = [r.reservation_id for r in rows]
    lines: dict[str, list[dict[str, Any]]] = {rid: [] for rid in ids}
    if ids:
        for rid, line_sku, quantity in conn.execute(
            select(
                reservation_lines.c.reservation_id,
                reservation_lines.c.sku,
                reservation_lines.c.quantity,
            ).where(
                reservation_lines.c.workspace_id == ws,
                reservation_lines.c.reservation_id.in_(ids),
            )
        ):
            lines[rid].append({"sku": line_sku, "quantity": quantity})
    return [
        {
            "reservation_id": r.reservation_id,
            "location_id": r.location_id,
            "status": r.status,
            "lines": lines[r.reservation_id],
            "created_at": when(r.created_at),
            "expires_at": when(r.expires_at),
            "user_id": r.user_id,
            "anonymous_id": r.anonymous_id,
        }
        for r in rows
    ]


def reservations_of(
    conn: Connection,
    ws: str,
    *,
    user_ids: Sequence[str] = (),
    anonymous_ids: Sequence[str] = (),
    limit: int = 50,
) -> list[dict[str, Any]]:
    """A person's click & collect reservations (by the user ids and anonymous ids they
    hold), newest first; as `list_reservations` with times in epoch milliseconds."""
    if not user_ids and not anonymous_ids:
        return []
    r = reservations.c
    rows = conn.execute(
        select(reservations)
        .where(
            r.workspace_id == ws,
            or_(r.user_id.in_(list(user_ids)), r.anonymous_id.in_(list(anonymous_ids))),
        )
        .order_by(r.created_at.desc(), r.reservation_id)
        .limit(limit)
    ).all()
    return _with_lines(conn, ws, rows, int)
