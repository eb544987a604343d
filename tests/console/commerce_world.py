"""What the console's commerce tests share: a small shop made through the API as the shop
and the tills would make it (a jacket in the catalogue, stores in Helsinki, Espoo and
Tampere, a warehouse, stock counts, a return policy), web orders sent to the collection API,
reservations and returns. Copied in small part from tests/commerce, because test folders
share no modules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from console_world import WEEKDAYS_9_TO_21, WS

from conftest import Polku
from polku.commerce.catalog.actions import create_product
from polku.commerce.catalog.validation import ProductInput, VariantInput

STORES = (
    # id, name, city, postal code, latitude, longitude
    ("hki-kamppi", "Kamppi", "Helsinki", "00100", 60.1689, 24.9322),
    ("esp-isoomena", "Iso Omena", "Espoo", "02230", 60.1617, 24.7380),
    ("tre-ratina", "Ratina", "Tampere", "33100", 61.4921, 23.7703),
)


def api(polku: Polku, method: str, path: str, **kwargs: Any) -> Any:
    response = polku.client.request(method, path, headers=polku.admin, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def shop(polku: Polku) -> None:
    """The jacket `takki-1` (S and M at 189,00 €), three stores and a warehouse; stock:
    Kamppi 2 M, Iso Omena 5 M + 1 S, Tampere none, the warehouse 14 M."""
    create_product(
        polku.runtime,
        WS,
        ProductInput(
            product_id="takki-1",
            name="Talvitakki Revontuli",
            category=("Naiset", "Takit"),
            variants=tuple(
                VariantInput(sku=f"takki-1-{size}", price_minor=18900, currency="EUR", size=size)
                for size in ("S", "M")
            ),
        ),
    )
    for location_id, name, city, postal, lat, lon in STORES:
        body = {
            "location_id": location_id,
            "name": name,
            "address": ["Katu 1"],
            "postal_code": postal,
            "city": city,
            "latitude": lat,
            "longitude": lon,
            "click_and_collect": True,
            "hours": WEEKDAYS_9_TO_21,
        }
        api(polku, "POST", "/v1/locations", json=body)
    warehouse = {"location_id": "wh-vantaa", "name": "Varasto", "kind": "warehouse"}
    api(
        polku, "POST", "/v1/locations", json={**warehouse, "postal_code": "01510", "city": "Vantaa"}
    )
    for location_id, lines in (
        ("hki-kamppi", [("takki-1-M", 2)]),
        ("esp-isoomena", [("takki-1-M", 5), ("takki-1-S", 1)]),
        ("wh-vantaa", [("takki-1-M", 14)]),
    ):
        body = {"location_id": location_id, "lines": [{"sku": s, "quantity": q} for s, q in lines]}
        api(polku, "POST", "/v1/stock/counts", json=body)
    policy = {
        "default_window_days": 30,
        "outlet_discount_percent": 30,
        "gift_card_bonus_percent": 10,
    }
    api(polku, "PUT", "/v1/returns/policy", json=policy)


def reserve(polku: Polku, store: str, sku: str = "takki-1-M", quantity: int = 1) -> str:
    body = {
        "location_id": store,
        "lines": [{"sku": sku, "quantity": quantity}],
        "userId": "anna",
    }
    found: str = api(polku, "POST", "/v1/reservations", json=body)["reservation_id"]
    return found


def reservation(polku: Polku, reservation_id: str) -> dict[str, Any]:
    found: dict[str, Any] = api(polku, "GET", f"/v1/reservations/{reservation_id}")
    return found


def returned_at(polku: Polku, store: str, sku: str = "takki-1-M") -> str:
    """A web order of one jacket, three days ago, brought back to `store`'s till; the
    return's id (received there)."""
    order_id = f"W-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC) - timedelta(days=3)
    message = {
        "type": "track",
        "userId": "anna",
        "event": "Order Completed",
        "messageId": f"order-{uuid.uuid4().hex}",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "context": {"channel": "web"},
        "properties": {
            "order_id": order_id,
            "currency": "EUR",
            "payment_method": "card",
            "total": 189.0,
            "products": [{"sku": sku, "product_id": "takki-1", "quantity": 1, "price": 189.0}],
        },
    }
    assert polku.send("/v1/track", message).status_code == 200
    polku.settle()
    body = {
        "order_id": order_id,
        "lines": [{"sku": sku, "quantity": 1, "reason": "wrong_size"}],
        "channel": "store",
        "location_id": store,
    }
    found: str = api(polku, "POST", "/v1/returns", json=body)["return_id"]
    return found


def the_return(polku: Polku, return_id: str) -> dict[str, Any]:
    found: dict[str, Any] = api(polku, "GET", f"/v1/returns/{return_id}")
    return found
