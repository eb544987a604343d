"""Carts across devices, through the HTTP API on SQLite and PostgreSQL: an anonymous cart
merging into the customer's at a login on a new device, one cart read and written from every
device, prices from the catalogue, unavailable lines flagged, the cart events on the
timeline, bad input, two devices at once, an un-merge, and a replay.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from conftest import Polku
from polku.commerce.catalog.actions import create_product
from polku.commerce.catalog.validation import ProductInput, VariantInput
from polku.commerce.locations.actions import create_location
from polku.log.nats import partition_of
from polku.log.sql import SqlPartition
from polku.log.tables import log_events
from polku.pipeline import checkpoints
from polku.pipeline.runner import Pipeline
from polku.pipeline.worker import ARCHIVE
from polku.runtime import consumers

WS = "default"


@pytest.fixture
def shop(polku: Polku) -> Iterator[Polku]:
    """A jacket in three sizes, a beanie, a Swedish-priced scarf, a store and a warehouse."""
    rt = polku.runtime
    create_product(
        rt,
        WS,
        ProductInput(
            product_id="takki-1",
            name="Talvitakki Revontuli",
            brand="Pohjola",
            category=("Naiset", "Takit"),
            variants=tuple(
                VariantInput(
                    sku=f"takki-1-{size}",
                    price_minor=18900,
                    currency="EUR",
                    colour="musta",
                    size=size,
                )
                for size in ("S", "M", "L")
            ),
        ),
    )
    create_product(
        rt,
        WS,
        ProductInput(
            product_id="pipo-7",
            name="Neulepipo",
            variants=(VariantInput(sku="pipo-7", price_minor=2990, currency="EUR"),),
        ),
    )
    create_product(
        rt,
        WS,
        ProductInput(
            product_id="halsduk-2",
            name="Halsduk",
            variants=(VariantInput(sku="halsduk-2", price_minor=29900, currency="SEK"),),
        ),
    )
    create_location(
        rt,
        WS,
        {
            "location_id": "hki-kamppi",
            "name": "Kamppi",
            "city": "Helsinki",
            "postal_code": "00100",
            "click_and_collect": True,
        },
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


# -- helpers ----------------------------------------------------------------------------------


def who(spec: str) -> dict[str, str]:
    """`user:anna`, `anon:phone-1`, `profile:p_...` as request fields."""
    kind, _, value = spec.partition(":")
    return {{"user": "userId", "anon": "anonymousId", "profile": "profile"}[kind]: value}


def cart(polku: Polku, spec: str, **params: str) -> dict[str, Any]:
    response = polku.client.get("/v1/carts", params={**who(spec), **params}, headers=polku.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def add(polku: Polku, spec: str, sku: str, quantity: int = 1, **extra: Any) -> Any:
    body = {**who(spec), "sku": sku, "quantity": quantity, **extra}
    return polku.client.post("/v1/carts/lines", json=body, headers=polku.admin)


def added(polku: Polku, spec: str, sku: str, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    response = add(polku, spec, sku, quantity, **extra)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def quantities(body: dict[str, Any]) -> dict[str, int]:
    return {line["sku"]: line["quantity"] for line in body["lines"]}


def line(body: dict[str, Any], sku: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in body["lines"] if item["sku"] == sku)
    return found


def identify(polku: Polku, user_id: str, anonymous_id: str) -> None:
    """The shop's tracking reports a login on a device (identify with both ids)."""
    message = {
        "userId": user_id,
        "anonymousId": anonymous_id,
        "traits": {"name": "Anna"},
        "messageId": f"login-{uuid.uuid4().hex}",
        "context": {"channel": "app"},
    }
    assert polku.send("/v1/identify", message).status_code == 200
    polku.settle()


def receive(polku: Polku, location: str, sku: str, quantity: int) -> None:
    response = polku.client.post(
        "/v1/stock/receipts",
        json={"location_id": location, "lines": [{"sku": sku, "quantity": quantity}]},
        headers=polku.admin,
    )
    assert response.status_code == 201, response.text


def profile_of(polku: Polku, user_id: str) -> str:
    found = polku.client.get(
        "/v1/profiles/lookup", params={"type": "user_id", "value": user_id}, headers=polku.admin
    )
    assert found.status_code == 200, found.text
    profile_id: str = found.json()["profile_id"]
    return profile_id


