"""The event vocabulary: known events are type-checked, unknown ones kept, and the docs match.

Most tests call `check_properties` directly, since it is a pure function of its input; the
last ones send the documented examples through the collection API, so docs/events.md cannot
promise what Polku does not do.
"""

from __future__ import annotations

import json
import re
import runpy
import uuid
from pathlib import Path
from typing import Any

import pytest

import polku.collect.vocabulary as vocabulary
from conftest import Polku
from polku.collect.vocabulary import (
    CATEGORIES,
    COMMON_PROPERTIES,
    KNOWN_EVENTS,
    FieldProblem,
    check_properties,
)
from polku.identity.queries import event_profile

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "events.md"


def problems(event: str, properties: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.field, p.code) for p in check_properties(event, properties)]


def only(event: str, properties: dict[str, Any]) -> FieldProblem:
    found = check_properties(event, properties)
    assert len(found) == 1, found
    return found[0]


# --- the registry ------------------------------------------------------------------------

SEGMENT_V2 = [
    "Products Searched",
    "Product List Viewed",
    "Product List Filtered",
    "Promotion Viewed",
    "Promotion Clicked",
    "Product Clicked",
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Cart Viewed",
    "Checkout Started",
    "Checkout Step Viewed",
    "Checkout Step Completed",
    "Payment Info Entered",
    "Order Updated",
    "Order Completed",
    "Order Refunded",
    "Order Cancelled",
    "Coupon Entered",
    "Coupon Applied",
    "Coupon Denied",
    "Coupon Removed",
    "Product Added to Wishlist",
    "Product Removed from Wishlist",
    "Wishlist Product Added to Cart",
    "Product Shared",
    "Cart Shared",
    "Product Reviewed",
]
POLKU_EVENTS = [
    "Store Stock Checked",
    "Store Visited",
    "POS Order Completed",
    "Click and Collect Reserved",
    "Click and Collect Ready",
    "Click and Collect Picked Up",
    "Click and Collect Released",
    "Stock Received",
    "Stock Counted",
    "Stock Transferred",
    "Stock Adjusted",
    "Return Requested",
    "Return Received",
    "Consent Updated",
    "Size Guide Viewed",
    "Delivery Info Viewed",
    "Reviews Viewed",
    "Gift Card Issued",
    "Gift Card Redeemed",
    "Gift Card Expired",
    "Gift Card Cancelled",
    "Return Inspected",
    "Return Cancelled",
    "Outlet Item Reserved",
    "Outlet Item Released",
    "Outlet Item Sold",
    "Signal Claimed",
    "Signal Acknowledged",
    "Signal Outcome Recorded",
    "Signal Closed",
]


def test_public_names_are_pinned() -> None:
    assert set(vocabulary.__all__) == {
        "CATEGORIES",
        "COMMON_PROPERTIES",
        "KNOWN_EVENTS",
        "EventSpec",
        "FieldProblem",
        "PropertyKind",
        "PropertySpec",
        "check_properties",
    }


def test_the_vocabulary_is_exactly_segment_v2_plus_polkus_events() -> None:
    assert sorted(KNOWN_EVENTS) == sorted(SEGMENT_V2 + POLKU_EVENTS)
    assert {KNOWN_EVENTS[name].category for name in SEGMENT_V2} == {"ecommerce"}
    assert {spec.category for spec in KNOWN_EVENTS.values()} == set(CATEGORIES)


def test_every_spec_is_consistent() -> None:
    for name, spec in KNOWN_EVENTS.items():
        assert spec.name == name
        assert spec.required <= spec.properties.keys(), name
        assert spec.description and "\n" not in spec.description, name
        assert all(p.description for p in spec.properties.values()), name
        assert COMMON_PROPERTIES.keys() <= spec.properties.keys(), name
        if spec.category == "ecommerce":
            assert not spec.required, f"{name}: the Segment spec makes every property optional"


def test_the_registry_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        KNOWN_EVENTS["Sauna Booked"] = KNOWN_EVENTS["Store Visited"]  # type: ignore[index]
    with pytest.raises(TypeError):
        KNOWN_EVENTS["Store Visited"].properties["x"] = COMMON_PROPERTIES["store_id"]  # type: ignore[index]


# --- valid input ---------------------------------------------------------------------------

