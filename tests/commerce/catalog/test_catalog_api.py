"""The catalogue's CRUD API: products with variants, variants by SKU, listing with keyset
paging, bad input as 4xx with a code and a field, and the events a change records."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from conftest import Polku
from polku.commerce.catalog.queries import get_product, get_variant, get_variants
from polku.log.tables import log_events


def jacket(product_id: str = "JKT-1", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "product_id": product_id,
        "name": "Talvitakki Lumi",
        "description": "Lämmin untuvatakki pakkasille.",
        "brand": "Pohjola",
        "category": ["Naiset", "Takit"],
        "image_url": "https://cdn.example.fi/jkt.jpg",
        "attributes": {"material": "untuva"},
        "translations": {"en": {"name": "Lumi winter jacket"}},
        "variants": [
            {
                "sku": f"{product_id}-M",
                "colour": "musta",
                "size": "M",
                "price": "249.90",
                "currency": "EUR",
            },
            {
                "sku": f"{product_id}-L",
                "color": "musta",
                "size": "L",
                "price": 249.9,
                "currency": "eur",
            },
        ],
    }
    body.update(fields)
    return body


def put(polku: Polku, body: dict[str, Any], product_id: str | None = None) -> Any:
    pid = product_id or body["product_id"]
    return polku.client.put(f"/v1/catalog/products/{pid}", json=body, headers=polku.admin)


def catalog_events(polku: Polku, *names: str) -> list[dict[str, Any]]:
    with polku.runtime.engine.connect() as conn:
        rows = conn.execute(
            select(log_events.c.event, log_events.c.partition_key, log_events.c.payload)
            .where(log_events.c.event.in_(names))
            .order_by(log_events.c.offset)
        ).all()
    return [{**orjson.loads(p), "partition_key": k} for _, k, p in rows]


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    found: dict[str, Any] = response.json()["error"]
    assert found["code"] and found["message"] and found.get("hint"), found
    return found


def test_put_creates_then_replaces_a_product_with_its_variants(polku: Polku) -> None:
    created = put(polku, jacket())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["category"] == ["Naiset", "Takit"]
    assert [(v["sku"], v["price"], v["currency"], v["colour"]) for v in body["variants"]] == [
        ("JKT-1-L", "249.90", "EUR", "musta"),
        ("JKT-1-M", "249.90", "EUR", "musta"),
    ]
    again = put(polku, jacket(name="Talvitakki Lumi II", variants=[]))
    assert again.status_code == 200 and again.json()["name"] == "Talvitakki Lumi II"
    assert len(again.json()["variants"]) == 2  # variants not listed stay as they are
    read = polku.client.get("/v1/catalog/products/JKT-1", headers=polku.admin)
    assert read.status_code == 200 and read.json() == again.json()


def test_the_python_api_for_stock_and_carts(polku: Polku) -> None:
    put(polku, jacket())
    with polku.runtime.engine.connect() as conn:
        product = get_product(conn, "default", "JKT-1")
        variant = get_variant(conn, "default", "JKT-1-M")
        found = get_variants(conn, "default", ["JKT-1-M", "nope", "JKT-1-L"])
    assert product is not None and product.category == ("Naiset", "Takit")
    assert [v.sku for v in product.variants] == ["JKT-1-L", "JKT-1-M"]
    assert variant is not None and variant.price == Decimal("249.90") and variant.active
    assert set(found) == {"JKT-1-M", "JKT-1-L"}
    polku.client.delete("/v1/catalog/products/JKT-1", headers=polku.admin)
    with polku.runtime.engine.connect() as conn:
        off = get_variant(conn, "default", "JKT-1-M")
    assert off is not None and not off.active and off.own_active  # its product is off sale


def test_post_refuses_an_existing_product(polku: Polku) -> None:
    first = polku.client.post("/v1/catalog/products", json=jacket(), headers=polku.admin)
    assert first.status_code == 201, first.text
    again = polku.client.post("/v1/catalog/products", json=jacket(), headers=polku.admin)
    assert error(again, 409)["code"] == "product_exists"


def test_variants_by_sku(polku: Polku) -> None:
    put(polku, jacket())
    added = polku.client.put(
        "/v1/catalog/variants/JKT-1-XL",
        json={"product_id": "JKT-1", "size": "XL", "price": "259,90", "currency": "EUR"},
        headers=polku.admin,
    )
    assert added.status_code == 201, added.text
    assert added.json()["price"] == "259.90" and added.json()["on_sale"] is True
    changed = polku.client.patch(
        "/v1/catalog/variants/JKT-1-XL", json={"price": 199}, headers=polku.admin
    )
    assert changed.status_code == 200 and changed.json()["price"] == "199.00"
    off = polku.client.delete("/v1/catalog/variants/JKT-1-XL", headers=polku.admin)
    assert off.json()["active"] is False and off.json()["on_sale"] is False
    read = polku.client.get("/v1/catalog/variants/JKT-1-XL", headers=polku.admin)
    assert read.status_code == 200 and read.json()["size"] == "XL"


def test_listing_filters_and_keyset_pages(polku: Polku) -> None:
    for i in range(5):
        put(polku, jacket(f"P-{i}", category=["Naiset", "Takit"] if i % 2 else ["Miehet"]))
    polku.client.patch("/v1/catalog/products/P-3", json={"active": False}, headers=polku.admin)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = polku.client.get("/v1/catalog/products", params=params, headers=polku.admin)
        assert page.status_code == 200, page.text
        seen += [p["product_id"] for p in page.json()["products"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"P-{i}" for i in range(5)]
    women = polku.client.get(
        "/v1/catalog/products",
        params={"category": "Naiset", "active": "true"},
        headers=polku.admin,
    )
    assert [p["product_id"] for p in women.json()["products"]] == ["P-1"]
    bad = polku.client.get("/v1/catalog/products?cursor=%%%", headers=polku.admin)
    assert error(bad, 400)["field"] == "cursor"


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"currency": "EUX"}, "unknown_currency", "variants[0].currency"),
        ({"price": -5}, "negative_price", "variants[0].price"),
        ({"price": "12.999"}, "invalid_price", "variants[0].price"),
        ({"price": "kaksi"}, "invalid_price", "variants[0].price"),
        ({"price": None}, "missing_field", "variants[0].price"),
        ({"colr": "musta"}, "unknown_field", "variants[0].colr"),
        ({"image_url": "ftp://x"}, "invalid_field", "variants[0].image_url"),
    ],
)
def test_bad_variant_values_name_the_field(
    polku: Polku, change: dict[str, Any], code: str, field: str
) -> None:
    body = jacket()
    body["variants"][0].update(change)
    found = error(put(polku, body), 400)
    assert (found["code"], found["field"]) == (code, field)
    missing = polku.client.get("/v1/catalog/products/JKT-1", headers=polku.admin)
    assert error(missing, 404)["code"] == "unknown_product"  # nothing half done


def test_bad_product_values_and_conflicts(polku: Polku) -> None:
    assert error(put(polku, jacket(name="  ")), 400)["field"] == "name"
    found = error(put(polku, jacket(translations={"sv": {"name": "Vinterjacka"}})), 400)
    assert found["code"] == "unsupported_language"
    body = jacket()
    body["variants"][1]["sku"] = "JKT-1-M"
    assert error(put(polku, body), 400)["code"] == "duplicate_sku"
    assert put(polku, jacket()).status_code == 201
    other = jacket("JKT-2")
    other["variants"][0]["sku"] = "JKT-1-M"  # another product's SKU
    taken = error(put(polku, other), 409)
    assert (taken["code"], taken["field"]) == ("sku_taken", "variants[0].sku")
    assert polku.client.get("/v1/catalog/products/JKT-2", headers=polku.admin).status_code == 404
    moved = polku.client.put(
        "/v1/catalog/variants/NEW-1",
        json={"product_id": "NOPE", "price": 1, "currency": "EUR"},
        headers=polku.admin,
    )
    assert error(moved, 404)["code"] == "unknown_product"
    unknown = polku.client.patch(
        "/v1/catalog/variants/NOPE-1", json={"price": 1}, headers=polku.admin
    )
    assert error(unknown, 404)["code"] == "unknown_sku"
    not_json = polku.client.put("/v1/catalog/products/JKT-1", content=b"{nope", headers=polku.admin)
    assert error(not_json, 400)["code"] == "invalid_json"
    currency_only = polku.client.patch(
        "/v1/catalog/variants/JKT-1-M", json={"currency": "SEK"}, headers=polku.admin
    )
    assert error(currency_only, 400)["field"] == "price"
    lang = polku.client.get("/v1/catalog/search?q=x&lang=sv", headers=polku.admin)
    assert error(lang, 400)["code"] == "unsupported_language"


def test_the_api_needs_an_admin_token(polku: Polku) -> None:
    response = polku.client.get("/v1/catalog/products")
    assert response.status_code == 401


def test_a_price_change_and_deactivation_are_recorded_as_events(polku: Polku) -> None:
    put(polku, jacket())
    same = put(polku, jacket())  # nothing changes: nothing is recorded
    assert same.status_code == 200
    polku.client.patch(
        "/v1/catalog/variants/JKT-1-M", json={"price": "199.90"}, headers=polku.admin
    )
    polku.client.delete("/v1/catalog/products/JKT-1", headers=polku.admin)
    prices = catalog_events(polku, "Variant Price Changed")
    assert len(prices) == 1
    change = prices[0]
    assert change["partition_key"] == "sku:JKT-1-M"
    assert "userId" not in change and "anonymousId" not in change
    assert change["properties"] == {
        "sku": "JKT-1-M",
        "product_id": "JKT-1",
        "name": "Talvitakki Lumi",
        "price": 199.9,
        "currency": "EUR",
        "previous_price": 249.9,
        "previous_currency": "EUR",
    }
    switched = catalog_events(polku, "Product Activated", "Product Deactivated")
    assert [(e["event"], e["properties"]["created"]) for e in switched] == [
        ("Product Activated", True),
        ("Product Deactivated", False),
    ]
    assert switched[1]["partition_key"] == "product:JKT-1"
    off = catalog_events(polku, "Variant Deactivated")
    assert sorted((e["properties"]["sku"], e["properties"]["reason"]) for e in off) == [
        ("JKT-1-L", "product"),
        ("JKT-1-M", "product"),
    ]
    polku.settle()  # identity and profiles pass events about no customer by
    debugger = polku.client.get("/v1/profiles", headers=polku.admin)
    assert debugger.status_code == 200 and debugger.json()["profiles"] == []
