"""Reading a cart: the person's lines with today's catalogue prices, availability and totals.

A cart is the sum of the lines of every owner that is the person's (`owners.find_holder`).
Names and prices come from the catalogue at read time, so the cart always shows the current
price; each line also shows the unit price of its latest add, and `price_changed` when
they differ. A line that can no longer be bought is kept and flagged (`available: false`
with a `reason`), never dropped:

- ``not_on_sale``: the SKU or its product is inactive in the catalogue;
- ``not_in_catalogue``: the SKU is not in the catalogue at all;
- ``out_of_stock``: no sellable units online (the warehouses) nor at the person's store;
- ``insufficient_stock``: fewer units than the line's quantity, online and at the store.

Stock counts only for SKUs whose stock Polku keeps (any stock level recorded for them): a
retailer that does not send stock has its carts judged by the catalogue alone. The person's
store is the `store` asked for, else the profile's ``preferred_store`` trait.

Totals are per currency, in exact decimals, over the lines that can be bought.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from polku.commerce.carts.lines import LineState, combine, read_lines
from polku.commerce.carts.owners import Holder, Shopper, find_holder
from polku.commerce.catalog.money import from_minor
from polku.commerce.catalog.queries import Variant, get_products, get_variants
from polku.commerce.locations.queries import list_locations
from polku.commerce.stock.queries import levels_of
from polku.events import to_iso
from polku.identity.identifiers import IdentityConfig
from polku.profiles.queries import get_profile

__all__ = [
    "MAX_LINES",
    "MAX_QUANTITY",
    "Cart",
    "CartLine",
    "Total",
    "get_cart",
    "person_lines",
    "view",
]

MAX_QUANTITY = 99
"""Units of one SKU a cart line holds at most (a merge that sums past it shows this many)."""

MAX_LINES = 100
"""Different SKUs one cart holds at most."""


@dataclass(frozen=True, slots=True)
class CartLine:
    sku: str
    product_id: str
    name: str
    variant: str | None
    brand: str | None
    category: str | None
    image_url: str | None
    quantity: int
    price: Decimal | None  # today's unit price; None when the SKU left the catalogue
    currency: str | None
    price_when_added: Decimal | None
    currency_when_added: str | None
    available: bool
    reason: str | None
    message: str | None
    stock: Mapping[str, Any] | None
    added_at: int
    updated_at: int

    @property
    def price_changed(self) -> bool:
        if self.price_when_added is None or self.price is None:
            return False
        return (self.price_when_added, self.currency_when_added) != (self.price, self.currency)

    @property
    def line_total(self) -> Decimal | None:
        return None if self.price is None else self.price * self.quantity

    def as_dict(self) -> dict[str, Any]:
        total = self.line_total
        return {
            "sku": self.sku,
            "product_id": self.product_id,
            "name": self.name,
            "variant": self.variant,
            "brand": self.brand,
            "category": self.category,
            "image_url": self.image_url,
            "quantity": self.quantity,
            "price": None if self.price is None else str(self.price),
            "currency": self.currency,
            "line_total": None if total is None else str(total),
            "price_when_added": None
            if self.price_when_added is None
            else str(self.price_when_added),
            "currency_when_added": self.currency_when_added,
            "price_changed": self.price_changed,
            "available": self.available,
            "reason": self.reason,
            "message": self.message,
            "stock": None if self.stock is None else dict(self.stock),
            "added_at": to_iso(self.added_at),
            "updated_at": to_iso(self.updated_at),
        }

    def as_product(self, position: int | None = None) -> dict[str, Any]:
        """The line as a Segment e-commerce Product object (prices as JSON numbers)."""
        found: dict[str, Any] = {
            "product_id": self.product_id,
            "sku": self.sku,
            "name": self.name,
            "quantity": self.quantity,
        }
        if self.price is not None and self.currency is not None:
            found["price"] = float(self.price)
        for key, value in (
            ("variant", self.variant),
            ("brand", self.brand),
            ("category", self.category),
            ("image_url", self.image_url),
        ):
            if value:
                found[key] = value
        if position is not None:
            found["position"] = position
        return found


@dataclass(frozen=True, slots=True)
class Total:
    currency: str
    subtotal: Decimal
    quantity: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "subtotal": str(self.subtotal),
            "quantity": self.quantity,
        }


@dataclass(frozen=True, slots=True)
class Cart:
    cart_id: str | None  # None: a device that has no cart yet
    profile_id: str | None
    store_id: str | None
    lines: tuple[CartLine, ...]
    totals: tuple[Total, ...]
    updated_at: int | None

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)

    def line(self, sku: str) -> CartLine | None:
        return next((line for line in self.lines if line.sku == sku), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cart_id": self.cart_id,
            "profile_id": self.profile_id,
            "store_id": self.store_id,
            "lines": [line.as_dict() for line in self.lines],
            "totals": [total.as_dict() for total in self.totals],
            "quantity": self.quantity,
            "unavailable": sum(1 for line in self.lines if not line.available),
            "updated_at": None if self.updated_at is None else to_iso(self.updated_at),
        }


def person_lines(conn: Connection, ws: str, holder: Holder) -> dict[str, LineState]:
    """The person's lines by SKU: every owner's lines of a SKU summed (positive ones only)."""
    summed: dict[str, LineState | None] = {}
    for owned in read_lines(conn, ws, holder.owners).values():
        for sku, line in owned.items():
            summed[sku] = combine(summed.get(sku), line)
    return {sku: line for sku, line in summed.items() if line is not None and line.quantity > 0}


def _preferred_store(
    conn: Connection, ws: str, holder: Holder, config: IdentityConfig
) -> str | None:
    if holder.profile_id is None:
        return None
    profile = get_profile(conn, ws, holder.profile_id, config)
    value = None if profile is None else profile.traits.get("preferred_store")
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _stock(
    conn: Connection, ws: str, skus: Sequence[str], store: str | None
) -> dict[str, dict[str, Any]]:
    """Sellable units online and at `store` of each SKU whose stock Polku keeps."""
    if not skus:
        return {}
    warehouses = {
        loc.location_id for loc in list_locations(conn, ws) if loc.kind != "store" and loc.active
    }
    found: dict[str, dict[str, Any]] = {}
    for sku in skus:
        rows = levels_of(conn, ws, sku=sku)
        if not rows:
            continue
        online = sum(r["sellable"] for r in rows if r["location_id"] in warehouses)
        at_store = sum(r["sellable"] for r in rows if store and r["location_id"] == store)
        found[sku] = {"online": online, "store": at_store if store else None}
    return found


def _availability(
    line: LineState, variant: Variant | None, stock: Mapping[str, Any] | None, store: str | None
) -> tuple[bool, str | None, str | None]:
    if variant is None:
        return False, "not_in_catalogue", f"SKU {line.sku} is no longer in the catalogue."
    if not variant.active:
        return False, "not_on_sale", f"SKU {line.sku} is not sold any more."
    if stock is None:
        return True, None, None
    best = max(stock["online"], stock["store"] or 0)
    where = "online" + (f" or at store {store}" if store else "")
    if best == 0:
        return False, "out_of_stock", f"None left {where}."
    if best < line.quantity:
        return False, "insufficient_stock", f"Only {best} left {where}."
    return True, None, None


def view(
    conn: Connection,
    ws: str,
    holder: Holder,
    config: IdentityConfig,
    *,
    store: str | None = None,
) -> Cart:
    """The cart of `holder`, priced from the catalogue and checked against stock."""
    held = person_lines(conn, ws, holder)
    ordered = sorted(held.values(), key=lambda line: (line.added_at, line.sku))
    variants = get_variants(conn, ws, held)
    products = get_products(
        conn, ws, {line.product_id for line in ordered} | {v.product_id for v in variants.values()}
    )
    where = store if store is not None else _preferred_store(conn, ws, holder, config)
    stock = _stock(conn, ws, sorted(held), where)
    out: list[CartLine] = []
    sums: dict[str, list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    for line in ordered:
        variant = variants.get(line.sku)
        product = products.get(variant.product_id if variant else line.product_id)
        quantity = min(line.quantity, MAX_QUANTITY)
        capped = replace(line, quantity=quantity)
        available, reason, message = _availability(capped, variant, stock.get(line.sku), where)
        shown = [v for v in (variant.colour, variant.size) if v] if variant else []
        added = (
            from_minor(line.added_price_minor, line.added_currency)
            if line.added_price_minor is not None and line.added_currency is not None
            else None
        )
        item = CartLine(
            sku=line.sku,
            product_id=variant.product_id if variant else line.product_id,
            name=product.name if product else line.sku,
            variant=" / ".join(shown) or None,
            brand=product.brand if product else None,
            category=" > ".join(product.category) if product and product.category else None,
            image_url=(variant.image_url if variant else None)
            or (product.image_url if product else None),
            quantity=quantity,
            price=variant.price if variant else None,
            currency=variant.currency if variant else None,
            price_when_added=added,
            currency_when_added=line.added_currency if added is not None else None,
            available=available,
            reason=reason,
            message=message,
            stock=stock.get(line.sku),
            added_at=line.added_at,
            updated_at=line.updated_at,
        )
        out.append(item)
        if available and item.currency is not None and item.line_total is not None:
            sums[item.currency][0] += item.line_total
            sums[item.currency][1] += quantity
    totals = tuple(Total(cur, sub, qty) for cur, (sub, qty) in sorted(sums.items()))
    updated = max((line.updated_at for line in ordered), default=None)
    return Cart(holder.cart_id, holder.profile_id, where, tuple(out), totals, updated)


def get_cart(
    conn: Connection,
    ws: str,
    shopper: Shopper,
    config: IdentityConfig,
    *,
    store: str | None = None,
) -> Cart:
    """The cart of `shopper` as any of their devices sees it now (empty if they have none)."""
    return view(conn, ws, find_holder(conn, ws, shopper, config), config, store=store)