PRODUCT = {
    "product_id": "507f1f77bcf86cd799439011",
    "sku": "45790-32",
    "name": "Monopoly: 3rd Edition",
    "price": 19,
    "quantity": 1,
    "category": "Games",
    "url": "https://www.example.com/product/path",
    "image_url": "https://www.example.com/product/path.jpg",
}

VALID: list[tuple[str, dict[str, Any]]] = [
    # Segment's own examples, as its spec shows them
    (
        "Order Completed",
        {
            "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
            "order_id": "50314b8e9bcf000000000000",
            "affiliation": "Google Store",
            "total": 27.50,
            "subtotal": 22.50,
            "revenue": 25.00,
            "shipping": 3,
            "tax": 2,
            "discount": 2.5,
            "coupon": "hasbros",
            "currency": "USD",
            "products": [PRODUCT, {"product_id": "505bd76785ebb509fc183733", "price": 3}],
        },
    ),
    (
        "Product List Filtered",
        {
            "list_id": "todays_deals_may_11_2019",
            "filters": [{"type": "department", "value": "beauty"}, {"type": "price", "value": 25}],
            "sorts": [{"type": "price", "value": "desc"}],
            "products": [PRODUCT],
        },
    ),
    ("Products Searched", {"query": "blue roses"}),
    ("Products Searched", {"query": {"text": "roses", "colour": "blue"}}),
    ("Product Viewed", {**PRODUCT, "currency": "usd", "position": 3, "value": 18.99}),
    ("Promotion Viewed", {"promotion_id": "promo_1", "position": "home_banner_top"}),
    ("Product Reviewed", {"product_id": "p-1", "review_id": "r-9", "rating": "5"}),
    ("Checkout Step Viewed", {"checkout_id": "c-1", "step": 2, "shipping_method": "Fedex"}),
    ("Order Refunded", {"order_id": "o-1", "total": -30, "products": [{"quantity": -1}]}),
    ("Order Refunded", {"order_id": "o-1", "total": 30, "currency": "EUR"}),
    # Polku's events
    (
        "POS Order Completed",
        {
            "store_id": "HEL-01",
            "receipt_id": 731,
            "loyalty_card": "6042 0000 1042",
            "email": "aino@kauppa-posti.fi",
            "phone": "+358401234567",
            "products": [{"sku": 4006381333931, "price": 12.9, "quantity": 2.0}],
            "total": 25.8,
            "currency": "EUR",
        },
    ),
    (
        "Click and Collect Reserved",
        {"order_id": "o-7", "store_id": 12, "ready_by": "2026-11-22T10:15:00.000Z"},
    ),
    ("Click and Collect Ready", {"order_id": "o-7", "store_id": 12, "collect_by": "2026-11-29"}),
    ("Store Visited", {"store_id": "HEL-01", "method": "wifi", "dwell_seconds": 840}),
    ("Return Received", {"receipt_id": "R-1", "store_id": "HEL-01", "total": 12.9}),
    ("Consent Updated", {"purpose": "marketing", "channel": "sms", "granted": False}),
    ("Consent Updated", {"purpose": "marketing", "granted": True}),
    ("Reviews Viewed", {"product_id": "p-1", "review_count": 14, "rating": 4.5}),
]


@pytest.mark.parametrize(("event", "properties"), VALID)
def test_valid_properties_have_no_problems(event: str, properties: dict[str, Any]) -> None:
    assert check_properties(event, properties) == []


def test_null_counts_as_absent_for_optional_properties() -> None:
    assert check_properties("Order Completed", {"coupon": None, "total": None}) == []


# --- what is unknown is kept ------------------------------------------------------------


def test_unknown_events_are_accepted_whatever_their_properties() -> None:
    weird = {"price": "12,90", "store_id": [1], "products": "none", "granted": "yes"}
    assert check_properties("Sauna Booked", weird) == []
    # Names are exact, as in Segment: another spelling is another (unknown) event.
    assert check_properties("product viewed", {"price": "12,90"}) == []


def test_unknown_properties_of_known_events_are_accepted() -> None:
    properties = {"price": 19.9, "price_note": "12,90", "colour_hex": 0xFF0000, "tags": [1, "x"]}
    assert check_properties("Product Viewed", properties) == []
    product = {"price": 1.0, "weight_kg": "0,482", "ean": 6410405082565}
    assert check_properties("POS Order Completed", _receipt(products=[product])) == []


