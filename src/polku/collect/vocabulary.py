"""The events Polku knows, and the property checks it applies to them.

The rule is *validate what is known, keep what is unknown*: an event name that is not in
`KNOWN_EVENTS`, and a property that its `EventSpec` does not define, are always accepted and
stored unchanged. A known property must have its documented type; a required one must be present.
`check_properties` runs on every track call of the ingest path, so each event's checks are
compiled once, here, into a table of rules, and a valid property costs one dict lookup and one
type test.

The vocabulary is the Segment e-commerce v2 spec as it is (every property optional, as in the
spec, so existing tracking keeps working) plus Polku's events for the physical store, consent and
pre-purchase research. `docs/events.md` is generated from it (`scripts/gen_events_doc.py`).

Decisions worth knowing:

* ``null`` counts as absent: an optional property sent as ``null`` is accepted, a required one
  sent as ``null`` or ``""`` is reported as ``required``.
* Ids (``product_id``, ``sku``, ``order_id``, ``store_id``, ...) may be strings or integers,
  because many shops number their products and stores; other types (``true``, ``12.5``, arrays)
  are rejected. Every other text property must be a string.
* A number is a JSON integer or float, never ``true``/``false``. An integer property also takes
  a float with no fractional part (``2.0``), which some languages serialise.
* Money (prices, totals, revenue, shipping, tax, discounts) must be 0 or more; a discount is the
  amount taken off, as a positive number. The exception is ``Order Refunded``: integrations
  disagree on the sign of a refund (Segment's example is positive, many ledgers send it
  negative), so its amounts and product quantities may have either sign.
* ``quantity`` is a whole number of units. Sell-by-weight lines on a till receipt send
  ``quantity: 1`` with the line's price, and may carry the weight in an extra property.
* ``currency`` is a three-letter ISO 4217 code in any case (``EUR``, ``eur``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Literal

__all__ = [
    "CATEGORIES",
    "COMMON_PROPERTIES",
    "KNOWN_EVENTS",
    "EventSpec",
    "FieldProblem",
    "PropertyKind",
    "PropertySpec",
    "check_properties",
]

PropertyKind = Literal[
    "string",
    "id",
    "number",
    "integer",
    "boolean",
    "object",
    "array",
    "datetime",
    "currency",
    "string_or_object",
    "string_or_number",
]

_KIND_LABELS: Final[Mapping[str, str]] = {
    "string": "string",
    "id": "string or integer",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
    "datetime": "ISO-8601 date-time",
    "currency": "ISO 4217 code",
    "string_or_object": "string or object",
    "string_or_number": "string or number",
}


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing wrong with one field of a message, said so that the sender can fix it."""

    field: str  # dotted path from the message root, e.g. "properties.products[2].price"
    code: str  # stable machine code: "wrong_type", "required", "out_of_range", "invalid_format"
    message: str  # what is wrong and what to send instead


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """What Polku knows about one property: its kind, its meaning and its limits.

    ``items`` describes the objects of an ``array`` property (``products``, ``filters``), and
    ``item_name`` names that object in the docs ("Product").
    """

    kind: PropertyKind
    description: str
    minimum: float | None = None
    items: Mapping[str, PropertySpec] | None = None
    item_name: str = ""

    @property
    def label(self) -> str:
        """The type as the docs show it, e.g. ``number ≥ 0`` or ``array of Product``."""
        if self.kind == "array" and self.item_name:
            return f"array of {self.item_name}"
        label = _KIND_LABELS[self.kind]
        if self.minimum is not None:
            label += f" ≥ {self.minimum:g}"
        return label


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A known track event: its properties, which of them are required, and one line of docs."""

    name: str
    category: str  # a key of CATEGORIES
    description: str
    properties: Mapping[str, PropertySpec]
    required: frozenset[str]


# --- The vocabulary ------------------------------------------------------------------------

CATEGORIES: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "ecommerce": (
            "E-commerce (Segment v2)",
            "The Segment e-commerce v2 events as the Segment spec defines them; every property "
            "is optional, as in the spec.",
        ),
        "store": (
            "Store and omnichannel",
            "The physical store: stock checks, visits, till receipts, click and collect, returns.",
        ),
        "stock": (
            "Stock",
            "Quantities per SKU and location, as the stores, warehouses and Polku change them: "
            "deliveries, counts, transfers, adjustments. Sales and click-and-collect "
            "reservations move stock too (see the store events).",
        ),
        "research": (
            "Product research",
            "A shopper reading what they need to know before buying.",
        ),
        "consent": (
            "Consent",
            "A person's permission to be contacted or profiled, per purpose and channel.",
        ),
        "giftcards": (
            "Gift cards",
            "A gift card's ledger as Polku keeps it: issued, redeemed, expired, cancelled. "
            "Amounts are in the card's currency; the code itself is never in an event.",
        ),
        "signals": (
            "Buying signals",
            "What staff and agents did with a routed buying signal (polku.signals): claimed, "
            "acknowledged, an outcome, closed. Keyed by the profile (`profile:<id>`).",
        ),
    }
)
"""Event categories in the order the docs show them: key -> (title, one-line explanation)."""


def _text(description: str) -> PropertySpec:
    return PropertySpec("string", description)


def _id(description: str) -> PropertySpec:
    return PropertySpec("id", description)


def _money(description: str, *, signed: bool = False) -> PropertySpec:
    return PropertySpec("number", description, minimum=None if signed else 0)


def _count(description: str, *, signed: bool = False) -> PropertySpec:
    return PropertySpec("integer", description, minimum=None if signed else 0)


def _props(*groups: Mapping[str, PropertySpec], **extra: PropertySpec) -> dict[str, PropertySpec]:
    merged: dict[str, PropertySpec] = {}
    for group in groups:
        merged.update(group)
    merged.update(extra)
    return merged


COMMON_PROPERTIES: Final[Mapping[str, PropertySpec]] = MappingProxyType(
    {"store_id": _id("The store where it happened, or that it concerns.")}
)
"""Properties that every known event may carry, with the same meaning everywhere."""

_PRODUCT_FIELDS: Final[Mapping[str, PropertySpec]] = {
    "product_id": _id("Database id of the product."),
    "sku": _id("Stock-keeping unit; may equal product_id."),
    "category": _text("Product category."),
    "name": _text("Product name."),
    "brand": _text("Brand."),
    "variant": _text("Variant, e.g. size or colour."),
    "price": _money("Unit price, in `currency`."),
    "quantity": _count("Number of units."),
    "coupon": _text("Coupon code that applies to this product."),
    "position": _count("Position in the list shown, e.g. 3."),
    "url": _text("URL of the product page."),
    "image_url": _text("URL of the product image."),
}


def _products(fields: Mapping[str, PropertySpec], description: str) -> PropertySpec:
    return PropertySpec(
        "array", description, items=MappingProxyType(dict(fields)), item_name="Product"
    )


_PRODUCT: Final = _products(_PRODUCT_FIELDS, "The products, each a Product object.")
_REFUND_PRODUCT: Final = _products(
    _props(
        _PRODUCT_FIELDS,
        price=_money("Unit price refunded; either sign.", signed=True),
        quantity=_count("Number of units refunded; either sign.", signed=True),
    ),
    "The refunded products, each a Product object (price and quantity of either sign).",
)
_SELECTION: Final[Mapping[str, PropertySpec]] = MappingProxyType(
    {
        "type": _text("What is filtered or sorted on, e.g. `price`."),
        "value": PropertySpec("string_or_number", "The choice, e.g. `under-25` or `desc`."),
    }
)
_CURRENCY: Final = PropertySpec("currency", "Currency of the amounts, e.g. `EUR`.")
_CART: Final = {"cart_id": _id("Shopping cart id.")}
_PROMOTION: Final = {
    "promotion_id": _id("Promotion id."),
    "creative": _text("The creative shown, e.g. `top_banner_2`."),
    "name": _text("Promotion name."),
    "position": PropertySpec("string_or_number", "Where it was shown, e.g. `home_banner_top`."),
}
_ORDER: Final = {
    "order_id": _id("Order (transaction) id."),
    "affiliation": _text("Store or channel the order came from."),
    "total": _money("Revenue with discounts and coupons taken into account."),
    "revenue": _money("Revenue excluding shipping and tax."),
    "shipping": _money("Shipping cost."),
    "tax": _money("Total tax."),
    "discount": _money("Total discount, as a positive amount."),
    "coupon": _text("Coupon redeemed on the order."),
    "currency": _CURRENCY,
    "products": _PRODUCT,
}
_CHECKOUT_STEP: Final = {
    "checkout_id": _id("Checkout id."),
    "step": _count("Number of the checkout step."),
    "shipping_method": _text("Shipping method chosen, e.g. `click_and_collect`."),
    "payment_method": _text("Payment method type chosen (never a card number)."),
}
_COUPON: Final = {
    "order_id": _id("Order id, if any."),
    "cart_id": _id("Cart id, if any."),
    "coupon_id": _id("Coupon id or code."),
    "coupon_name": _text("Coupon name."),
}
_WISHLIST: Final = {
    "wishlist_id": _id("Wishlist id."),
    "wishlist_name": _text("Wishlist name."),
}
_SHARE: Final = {
    "share_via": _text("How it was shared, e.g. `email`."),
    "share_message": _text("The message the sender wrote."),
    "recipient": _text("Who it was shared with."),
}
_CUSTOMER_AT_TILL: Final = {
    "loyalty_card": _id("Loyalty card number scanned or typed at the till."),
    "email": _text("Customer's email, if given at the till."),
    "receipt_email": _text("Email the digital receipt was sent to."),
    "phone": _id("Customer's phone number, if given at the till."),
    "pos_customer_id": _id("The till system's own customer id."),
}
_STORE_REQUIRED: Final = _id("The store, as your store list names it, e.g. `HEL-01`.")
_LOCATION_REQUIRED: Final = _id("The store or warehouse, as the location list names it.")
_STOCK_LINE_FIELDS: Final[Mapping[str, PropertySpec]] = {
    "sku": _id("Stock-keeping unit."),
    "product_id": _id("Database id of the product."),
    "quantity": _count("Number of units."),
}
_STOCK_LINES: Final = _products(_STOCK_LINE_FIELDS, "The SKUs, each with a number of units.")


def _event(
    name: str,
    category: str,
    description: str,
    properties: Mapping[str, PropertySpec],
    *,
    required: Collection[str] = (),
) -> EventSpec:
    """An `EventSpec` with the common properties added (the event's own definition wins)."""
    if category not in CATEGORIES:
        raise ValueError(f"{name}: unknown category {category!r}")
    merged = dict(properties)
    for key, common in COMMON_PROPERTIES.items():
        merged.setdefault(key, common)
    missing = set(required) - merged.keys()
    if missing:
        raise ValueError(f"{name}: required but not defined: {sorted(missing)}")
    return EventSpec(name, category, description, MappingProxyType(merged), frozenset(required))


_DECLARED: Final[tuple[EventSpec, ...]] = (
    # Segment e-commerce v2: browsing
    _event(
        "Products Searched",
        "ecommerce",
        "The shopper searched for products.",
        {"query": PropertySpec("string_or_object", "What the shopper searched for.")},
    ),
    _event(
        "Product List Viewed",
        "ecommerce",
        "The shopper viewed a product list or category.",
        {
            "list_id": _id("The list shown."),
            "category": _text("The category shown."),
            "products": _PRODUCT,
        },
    ),
    _event(
        "Product List Filtered",
        "ecommerce",
        "The shopper filtered or sorted a product list.",
        {
            "list_id": _id("The list shown."),
            "category": _text("The category shown."),
            "filters": PropertySpec(
                "array", "Filters in use.", items=_SELECTION, item_name="Selection"
            ),
            "sorts": PropertySpec(
                "array", "Sort orders in use.", items=_SELECTION, item_name="Selection"
            ),
            "products": _PRODUCT,
        },
    ),
    # promotions
    _event(
        "Promotion Viewed",
        "ecommerce",
        "The shopper saw an internal promotion (a banner, a tile).",
        dict(_PROMOTION),
    ),
    _event(
        "Promotion Clicked",
        "ecommerce",
        "The shopper clicked an internal promotion.",
        dict(_PROMOTION),
    ),
    # core ordering
    _event(
        "Product Clicked",
        "ecommerce",
        "The shopper clicked a product in a list.",
        dict(_PRODUCT_FIELDS),
    ),
    _event(
        "Product Viewed",
        "ecommerce",
        "The shopper viewed a product's details (page, screen or preview).",
        _props(
            _PRODUCT_FIELDS,
            currency=_CURRENCY,
            value=_money("Total value of the product after quantity."),
        ),
    ),
    _event(
        "Product Added",
        "ecommerce",
        "The shopper added a product to the cart.",
        _props(_CART, _PRODUCT_FIELDS),
    ),
    _event(
        "Product Removed",
        "ecommerce",
        "The shopper removed a product from the cart.",
        _props(_CART, _PRODUCT_FIELDS),
    ),
    _event(
        "Cart Viewed",
        "ecommerce",
        "The shopper viewed the cart.",
        _props(_CART, products=_PRODUCT),
    ),
    _event(
        "Checkout Started",
        "ecommerce",
        "The shopper started checkout; include every product in the cart.",
        _props(
            _ORDER,
            value=_money("Revenue with discounts and coupons taken into account."),
        ),
    ),
    _event(
        "Checkout Step Viewed",
        "ecommerce",
        "The shopper viewed a checkout step.",
        dict(_CHECKOUT_STEP),
    ),
    _event(
        "Checkout Step Completed",
        "ecommerce",
        "The shopper completed a checkout step.",
        dict(_CHECKOUT_STEP),
    ),
    _event(
        "Payment Info Entered",
        "ecommerce",
        "The shopper entered payment information.",
        _props(_CHECKOUT_STEP, order_id=_id("Order id, if known.")),
    ),
    _event(
        "Order Updated",
        "ecommerce",
        "An order changed; include every product in it.",
        dict(_ORDER),
    ),
    _event(
        "Order Completed",
        "ecommerce",
        "The shopper completed an order online; include every product in it.",
        _props(
            _ORDER,
            checkout_id=_id("Checkout id."),
            subtotal=_money("Order total after discounts, before tax and shipping."),
        ),
    ),
    _event(
        "Order Refunded",
        "ecommerce",
        "An order was refunded, wholly or partly; amounts may be positive or negative.",
        {
            "order_id": _id("Id of the order refunded."),
            "total": _money("Amount refunded; either sign.", signed=True),
            "revenue": _money("Revenue refunded; either sign.", signed=True),
            "shipping": _money("Shipping refunded; either sign.", signed=True),
            "tax": _money("Tax refunded; either sign.", signed=True),
            "discount": _money("Discount taken back; either sign.", signed=True),
            "currency": _CURRENCY,
            "products": _REFUND_PRODUCT,
        },
    ),
    _event(
        "Order Cancelled",
        "ecommerce",
        "An order was cancelled; include every product in it.",
        dict(_ORDER),
    ),
    # coupons
    _event(
        "Coupon Entered",
        "ecommerce",
        "The shopper entered a coupon code.",
        {k: _COUPON[k] for k in ("order_id", "cart_id", "coupon_id")},
    ),
    _event(
        "Coupon Applied",
        "ecommerce",
        "A coupon was applied to the cart or order.",
        _props(_COUPON, discount=_money("Discount the coupon gave, as a positive amount.")),
    ),
    _event(
        "Coupon Denied",
        "ecommerce",
        "A coupon was refused.",
        _props(_COUPON, reason=_text("Why, e.g. `expired`.")),
    ),
    _event(
        "Coupon Removed",
        "ecommerce",
        "The shopper removed a coupon.",
        _props(_COUPON, discount=_money("Discount the coupon had given, as a positive amount.")),
    ),
    # wishlists
    _event(
        "Product Added to Wishlist",
        "ecommerce",
        "The shopper added a product to a wishlist.",
        _props(_WISHLIST, _PRODUCT_FIELDS),
    ),
    _event(
        "Product Removed from Wishlist",
        "ecommerce",
        "The shopper removed a product from a wishlist.",
        _props(_WISHLIST, _PRODUCT_FIELDS),
    ),
    _event(
        "Wishlist Product Added to Cart",
        "ecommerce",
        "The shopper moved a wishlist product to the cart.",
        _props(_WISHLIST, _CART, _PRODUCT_FIELDS),
    ),
    # sharing and reviewing
    _event(
        "Product Shared",
        "ecommerce",
        "The shopper shared a product.",
        _props(_SHARE, {k: v for k, v in _PRODUCT_FIELDS.items() if k != "position"}),
    ),
    _event(
        "Cart Shared",
        "ecommerce",
        "The shopper shared the cart.",
        _props(_SHARE, _CART, products=_PRODUCT),
    ),
    _event(
        "Product Reviewed",
        "ecommerce",
        "The shopper reviewed a product.",
        {
            "product_id": _id("Database id of the product."),
            "review_id": _id("Review id."),
            "review_body": _text("The review's text."),
            "rating": PropertySpec("string_or_number", 'Star rating, e.g. `5` or `"5"`.'),
        },
    ),
    # the physical store
    _event(
        "Store Stock Checked",
        "store",
        "The shopper (or staff for them) looked up a product's stock in one store.",
        {
            "store_id": _STORE_REQUIRED,
            "product_id": _id("Database id of the product."),
            "sku": _id("Stock-keeping unit."),
            "name": _text("Product name."),
            "variant": _text("Variant, e.g. size or colour."),
            "in_stock": PropertySpec("boolean", "Whether the shopper was told it is in stock."),
            "quantity_available": _count("Units shown as available."),
        },
        required={"store_id"},
    ),
    _event(
        "Store Visited",
        "store",
        "The person was in a store (check-in, Wi-Fi, beacon, geofence, appointment, staff).",
        {
            "store_id": _STORE_REQUIRED,
            "store_name": _text("Store name."),
            "method": _text("How the visit was detected, e.g. `check_in`, `wifi`, `geofence`."),
            "dwell_seconds": _count("Time spent in the store, in seconds."),
        },
        required={"store_id"},
    ),
    _event(
        "POS Order Completed",
        "store",
        "A till receipt: a purchase in a store, with the identifiers the till captured.",
        _props(
            {
                "store_id": _STORE_REQUIRED,
                "receipt_id": _id("Receipt number printed by the till; unique in the store."),
                "order_id": _id("Order id, when the till also creates an order."),
                "register_id": _id("Till (register) that rang the sale."),
                "staff_id": _id("Staff member who served the customer."),
            },
            _CUSTOMER_AT_TILL,
            products=_PRODUCT,
            subtotal=_money("Receipt total after discounts, before tax."),
            total=_money("Receipt total paid."),
            tax=_money("Total tax."),
            discount=_money("Total discount, as a positive amount."),
            coupon=_text("Coupon redeemed."),
            currency=_CURRENCY,
            payment_method=_text("Payment method type, e.g. `card`, `cash` (never a card number)."),
        ),
        required={"store_id", "receipt_id"},
    ),
    _event(
        "Click and Collect Reserved",
        "store",
        "An order or reservation was placed for collection in a store.",
        {
            "order_id": _id("Order or reservation id."),
            "store_id": _STORE_REQUIRED,
            "products": _PRODUCT,
            "total": _money("Order total."),
            "currency": _CURRENCY,
            "ready_by": PropertySpec("datetime", "When the order was promised to be ready."),
        },
        required={"order_id", "store_id"},
    ),
    _event(
        "Click and Collect Ready",
        "store",
        "A click-and-collect order is ready for pick-up in the store.",
        {
            "order_id": _id("Order or reservation id."),
            "store_id": _STORE_REQUIRED,
            "collect_by": PropertySpec("datetime", "Last moment to collect before release."),
        },
        required={"order_id", "store_id"},
    ),
    _event(
        "Click and Collect Picked Up",
        "store",
        "The customer collected a click-and-collect order.",
        {
            "order_id": _id("Order or reservation id."),
            "store_id": _STORE_REQUIRED,
            "products": _products(_PRODUCT_FIELDS, "Products collected, if not all of them."),
            "staff_id": _id("Staff member who handed the order over."),
        },
        required={"order_id", "store_id"},
    ),
    _event(
        "Return Requested",
        "store",
        "The customer asked to return products (online, in the app or by phone).",
        {
            "order_id": _id("Id of the order the products came from."),
            "return_id": _id("Return (RMA) id."),
            "reason": _text("Why, e.g. `wrong_size`."),
            "return_method": _text("How it comes back: `store`, `post`, `courier`, `locker`."),
            "store_id": _id("The store it will be brought to, when `return_method` is `store`."),
            "products": _PRODUCT,
            "total": _money("Amount to refund."),
            "currency": _CURRENCY,
            "return_by": PropertySpec("datetime", "Last day the return is accepted."),
        },
        required={"order_id"},
    ),
    _event(
        "Return Received",
        "store",
        "Returned products arrived at a store till or the warehouse.",
        _props(
            {
                "return_id": _id("Return (RMA) id, if one was requested."),
                "order_id": _id("Id of the online order the products came from."),
                "receipt_id": _id("Receipt number of the store purchase they came from."),
                "store_id": _id("The store that received them; absent for the warehouse."),
                "products": _PRODUCT,
                "total": _money("Amount refunded, as a positive number."),
                "currency": _CURRENCY,
                "refund_method": _text("How the money went back, e.g. `card`, `gift_card`."),
                "condition": _text("State of the products, e.g. `resellable`, `damaged`."),
            },
            _CUSTOMER_AT_TILL,
        ),
    ),
    # research
    _event(
        "Size Guide Viewed",
        "research",
        "The shopper opened a product's size guide.",
        {k: _PRODUCT_FIELDS[k] for k in ("product_id", "sku", "name", "category", "brand")},
    ),
    _event(
        "Delivery Info Viewed",
        "research",
        "The shopper read delivery or collection options for a product or the cart.",
        _props(
            {k: _PRODUCT_FIELDS[k] for k in ("product_id", "sku", "name")},
            _CART,
        ),
    ),
    _event(
        "Reviews Viewed",
        "research",
        "The shopper read a product's reviews.",
        {
            "product_id": _id("Database id of the product."),
            "sku": _id("Stock-keeping unit."),
            "name": _text("Product name."),
            "review_count": _count("Number of reviews shown."),
            "rating": _money("Average rating shown, e.g. 4.5."),
        },
    ),
    _event(
        "Click and Collect Released",
        "store",
        "A click-and-collect reservation ended without a pick-up; its units are sellable again.",
        {
            "order_id": _id("Order or reservation id."),
            "store_id": _STORE_REQUIRED,
            "reason": _text("`expired` (not collected in time) or `cancelled`."),
            "products": _PRODUCT,
        },
        required={"order_id", "store_id"},
    ),
    # stock
    _event(
        "Stock Received",
        "stock",
        "A delivery arrived at a store or warehouse: on-hand units go up.",
        {
            "location_id": _LOCATION_REQUIRED,
            "delivery_id": _id("Delivery note or purchase order id."),
            "products": _STOCK_LINES,
        },
        required={"location_id", "products"},
    ),
    _event(
        "Stock Counted",
        "stock",
        "A stock count: the units actually on the shelf, which replace what was on record.",
        {
            "location_id": _LOCATION_REQUIRED,
            "count_id": _id("Stock count id."),
            "products": _products(
                _props(_STOCK_LINE_FIELDS, quantity=_count("Units counted.")),
                "The SKUs counted, each with the units found.",
            ),
        },
        required={"location_id", "products"},
    ),
    _event(
        "Stock Transferred",
        "stock",
        "Units moved from one location to another (on-hand down at one, up at the other).",
        {
            "from_location_id": _LOCATION_REQUIRED,
            "to_location_id": _LOCATION_REQUIRED,
            "transfer_id": _id("Transfer id."),
            "products": _STOCK_LINES,
        },
        required={"from_location_id", "to_location_id", "products"},
    ),
    _event(
        "Stock Adjusted",
        "stock",
        "A correction of on-hand units (damaged, lost, found), up or down.",
        {
            "location_id": _LOCATION_REQUIRED,
            "reason": _text("Why, e.g. `damaged`, `lost`, `found`, `correction`."),
            "products": _products(
                _props(
                    _STOCK_LINE_FIELDS,
                    quantity=_count("Units added (positive) or removed (negative).", signed=True),
                ),
                "The SKUs adjusted, each with its change in units.",
            ),
        },
        required={"location_id", "products"},
    ),
    # consent
    _event(
        "Consent Updated",
        "consent",
        "The person gave or withdrew consent for one purpose, on one channel or all of them.",
        {
            "purpose": _text("What the consent is for, e.g. `marketing`, `personalisation`."),
            "channel": _text("The channel it covers, e.g. `email`, `sms`; absent means all."),
            "granted": PropertySpec("boolean", "true when given, false when withdrawn."),
            "source": _text("Where it was given, e.g. `checkout`, `preference_centre`, `store`."),
            "policy_version": _id("Version of the consent text the person saw."),
        },
        required={"purpose", "granted"},
    ),
    # gift cards (Polku's ledger: polku.commerce.giftcards)
    _event(
        "Gift Card Issued",
        "giftcards",
        "A gift card was issued: sold, given as goodwill, or as a refund of a return.",
        {
            "giftcard_id": _id("The card's id (not its code)."),
            "amount": _money("Value on the card, bonus included."),
            "currency": _CURRENCY,
            "expires_at": PropertySpec("datetime", "When the card expires."),
            "reason": _text("`refund`, `sale` or `goodwill`."),
            "code_last4": _text("Last four characters of the code, to tell cards apart."),
            "code_hash": _text("SHA-256 of the code (hex); the code itself is never stored."),
            "order_id": _id("The order it was sold with or refunds."),
            "return_id": _id("The return it refunds."),
            "bonus": _money("Of `amount`, the retailer's bonus on a refund taken as a card."),
            "bonus_percent": PropertySpec("number", "That bonus, in percent of the refund.", 0),
            "note": _text("Why it was issued, in the staff's words."),
        },
        required={"giftcard_id", "amount", "currency"},
    ),
    _event(
        "Gift Card Redeemed",
        "giftcards",
        "A gift card paid for (part of) a purchase; its balance went down by `amount`.",
        {
            "giftcard_id": _id("The card's id."),
            "amount": _money("Amount paid with the card."),
            "currency": _CURRENCY,
            "balance": _money("Balance left on the card."),
            "redemption_id": _id("The caller's id for this payment (a retry redeems once)."),
            "order_id": _id("The order or receipt it paid for."),
        },
        required={"giftcard_id", "amount", "currency"},
    ),
    _event(
        "Gift Card Expired",
        "giftcards",
        "A gift card reached its expiry date; the balance left on it was written off.",
        {
            "giftcard_id": _id("The card's id."),
            "amount": _money("Balance written off."),
            "currency": _CURRENCY,
        },
        required={"giftcard_id", "amount", "currency"},
    ),
    _event(
        "Gift Card Cancelled",
        "giftcards",
        "A gift card was voided (lost with its code, sold by mistake); its balance written off.",
        {
            "giftcard_id": _id("The card's id."),
            "amount": _money("Balance written off."),
            "currency": _CURRENCY,
            "reason": _text("Why it was cancelled."),
        },
        required={"giftcard_id", "amount", "currency"},
    ),
    # returns and the outlet (Polku's decisions: polku.commerce.returns)
    _event(
        "Return Inspected",
        "store",
        "Returned units were inspected: back to stock as new, to the store's outlet, or disposed.",
        {
            "return_id": _id("Return (RMA) id."),
            "order_id": _id("Id of the order the products came from."),
            "location_id": _id("The store or warehouse that received and inspected them."),
            "products": PropertySpec(
                "array",
                "Each SKU's units by outcome, each an Inspected product object.",
                items=MappingProxyType(
                    {
                        "sku": _id("Stock-keeping unit."),
                        "product_id": _id("Database id of the product."),
                        "quantity": _count("Number of units with this outcome."),
                        "outcome": _text("`restock` (on hand again), `outlet` or `dispose`."),
                        "condition": _text("What the inspection found, e.g. `box opened`."),
                    }
                ),
                item_name="Inspected product",
            ),
            "outlet": PropertySpec(
                "array",
                "The outlet listings made, one per unit, each an Outlet listing object.",
                items=MappingProxyType(
                    {
                        "listing_id": _id("The listing's id."),
                        "sku": _id("Stock-keeping unit."),
                        "product_id": _id("Database id of the product."),
                        "name": _text("Product name."),
                        "price": _money("Outlet price, in `currency`."),
                        "original_price": _money("Catalogue price when it was listed."),
                        "discount_percent": _count("The discount, in percent."),
                        "currency": _CURRENCY,
                        "condition": _text("What the inspection found."),
                    }
                ),
                item_name="Outlet listing",
            ),
            "currency": _CURRENCY,
            "staff_id": _id("Staff member who inspected them."),
        },
        required={"return_id", "location_id"},
    ),
    _event(
        "Return Cancelled",
        "store",
        "A requested return will not come back; its units can be returned again.",
        {
            "return_id": _id("Return (RMA) id."),
            "order_id": _id("Id of the order the products came from."),
            "reason": _text("Why, in the customer's or staff's words."),
        },
        required={"return_id"},
    ),
    _event(
        "Outlet Item Reserved",
        "store",
        "A returned unit on a store's outlet shelf was held for a customer.",
        {
            "listing_id": _id("The outlet listing."),
            "store_id": _STORE_REQUIRED,
            "sku": _id("Stock-keeping unit."),
            "price": _money("Outlet price, in `currency`."),
            "currency": _CURRENCY,
            "reserved_until": PropertySpec("datetime", "When the hold ends by itself."),
        },
        required={"listing_id", "store_id"},
    ),
    _event(
        "Outlet Item Released",
        "store",
        "A held outlet unit was let go before its time; it is on sale again.",
        {
            "listing_id": _id("The outlet listing."),
            "store_id": _STORE_REQUIRED,
            "sku": _id("Stock-keeping unit."),
            "price": _money("Outlet price, in `currency`."),
            "currency": _CURRENCY,
            "reason": _text("Why, e.g. `cancelled`."),
        },
        required={"listing_id", "store_id"},
    ),
    _event(
        "Outlet Item Sold",
        "store",
        "A returned unit was sold at its outlet price in the store that received it.",
        {
            "listing_id": _id("The outlet listing."),
            "store_id": _STORE_REQUIRED,
            "sku": _id("Stock-keeping unit."),
            "price": _money("Outlet price paid, in `currency`."),
            "currency": _CURRENCY,
            "receipt_id": _id("Receipt number of the sale."),
        },
        required={"listing_id", "store_id"},
    ),
    # buying signals (Polku's decisions on routed signals: polku.signals.actions)
    _event(
        "Signal Claimed",
        "signals",
        "A staff member or agent took a routed buying signal: the customer is theirs for now.",
        {
            "signal_id": _id("The signal."),
            "profile_id": _id("The customer's profile."),
            "kind": _text("The signal's kind, e.g. `purchase_intent`."),
            "staff_id": _id("Who claimed it."),
        },
        required={"signal_id", "staff_id"},
    ),
    _event(
        "Signal Acknowledged",
        "signals",
        "The claimer has seen the signal and is acting on it.",
        {
            "signal_id": _id("The signal."),
            "profile_id": _id("The customer's profile."),
            "staff_id": _id("Who acknowledged it."),
        },
        required={"signal_id"},
    ),
    _event(
        "Signal Outcome Recorded",
        "signals",
        "What came of a signal: `contacted`, `reserved`, `sold` or `not_interested`.",
        {
            "signal_id": _id("The signal."),
            "profile_id": _id("The customer's profile."),
            "outcome": _text("`contacted`, `reserved`, `sold` or `not_interested`."),
            "staff_id": _id("Who recorded it."),
            "note": _text("In the staff's words."),
        },
        required={"signal_id", "outcome"},
    ),
    _event(
        "Signal Closed",
        "signals",
        "A signal is done with; its claim ends (suppression lasts the hold time after).",
        {
            "signal_id": _id("The signal."),
            "profile_id": _id("The customer's profile."),
            "staff_id": _id("Who closed it."),
            "outcome": _text("The last outcome recorded, if any."),
        },
        required={"signal_id"},
    ),
)


def _build_registry() -> dict[str, EventSpec]:
    registry: dict[str, EventSpec] = {}
    for spec in _DECLARED:
        if spec.name in registry:
            raise ValueError(f"{spec.name}: declared twice")
        registry[spec.name] = spec
    return registry


KNOWN_EVENTS: Final[Mapping[str, EventSpec]] = MappingProxyType(_build_registry())
"""Every event name Polku knows, with its spec; any other name is accepted unchecked."""


# --- Checking ------------------------------------------------------------------------------

# A check returns None when the value is fine, else (code, the message after the field path).
_Check = Callable[[Any], tuple[str, str] | None]
_NONE: Final = type(None)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return f"string {shown!r}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number_in(text: str) -> str | None:
    """The JSON number a string probably meant ('12,90' -> '12.9'), or None."""
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        number = float(cleaned)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return str(int(number)) if number.is_integer() else repr(number)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _wrong(value: Any, expected: str, hint: str) -> tuple[str, str]:
    return "wrong_type", f" must be {expected} (got {_describe(value)}); {hint}"


def _check_string(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str):
        return None
    hint = f'send it as a JSON string: "{value}"' if _is_number(value) else "send a JSON string"
    return _wrong(value, "a string", hint)


def _check_id(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return None
    return _wrong(value, "a string or an integer", "send the id as a JSON string")


def _range_problem(value: float, minimum: float) -> tuple[str, str]:
    return "out_of_range", f" must be {minimum:g} or more (got {value!r})"


def _number_check(minimum: float | None) -> _Check:
    def check(value: Any) -> tuple[str, str] | None:
        if _is_number(value):
            if minimum is not None and not value >= minimum:  # `not >=` also catches NaN
                return _range_problem(value, minimum)
            return None
        meant = _number_in(value) if isinstance(value, str) else None
        return _wrong(value, "a number", f"send a JSON number such as {meant or '12.9'}")

    return check


def _integer_check(minimum: float | None) -> _Check:
    def check(value: Any) -> tuple[str, str] | None:
        if (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        ):
            if minimum is not None and value < minimum:
                return _range_problem(value, minimum)
            return None
        meant = _number_in(value) if isinstance(value, str) else None
        example = meant if meant is not None and "." not in meant else "2"
        return _wrong(value, "a whole number", f"send a JSON integer such as {example}")

    return check


def _check_boolean(value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool):
        return None
    return _wrong(value, "true or false", "send a JSON boolean, not a string or a number")


def _check_object(value: Any) -> tuple[str, str] | None:
    if isinstance(value, Mapping):
        return None
    return _wrong(value, "a JSON object", 'send an object such as {"key": "value"}')


def _check_datetime(value: Any) -> tuple[str, str] | None:
    example = "2026-11-22T10:15:00Z"
    if not isinstance(value, str):
        return _wrong(value, "an ISO-8601 date-time string", f"send e.g. {example}")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return (
            "invalid_format",
            f" must be an ISO-8601 date-time (got {_describe(value)}); send e.g. {example}",
        )
    return None


def _check_currency(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return None
    if not isinstance(value, str):
        return _wrong(value, "a currency code", "send a three-letter ISO 4217 code such as EUR")
    return (
        "invalid_format",
        f" must be a three-letter ISO 4217 currency code (got {_describe(value)}); send e.g. EUR",
    )


def _check_string_or_object(value: Any) -> tuple[str, str] | None:
    if isinstance(value, (str, Mapping)):
        return None
    return _wrong(value, "a string or an object", "send the text as a JSON string")


def _check_string_or_number(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str) or _is_number(value):
        return None
    return _wrong(value, "a string or a number", "send a JSON string or number")


@dataclass(frozen=True, slots=True)
class _Rule:
    """A compiled `PropertySpec`, shaped for the hot path.

    A value passes without a call when its class is in ``ok``, or is in ``ranged`` and the
    value is at least ``floor``; anything else goes to ``check`` (or, for an array of objects,
    to `_check_array`), which also writes the message.
    """

    path: str
    ok: frozenset[type]
    ranged: frozenset[type]
    floor: float
    check: _Check | None  # None for arrays of objects
    items: dict[str, _Rule] | None
    item_name: str


@dataclass(frozen=True, slots=True)
class _Plan:
    rules: dict[str, _Rule]
    required: tuple[tuple[str, FieldProblem], ...]


_NO_TYPES: Final[frozenset[type]] = frozenset()


def _compile(spec: PropertySpec, path: str) -> _Rule:
    kind, minimum = spec.kind, spec.minimum
    ok: set[type] = {_NONE}  # null is absent; `required` is checked separately
    ranged = _NO_TYPES
    check: _Check | None
    if kind == "string":
        ok.add(str)
        check = _check_string
    elif kind == "id":
        ok.update((str, int))
        check = _check_id
    elif kind == "number":
        if minimum is None:
            ok.update((int, float))
        else:
            ranged = frozenset((int, float))
        check = _number_check(minimum)
    elif kind == "integer":
        if minimum is None:
            ok.add(int)
        else:
            ranged = frozenset((int,))
        check = _integer_check(minimum)
    elif kind == "boolean":
        ok.add(bool)
        check = _check_boolean
    elif kind == "object":
        ok.add(dict)
        check = _check_object
    elif kind == "datetime":
        check = _check_datetime
    elif kind == "currency":
        check = _check_currency
    elif kind == "string_or_object":
        ok.update((str, dict))
        check = _check_string_or_object
    elif kind == "string_or_number":
        ok.update((str, int, float))
        check = _check_string_or_number
    elif kind == "array":
        check = None
    else:  # pragma: no cover - PropertyKind is closed
        raise ValueError(f"unknown property kind {kind!r}")
    items = None
    if spec.items is not None:
        # Item paths are built only when a problem is found, so item rules keep the bare key.
        items = {key: _compile(sub, key) for key, sub in spec.items.items()}
    elif kind == "array":
        ok.add(list)
    floor = 0.0 if minimum is None else minimum
    return _Rule(path, frozenset(ok), ranged, floor, check, items, spec.item_name or "item")


def _missing(event: str, key: str, spec: PropertySpec) -> FieldProblem:
    path = f"properties.{key}"
    return FieldProblem(
        path,
        "required",
        f"{path} is required in {event} events ({spec.description.rstrip('.')}); "
        f"send it as a {spec.label}",
    )


def _plan(spec: EventSpec) -> _Plan:
    rules = {key: _compile(prop, f"properties.{key}") for key, prop in spec.properties.items()}
    required = tuple(
        (key, _missing(spec.name, key, spec.properties[key])) for key in sorted(spec.required)
    )
    return _Plan(rules, required)


_PLANS: Final[dict[str, _Plan]] = {name: _plan(spec) for name, spec in KNOWN_EVENTS.items()}


def _report(rule: _Rule, path: str, value: Any, problems: list[FieldProblem]) -> None:
    """Add the problem with a value that did not pass `rule`'s fast path, if it has one."""
    if rule.check is None:
        _check_array(rule, path, value, problems)
        return
    found = rule.check(value)
    if found is not None:
        problems.append(FieldProblem(path, found[0], path + found[1]))


def _check_array(rule: _Rule, path: str, value: Any, problems: list[FieldProblem]) -> None:
    if value.__class__ is not list:
        code, tail = _wrong(value, "a JSON array", f"send a list of {rule.item_name} objects")
        problems.append(FieldProblem(path, code, path + tail))
        return
    if rule.items is None:
        return
    rule_for = rule.items.get
    index = -1
    for item in value:
        index += 1
        if item.__class__ is not dict and not isinstance(item, Mapping):
            where = f"{path}[{index}]"
            code, tail = _wrong(item, "a JSON object", f"send each {rule.item_name} as an object")
            problems.append(FieldProblem(where, code, where + tail))
            continue
        for key, sub_value in item.items():
            sub = rule_for(key)
            if sub is None:
                continue
            cls = sub_value.__class__
            if cls in sub.ok or (cls in sub.ranged and sub_value >= sub.floor):
                continue
            _report(sub, f"{path}[{index}].{key}", sub_value, problems)


def check_properties(event: str, properties: Mapping[str, Any]) -> list[FieldProblem]:
    """Every problem with the known properties of a known track event; [] when all is well.

    Unknown events and unknown properties give no problems: they are kept as sent. Fields are
    reported with their path from the message root (``properties.products[2].price``), in the
    order the properties were sent, then the missing required ones.
    """
    problems: list[FieldProblem] = []
    plan = _PLANS.get(event)
    if plan is None:
        return problems
    rule_for = plan.rules.get
    for key, value in properties.items():
        rule = rule_for(key)
        if rule is None:
            continue
        cls = value.__class__
        if cls in rule.ok or (cls in rule.ranged and value >= rule.floor):
            continue
        _report(rule, rule.path, value, problems)
    for key, missing in plan.required:
        value = properties.get(key)
        if value is None or value == "":
            problems.append(missing)
    return problems
