"""Which events move stock, and how: read from the event alone (no database), so the
consumer, the API that records the event, and a replay all agree.

- `Stock Received`: on-hand up at `location_id`.
- `Stock Transferred`: down at `from_location_id`, up at `to_location_id`.
- `Stock Adjusted`: on-hand changes by each line's signed quantity.
- `POS Order Completed`: on-hand down at `store_id` (a till sale happened; never refused,
  even below zero: the shelf was real, the record was not).
- `Return Inspected`: on-hand up at `location_id` by the units of each line whose
  `outcome` is `restock` (returned goods back on the shelf as new; outlet and disposed units
  are not stock).
- `Stock Counted` sets on-hand to what was counted; its change depends on the level at the
  moment it is applied, so it is a `Count`, turned into moves under the row lock.

Click-and-collect events move stock only when Polku's reservation API decided them (the
decision's own movement, see `polku.commerce.stock.actions`): the same events sent by
another system are kept on the timeline, but Polku could never release units it did not
hold. Online `Order Completed` events do not move stock either: the warehouse system that
ships them reports the stock (counts, adjustments).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from polku.commerce.stock.levels import Move

__all__ = ["Count", "Effect", "effect_of", "line_quantity", "line_sku", "lines_of"]


@dataclass(frozen=True, slots=True)
class Count:
    """Units counted at a location: on-hand becomes `quantity`."""

    location_id: str
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Effect:
    kind: str
    moves: tuple[Move, ...] = ()
    counts: tuple[Count, ...] = ()
    reference: str | None = None


def line_sku(line: Mapping[str, Any]) -> str | None:
    """A line's SKU (or its product_id, for products without variants)."""
    for key in ("sku", "product_id"):
        value = line.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)[:200]
    return None


def line_quantity(line: Mapping[str, Any], *, default: int | None = 1) -> int | None:
    """A line's whole quantity (a till line without one is one unit)."""
    value = line.get("quantity", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    if isinstance(value, float) and not value.is_integer():
        return default
    return int(value)


def _text(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)[:100]
    return None


def lines_of(properties: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(SKU, quantity) of each usable line of an event's `products`."""
    return _lines(properties)


def _lines(properties: Mapping[str, Any]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    products = properties.get("products")
    if not isinstance(products, list):
        return found
    for line in products:
        if not isinstance(line, Mapping):
            continue
        sku, quantity = line_sku(line), line_quantity(line)
        if sku is not None and quantity is not None:
            found.append((sku, quantity))
    return found


def effect_of(event: str | None, properties: Mapping[str, Any]) -> Effect | None:
    """How an event moves stock, or None when it does not."""
    if event == "Stock Received":
        location = _text(properties.get("location_id"))
        if location is None:
            return None
        moves = tuple(Move(location, sku, on_hand=q) for sku, q in _lines(properties) if q > 0)
        return Effect("received", moves, reference=_text(properties.get("delivery_id")))
    if event == "Stock Transferred":
        source = _text(properties.get("from_location_id"))
        target = _text(properties.get("to_location_id"))
        if source is None or target is None:
            return None
        moves = tuple(
            move
            for sku, q in _lines(properties)
            if q > 0
            for move in (Move(source, sku, on_hand=-q), Move(target, sku, on_hand=q))
        )
        return Effect("transferred", moves, reference=_text(properties.get("transfer_id")))
    if event == "Stock Adjusted":
        location = _text(properties.get("location_id"))
        if location is None:
            return None
        moves = tuple(Move(location, sku, on_hand=q) for sku, q in _lines(properties) if q)
        return Effect("adjusted", moves, reference=_text(properties.get("reason")))
    if event == "POS Order Completed":
        store = _text(properties.get("store_id"))
        if store is None:
            return None
        moves = tuple(Move(store, sku, on_hand=-q) for sku, q in _lines(properties) if q > 0)
        return Effect("sold", moves, reference=_text(properties.get("receipt_id")))
    if event == "Return Inspected":
        location = _text(properties.get("location_id"))
        if location is None:
            return None
        restocked = properties.get("products")
        lines = [
            line
            for line in (restocked if isinstance(restocked, list) else [])
            if isinstance(line, Mapping) and line.get("outcome") == "restock"
        ]
        moves = tuple(
            Move(location, sku, on_hand=q) for sku, q in _lines({"products": lines}) if q > 0
        )
        return Effect("returned", moves, reference=_text(properties.get("return_id")))
    if event == "Stock Counted":
        location = _text(properties.get("location_id"))
        if location is None:
            return None
        counts = tuple(Count(location, sku, q) for sku, q in _lines(properties) if q >= 0)
        return Effect("counted", counts=counts, reference=_text(properties.get("count_id")))
    return None
