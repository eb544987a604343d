"""GET /v1/catalog/search: Finnish inflections and compounds, English plurals, prefixes while
typing, name hits first, active products only, and related items (same category, bought
together from the order events in the log)."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Polku
from polku.commerce.catalog.related import BoughtTogether
from polku.pipeline.runner import Pipeline

CATALOGUE: list[dict[str, Any]] = [
    {
        "product_id": "A",
        "name": "Talvitakki Lumi",
        "description": "Lämmin untuvatakki.",
        "category": ["Naiset", "Takit"],
        "brand": "Pohjola",
        "translations": {"en": {"name": "Lumi winter jacket"}},
    },
    {
        "product_id": "B",
        "name": "Sadetakki Sade",
        "description": "Kevyt ja vedenpitävä.",
        "category": ["Naiset", "Takit"],
    },
    {
        "product_id": "C",
        "name": "Villapaita Kaisla",
        "description": "Sopii takin alle.",
        "category": ["Naiset", "Neuleet"],
    },
    {
        "product_id": "D",
        "name": "Takkiteline",
        "description": "Eteisen teline.",
        "category": ["Koti"],
    },
    {
        "product_id": "E",
        "name": "Winter jackets for kids",
        "description": "Warm and light.",
        "category": ["Lapset", "Takit"],
    },
    {
        "product_id": "F",
        "name": "Running shoes",
        "description": "Light shoes for trail running.",
        "category": ["Kengät"],
    },
    {
        "product_id": "G",
        "name": "Vanha takki",
        "description": "Ei myynnissä.",
        "category": ["Naiset", "Takit"],
        "active": False,
    },
    {
        "product_id": "H",
        "name": "Kevättakki Verso",
        "description": "Ohut.",
        "category": ["Naiset", "Takit"],
    },
    {
        "product_id": "I",
        "name": "Neulepipo",
        "description": "Pehmeä pipo.",
        "category": ["Naiset", "Neuleet"],
    },
]


@pytest.fixture
def shop(polku: Polku) -> Polku:
    for product in CATALOGUE:
        body = {
            **product,
            "variants": [
                {
                    "sku": f"{product['product_id']}-1",
                    "price": "49.90",
                    "currency": "EUR",
                    "colour": "musta",
                }
            ],
        }
        response = polku.client.put(
            f"/v1/catalog/products/{product['product_id']}", json=body, headers=polku.admin
        )
        assert response.status_code == 201, response.text
    return polku


def found(polku: Polku, q: str, lang: str | None = "fi", **params: Any) -> dict[str, Any]:
    query: dict[str, Any] = {"q": q, **params}
    if lang:
        query["lang"] = lang
    response = polku.client.get("/v1/catalog/search", params=query, headers=polku.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def hits(polku: Polku, q: str, lang: str | None = "fi") -> list[str]:
    return [h["product_id"] for h in found(polku, q, lang)["hits"]]


@pytest.mark.parametrize("q", ["takki", "takit", "takkeja", "takkia", "takin"])
def test_finnish_inflections_find_the_jackets_names_first(shop: Polku, q: str) -> None:
    ids = hits(shop, q)
    # Every jacket has takki in its name (as a compound's last part); the jumper only in its
    # description ("sopii takin alle"), so it comes after them.
    assert set(ids[:3]) == {"A", "B", "H"}, ids
    assert "C" in ids and ids.index("C") > 2
    assert "G" not in ids  # inactive


def test_a_compound_is_found_by_its_last_part_not_its_first(shop: Polku) -> None:
    # "Talvitakki" (winter jacket) is a takki; "Takkiteline" (a coat rack) is not.
    ids = hits(shop, "takkeja ")  # the trailing space: a whole word, no prefix match
    assert "A" in ids and "D" not in ids
    assert hits(shop, "teline") == ["D"]
    # A compound the dictionary does not know is split where both parts are words.
    assert hits(shop, "kevättakkeja")[0] == "H"
    assert hits(shop, "untuvatakki ")[0] == "A"  # from the description's compound


def test_english_plurals_and_inflections(shop: Polku) -> None:
    assert set(hits(shop, "jacket", "en")[:2]) == {"E", "A"}  # A through its English name
    assert hits(shop, "shoe", "en") == ["F"]
    assert hits(shop, "runs", "en") == ["F"]
    assert hits(shop, "kids jackets", "en")[0] == "E"


def test_names_in_the_language_asked_for(shop: Polku) -> None:
    body = found(shop, "jacket", "en")
    names = {h["product_id"]: h["name"] for h in body["hits"]}
    assert names["A"] == "Lumi winter jacket"
    assert found(shop, "talvitakki")["hits"][0]["name"] == "Talvitakki Lumi"
    # Without lang, both languages are searched.
    assert {"A", "E"} <= set(hits(shop, "jackets", None))


def test_prefix_of_the_last_word_while_typing(shop: Polku) -> None:
    assert hits(shop, "talvit")[0] == "A"
    assert hits(shop, "villap")[0] == "C"
    assert hits(shop, "lämmin tal")[0] == "A"
    assert hits(shop, "villap ") == []  # a finished word is not a prefix


def test_exact_sku_and_brand(shop: Polku) -> None:
    assert hits(shop, "F-1") == ["F"]
    assert hits(shop, "pohjola")[0] == "A"


def test_price_from_and_a_deactivated_product_leaves_search(shop: Polku) -> None:
    body = found(shop, "talvitakki")
    assert (body["hits"][0]["price_from"], body["hits"][0]["currency"]) == ("49.90", "EUR")
    shop.client.delete("/v1/catalog/products/A", headers=shop.admin)
    assert "A" not in hits(shop, "talvitakki")
    shop.client.patch("/v1/catalog/products/A", json={"active": True}, headers=shop.admin)
    assert hits(shop, "talvitakki")[0] == "A"


def test_related_items_same_category_and_bought_together(shop: Polku) -> None:
    body = found(shop, "villapaita ")
    assert [h["product_id"] for h in body["hits"]] == ["C"]
    assert [(r["product_id"], r["reason"], r["because"]) for r in body["related"]] == [
        ("I", "same_category", "C")
    ]
    orders = [
        (
            "Order Completed",
            {"order_id": "o-1", "products": [{"product_id": "C"}, {"product_id": "B"}]},
        ),
        (
            "POS Order Completed",
            {
                "store_id": "HEL-01",
                "receipt_id": "r-1",
                "products": [{"sku": "C-1"}, {"sku": "B-1"}, {"sku": "F-1"}],
            },
        ),
        (
            "Order Completed",
            {
                "order_id": "o-2",
                "products": [{"product_id": "C"}, {"product_id": "F"}, {"product_id": "B"}],
            },
        ),
    ]
    for i, (event, properties) in enumerate(orders):
        sent = shop.send(
            "/v1/track", {"userId": f"cust-{i}", "event": event, "properties": properties}
        )
        assert sent.status_code == 200, sent.text
    pipeline = Pipeline(shop.runtime.engine, shop.runtime.log, [BoughtTogether()])
    pipeline.run_until_caught_up()
    pipeline.run_until_caught_up()  # idempotent: nothing is counted twice
    body = found(shop, "villapaita ")
    assert [(r["product_id"], r["reason"]) for r in body["related"]] == [
        ("B", "bought_together"),  # three orders
        ("F", "bought_together"),  # two
        ("I", "same_category"),
    ]
    assert found(shop, "villapaita ", related=1)["related"][0]["product_id"] == "B"


def test_an_empty_or_unmatched_query_finds_nothing(shop: Polku) -> None:
    assert found(shop, "")["hits"] == []
    assert found(shop, "zzxxqq")["total"] == 0
