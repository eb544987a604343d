"""The demo store, seeded and asked through the real HTTP APIs on SQLite and PostgreSQL: every
commerce API has something meaningful to say, and seeding again adds nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conftest import Polku
from polku.demo.shoppers import CATALOGUE, STORES, WAREHOUSE, stock_level
from polku.demo.store import CUSTOMERS, curl_examples, finnish_holidays, seed_demo_store

WS = "default"  # the workspace the fixture's admin token reads
HELSINKI = "+02:00"  # winter time; the checks below fall in December or January


def get(polku: Polku, path: str, **params: Any) -> Any:
    response = polku.client.get(path, params=params, headers=polku.admin)
    assert response.status_code == 200, response.text
    return response.json()


def _next(month: int, day: int) -> date:
    today = datetime.now(UTC).date()
    found = date(today.year, month, day)
    return found if found > today else date(today.year + 1, month, day)


def _next_weekday_noon(weekday: int) -> str:
    """Noon, Helsinki time, of the next `weekday` (Monday 0) that is no holiday."""
    day = datetime.now(UTC).date() + timedelta(days=1)
    holidays = {d for y in (day.year, day.year + 1) for d, _, _ in finnish_holidays(y)}
    while day.weekday() != weekday or day in holidays:
        day += timedelta(days=1)
    return f"{day.isoformat()}T12:00:00{HELSINKI}"


def counts(polku: Polku, aino: str) -> dict[str, int]:
    """How many of everything the seed makes the APIs (and the log) hold."""
    products = get(polku, "/v1/catalog/products", limit=500)["products"]
    return {
        "locations": len(get(polku, "/v1/locations", active="any")["locations"]),
        "products": len(products),
        "skus": sum(len(p["variants"]) for p in products),
        "levels": len(get(polku, "/v1/stock", location_id="store-hki-kamppi")["levels"]),
        "orders": len(get(polku, f"/v1/profiles/{aino}/orders", limit=100)["orders"]),
        "returns": len(get(polku, "/v1/returns")["returns"]),
        "outlet": len(get(polku, "/v1/outlet", location_id="store-hki-kamppi")["listings"]),
        "giftcards": len(get(polku, "/v1/giftcards", userId="demo-aino")["giftcards"]),
        "reservations": len(
            get(polku, "/v1/reservations", location_id="store-hki-kamppi")["reservations"]
        ),
        "log": polku.runtime.log.head(),
    }


def test_the_demo_store_answers_every_commerce_api(polku: Polku) -> None:
    report = seed_demo_store(polku.runtime, WS)
    polku.settle()
    assert report.locations_created == len(STORES) + 1
    assert report.stock_counts == len(STORES) + 1
    assert report.events_appended > 20
    assert set(report.profiles) == {c.user_id for c in CUSTOMERS}
    aino = report.profiles["demo-aino"]

    # Availability near a Helsinki postal code: the last two at Kamppi, the nearest first.
    found = get(polku, "/v1/availability", product_id="P1001", postal_code="00100", k=3)
    assert len(found["variants"]) == len(CATALOGUE[0].skus)
    black_m = next(v for v in found["variants"] if v["sku"] == "P1001-MUS-M")
    assert black_m["online"]["sellable"] == stock_level("P1001-MUS-M", WAREHOUSE.id) == 14
    kamppi = black_m["nearest_with_stock"][0]
    assert kamppi["location_id"] == "store-hki-kamppi" and kamppi["distance_km"] < 1
    assert kamppi["sellable"] == 2 and kamppi["low_stock"] is True
    sold_out = {s["location_id"] for s in black_m["stores"] if s["sellable"] == 0}
    assert sold_out == {"store-tre-ratina", "store-oulu-valkea"}

    # Stock is what was counted today: the history's till sales came before the count.
    levels = get(polku, "/v1/stock", location_id="store-hki-kamppi")["levels"]
    assert len(levels) == sum(len(p.skus) for p in CATALOGUE)
    assert all(x["on_hand"] == stock_level(x["sku"], "store-hki-kamppi") for x in levels)
    assert sum(x["reserved"] for x in levels) == 1  # Aino's click and collect order

    # Stores open now: a weekday noon they are; Itsenäisyyspäivä they are not.
    near = get(polku, "/v1/locations/nearest", postal_code="33100", k=3, at=_next_weekday_noon(2))
    assert near["locations"][0]["location_id"] == "store-tre-ratina"
    assert all(place["status"]["open_now"] for place in near["locations"])
    independence = f"{_next(12, 6).isoformat()}T12:00:00{HELSINKI}"
    status = get(polku, "/v1/locations/store-hki-kamppi/status", at=independence)
    assert status["open_now"] is False and status["note"] == "Itsenäisyyspäivä"
    eve = get(
        polku,
        "/v1/locations/store-tre-ratina/status",
        at=f"{_next(12, 24).isoformat()}T11:00:00{HELSINKI}",
    )
    assert eve["open_now"] is True and eve["closes_at"].endswith("T13:00:00+02:00")
    assert eve["note"] == "Jouluaatto"
    warehouse = get(polku, "/v1/locations", kind="warehouse")["locations"]
    assert [w["location_id"] for w in warehouse] == [WAREHOUSE.id]
    collect = get(polku, "/v1/locations", click_and_collect="false", kind="store")["locations"]
    assert [c["location_id"] for c in collect] == ["store-oulu-valkea"]

    # Search: "takki" (and its inflections) finds the jackets, in English "jacket" too.
    jackets = {p.id for p in CATALOGUE if p.category.startswith("Vaatteet/Takit")}
    for query, lang in (("takki", "fi"), ("takkeja", "fi"), ("jacket", "en")):
        hits = get(polku, "/v1/catalog/search", q=query, lang=lang, k=10)["hits"]
        assert jackets <= {h["product_id"] for h in hits}, (query, hits)
    english = get(polku, "/v1/catalog/search", q="winter jacket", lang="en", k=1)["hits"]
    assert english[0]["name"] == "Revontuli winter jacket"

    # Aino's history: web, app and till orders, newest first, the returned jacket refunded.
    orders = get(polku, f"/v1/profiles/{aino}/orders", limit=20)["orders"]
    assert {o["channel"] for o in orders} == {"web", "app", "store"}
    assert [o["placed_at"] for o in orders] == sorted(
        (o["placed_at"] for o in orders), reverse=True
    )
    tills = [o for o in orders if o["channel"] == "store"]
    assert len(tills) == 3 and {o["store_id"] for o in tills} == {"store-hki-kamppi"}
    for receipt in tills:  # rung up while the store was open
        local = datetime.fromisoformat(receipt["placed_at"]).astimezone(ZoneInfo("Europe/Helsinki"))
        assert 12 <= local.hour < 18, local
    returned = next(o for o in orders if o["order_id"] == "PR-DEMO-AINO-W3")
    assert returned["status"] == "partly_refunded" and returned["refunded_total"] == "259.00"
    oldest = datetime.fromisoformat(orders[-1]["placed_at"])
    assert datetime.now(UTC) - oldest > timedelta(days=180)  # a timeline, not one moment

    # Checkout defaults: learnt for Aino, stated by Eino, not preselected for Helmi's store.
    defaults = get(polku, "/v1/checkout/defaults", userId="demo-aino")
    assert defaults["delivery_method"]["value"] == "home_delivery"
    assert defaults["store"]["location_id"] == "store-hki-kamppi"
    assert defaults["store"]["preselect"] is True
    assert defaults["payment_method"]["value"] == "card"
    eino = get(polku, "/v1/checkout/defaults", userId="demo-eino")
    assert eino["store"]["location_id"] == "store-tre-ratina"
    assert eino["store"]["source"] == "stated"
    assert eino["delivery_method"]["value"] == "click_and_collect"
    helmi = get(polku, "/v1/checkout/defaults", userId="demo-helmi")
    assert helmi["delivery_method"]["value"] == "parcel_locker"
    assert helmi["payment_method"]["value"] == "mobilepay"
    assert helmi["store"]["preselect"] is False  # Oulu offers no click and collect

    # The refund gift card: the jacket's price and the policy's 10 % bonus.
    assert report.giftcard_code is not None
    balance = polku.client.post(
        "/v1/giftcards/balance", json={"code": report.giftcard_code}, headers=polku.admin
    )
    assert balance.status_code == 200, balance.text
    card = balance.json()
    assert card["balance"] == "284.90" and card["reason"] == "refund"
    assert card["return_id"] == report.return_id and card["userId"] == "demo-aino"

    # The outlet shelf at Kamppi: the returned jacket at 30 % off.
    listings = get(polku, "/v1/outlet", location_id="store-hki-kamppi")["listings"]
    assert [(x["sku"], x["price"], x["status"]) for x in listings] == [
        ("P1001-TUM-S", "181.30", "available")
    ]

    # Click and collect: picked and waiting for Aino at Kamppi.
    waiting = get(polku, "/v1/reservations", location_id="store-hki-kamppi", status="ready")[
        "reservations"
    ]
    assert [(r["reservation_id"], r["user_id"]) for r in waiting] == [
        (report.reservation_id, "demo-aino")
    ]

    # The commands `polku demo` prints name the seeded store's real ids.
    commands = dict(curl_examples(report, "http://127.0.0.1:8080", "pk_x"))
    assert any(f"/v1/profiles/{aino}/orders" in c for c in commands.values())
    assert any(report.giftcard_code in c for c in commands.values())

    # Seeding again adds nothing: not a location, an order, a card, nor an event.
    before = counts(polku, aino)
    again = seed_demo_store(polku.runtime, WS)
    polku.settle()
    assert (again.locations_created, again.stock_counts, again.events_appended) == (0, 0, 0)
    assert again.giftcard_code is None and again.profiles == report.profiles
    assert counts(polku, aino) == before
    assert before["skus"] == sum(len(p.skus) for p in CATALOGUE)
    assert before["orders"] == 7 and before["giftcards"] == 1 and before["reservations"] == 1


@pytest.mark.parametrize(
    ("year", "good_friday", "midsummer_eve"),
    [(2026, date(2026, 4, 3), date(2026, 6, 19)), (2027, date(2027, 3, 26), date(2027, 6, 25))],
)
def test_finnish_holidays(year: int, good_friday: date, midsummer_eve: date) -> None:
    days = {note: (day, hours) for day, hours, note in finnish_holidays(year)}
    assert days["Pitkäperjantai"] == (good_friday, None)
    assert days["Juhannusaatto"][0] == midsummer_eve and midsummer_eve.weekday() == 4
    assert days["Juhannuspäivä"][0] == midsummer_eve + timedelta(days=1)
    assert days["Itsenäisyyspäivä"] == (date(year, 12, 6), None)
    assert days["Jouluaatto"] == (date(year, 12, 24), [["10:00", "13:00"]])