def timeline(polku: Polku, profile_id: str) -> list[dict[str, Any]]:
    response = polku.client.get(
        f"/v1/profiles/{profile_id}/timeline", params={"limit": 100}, headers=polku.admin
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


# -- across devices ---------------------------------------------------------------------------


def test_a_login_on_a_new_device_merges_its_anonymous_cart_into_the_customers(
    shop: Polku,
) -> None:
    # Last week, on the laptop, signed in: a jacket.
    laptop = added(shop, "user:anna", "takki-1-M")
    shop.settle()
    # Today, on a new phone, not signed in: two jackets of the same size, and a beanie.
    added(shop, "anon:phone-1", "takki-1-M", 2)
    phone = added(shop, "anon:phone-1", "pipo-7")
    assert quantities(phone) == {"takki-1-M": 2, "pipo-7": 1}
    assert phone["cart_id"] != laptop["cart_id"]
    shop.settle()

    identify(shop, "anna", "phone-1")  # she signs in on the phone

    anna = profile_of(shop, "anna")
    for spec in ("user:anna", "anon:phone-1", f"profile:{anna}"):
        merged = cart(shop, spec)
        # The same SKU twice: one line with the quantities summed.
        assert quantities(merged) == {"takki-1-M": 3, "pipo-7": 1}, spec
        assert merged["cart_id"] == laptop["cart_id"]
        assert merged["profile_id"] == anna
    totals = cart(shop, "user:anna")["totals"]
    assert totals == [{"currency": "EUR", "subtotal": "596.90", "quantity": 4}]


def test_a_merge_that_sums_past_the_line_limit_shows_the_limit(shop: Polku) -> None:
    added(shop, "user:team-buyer", "pipo-7", 60)
    shop.settle()
    added(shop, "anon:office-pc", "pipo-7", 50)
    shop.settle()
    identify(shop, "team-buyer", "office-pc")
    merged = cart(shop, "user:team-buyer")
    assert quantities(merged) == {"pipo-7": 99}
    refused = add(shop, "user:team-buyer", "pipo-7")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "quantity_limit"
    lowered = shop.client.put(
        "/v1/carts/lines/pipo-7",
        json={"userId": "team-buyer", "quantity": 5},
        headers=shop.admin,
    )
    assert lowered.status_code == 200, lowered.text
    assert quantities(lowered.json()) == {"pipo-7": 5}
    # The event takes off every unit the merged line held, so the events add up to the cart.
    assert [r["event"] for r in lowered.json()["recorded"]] == ["Product Removed"]
    same = shop.client.put(
        "/v1/carts/lines/pipo-7",
        json={"userId": "team-buyer", "quantity": 5},
        headers=shop.admin,
    )
    assert same.status_code == 200 and same.json()["recorded"] == []


def test_one_cart_is_read_and_written_from_every_device_of_the_person(shop: Polku) -> None:
    added(shop, "user:ville", "takki-1-S")
    shop.settle()
    identify(shop, "ville", "tablet-9")
    identify(shop, "ville", "phone-9")
    # The phone adds, the tablet changes the quantity, the laptop (signed in) removes.
    added(shop, "anon:phone-9", "pipo-7")
    response = shop.client.put(
        "/v1/carts/lines/takki-1-S",
        json={"anonymousId": "tablet-9", "quantity": 3, "channel": "app"},
        headers=shop.admin,
    )
    assert response.status_code == 200, response.text
    assert quantities(response.json()) == {"takki-1-S": 3, "pipo-7": 1}
    assert quantities(cart(shop, "anon:phone-9")) == {"takki-1-S": 3, "pipo-7": 1}
    removed = shop.client.delete(
        "/v1/carts/lines/pipo-7", params={"userId": "ville"}, headers=shop.admin
    )
    assert removed.status_code == 200, removed.text
    for spec in ("user:ville", "anon:phone-9", "anon:tablet-9"):
        assert quantities(cart(shop, spec)) == {"takki-1-S": 3}, spec
    ville = profile_of(shop, "ville")
    by_profile = added(shop, f"profile:{ville}", "pipo-7", channel="store")  # store staff
    assert quantities(by_profile) == {"takki-1-S": 3, "pipo-7": 1}
    assert by_profile["profile_id"] == ville
    cleared = shop.client.post(
        "/v1/carts/clear", json={"anonymousId": "phone-9"}, headers=shop.admin
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["lines"] == []
    assert [r["event"] for r in cleared.json()["recorded"]] == ["Product Removed"] * 2
    assert cart(shop, "user:ville")["lines"] == []


def test_a_device_gets_its_cart_before_the_pipeline_has_seen_it(shop: Polku) -> None:
    pipeline = shop.runtime.pipeline
    assert pipeline is not None
    added(shop, "user:mia", "takki-1-L")
    shop.settle()
    pipeline.stop()  # nothing is projected until it starts again
    try:
        # A brand-new device: its cart answers at once, from any request naming it.
        added(shop, "anon:kiosk-free-1", "pipo-7", 2)
        assert quantities(cart(shop, "anon:kiosk-free-1")) == {"pipo-7": 2}
        # She signs in on it; identity has not seen the login yet, so the shop names both
        # ids: the device's cart and hers are one already.
        both = {"userId": "mia", "anonymousId": "kiosk-free-1"}
        response = shop.client.post(
            "/v1/carts/lines", json={**both, "sku": "takki-1-L"}, headers=shop.admin
        )
        assert response.status_code == 200, response.text
        assert quantities(response.json()) == {"takki-1-L": 2, "pipo-7": 2}
        assert quantities(cart(shop, "user:mia")) == {"takki-1-L": 2, "pipo-7": 2}
    finally:
        pipeline.start()
    shop.settle()
    mia = profile_of(shop, "mia")
    for spec in ("user:mia", "anon:kiosk-free-1", f"profile:{mia}"):
        after = cart(shop, spec)
        assert quantities(after) == {"takki-1-L": 2, "pipo-7": 2}, spec
        assert after["profile_id"] == mia


def test_concurrent_adds_from_two_devices_all_count(shop: Polku) -> None:
    added(shop, "user:olli", "pipo-7")
    shop.settle()
    identify(shop, "olli", "phone-3")
    start = threading.Barrier(10)
    codes: list[int] = []

    def attempt(n: int) -> None:
        start.wait()
        spec = "user:olli" if n % 2 else "anon:phone-3"
        codes.append(add(shop, spec, "takki-1-M").status_code)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert Counter(codes) == {200: 10}
    assert quantities(cart(shop, "anon:phone-3")) == {"pipo-7": 1, "takki-1-M": 10}
    shop.settle()
    assert quantities(cart(shop, "user:olli")) == {"pipo-7": 1, "takki-1-M": 10}


def test_an_unmerge_gives_the_device_its_own_cart_back(shop: Polku) -> None:
    added(shop, "user:anna", "takki-1-M")
    shop.settle()
    added(shop, "anon:borrowed-phone", "pipo-7", 2)
    shop.settle()
    identify(shop, "anna", "borrowed-phone")
    assert quantities(cart(shop, "user:anna")) == {"takki-1-M": 1, "pipo-7": 2}

    anna = profile_of(shop, "anna")
    ledger = shop.client.get(f"/v1/profiles/{anna}/merges", headers=shop.admin).json()
    (merge,) = [m for m in ledger["merges"] if m["winner_id"] == anna]
    undone = shop.client.post(
        f"/v1/identity/merges/{merge['merge_id']}/unmerge",
        json={"reason": "a borrowed phone"},
        headers=shop.admin,
    )
    assert undone.status_code == 200, undone.text
    shop.settle()
    assert quantities(cart(shop, "user:anna")) == {"takki-1-M": 1}
    phone = cart(shop, "anon:borrowed-phone")
    assert quantities(phone) == {"pipo-7": 2}
    assert phone["profile_id"] == merge["loser_id"]


# -- prices and availability ------------------------------------------------------------------


def test_prices_come_from_the_catalogue_and_a_price_change_is_shown(shop: Polku) -> None:
    added(shop, "user:aino", "takki-1-S", 2)
    patched = shop.client.patch(
        "/v1/catalog/variants/takki-1-S", json={"price": "159.90"}, headers=shop.admin
    )
    assert patched.status_code == 200, patched.text
    body = cart(shop, "user:aino")
    jacket = line(body, "takki-1-S")
    assert (jacket["price"], jacket["price_when_added"], jacket["price_changed"]) == (
        "159.90",
        "189.00",
        True,
    )
    assert jacket["line_total"] == "319.80"
    assert (jacket["name"], jacket["variant"], jacket["brand"]) == (
        "Talvitakki Revontuli",
        "musta / S",
        "Pohjola",
    )
    assert body["totals"] == [{"currency": "EUR", "subtotal": "319.80", "quantity": 2}]
    # Adding again at the new price: the line remembers the latest add.
    again = line(added(shop, "user:aino", "takki-1-S"), "takki-1-S")
    assert (again["price_when_added"], again["price_changed"], again["quantity"]) == (
        "159.90",
        False,
        3,
    )
    # Totals per currency, exact.
    mixed = added(shop, "user:aino", "halsduk-2", 3)
    assert mixed["totals"] == [
        {"currency": "EUR", "subtotal": "479.70", "quantity": 3},
        {"currency": "SEK", "subtotal": "897.00", "quantity": 3},
    ]


def test_lines_that_can_no_longer_be_bought_are_flagged_not_dropped(shop: Polku) -> None:
    receive(shop, "wh-vantaa", "takki-1-L", 1)
    receive(shop, "hki-kamppi", "takki-1-M", 2)
    added(shop, "anon:web-5", "takki-1-L", 2)  # one left online
    added(shop, "anon:web-5", "takki-1-M")  # none online, two at Kamppi
    added(shop, "anon:web-5", "takki-1-S")  # no stock recorded anywhere: not judged
    added(shop, "anon:web-5", "pipo-7")
    gone = shop.client.delete("/v1/catalog/variants/pipo-7", headers=shop.admin)
    assert gone.status_code == 200, gone.text

    body = cart(shop, "anon:web-5")
    flags = {item["sku"]: (item["available"], item["reason"]) for item in body["lines"]}
    assert flags == {
        "takki-1-L": (False, "insufficient_stock"),
        "takki-1-M": (False, "out_of_stock"),
        "takki-1-S": (True, None),
        "pipo-7": (False, "not_on_sale"),
    }
    assert line(body, "takki-1-L")["stock"] == {"online": 1, "store": None}
    assert body["unavailable"] == 3
    assert body["totals"] == [{"currency": "EUR", "subtotal": "189.00", "quantity": 1}]
    at_kamppi = cart(shop, "anon:web-5", store="hki-kamppi")
    assert line(at_kamppi, "takki-1-M")["available"] is True
    assert line(at_kamppi, "takki-1-M")["stock"] == {"online": 0, "store": 2}

    refused = shop.client.post(
        "/v1/carts/checkout", json={"anonymousId": "web-5"}, headers=shop.admin
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "unavailable_items"
    # Flagged lines survive a merge too.
    shop.settle()
    added(shop, "user:eero", "takki-1-S")
    shop.settle()
    identify(shop, "eero", "web-5")
    merged = cart(shop, "user:eero")
    assert quantities(merged) == {"takki-1-L": 2, "takki-1-M": 1, "takki-1-S": 2, "pipo-7": 1}
    assert line(merged, "pipo-7")["reason"] == "not_on_sale"


# -- events -----------------------------------------------------------------------------------


def test_cart_changes_reach_the_profile_timeline_as_segment_events(shop: Polku) -> None:
    added(shop, "user:kaisa", "takki-1-M", 2, channel="app")
    added(shop, "user:kaisa", "pipo-7", channel="app")
    removed = shop.client.delete(
        "/v1/carts/lines/pipo-7", params={"userId": "kaisa", "channel": "app"}, headers=shop.admin
    )
    assert removed.status_code == 200, removed.text
    before = shop.runtime.log.head()
    assert cart(shop, "user:kaisa")["lines"]  # a read records nothing
    assert shop.runtime.log.head() == before
    viewed = shop.client.post(
        "/v1/carts/viewed", json={"userId": "kaisa", "channel": "web"}, headers=shop.admin
    )
    assert viewed.status_code == 200, viewed.text
    assert [r["event"] for r in viewed.json()["recorded"]] == ["Cart Viewed"]
    started = shop.client.post(
        "/v1/carts/checkout", json={"userId": "kaisa", "channel": "web"}, headers=shop.admin
    )
    assert started.status_code == 200, started.text
    cart_id = started.json()["cart_id"]
    shop.settle()

    events = timeline(shop, profile_of(shop, "kaisa"))
    seen = [(e["event"], e["channel"]) for e in reversed(events)]
    assert seen == [
        ("Product Added", "app"),
        ("Product Added", "app"),
        ("Product Removed", "app"),
        ("Cart Viewed", "web"),
        ("Checkout Started", "web"),
    ]
    by_name = {e["event"]: e["message"] for e in events}
    first_add = next(e["message"] for e in reversed(events) if e["event"] == "Product Added")
    assert first_add["properties"] == {
        "cart_id": cart_id,
        "product_id": "takki-1",
        "sku": "takki-1-M",
        "name": "Talvitakki Revontuli",
        "variant": "musta / M",
        "brand": "Pohjola",
        "category": "Naiset > Takit",
        "price": 189.0,
        "quantity": 2,
        "currency": "EUR",
    }
    assert first_add["userId"] == "kaisa"
    assert first_add["context"]["channel"] == "app"
    assert by_name["Product Removed"]["properties"]["quantity"] == 1
    assert [p["sku"] for p in by_name["Cart Viewed"]["properties"]["products"]] == ["takki-1-M"]
    checkout = by_name["Checkout Started"]["properties"]
    assert (checkout["value"], checkout["currency"], checkout["cart_id"]) == (378.0, "EUR", cart_id)
    assert checkout["products"][0]["quantity"] == 2


def test_cart_events_from_the_shops_tracking_stay_on_the_timeline_only(shop: Polku) -> None:
    tracked = {
        "userId": "leena",
        "event": "Product Added",
        "messageId": f"web-{uuid.uuid4().hex}",
        "properties": {"sku": "pipo-7", "quantity": 5, "price": 29.9, "currency": "EUR"},
        "context": {"channel": "web"},
    }
    assert shop.send("/v1/track", tracked).status_code == 200
    shop.settle()
    assert cart(shop, "user:leena")["lines"] == []
    events = timeline(shop, profile_of(shop, "leena"))
    assert [e["event"] for e in events] == ["Product Added"]


def test_a_retried_change_with_the_same_message_id_counts_once(shop: Polku) -> None:
    key = uuid.uuid4().hex
    first = added(shop, "user:pekka", "takki-1-S", 2, messageId=key)
    again = added(shop, "user:pekka", "takki-1-S", 2, messageId=key)
    assert quantities(first) == quantities(again) == {"takki-1-S": 2}
    assert [r["event"] for r in first["recorded"]] == ["Product Added"]
    assert again["recorded"] == []


# -- bad input --------------------------------------------------------------------------------


def test_bad_input_gets_a_code_and_the_field_and_changes_nothing(shop: Polku) -> None:
    added(shop, "user:sari", "takki-1-S", 98)
    before = shop.runtime.log.head()
    cases: list[tuple[Any, int, str, str]] = [
        (add(shop, "user:sari", "nope-1"), 400, "unknown_sku", "sku"),
        (add(shop, "user:sari", "pipo-7", 0), 400, "invalid_quantity", "quantity"),
        (add(shop, "user:sari", "pipo-7", -2), 400, "invalid_quantity", "quantity"),
        (add(shop, "user:sari", "pipo-7", 100), 400, "invalid_quantity", "quantity"),
        (add(shop, "user:sari", "pipo-7", "2"), 400, "invalid_field", "quantity"),  # type: ignore[arg-type]
        (add(shop, "user:sari", "pipo-7", 1.5), 400, "invalid_field", "quantity"),  # type: ignore[arg-type]
        (add(shop, "user:sari", "takki-1-S", 2), 409, "quantity_limit", "quantity"),
        (add(shop, "user:sari", "pipo-7", channel="fax"), 400, "invalid_channel", "channel"),
        (add(shop, "user:sari", "pipo-7", quantiy=2), 400, "invalid_field", "quantiy"),
        (add(shop, "user:null", "pipo-7"), 400, "invalid_identifier", "userId"),
        (
            shop.client.post("/v1/carts/lines", json={"sku": "pipo-7"}, headers=shop.admin),
            400,
            "missing_identity",
            "userId",
        ),
        (add(shop, "profile:p_nobody", "pipo-7"), 404, "unknown_profile", "profile"),
        (
            shop.client.put(
                "/v1/carts/lines/pipo-7", json={"userId": "sari", "quantity": 2}, headers=shop.admin
            ),
            404,
            "not_in_cart",
            "sku",
        ),
        (
            shop.client.put(
                "/v1/carts/lines/takki-1-S",
                json={"userId": "sari", "quantity": 0},
                headers=shop.admin,
            ),
            400,
            "invalid_quantity",
            "quantity",
        ),
        (
            shop.client.post("/v1/carts/checkout", json={"userId": "nobody"}, headers=shop.admin),
            409,
            "empty_cart",
            "cart",
        ),
    ]
    for response, status, code, field in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert (error["code"], error["field"]) == (code, field), error
        assert error["hint"], error
    shop.client.delete("/v1/catalog/variants/pipo-7", headers=shop.admin)
    before = shop.runtime.log.head()
    inactive = add(shop, "user:sari", "pipo-7")
    assert inactive.status_code == 400
    assert inactive.json()["error"]["code"] == "inactive_sku"
    assert shop.runtime.log.head() == before  # nothing was recorded
    assert quantities(cart(shop, "user:sari")) == {"takki-1-S": 98}


# -- replay -----------------------------------------------------------------------------------


def test_replay_rebuilds_the_same_carts(shop: Polku) -> None:
    added(shop, "user:anna", "takki-1-M")
    shop.settle()
    added(shop, "anon:phone-1", "takki-1-M", 2)
    added(shop, "anon:phone-1", "pipo-7")
    added(shop, "anon:other-1", "takki-1-L", 4)
    shop.settle()
    identify(shop, "anna", "phone-1")
    shop.client.put(
        "/v1/carts/lines/takki-1-M",
        json={"anonymousId": "phone-1", "quantity": 2},
        headers=shop.admin,
    )
    shop.client.delete(
        "/v1/carts/lines/takki-1-L", params={"anonymousId": "other-1"}, headers=shop.admin
    )
    added(shop, "anon:other-1", "takki-1-S")
    added(shop, "user:anna", "halsduk-2")
    shop.settle()
    specs = ("user:anna", "anon:phone-1", "anon:other-1")
    before = {spec: cart(shop, spec) for spec in specs}
    assert quantities(before["user:anna"]) == {"takki-1-M": 2, "pipo-7": 1, "halsduk-2": 1}
    assert quantities(before["anon:other-1"]) == {"takki-1-S": 1}
    pipeline = shop.runtime.pipeline
    assert pipeline is not None
    pipeline.replay()
    assert {spec: cart(shop, spec) for spec in specs} == before


# -- the production mode's workers ------------------------------------------------------------


@pytest.mark.parametrize(
    "settings", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_two_partitions_projected_at_once_build_each_persons_one_cart(shop: Polku) -> None:
    """Workers project a person's anonymous and signed-in events from two partitions at
    the same moment (several workers share the partitions on PostgreSQL only); the carts
    consumer locks the carts it changes, so every unit counts."""
    engine = shop.runtime.engine
    assert engine.dialect.name == "postgresql"
    pipeline = shop.runtime.pipeline
    assert pipeline is not None
    shop.settle()
    pipeline.stop()  # from here on, the two partitions' pipelines below do the work
    start = shop.runtime.log.head()
    people = 12
    for i in range(people):
        added(shop, f"anon:dev-{i}", "takki-1-M", 2)
        added(shop, f"user:cust-{i}", "takki-1-M")
        added(shop, f"user:cust-{i}", "pipo-7")
    logins = [
        {
            "type": "identify",
            "userId": f"cust-{i}",
            "anonymousId": f"dev-{i}",
            "messageId": f"login-{uuid.uuid4().hex}",
        }
        for i in range(people)
    ]
    assert shop.send("/v1/batch", {"batch": logins}).status_code == 200
    for i in range(people):
        added(shop, f"anon:dev-{i}", "pipo-7")

    # Partition the log as the production mode does (by the customer key), and project both
    # partitions at once, in small batches, as two workers would.
    chain = consumers(shop.runtime.identity)
    with engine.begin() as conn:
        rows = conn.execute(
            select(log_events.c.offset, log_events.c.partition_key).where(
                log_events.c.offset > start
            )
        ).all()
        last = {0: start, 1: start}
        for offset, key in rows:
            part = partition_of(key, 2)
            last[part] = max(last[part], offset)
            conn.execute(
                update(log_events).where(log_events.c.offset == offset).values(partition=part)
            )
        for part in (0, 1):
            checkpoints.write(conn, checkpoints.scoped(ARCHIVE, part), last[part])
            for consumer in chain:
                checkpoints.write(conn, checkpoints.scoped(consumer.name, part), start)
    workers = [
        Pipeline(
            engine,
            SqlPartition(engine, part, checkpoints.scoped(ARCHIVE, part)),
            consumers(shop.runtime.identity),
            batch=3,
            scope=f".p{part}",
            shared=True,
        )
        for part in (0, 1)
    ]
    failures: list[BaseException] = []

    def work(worker: Pipeline) -> None:
        try:
            worker.run_until_caught_up(timeout=120)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not failures, failures
    for i in range(people):
        mine = cart(shop, f"user:cust-{i}")
        assert quantities(mine) == {"takki-1-M": 3, "pipo-7": 2}, i
        assert cart(shop, f"anon:dev-{i}") == mine
