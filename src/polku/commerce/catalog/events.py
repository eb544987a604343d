"""The events the catalogue records when it changes in a way others react to: a price, or
whether a product or a SKU is on sale. They are track events about no customer (no userId
or anonymousId), keyed by the entity (``sku:<sku>``, ``product:<id>``), recorded in the
transaction that makes the change (`polku.log.outbox`).

A SKU is on sale when it and its product are both active, so deactivating a product also
records ``Variant Deactivated`` for each of its SKUs that was on sale (``reason:
product``): a consumer that follows SKUs needs nothing else. A new product or SKU counts as
becoming active (``created: true``).
"""

from __future__ import annotations

from typing import Any, Final

from polku.collect.internal import internal_event
from polku.events import NewEvent

__all__ = [
    "PRICE_CHANGED",
    "PRODUCT_ACTIVATED",
    "PRODUCT_DEACTIVATED",
    "VARIANT_ACTIVATED",
    "VARIANT_DEACTIVATED",
    "price_changed",
    "product_switched",
    "variant_switched",
]

PRICE_CHANGED: Final = "Variant Price Changed"
PRODUCT_ACTIVATED: Final = "Product Activated"
PRODUCT_DEACTIVATED: Final = "Product Deactivated"
VARIANT_ACTIVATED: Final = "Variant Activated"
VARIANT_DEACTIVATED: Final = "Variant Deactivated"


def _event(workspace_id: str, name: str, key: str, properties: dict[str, Any], at: int) -> NewEvent:
    return internal_event(workspace_id, name, properties, partition_key=key, at_ms=at)


def price_changed(
    workspace_id: str,
    *,
    sku: str,
    product_id: str,
    name: str,
    price: float,
    currency: str,
    previous_price: float,
    previous_currency: str,
    at: int,
) -> NewEvent:
    """``Variant Price Changed``: the SKU's price (or its currency) changed."""
    return _event(
        workspace_id,
        PRICE_CHANGED,
        f"sku:{sku}",
        {
            "sku": sku,
            "product_id": product_id,
            "name": name,
            "price": price,
            "currency": currency,
            "previous_price": previous_price,
            "previous_currency": previous_currency,
        },
        at,
    )


def variant_switched(
    workspace_id: str,
    *,
    on_sale: bool,
    sku: str,
    product_id: str,
    name: str,
    price: float,
    currency: str,
    reason: str,
    created: bool,
    at: int,
) -> NewEvent:
    """``Variant Activated`` / ``Variant Deactivated``: the SKU went on or off sale, because
    of its own flag (`reason` ``variant``) or its product's (``product``)."""
    return _event(
        workspace_id,
        VARIANT_ACTIVATED if on_sale else VARIANT_DEACTIVATED,
        f"sku:{sku}",
        {
            "sku": sku,
            "product_id": product_id,
            "name": name,
            "price": price,
            "currency": currency,
            "reason": reason,
            "created": created,
        },
        at,
    )


def product_switched(
    workspace_id: str,
    *,
    active: bool,
    product_id: str,
    name: str,
    brand: str | None,
    category: str,
    created: bool,
    at: int,
) -> NewEvent:
    """``Product Activated`` / ``Product Deactivated``."""
    properties: dict[str, Any] = {
        "product_id": product_id,
        "name": name,
        "category": category,
        "created": created,
    }
    if brand is not None:
        properties["brand"] = brand
    return _event(
        workspace_id,
        PRODUCT_ACTIVATED if active else PRODUCT_DEACTIVATED,
        f"product:{product_id}",
        properties,
        at,
    )
