"""What an order event says, read from the event alone (no database), so the consumer, a
replay and the readers agree; and an order's status from its changes.

- `Order Completed` (web and app) and `POS Order Completed` (a till receipt) place an
  order: `placed_of` reads its id, channel, store, amounts, payment and delivery method and
  lines. A till receipt's id is its `order_id` when the till sent one, else
  ``pos:<store_id>:<receipt_id>`` (receipt ids are unique within a store). An online order
  without an `order_id` is kept under ``msg:<messageId>`` so the history is complete, though
  nothing can cancel or refund it by id.
- `Order Cancelled` and `Order Refunded` change one (`change_of`), named by `order_id` or,
  for a till receipt, by `store_id` and `receipt_id`. Refund amounts and quantities may come
  with either sign (integrations disagree); they are read as positive.

Text is cut to its column's width and loses NUL characters (which PostgreSQL cannot store);
an id that would not fit is not cut (two ids could become one): its event is passed by.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from polku.events import CHANNELS, LoggedEvent, NewEvent

__all__ = [
    "CANCELLED",
    "CHANGE_EVENTS",
    "COMPLETED",
    "ORDER_EVENTS",
    "PLACING_EVENTS",
    "POS_COMPLETED",
    "REFUNDED",
    "Change",
    "Line",
    "Placed",
    "amount",
    "change_of",
    "placed_of",
    "pos_order_id",
    "status_of",
]

COMPLETED: Final = "Order Completed"
POS_COMPLETED: Final = "POS Order Completed"
CANCELLED: Final = "Order Cancelled"
REFUNDED: Final = "Order Refunded"
PLACING_EVENTS: Final = frozenset({COMPLETED, POS_COMPLETED})
CHANGE_EVENTS: Final = frozenset({CANCELLED, REFUNDED})
ORDER_EVENTS: Final = PLACING_EVENTS | CHANGE_EVENTS

_ID_WIDTH: Final = 200
_STORE_WIDTH: Final = 100
_NAME_WIDTH: Final = 500
_METHOD_WIDTH: Final = 200
_MAX_LINES: Final = 1000
_MAX_QUANTITY: Final = 1_000_000
_MAX_AMOUNT: Final = Decimal(10) ** 15  # larger is a typo, and would not fit its column
_CHANNELS: Final = frozenset(CHANNELS)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of an order or of a refund; amounts as exact decimals."""

    sku: str | None
    product_id: str | None
    name: str | None
    quantity: int
    price: Decimal | None

    @property
    def key(self) -> str | None:
        """What identifies the product across an order and its refunds."""
        return self.sku or self.product_id


@dataclass(frozen=True, slots=True)
class Placed:
    """An order as its completing event describes it."""

    order_id: str
    channel: str
    store_id: str | None
    receipt_id: str | None
    currency: str | None
    total: Decimal | None
    payment_method: str | None
    shipping_method: str | None
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """A cancellation or a refund of one order."""

    order_id: str
    kind: str  # "cancelled" or "refunded"
    total: Decimal | None  # amount refunded, positive
    lines: tuple[Line, ...]  # refunded lines, quantities positive


def _text(value: Any, width: int) -> str | None:
    """A string or integer property as stored text, cut to `width`; None when absent."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).replace("\x00", "").strip()
    return text[:width] or None


def _id(value: Any) -> str | None:
    """An id that fits its column whole, else None."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).replace("\x00", "").strip()
    return text if 0 < len(text) <= _ID_WIDTH else None


