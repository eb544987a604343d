"""Stock per location: facts through the API and the log, reservations that never oversell,
availability for a product page, and the reservation timer. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Polku
from polku.commerce.catalog.actions import create_product
from polku.commerce.catalog.validation import ProductInput, VariantInput
from polku.commerce.locations.actions import create_location
from polku.commerce.stock.actions import release_expired

WS = "default"
EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
STORES = {
    # id: (name, city, postal code, latitude, longitude)
    "hki-kamppi": ("Kamppi", "Helsinki", "00100", 60.1690, 24.9327),
    "tre-ratina": ("Ratina", "Tampere", "33100", 61.4937, 23.7680),
    "tku-hansa": ("Hansa", "Turku", "20100", 60.4510, 22.2666),
}


@pytest.fixture
def shop(polku: Polku) -> Iterator[Polku]:
    """A jacket in three sizes, three stores offering click and collect, and a warehouse."""
    rt = polku.runtime
    create_product(
        rt,
        WS,
        ProductInput(
            product_id="takki-1",
            name="Talvitakki Revontuli",
            category=("Naiset", "Takit"),
            variants=tuple(
                VariantInput(sku=f"takki-1-{size}", price_minor=18900, currency="EUR", size=size)
                for size in ("S", "M", "L")
            ),
        ),
    )
    for location_id, (name, city, postal, lat, lon) in STORES.items():
        create_location(
            rt,
            WS,
            {
                "location_id": location_id,
                "name": name,
                "city": city,
                "postal_code": postal,
                "latitude": lat,
                "longitude": lon,
                "click_and_collect": True,
            },
            hours=EVERY_DAY,
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
    yield polku


def post(polku: Polku, path: str, body: dict[str, Any]) -> Any:
    return polku.client.post(path, json=body, headers=polku.admin)


def receive(polku: Polku, location: str, **units: int) -> None:
    lines = [{"sku": f"takki-1-{size}", "quantity": q} for size, q in units.items()]
    response = post(polku, "/v1/stock/receipts", {"location_id": location, "lines": lines})
    assert response.status_code == 201, response.text


def level(polku: Polku, location: str, size: str) -> dict[str, Any]:
    response = polku.client.get(
        "/v1/stock",
        params={"sku": f"takki-1-{size}", "location_id": location},
        headers=polku.admin,
    )
    assert response.status_code == 200, response.text
    found = response.json()["levels"]
    return found[0] if found else {"on_hand": 0, "reserved": 0, "sellable": 0}


def reserve(polku: Polku, location: str, size: str, quantity: int = 1, **extra: Any) -> Any:
    body = {
        "location_id": location,
        "lines": [{"sku": f"takki-1-{size}", "quantity": quantity}],
        "userId": extra.pop("user", "anna"),
        **extra,
    }
    return post(polku, "/v1/reservations", body)


# -- facts ----------------------------------------------------------------------------------


def test_deliveries_counts_transfers_and_adjustments_move_on_hand(shop: Polku) -> None:
    receive(shop, "hki-kamppi", M=5, L=2)
    assert level(shop, "hki-kamppi", "M")["on_hand"] == 5
    count = post(
        shop,
        "/v1/stock/counts",
        {"location_id": "hki-kamppi", "lines": [{"sku": "takki-1-M", "quantity": 4}]},
    )
    assert count.status_code == 201, count.text
    assert level(shop, "hki-kamppi", "M")["on_hand"] == 4
    moved = post(
        shop,
        "/v1/stock/transfers",
        {
            "from_location_id": "hki-kamppi",
            "to_location_id": "tre-ratina",
            "lines": [{"sku": "takki-1-M", "quantity": 3}],
        },
    )
    assert moved.status_code == 201, moved.text
    assert level(shop, "hki-kamppi", "M")["on_hand"] == 1
    assert level(shop, "tre-ratina", "M")["on_hand"] == 3
    adjusted = post(
        shop,
        "/v1/stock/adjustments",
        {
            "location_id": "tre-ratina",
            "reason": "damaged",
            "lines": [{"sku": "takki-1-M", "quantity": -1}],
        },
    )
    assert adjusted.status_code == 201, adjusted.text
    assert level(shop, "tre-ratina", "M")["on_hand"] == 2

    history = shop.client.get(
        "/v1/stock/movements",
        params={"sku": "takki-1-M", "location_id": "hki-kamppi"},
        headers=shop.admin,
    ).json()["movements"]
    assert [m["kind"] for m in history] == ["transferred", "counted", "received"]
    assert [m["on_hand_delta"] for m in history] == [-3, -1, 5]


def test_a_till_sale_from_the_collection_api_takes_units_off_the_shelf(shop: Polku) -> None:
    receive(shop, "tku-hansa", S=2)
    sale = {
        "type": "track",
        "anonymousId": "till-3",
        "event": "POS Order Completed",
        "messageId": f"pos-{uuid.uuid4().hex}",
        "properties": {
            "store_id": "tku-hansa",
            "receipt_id": "R-1",
            "products": [{"sku": "takki-1-S", "quantity": 3, "price": 189}],
        },
    }
    assert shop.send("/v1/track", sale).status_code == 200
    assert shop.send("/v1/track", sale).status_code == 200  # an SDK's retry: deduplicated
    shop.settle()
    # Sold more than was on record: the shelf was right, the record was not.
    assert level(shop, "tku-hansa", "S")["on_hand"] == -1
    assert level(shop, "tku-hansa", "S")["sellable"] == 0


def test_bad_stock_input_is_refused_with_a_code_and_changes_nothing(shop: Polku) -> None:
    receive(shop, "hki-kamppi", M=1)
    cases = [
        (
            {"location_id": "nowhere", "lines": [{"sku": "takki-1-M", "quantity": 1}]},
            "unknown_location",
        ),
        ({"location_id": "hki-kamppi", "lines": [{"sku": "nope", "quantity": 1}]}, "unknown_sku"),
        (
            {"location_id": "hki-kamppi", "lines": [{"sku": "takki-1-M", "quantity": 0}]},
            "invalid_quantity",
        ),
        (
            {"location_id": "hki-kamppi", "lines": [{"sku": "takki-1-M", "quantity": -2}]},
            "invalid_quantity",
        ),
        ({"location_id": "hki-kamppi", "lines": []}, "empty_lines"),
        (
            {"location_id": "hki-kamppi", "lines": [{"sku": "takki-1-M", "quantity": "2"}]},
            "invalid_field",
        ),
    ]
    for body, code in cases:
        response = post(shop, "/v1/stock/receipts", body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == code, (body, error)
        assert error.get("field"), error
    too_many = post(
        shop,
        "/v1/stock/transfers",
        {
            "from_location_id": "hki-kamppi",
            "to_location_id": "tre-ratina",
            "lines": [{"sku": "takki-1-M", "quantity": 2}],
        },
    )
    assert too_many.status_code == 409
    assert too_many.json()["error"]["code"] == "insufficient_stock"
    assert level(shop, "hki-kamppi", "M")["on_hand"] == 1
    assert level(shop, "tre-ratina", "M")["on_hand"] == 0


# -- reservations ---------------------------------------------------------------------------


def test_concurrent_reservations_never_take_more_than_the_last_units(shop: Polku) -> None:
    receive(shop, "hki-kamppi", M=3)
    outcomes: list[int] = []
    codes: list[str] = []
    start = threading.Barrier(12)

    def attempt(n: int) -> None:
        start.wait()
        response = reserve(shop, "hki-kamppi", "M", user=f"shopper-{n}")
        outcomes.append(response.status_code)
        if response.status_code != 201:
            codes.append(response.json()["error"]["code"])

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert Counter(outcomes) == {201: 3, 409: 9}
    assert set(codes) == {"insufficient_stock"}
    after = level(shop, "hki-kamppi", "M")
    assert (after["on_hand"], after["reserved"], after["sellable"]) == (3, 3, 0)


def test_a_reservation_is_held_made_ready_and_collected(shop: Polku) -> None:
    receive(shop, "tre-ratina", L=2)
    made = reserve(shop, "tre-ratina", "L", user="ville", hold_hours=24)
    assert made.status_code == 201, made.text
    reservation = made.json()
    assert reservation["status"] == "held"
    assert level(shop, "tre-ratina", "L")["sellable"] == 1
    rid = reservation["reservation_id"]
    ready = shop.client.post(f"/v1/reservations/{rid}/ready", headers=shop.admin)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    todo = shop.client.get(
        "/v1/reservations",
        params={"location_id": "tre-ratina", "status": "ready"},
        headers=shop.admin,
    ).json()["reservations"]
    assert [r["reservation_id"] for r in todo] == [rid]
    collected = shop.client.post(f"/v1/reservations/{rid}/collect", headers=shop.admin)
    assert collected.status_code == 200 and collected.json()["status"] == "collected"
    after = level(shop, "tre-ratina", "L")
    assert (after["on_hand"], after["reserved"]) == (1, 0)
    again = shop.client.post(f"/v1/reservations/{rid}/collect", headers=shop.admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "reservation_closed"

    # The reservation's events reached the customer's profile.
    shop.settle()
    profile = shop.client.get(
        "/v1/profiles/lookup", params={"type": "user_id", "value": "ville"}, headers=shop.admin
    ).json()
    timeline = shop.client.get(
        f"/v1/profiles/{profile['profile_id']}/timeline", headers=shop.admin
    ).json()["events"]
    assert [e["event"] for e in timeline][:3] == [
        "Click and Collect Picked Up",
        "Click and Collect Ready",
        "Click and Collect Reserved",
    ]


def test_a_reservation_refused_for_bad_input_changes_nothing(shop: Polku) -> None:
    receive(shop, "hki-kamppi", S=1)
    create_location(
        shop.runtime,
        WS,
        {"location_id": "no-cc", "name": "Outlet", "city": "Oulu", "postal_code": "90100"},
    )
    cases = [
        (reserve(shop, "hki-kamppi", "S", quantity=2), 409, "insufficient_stock"),
        (reserve(shop, "no-cc", "S"), 400, "no_click_and_collect"),
        (reserve(shop, "nowhere", "S"), 400, "unknown_location"),
        (reserve(shop, "hki-kamppi", "XXL"), 400, "unknown_sku"),
        (reserve(shop, "hki-kamppi", "S", hold_hours=24 * 30), 400, "invalid_hold"),
        (reserve(shop, "hki-kamppi", "S", user=None), 400, "missing_identity"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert level(shop, "hki-kamppi", "S")["reserved"] == 0
    unknown = shop.client.post("/v1/reservations/r-nope/collect", headers=shop.admin)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_reservation"


def test_an_uncollected_reservation_is_released_when_its_time_runs_out(shop: Polku) -> None:
    receive(shop, "hki-kamppi", M=1)
    rid = reserve(shop, "hki-kamppi", "M", hold_hours=1).json()["reservation_id"]
    assert level(shop, "hki-kamppi", "M")["sellable"] == 0
    assert release_expired(shop.runtime, now_ms=int(time.time() * 1000)) == 0  # not yet
    later = int(time.time() * 1000) + 2 * 3600 * 1000
    assert release_expired(shop.runtime, now_ms=later) == 1
    found = shop.client.get(f"/v1/reservations/{rid}", headers=shop.admin).json()
    assert (found["status"], found["close_reason"]) == ("released", "expired")
    assert level(shop, "hki-kamppi", "M")["sellable"] == 1
    assert release_expired(shop.runtime, now_ms=later) == 0  # only once


def test_replay_rebuilds_the_same_stock_and_reservations(shop: Polku) -> None:
    receive(shop, "hki-kamppi", S=2, M=4)
    rid = reserve(shop, "hki-kamppi", "M", quantity=2).json()["reservation_id"]
    shop.client.post(f"/v1/reservations/{rid}/ready", headers=shop.admin)
    other = reserve(shop, "hki-kamppi", "S", user="pekka").json()["reservation_id"]
    shop.client.post(f"/v1/reservations/{other}/release", headers=shop.admin)
    shop.settle()
    before = {size: level(shop, "hki-kamppi", size) for size in ("S", "M")}
    pipeline = shop.runtime.pipeline
    assert pipeline is not None
    pipeline.replay()
    after = {size: level(shop, "hki-kamppi", size) for size in ("S", "M")}
    assert after == before
    assert shop.client.get(f"/v1/reservations/{rid}", headers=shop.admin).json()["status"] == (
        "ready"
    )


# -- availability ---------------------------------------------------------------------------


def test_availability_per_variant_and_store_with_low_stock_and_the_nearest_stores(
    shop: Polku,
) -> None:
    receive(shop, "hki-kamppi", M=2)
    receive(shop, "tre-ratina", M=10, L=1)
    receive(shop, "wh-vantaa", S=50, M=50)
    # From Espoo (Iso Omena): Helsinki is nearest, then Turku, then Tampere.
    response = shop.client.get(
        "/v1/availability",
        params={"product_id": "takki-1", "lat": 60.1616, "lon": 24.7380, "k": 2},
        headers=shop.admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    medium = next(v for v in body["variants"] if v["sku"] == "takki-1-M")
    assert [s["location_id"] for s in medium["stores"]] == ["hki-kamppi", "tku-hansa", "tre-ratina"]
    kamppi = medium["stores"][0]
    assert (kamppi["sellable"], kamppi["low_stock"], kamppi["open_now"]) == (2, True, True)
    assert 5 < kamppi["distance_km"] < 20
    assert [s["location_id"] for s in medium["nearest_with_stock"]] == ["hki-kamppi", "tre-ratina"]
    assert medium["online"] == {"sellable": 50, "low_stock": False}
    large = next(v for v in body["variants"] if v["sku"] == "takki-1-L")
    assert [s["location_id"] for s in large["nearest_with_stock"]] == ["tre-ratina"]

    by_postal_code = shop.client.get(
        "/v1/availability",
        params={"sku": "takki-1-M", "postal_code": "33100"},
        headers=shop.admin,
    ).json()
    assert by_postal_code["variants"][0]["stores"][0]["location_id"] == "tre-ratina"
    by_store = shop.client.get(
        "/v1/availability", params={"sku": "takki-1-M", "store": "tku-hansa"}, headers=shop.admin
    ).json()
    first = by_store["variants"][0]["stores"][0]
    assert (first["location_id"], first["preferred"]) == ("tku-hansa", True)


def test_availability_refuses_what_it_cannot_answer(shop: Polku) -> None:
    for params, status, code in [
        ({}, 400, "missing_product"),
        ({"product_id": "nope"}, 404, "unknown_product"),
        ({"sku": "nope"}, 404, "unknown_sku"),
        ({"sku": "takki-1-M", "postal_code": "00000"}, 400, "unknown_postal_code"),
        ({"sku": "takki-1-M", "lat": 60.1}, 400, "invalid_field"),
    ]:
        response = shop.client.get("/v1/availability", params=params, headers=shop.admin)
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"]["code"] == code, (params, response.text)


def test_live_availability_pushes_a_change_to_a_product_page(shop: Polku) -> None:
    receive(shop, "hki-kamppi", M=1)
    seen: list[str] = []
    first = threading.Event()

    def watch() -> None:
        with shop.client.stream(
            "GET",
            "/v1/availability/live",
            params={"product_id": "takki-1", "seconds": 8},
            headers=shop.admin,
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    seen.append(line)
                    first.set()
                    if len(seen) == 2:
                        return

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert first.wait(10)
    receive(shop, "hki-kamppi", M=4)
    watcher.join(15)
    assert len(seen) == 2
    assert '"hki-kamppi":1' in seen[0] and '"hki-kamppi":5' in seen[1]


def test_a_body_that_is_not_json_gets_invalid_json(shop: Polku) -> None:
    response = shop.client.post(
        "/v1/stock/receipts",
        content=b"{not json",
        headers={**shop.admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_json" and "not valid JSON" in error["message"]