def test_a_fresh_list_is_returned_every_time() -> None:
    first = check_properties("Sauna Booked", {})
    first.append(FieldProblem("x", "y", "z"))
    assert check_properties("Sauna Booked", {}) == []


# --- wrong types ---------------------------------------------------------------------------


def test_a_wrong_type_names_the_field_and_what_to_send() -> None:
    problem = only("Product Viewed", {"product_id": "sku-1", "price": "12,90"})
    assert problem.field == "properties.price"
    assert problem.code == "wrong_type"
    assert problem.message == (
        "properties.price must be a number (got string '12,90'); send a JSON number such as 12.9"
    )


@pytest.mark.parametrize(
    ("event", "properties", "field"),
    [
        ("Product Viewed", {"price": True}, "properties.price"),
        ("Product Added", {"quantity": False}, "properties.quantity"),
        ("Order Completed", {"total": True}, "properties.total"),
        ("Checkout Step Viewed", {"step": True}, "properties.step"),
        ("Reviews Viewed", {"review_count": True}, "properties.review_count"),
        ("Product Viewed", {"product_id": True}, "properties.product_id"),
        ("Store Visited", {"store_id": False}, "properties.store_id"),
    ],
)
def test_a_boolean_is_not_a_number_or_an_id(
    event: str, properties: dict[str, Any], field: str
) -> None:
    problem = only(event, properties)
    assert (problem.field, problem.code) == (field, "wrong_type")
    assert "(got true)" in problem.message or "(got false)" in problem.message


@pytest.mark.parametrize(
    ("event", "properties", "field", "needle"),
    [
        ("Product Viewed", {"name": 42}, "properties.name", 'send it as a JSON string: "42"'),
        ("Product Viewed", {"sku": 12.5}, "properties.sku", "a string or an integer"),
        ("Product Added", {"quantity": "2"}, "properties.quantity", "such as 2"),
        ("Product Added", {"quantity": 1.5}, "properties.quantity", "a whole number"),
        (
            "Store Stock Checked",
            {"store_id": "S", "in_stock": 1},
            "properties.in_stock",
            "true or false",
        ),
        (
            "Consent Updated",
            {"purpose": "m", "granted": "yes"},
            "properties.granted",
            "true or false",
        ),
        ("Cart Viewed", {"products": {"0": {}}}, "properties.products", "a JSON array"),
        ("Products Searched", {"query": ["a"]}, "properties.query", "a string or an object"),
        (
            "Product Reviewed",
            {"rating": None, "review_body": ["x"]},
            "properties.review_body",
            "a string",
        ),
        (
            "Click and Collect Ready",
            {"order_id": "o", "store_id": "s", "collect_by": 1764000000},
            "properties.collect_by",
            "ISO-8601",
        ),
    ],
)
def test_wrong_types_name_the_field(
    event: str, properties: dict[str, Any], field: str, needle: str
) -> None:
    problem = only(event, properties)
    assert (problem.field, problem.code) == (field, "wrong_type")
    assert problem.message.startswith(field + " must be ")
    assert needle in problem.message


def test_an_integer_property_takes_a_whole_float() -> None:
    assert check_properties("Product Added", {"quantity": 2.0, "position": 3.0}) == []


def test_malformed_dates_and_currencies_are_invalid_format() -> None:
    assert problems("Order Completed", {"currency": "euro"}) == [
        ("properties.currency", "invalid_format")
    ]
    assert problems("Order Completed", {"currency": "€"}) == [
        ("properties.currency", "invalid_format")
    ]
    assert problems("Order Completed", {"currency": 978}) == [("properties.currency", "wrong_type")]
    reserved = {"order_id": "o", "store_id": "s", "ready_by": "22.11.2026 klo 10"}
    problem = only("Click and Collect Reserved", reserved)
    assert (problem.field, problem.code) == ("properties.ready_by", "invalid_format")
    assert "2026-11-22T10:15:00Z" in problem.message


# --- ranges --------------------------------------------------------------------------------


