"""Returns through the HTTP API, on SQLite and PostgreSQL: a web order returned in a store
within its window, inspected into stock, the outlet and disposal, refunded to the card or as
a gift card with a bonus; refusals that change nothing; the return rate of a product; and a
replay that rebuilds the same returns, listings, stock and gift cards.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from conftest import Polku
from polku.commerce.catalog.actions import create_product
from polku.commerce.catalog.validation import ProductInput, VariantInput
from polku.commerce.giftcards.tables import entries, giftcards
from polku.commerce.locations.actions import create_location
from polku.commerce.returns.tables import history, lines, outlet_listings, returns
from polku.commerce.stock.tables import levels, movements

WS = "default"
DAY = timedelta(days=1)


@pytest.fixture
def shop(polku: Polku) -> Iterator[Polku]:
    """A jacket (long return promise) and shoes (the default 30 days), two stores, a
    warehouse, and a policy: 100 days for coats, outlet at 30 % off, a 10 % gift card bonus."""
    rt = polku.runtime
    create_product(
        rt,
        WS,
        ProductInput(
            product_id="takki-1",
            name="Talvitakki Revontuli",
            category=("Naiset", "Takit", "Talvitakit"),
            variants=tuple(
                VariantInput(sku=f"takki-1-{size}", price_minor=18900, currency="EUR", size=size)
                for size in ("S", "M", "L")
            ),
        ),
    )
    create_product(
        rt,
        WS,
        ProductInput(
            product_id="kengat-1",
            name="Talvikenkä Routa",
            category=("Naiset", "Kengät"),
            variants=(VariantInput(sku="kengat-1-38", price_minor=9990, currency="EUR"),),
        ),
    )
    for location_id, name, city, postal in (
        ("hki-kamppi", "Kamppi", "Helsinki", "00100"),
        ("tre-ratina", "Ratina", "Tampere", "33100"),
    ):
        create_location(
            rt, WS, {"location_id": location_id, "name": name, "city": city, "postal_code": postal}
        )
    create_location(
        rt,
        WS,
        {
            "location_id": "wh-vantaa",
            "name": "Keskusvarasto",
            "kind": "warehouse",
            "city": "Vantaa",
            "postal_code": "01510",
        },
    )
    policy = polku.client.put(
        "/v1/returns/policy",
        json={
            "default_window_days": 30,
            "category_windows": [{"category": "Naiset > Takit", "days": 100}],
            "outlet_discount_percent": 30,
            "gift_card_bonus_percent": 10,
        },
        headers=polku.admin,
    )
    assert policy.status_code == 200, policy.text
    yield polku


def post(polku: Polku, path: str, body: dict[str, Any]) -> Any:
    return polku.client.post(path, json=body, headers=polku.admin)


def get(polku: Polku, path: str, **params: Any) -> Any:
    response = polku.client.get(path, params=params, headers=polku.admin)
    assert response.status_code == 200, response.text
    return response.json()


def order(
    polku: Polku,
    order_id: str,
    products: list[tuple[str, str, int, float]],
    *,
    days_ago: float = 3,
    total: float | None = None,
    user: str = "anna",
) -> None:
    """A web order, placed `days_ago`, through the collection API like a shop sends it."""
    at = datetime.now(UTC) - timedelta(days=days_ago)
    message = {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "messageId": f"order-{uuid.uuid4().hex}",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "context": {"channel": "web"},
        "properties": {
            "order_id": order_id,
            "currency": "EUR",
            "payment_method": "card",
            "total": total if total is not None else sum(q * p for _, _, q, p in products),
            "products": [
                {"sku": sku, "product_id": product, "quantity": q, "price": p}
                for sku, product, q, p in products
            ],
        },
    }
    assert polku.send("/v1/track", message).status_code == 200
    polku.settle()


def on_hand(polku: Polku, location: str, sku: str) -> int:
    found = get(polku, "/v1/stock", sku=sku, location_id=location)["levels"]
    return int(found[0]["on_hand"]) if found else 0


def error(response: Any) -> dict[str, Any]:
    found: dict[str, Any] = response.json()["error"]
    return found


def request_return(polku: Polku, order_id: str, *items: tuple[str, int, str], **extra: Any) -> Any:
    body = {
        "order_id": order_id,
        "lines": [{"sku": sku, "quantity": q, "reason": why} for sku, q, why in items],
        **extra,
    }
    return post(polku, "/v1/returns", body)


def timeline_of(polku: Polku, user: str) -> list[dict[str, Any]]:
    polku.settle()
    profile = get(polku, "/v1/profiles/lookup", type="user_id", value=user)
    events: list[dict[str, Any]] = get(polku, f"/v1/profiles/{profile['profile_id']}/timeline")[
        "events"
    ]
    return events


# -- the whole journey -----------------------------------------------------------------------


def test_a_web_order_returned_in_a_store_is_restocked_outleted_disposed_and_refunded_as_a_gift_card(
    shop: Polku,
) -> None:
    order(
        shop, "W-1001", [("takki-1-M", "takki-1", 2, 189.0), ("kengat-1-38", "kengat-1", 1, 99.9)]
    )
    before = on_hand(shop, "hki-kamppi", "takki-1-M")

    # The customer walks into Kamppi with the parcel: the till requests and receives at once.
    made = request_return(
        shop,
        "W-1001",
        ("takki-1-M", 2, "wrong_size"),
        ("kengat-1-38", 1, "damaged"),
        channel="store",
        location_id="hki-kamppi",
    )
    assert made.status_code == 201, made.text
    ret = made.json()
    rid = ret["return_id"]
    assert (ret["status"], ret["location_id"], ret["channel"]) == (
        "received",
        "hki-kamppi",
        "store",
    )
    coat = next(line for line in ret["lines"] if line["sku"] == "takki-1-M")
    assert (coat["unit_paid"], coat["reason"]) == ("189.00", "wrong_size")
    assert [e["event"] for e in ret["history"]] == ["Return Requested", "Return Received"]

    inspected = post(
        shop,
        f"/v1/returns/{rid}/inspect",
        {
            "lines": [
                {"sku": "takki-1-M", "quantity": 1, "outcome": "restock"},
                {"sku": "takki-1-M", "quantity": 1, "outcome": "outlet", "condition": "tag cut"},
                {
                    "sku": "kengat-1-38",
                    "quantity": 1,
                    "outcome": "dispose",
                    "condition": "sole off",
                },
            ],
            "staff_id": "s-17",
        },
    )
    assert inspected.status_code == 200, inspected.text
    assert inspected.json()["status"] == "inspected"
    # Restock: on hand again, as new, where it was received.
    assert on_hand(shop, "hki-kamppi", "takki-1-M") == before + 1
    assert on_hand(shop, "hki-kamppi", "kengat-1-38") == 0  # disposed: not stock
    moved = get(shop, "/v1/stock/movements", sku="takki-1-M", location_id="hki-kamppi")
    assert [(m["kind"], m["on_hand_delta"], m["reference"]) for m in moved["movements"]] == [
        ("returned", 1, rid)
    ]
    # Outlet: one listing at 30 % off, sellable in Kamppi only.
    shelf = get(shop, "/v1/outlet", location_id="hki-kamppi", status="available")["listings"]
    assert [(x["sku"], x["price"], x["original_price"], x["condition"]) for x in shelf] == [
        ("takki-1-M", "132.30", "189.00", "tag cut")
    ]

    refunded = post(shop, f"/v1/returns/{rid}/refund", {"method": "gift_card"})
    assert refunded.status_code == 200, refunded.text
    body = refunded.json()
    assert body["status"] == "refunded"
    assert body["refund"]["method"] == "gift_card" and body["refund"]["amount"] == "477.90"
    card = body["giftcard"]
    assert (card["amount"], card["balance"], card["reason"]) == ("525.69", "525.69", "refund")
    assert card["userId"] == "anna" and card["return_id"] == rid
    assert len(card["code"]) == 19  # shown here, once

    # Partly spent at the till: the card keeps the rest.
    spent = post(
        shop,
        "/v1/giftcards/redeem",
        {"code": card["code"], "amount": "100.00", "currency": "EUR", "store_id": "hki-kamppi"},
    )
    assert spent.status_code == 201, spent.text
    assert spent.json()["giftcard"]["balance"] == "425.69"

    events = timeline_of(shop, "anna")
    names = [e["event"] for e in events]
    for expected in (
        "Return Requested",
        "Return Received",
        "Return Inspected",
        "Gift Card Issued",
        "Order Refunded",
        "Gift Card Redeemed",
    ):
        assert expected in names, names
    refund = next(e for e in events if e["event"] == "Order Refunded")["message"]["properties"]
    assert (refund["total"], refund["refund_method"], refund["return_id"]) == (
        477.9,
        "gift_card",
        rid,
    )
    issued = next(e for e in events if e["event"] == "Gift Card Issued")["message"]["properties"]
    assert (issued["bonus"], issued["bonus_percent"]) == (47.79, 10)


def test_a_refund_to_the_card_pays_what_was_paid_after_the_orders_discount(shop: Polku) -> None:
    # 189.00 + 99.90 = 288.90 on the lines, 259.90 paid with a coupon (10.04 % off).
    order(
        shop,
        "W-2002",
        [("takki-1-L", "takki-1", 1, 189.0), ("kengat-1-38", "kengat-1", 1, 99.9)],
        total=259.9,
    )
    rid = request_return(shop, "W-2002", ("takki-1-L", 1, "not_as_described")).json()["return_id"]
    assert post(shop, f"/v1/returns/{rid}/receive", {"location_id": "wh-vantaa"}).status_code == 200
    inspect = post(
        shop,
        f"/v1/returns/{rid}/inspect",
        {"lines": [{"sku": "takki-1-L", "quantity": 1, "outcome": "restock"}]},
    )
    assert inspect.status_code == 200, inspect.text
    assert on_hand(shop, "wh-vantaa", "takki-1-L") == 1
    done = post(shop, f"/v1/returns/{rid}/refund", {"method": "original_payment"})
    assert done.status_code == 200, done.text
    # 189.00 x 259.90 / 288.90 = 170.0277...: rounded down, never more than was paid.
    assert done.json()["refund"] == {
        "method": "original_payment",
        "amount": "170.02",
        "giftcard_id": None,
    }
    assert "giftcard" not in done.json()
    again = post(shop, f"/v1/returns/{rid}/refund", {"method": "original_payment"})
    assert again.status_code == 409 and error(again)["code"] == "return_refunded"
    refund = next(e for e in timeline_of(shop, "anna") if e["event"] == "Order Refunded")[
        "message"
    ]["properties"]
    assert (refund["total"], refund["payment_method"], refund["currency"]) == (
        170.02,
        "card",
        "EUR",
    )
    assert refund["products"] == [
        {"sku": "takki-1-L", "quantity": 1, "price": 170.02, "product_id": "takki-1"}
    ]


# -- refusals that change nothing --------------------------------------------------------------


def test_a_return_outside_its_window_is_refused_with_the_deadline(shop: Polku) -> None:
    order(
        shop,
        "W-3003",
        [("takki-1-S", "takki-1", 1, 189.0), ("kengat-1-38", "kengat-1", 1, 99.9)],
        days_ago=45,
    )
    placed = datetime.now(UTC) - timedelta(days=45)
    late = request_return(shop, "W-3003", ("kengat-1-38", 1, "changed_mind"))
    assert late.status_code == 409, late.text
    problem = error(late)
    assert (problem["code"], problem["field"]) == ("return_window_closed", "lines[0].sku")
    deadline = (placed + 30 * DAY).date().isoformat()
    assert deadline in problem["message"] and "30 days" in problem["message"]
    assert problem["hint"]
    # The coat is on the 100-day promise of its category (Naiset > Takit > Talvitakit).
    coat = request_return(shop, "W-3003", ("takki-1-S", 1, "changed_mind"))
    assert coat.status_code == 201, coat.text
    return_by = coat.json()["lines"][0]["return_by"]
    assert return_by.startswith((placed + 100 * DAY).date().isoformat())


def test_bad_returns_are_refused_with_a_code_and_a_field(shop: Polku) -> None:
    order(shop, "W-4004", [("takki-1-M", "takki-1", 1, 189.0)])
    cases = [
        (request_return(shop, "W-9999", ("takki-1-M", 1, "wrong_size")), 404, "unknown_order"),
        (request_return(shop, "W-4004", ("takki-1-L", 1, "wrong_size")), 400, "not_in_order"),
        (
            request_return(shop, "W-4004", ("takki-1-M", 2, "wrong_size")),
            400,
            "exceeds_quantity_bought",
        ),
        (request_return(shop, "W-4004", ("takki-1-M", 1, "meh")), 400, "invalid_reason"),
        (request_return(shop, "W-4004", ("takki-1-M", 0, "wrong_size")), 400, "invalid_quantity"),
        (request_return(shop, "W-4004"), 400, "empty_lines"),
        (
            request_return(shop, "W-4004", ("takki-1-M", 1, "wrong_size"), channel="fax"),
            400,
            "invalid_channel",
        ),
        (
            request_return(shop, "W-4004", ("takki-1-M", 1, "wrong_size"), location_id="nowhere"),
            400,
            "unknown_location",
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        problem = error(response)
        assert problem["code"] == code, problem
        assert problem.get("field"), problem
    never = error(cases[1][0])
    assert "never bought" in never["message"] and never["hint"]
    assert get(shop, "/v1/returns", order_id="W-4004")["returns"] == []

    first = request_return(shop, "W-4004", ("takki-1-M", 1, "wrong_size"))
    assert first.status_code == 201
    twice = request_return(shop, "W-4004", ("takki-1-M", 1, "wrong_size"))
    assert twice.status_code == 409 and error(twice)["code"] == "already_returned"
    # Cancelled, the unit can be returned again.
    rid = first.json()["return_id"]
    assert post(shop, f"/v1/returns/{rid}/cancel", {"reason": "kept it"}).status_code == 200
    assert request_return(shop, "W-4004", ("takki-1-M", 1, "wrong_size")).status_code == 201
    unknown = post(shop, "/v1/returns/rma-nope/receive", {"location_id": "hki-kamppi"})
    assert unknown.status_code == 404 and error(unknown)["code"] == "unknown_return"


def test_a_refused_inspection_moves_no_stock_and_lists_nothing(shop: Polku) -> None:
    order(shop, "W-5005", [("takki-1-M", "takki-1", 2, 189.0)])
    rid = request_return(shop, "W-5005", ("takki-1-M", 2, "wrong_size")).json()["return_id"]
    assert post(shop, f"/v1/returns/{rid}/refund", {}).status_code == 409  # not inspected yet
    assert post(shop, f"/v1/returns/{rid}/receive", {"location_id": "wh-vantaa"}).status_code == 200
    refused = [
        # Outlet units are sold in the store that received them: not at a warehouse.
        (
            [
                {"sku": "takki-1-M", "quantity": 1, "outcome": "restock"},
                {"sku": "takki-1-M", "quantity": 1, "outcome": "outlet"},
            ],
            "outlet_needs_store",
        ),
        ([{"sku": "takki-1-M", "quantity": 1, "outcome": "restock"}], "inspection_incomplete"),
        ([{"sku": "takki-1-M", "quantity": 2, "outcome": "resell"}], "invalid_outcome"),
        ([{"sku": "takki-1-S", "quantity": 2, "outcome": "restock"}], "not_in_return"),
    ]
    for body, code in refused:
        response = post(shop, f"/v1/returns/{rid}/inspect", {"lines": body})
        assert response.status_code == 400, response.text
        assert error(response)["code"] == code
        assert error(response)["field"]
    assert on_hand(shop, "wh-vantaa", "takki-1-M") == 0
    assert get(shop, "/v1/outlet", return_id=rid)["listings"] == []
    after = get(shop, f"/v1/returns/{rid}")
    assert after["status"] == "received"
    assert [e["event"] for e in after["history"]] == ["Return Requested", "Return Received"]
    ok = post(
        shop,
        f"/v1/returns/{rid}/inspect",
        {"lines": [{"sku": "takki-1-M", "quantity": 2, "outcome": "restock"}]},
    )
    assert ok.status_code == 200, ok.text
    assert on_hand(shop, "wh-vantaa", "takki-1-M") == 2


def test_two_requests_for_the_last_unit_return_it_once(shop: Polku) -> None:
    order(shop, "W-6006", [("takki-1-S", "takki-1", 1, 189.0)])
    outcomes: list[int] = []
    start = threading.Barrier(6)

    def attempt() -> None:
        start.wait()
        outcomes.append(
            request_return(shop, "W-6006", ("takki-1-S", 1, "changed_mind")).status_code
        )

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert Counter(outcomes) == {201: 1, 409: 5}


# -- the outlet --------------------------------------------------------------------------------


def test_an_outlet_unit_is_reserved_and_sold_only_in_the_store_that_received_it(
    shop: Polku,
) -> None:
    order(shop, "W-7007", [("takki-1-L", "takki-1", 1, 189.0)])
    rid = request_return(
        shop, "W-7007", ("takki-1-L", 1, "damaged"), channel="store", location_id="tre-ratina"
    ).json()["return_id"]
    post(
        shop,
        f"/v1/returns/{rid}/inspect",
        {"lines": [{"sku": "takki-1-L", "quantity": 1, "outcome": "outlet", "condition": "stain"}]},
    )
    (listing,) = get(shop, "/v1/outlet", location_id="tre-ratina")["listings"]
    lid = listing["listing_id"]
    assert (listing["price"], listing["discount_percent"], listing["status"]) == (
        "132.30",
        30,
        "available",
    )
    wrong = post(shop, f"/v1/outlet/{lid}/sell", {"store_id": "hki-kamppi"})
    assert wrong.status_code == 409 and error(wrong)["code"] == "wrong_store"
    held = post(shop, f"/v1/outlet/{lid}/reserve", {"userId": "ville", "hold_hours": 2})
    assert held.status_code == 200 and held.json()["status"] == "reserved"
    taken = post(shop, f"/v1/outlet/{lid}/sell", {"store_id": "tre-ratina", "userId": "pekka"})
    assert taken.status_code == 409 and error(taken)["code"] == "outlet_reserved"
    assert get(shop, "/v1/outlet", location_id="tre-ratina", status="available")["listings"] == []
    sold = post(
        shop,
        f"/v1/outlet/{lid}/sell",
        {"store_id": "tre-ratina", "userId": "ville", "receipt_id": "R9"},
    )
    assert sold.status_code == 200, sold.text
    assert (sold.json()["status"], sold.json()["receipt_id"]) == ("sold", "R9")
    again = post(shop, f"/v1/outlet/{lid}/sell", {"store_id": "tre-ratina"})
    assert again.status_code == 409 and error(again)["code"] == "outlet_sold"
    assert on_hand(shop, "tre-ratina", "takki-1-L") == 0  # outlet units are not stock
    assert "Outlet Item Sold" in [e["event"] for e in timeline_of(shop, "ville")]


# -- figures and replay ------------------------------------------------------------------------


def test_the_return_rate_and_reasons_of_a_product(shop: Polku) -> None:
    order(shop, "W-8001", [("takki-1-M", "takki-1", 3, 189.0)], user="a")
    order(shop, "W-8002", [("takki-1-M", "takki-1", 1, 189.0), ("takki-1-S", "takki-1", 1, 189.0)])
    order(shop, "W-8003", [("kengat-1-38", "kengat-1", 4, 99.9)], user="c")
    first = request_return(
        shop, "W-8001", ("takki-1-M", 2, "wrong_size"), channel="store", location_id="hki-kamppi"
    )
    assert first.status_code == 201
    second = request_return(
        shop,
        "W-8002",
        ("takki-1-M", 1, "not_as_described"),
        ("takki-1-S", 1, "wrong_size"),
        location_id="hki-kamppi",
    )
    assert second.status_code == 201
    on_the_way = request_return(shop, "W-8003", ("kengat-1-38", 1, "changed_mind"))
    assert on_the_way.status_code == 201
    shop.settle()

    product = get(shop, "/v1/returns/stats", product_id="takki-1")
    assert (product["units_sold"], product["units_returned"], product["return_rate"]) == (
        5,
        4,
        0.8,
    )
    assert product["reasons"] == {"wrong_size": 3, "not_as_described": 1}
    medium = next(s for s in product["skus"] if s["sku"] == "takki-1-M")
    assert (medium["units_sold"], medium["units_returned"], medium["return_rate"]) == (4, 3, 0.75)
    assert medium["reasons"] == {"wrong_size": 2, "not_as_described": 1}
    shoes = get(shop, "/v1/returns/stats", sku="kengat-1-38")
    assert (shoes["units_sold"], shoes["units_returned"], shoes["units_on_their_way_back"]) == (
        4,
        0,
        1,
    )
    assert shoes["return_rate"] == 0.0
    for params, status, code in (
        ({}, 400, "missing_product"),
        ({"product_id": "nope"}, 404, "unknown_product"),
        ({"sku": "nope"}, 404, "unknown_sku"),
    ):
        response = shop.client.get("/v1/returns/stats", params=params, headers=shop.admin)
        assert response.status_code == status and error(response)["code"] == code


def test_replay_rebuilds_the_same_returns_listings_stock_and_gift_cards(shop: Polku) -> None:
    order(shop, "W-9001", [("takki-1-M", "takki-1", 3, 189.0)])
    rid = request_return(
        shop, "W-9001", ("takki-1-M", 3, "wrong_size"), channel="store", location_id="hki-kamppi"
    ).json()["return_id"]
    post(
        shop,
        f"/v1/returns/{rid}/inspect",
        {
            "lines": [
                {"sku": "takki-1-M", "quantity": 1, "outcome": "restock"},
                {"sku": "takki-1-M", "quantity": 2, "outcome": "outlet"},
            ]
        },
    )
    card = post(shop, f"/v1/returns/{rid}/refund", {"method": "gift_card"}).json()["giftcard"]
    post(shop, "/v1/giftcards/redeem", {"code": card["code"], "amount": 50, "currency": "EUR"})
    first, second = get(shop, "/v1/outlet", return_id=rid)["listings"]
    post(shop, f"/v1/outlet/{first['listing_id']}/sell", {"store_id": "hki-kamppi"})
    post(shop, f"/v1/outlet/{second['listing_id']}/reserve", {"anonymousId": "walk-in-3"})
    shop.settle()

    tables = (returns, lines, history, outlet_listings, giftcards, entries, levels, movements)

    def state() -> list[list[Any]]:
        with shop.runtime.engine.connect() as conn:
            return [sorted(tuple(row) for row in conn.execute(select(table))) for table in tables]

    before = state()
    pipeline = shop.runtime.pipeline
    assert pipeline is not None
    pipeline.replay()
    assert state() == before
    assert get(shop, f"/v1/returns/{rid}")["status"] == "refunded"
    assert on_hand(shop, "hki-kamppi", "takki-1-M") == 1


def test_the_policy_refuses_what_it_cannot_mean(shop: Polku) -> None:
    cases = [
        ({"default_window_days": 0}, "invalid_days"),
        ({"outlet_discount_percent": 100}, "invalid_percent"),
        ({"gift_card_bonus_percent": -1}, "invalid_percent"),
        ({"category_windows": [{"category": "", "days": 60}]}, "invalid_category"),
        (
            {
                "category_windows": [
                    {"category": "Naiset > Takit", "days": 60},
                    {"category": ["Naiset", "Takit"], "days": 90},
                ]
            },
            "duplicate_category",
        ),
    ]
    for body, code in cases:
        response = shop.client.put("/v1/returns/policy", json=body, headers=shop.admin)
        assert response.status_code == 400, response.text
        assert error(response)["code"] == code and error(response)["field"]
    policy = get(shop, "/v1/returns/policy")
    assert policy["category_windows"] == [{"category": "Naiset > Takit", "days": 100}]
    assert {r["code"] for r in policy["reasons"]} >= {"wrong_size", "damaged", "changed_mind"}