def amount(value: Any) -> Decimal | None:
    """A JSON number (or decimal text) as the exact decimal the sender wrote; None when it is
    not a plausible amount."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                return None
            number = Decimal(repr(value))  # the shortest text that reads back as this float
        elif isinstance(value, (str, Decimal)):
            number = Decimal(value)
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or abs(number) >= _MAX_AMOUNT:
        return None
    return number


def _currency(value: Any) -> str | None:
    if isinstance(value, str) and len(value.strip()) == 3 and value.strip().isalpha():
        return value.strip().upper()
    return None


def _quantity(value: Any, *, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return default
    quantity = abs(int(value))
    return quantity if quantity <= _MAX_QUANTITY else None


def _lines(properties: Mapping[str, Any]) -> tuple[Line, ...]:
    products = properties.get("products")
    if not isinstance(products, list):
        return ()
    found: list[Line] = []
    for item in products[:_MAX_LINES]:
        if not isinstance(item, Mapping):
            continue
        quantity = _quantity(item.get("quantity"), default=1)
        if quantity is None:
            continue
        price = amount(item.get("price"))
        found.append(
            Line(
                sku=_text(item.get("sku"), _ID_WIDTH),
                product_id=_text(item.get("product_id"), _ID_WIDTH),
                name=_text(item.get("name"), _NAME_WIDTH),
                quantity=quantity,
                price=None if price is None else abs(price),
            )
        )
    return tuple(found)


def _payment_method(value: Any) -> str | None:
    """A payment method type (``card``) or a provider's token; an object's ``type``."""
    if isinstance(value, Mapping):
        value = value.get("type")
    return _text(value, _METHOD_WIDTH) if isinstance(value, str) else None


def pos_order_id(store_id: str, receipt_id: str) -> str | None:
    """The order id of a till receipt sent without an `order_id`; None if it would not fit."""
    order_id = f"pos:{store_id}:{receipt_id}"
    return order_id if len(order_id) <= _ID_WIDTH else None


def _order_id(name: str, properties: Mapping[str, Any], message_id: str) -> str | None:
    given = _id(properties.get("order_id"))
    if given is not None:
        return given
    store = _text(properties.get("store_id"), _STORE_WIDTH)
    receipt = _id(properties.get("receipt_id"))
    if store is not None and receipt is not None:
        return pos_order_id(store, receipt)
    if name == COMPLETED:
        return _id("msg:" + message_id)
    return None


def _properties(message: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = message.get("properties")
    return properties if isinstance(properties, Mapping) else {}


def placed_of(event: LoggedEvent | NewEvent, message: Mapping[str, Any]) -> Placed | None:
    """The order an `Order Completed` or `POS Order Completed` event places, else None."""
    name = event.event
    if name not in PLACING_EVENTS:
        return None
    properties = _properties(message)
    order_id = _order_id(name, properties, event.message_id)
    if order_id is None:
        return None
    context = message.get("context")
    channel = context.get("channel") if isinstance(context, Mapping) else None
    if not isinstance(channel, str) or channel not in _CHANNELS:
        channel = "store" if name == POS_COMPLETED else "web"
    shipping = properties.get("shipping_method")
    if shipping is None:
        shipping = properties.get("delivery_method")
    return Placed(
        order_id=order_id,
        channel=channel,
        store_id=_text(properties.get("store_id"), _STORE_WIDTH),
        receipt_id=_text(properties.get("receipt_id"), _ID_WIDTH),
        currency=_currency(properties.get("currency")),
        total=amount(properties.get("total")),
        payment_method=_payment_method(properties.get("payment_method")),
        shipping_method=_text(shipping, _METHOD_WIDTH) if isinstance(shipping, str) else None,
        lines=_lines(properties),
    )


def change_of(event: LoggedEvent | NewEvent, message: Mapping[str, Any]) -> Change | None:
    """The cancellation or refund an `Order Cancelled` / `Order Refunded` event records."""
    name = event.event
    if name not in CHANGE_EVENTS:
        return None
    properties = _properties(message)
    order_id = _order_id(name, properties, event.message_id)
    if order_id is None:
        return None
    if name == CANCELLED:
        return Change(order_id, "cancelled", None, ())
    refunded = amount(properties.get("total"))
    return Change(
        order_id, "refunded", None if refunded is None else abs(refunded), _lines(properties)
    )


def _units(lines: Iterable[Line]) -> dict[str, int]:
    units: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.key is not None:
            units[line.key] += line.quantity
    return units


def status_of(
    total: Decimal | None, lines: Sequence[Line], cancelled: bool, refunds: Sequence[Change]
) -> str:
    """``completed``, ``cancelled``, ``refunded`` or ``partly_refunded``.

    A refund is whole when it names neither an amount nor products (as Segment's spec has
    it), when the amounts refunded reach the order's total, or when the refunded products
    cover every unit of every line; otherwise the order is partly refunded.
    """
    if cancelled:
        return "cancelled"
    if not refunds:
        return "completed"
    if any(r.total is None and not r.lines for r in refunds):
        return "refunded"
    refunded = sum((r.total for r in refunds if r.total is not None), Decimal(0))
    if total is not None and total > 0 and refunded >= total:
        return "refunded"
    ordered = _units(lines)
    if ordered:
        back = _units(line for r in refunds for line in r.lines)
        if all(back.get(key, 0) >= units for key, units in ordered.items()):
            return "refunded"
    return "partly_refunded"