def test_money_and_quantities_cannot_be_negative() -> None:
    assert problems("Order Completed", {"total": -1, "discount": -2.5, "tax": 0}) == [
        ("properties.total", "out_of_range"),
        ("properties.discount", "out_of_range"),
    ]
    problem = only("Product Added", {"quantity": -1})
    assert problem.message == "properties.quantity must be 0 or more (got -1)"


def test_refunds_take_either_sign() -> None:
    refund = {"total": -30, "revenue": -25, "tax": -5, "products": [{"price": -19, "quantity": -1}]}
    assert check_properties("Order Refunded", refund) == []
    assert problems("Order Refunded", {"total": "-30"}) == [("properties.total", "wrong_type")]


def test_nan_is_out_of_range() -> None:
    assert problems("Product Viewed", {"price": float("nan")}) == [
        ("properties.price", "out_of_range")
    ]


# --- arrays of objects, item by item -------------------------------------------------------


def test_products_are_checked_per_index() -> None:
    products: list[Any] = [
        {"product_id": "ok", "price": 19.0, "quantity": 1},
        {"product_id": "p-2", "price": -1},
        "SKU-3",
        {"product_id": "p-4", "quantity": 1.5, "price": "9,90", "colour": "any"},
        None,
        {"product_id": ["p-6"]},
    ]
    assert problems("Order Completed", {"order_id": "o-1", "products": products}) == [
        ("properties.products[1].price", "out_of_range"),
        ("properties.products[2]", "wrong_type"),
        ("properties.products[3].quantity", "wrong_type"),
        ("properties.products[3].price", "wrong_type"),
        ("properties.products[4]", "wrong_type"),
        ("properties.products[5].product_id", "wrong_type"),
    ]
    found = check_properties("Cart Viewed", {"products": [{}, {}, {"price": "9,90"}]})
    assert found == [
        FieldProblem(
            "properties.products[2].price",
            "wrong_type",
            "properties.products[2].price must be a number (got string '9,90'); "
            "send a JSON number such as 9.9",
        )
    ]


def test_filters_are_checked_per_index() -> None:
    filters = [{"type": "price", "value": "under-25"}, {"type": 3, "value": {"min": 1}}]
    assert problems("Product List Filtered", {"filters": filters}) == [
        ("properties.filters[1].type", "wrong_type"),
        ("properties.filters[1].value", "wrong_type"),
    ]


def test_an_empty_products_array_is_fine() -> None:
    assert check_properties("Order Completed", {"products": []}) == []


# --- required properties -------------------------------------------------------------------


def _receipt(**properties: Any) -> dict[str, Any]:
    return {"store_id": "HEL-01", "receipt_id": "R-1", **properties}


def test_required_properties_must_be_present() -> None:
    assert problems("POS Order Completed", {}) == [
        ("properties.receipt_id", "required"),
        ("properties.store_id", "required"),
    ]
    problem = only("POS Order Completed", {"store_id": "HEL-01"})
    assert problem.field == "properties.receipt_id"
    assert problem.message.startswith("properties.receipt_id is required in POS Order Completed")
    assert check_properties("POS Order Completed", _receipt()) == []


@pytest.mark.parametrize("empty", [None, ""])
def test_null_or_empty_is_missing_when_required(empty: Any) -> None:
    assert problems("Store Visited", {"store_id": empty}) == [("properties.store_id", "required")]


def test_a_required_property_of_the_wrong_type_is_a_wrong_type() -> None:
    assert problems("Store Visited", {"store_id": ["HEL-01"]}) == [
        ("properties.store_id", "wrong_type")
    ]


