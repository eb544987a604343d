"""What an order's customer paid per unit, so that a refund never exceeds it.

A unit's price on the order is what the shop asked; what the customer paid is less when the
order had a discount of its own (a coupon on the whole basket): the order's total is then
below the sum of its lines, and the discount is shared among the lines in proportion to
their value, as accounting does for a partial refund. Amounts are whole minor units and
every share is rounded down, so the refunds of an order's units never add up to more than
was paid. Shipping is not refunded with returned goods.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from polku.commerce.catalog.money import minor_digits
from polku.commerce.orders.queries import Order

__all__ = ["Bought", "bought_of", "line_key", "to_minor"]


@dataclass(frozen=True, slots=True)
class Bought:
    """What an order holds of one SKU."""

    key: str  # the SKU, or the product id of a product without variants
    product_id: str | None
    name: str | None
    quantity: int
    unit_paid_minor: int | None  # None: the order named no price or currency for it


def to_minor(amount: Decimal, currency: str) -> int | None:
    """`amount` in minor units of `currency`, rounded down; None for an unknown currency."""
    try:
        digits = minor_digits(currency)
    except KeyError:
        return None
    return int(amount.scaleb(digits).to_integral_value(rounding=ROUND_FLOOR))


def line_key(sku: str | None, product_id: str | None) -> str | None:
    return sku or product_id or None


def bought_of(order: Order) -> dict[str, Bought]:
    """Per SKU: the units the order holds and the price paid per unit (see the module doc)."""
    currency = order.currency
    gross: list[tuple[str, int, int | None]] = []  # key, quantity, unit price in minor units
    names: dict[str, tuple[str | None, str | None]] = {}
    for line in order.lines:
        key = line_key(line.sku, line.product_id)
        if key is None or line.quantity <= 0:
            continue
        unit = None
        if line.price is not None and currency is not None:
            unit = to_minor(line.price, currency)
        gross.append((key, line.quantity, unit))
        names.setdefault(key, (line.product_id, line.name))
    known = [q * unit for _, q, unit in gross if unit is not None]
    lines_sum = sum(known)
    total = None
    if order.total is not None and currency is not None:
        total = to_minor(order.total, currency)
    allocate = total is not None and len(known) == len(gross) and 0 < total < lines_sum
    quantities: dict[str, int] = {}
    paid: dict[str, int | None] = {}
    for key, quantity, unit in gross:
        quantities[key] = quantities.get(key, 0) + quantity
        if unit is None or (key in paid and paid[key] is None):
            paid[key] = None
            continue
        if allocate and total is not None:
            # This line's share of what the customer paid: rounded down, never up.
            line_paid = quantity * unit * total // lines_sum
        else:
            line_paid = quantity * unit
        paid[key] = (paid.get(key) or 0) + line_paid
    found: dict[str, Bought] = {}
    for key, quantity in quantities.items():
        line_total = paid.get(key)
        unit_paid = None if line_total is None else line_total // quantity
        product_id, name = names[key]
        found[key] = Bought(key, product_id, name, quantity, unit_paid)
    return found