def test_each_polku_event_with_requirements_names_them() -> None:
    expected = {
        "Store Stock Checked": {"store_id"},
        "Store Visited": {"store_id"},
        "POS Order Completed": {"store_id", "receipt_id"},
        "Click and Collect Reserved": {"order_id", "store_id"},
        "Click and Collect Ready": {"order_id", "store_id"},
        "Click and Collect Picked Up": {"order_id", "store_id"},
        "Click and Collect Released": {"order_id", "store_id"},
        "Stock Received": {"location_id", "products"},
        "Stock Counted": {"location_id", "products"},
        "Stock Transferred": {"from_location_id", "to_location_id", "products"},
        "Stock Adjusted": {"location_id", "products"},
        "Return Requested": {"order_id"},
        "Consent Updated": {"purpose", "granted"},
        "Gift Card Issued": {"giftcard_id", "amount", "currency"},
        "Gift Card Redeemed": {"giftcard_id", "amount", "currency"},
        "Gift Card Expired": {"giftcard_id", "amount", "currency"},
        "Gift Card Cancelled": {"giftcard_id", "amount", "currency"},
        "Return Inspected": {"return_id", "location_id"},
        "Return Cancelled": {"return_id"},
        "Outlet Item Reserved": {"listing_id", "store_id"},
        "Outlet Item Released": {"listing_id", "store_id"},
        "Outlet Item Sold": {"listing_id", "store_id"},
        "Signal Claimed": {"signal_id", "staff_id"},
        "Signal Acknowledged": {"signal_id"},
        "Signal Outcome Recorded": {"signal_id", "outcome"},
        "Signal Closed": {"signal_id"},
    }
    for name in POLKU_EVENTS:
        required = expected.get(name, set())
        assert KNOWN_EVENTS[name].required == required, name
        assert {f for f, _ in problems(name, {})} == {f"properties.{k}" for k in required}


def test_problems_come_in_the_order_sent_then_the_missing_ones() -> None:
    sent = {"total": "x", "store_id": "HEL-01", "currency": "euro"}
    assert problems("POS Order Completed", sent) == [
        ("properties.total", "wrong_type"),
        ("properties.currency", "invalid_format"),
        ("properties.receipt_id", "required"),
    ]


# --- the docs ------------------------------------------------------------------------------


def _generated_part(text: str) -> str:
    start, end = "<!-- events:start -->", "<!-- events:end -->"
    assert text.count(start) == 1 and text.count(end) == 1, "markers missing in docs/events.md"
    return text.split(start, 1)[1].split(end, 1)[0]


def test_docs_list_every_event_as_generated() -> None:
    render = runpy.run_path(str(ROOT / "scripts" / "gen_events_doc.py"))["render"]
    assert _generated_part(DOC.read_text()) == render(), (
        "docs/events.md is stale: run .venv/bin/python scripts/gen_events_doc.py"
    )


def test_docs_name_every_event_and_property() -> None:
    generated = _generated_part(DOC.read_text())
    for name, spec in KNOWN_EVENTS.items():
        assert f"#### {name}\n" in generated
        for key in spec.properties:
            assert f"| `{key}` |" in generated, (name, key)


def _json_examples(text: str) -> list[Any]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def _messages(examples: list[Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for example in examples:
        for item in example if isinstance(example, list) else [example]:
            if isinstance(item, dict) and "type" in item:
                found.append(item)
    return found


def test_every_documented_track_example_is_valid() -> None:
    messages = _messages(_json_examples(DOC.read_text()))
    tracks = [m for m in messages if m["type"] == "track"]
    assert {m["event"] for m in tracks} >= {"POS Order Completed", "Consent Updated"}
    for message in tracks:
        assert check_properties(message["event"], message.get("properties", {})) == [], message


def _journey() -> list[dict[str, Any]]:
    text = DOC.read_text()
    section = text.split("## A worked journey", 1)[1].split("\n## ", 1)[0]
    messages = _messages(_json_examples(section))
    for message in messages:
        message["messageId"] = f"doc-{uuid.uuid4().hex}"
    return messages


def test_the_documented_journey_ends_in_one_profile(polku: Polku) -> None:
    journey = _journey()
    assert [m["type"] for m in journey] == ["page", "track", "track", "alias", "identify", "track"]
    response = polku.send("/v1/batch", {"batch": journey})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": len(journey)}
    polku.settle()
    source = polku.runtime.keys.source(polku.write_key)
    assert source is not None
    with polku.runtime.engine.connect() as conn:
        profiles = {event_profile(conn, source.workspace_id, m["messageId"]) for m in journey}
    assert len(profiles) == 1 and None not in profiles, profiles


def test_a_known_event_missing_a_required_property_is_refused_over_http(polku: Polku) -> None:
    body = {
        "userId": "cust-1",
        "event": "POS Order Completed",
        "properties": {"store_id": "HEL-01", "total": 12.9},
    }
    response = polku.send("/v1/track", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("required", "properties.receipt_id")
