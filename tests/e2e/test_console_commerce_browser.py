"""The console's commerce pages in a real browser (Debian's Chromium through Playwright,
against a real `polku serve`): a store clerk opens a jacket's availability and sees the
stores with their units and distances, hands over a click-and-collect reservation, inspects
a return into the store's outlet and refunds it as a gift card; the API agrees, and every
page passes axe-core."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_console import Console, open_console

pytestmark = pytest.mark.slow

CLERK = "aino@kamppi.example"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from open_console(tmp_path)


def ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def shop(console: Console) -> tuple[str, str]:
    """A jacket, two stores and a warehouse with stock, a reservation at Kamppi and a web
    order brought back to Kamppi's till: (the reservation's id, the return's id)."""
    product = {
        "product_id": "takki-1",
        "name": "Talvitakki Revontuli",
        "category": ["Naiset", "Takit"],
        "variants": [{"sku": "takki-1-M", "price": "189.00", "currency": "EUR", "size": "M"}],
    }
    ok(console.api("POST", "/v1/catalog/products", json=product))
    console.store("hki-kamppi", "Kamppi", 60.1689, 24.9322)
    console.store("esp-isoomena", "Iso Omena", 60.1617, 24.7380)
    warehouse = {"location_id": "wh-vantaa", "name": "Varasto", "kind": "warehouse"}
    ok(
        console.api(
            "POST", "/v1/locations", json={**warehouse, "postal_code": "01510", "city": "Vantaa"}
        )
    )
    for location_id, units in (("hki-kamppi", 3), ("esp-isoomena", 5), ("wh-vantaa", 14)):
        body = {"location_id": location_id, "lines": [{"sku": "takki-1-M", "quantity": units}]}
        ok(console.api("POST", "/v1/stock/counts", json=body))
    policy = {
        "default_window_days": 30,
        "outlet_discount_percent": 30,
        "gift_card_bonus_percent": 10,
    }
    ok(console.api("PUT", "/v1/returns/policy", json=policy))
    reservation = {
        "location_id": "hki-kamppi",
        "lines": [{"sku": "takki-1-M", "quantity": 1}],
        "userId": "anna",
    }
    rid: str = ok(console.api("POST", "/v1/reservations", json=reservation))["reservation_id"]
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
            "products": [
                {"sku": "takki-1-M", "product_id": "takki-1", "quantity": 1, "price": 189.0}
            ],
        },
    }
    sent = httpx.post(
        console.server.url + "/v1/track",
        json=message,
        auth=(console.server.write_key, ""),
        timeout=30,
    )
    assert sent.status_code == 200, sent.text
    deadline = time.monotonic() + 30
    while console.api("GET", f"/v1/orders/{order_id}").status_code != 200:
        assert time.monotonic() < deadline, "the order never reached the orders projection"
        time.sleep(0.2)
    body = {
        "order_id": order_id,
        "lines": [{"sku": "takki-1-M", "quantity": 1, "reason": "wrong_size"}],
        "channel": "store",
        "location_id": "hki-kamppi",
    }
    ret: str = ok(console.api("POST", "/v1/returns", json=body))["return_id"]
    return rid, ret


def test_a_clerk_sees_availability_hands_over_and_refunds_a_return_as_a_gift_card(
    console: Console,
) -> None:
    from playwright.sync_api import expect

    rid, ret = shop(console)
    console.user(CLERK, "store_staff", "hki-kamppi")
    page = console.page(CLERK)

    # Availability: search, open the jacket, read the table.
    page.goto(console.url + "/commerce")
    console.accessible(page)
    page.get_by_label("Find a product").fill("talvitakki")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Talvitakki Revontuli").click()
    table = page.get_by_test_id("availability")
    kamppi = table.locator('tr[data-store="hki-kamppi"]')
    espoo = table.locator('tr[data-store="esp-isoomena"]')
    expect(kamppi.get_by_test_id("available")).to_have_text("2 low")  # 3 on hand, 1 reserved
    expect(kamppi.locator("td").nth(2)).to_have_text("1")
    expect(espoo.get_by_test_id("available")).to_have_text("5")
    expect(espoo.locator("td").nth(3)).to_have_text("10.8 km")
    expect(page.get_by_test_id("online")).to_contain_text("14")
    expect(page.locator("svg.chart title")).to_have_text(
        "Units available per store: Talvitakki Revontuli"
    )
    console.accessible(page)
    console.shoot(page, "commerce-availability")

    # Hand over the reservation.
    page.goto(console.url + "/commerce/reservations")
    console.accessible(page)
    card = page.locator(f'li[data-reservation="{rid}"]')
    expect(card.get_by_test_id("reservation-status")).to_have_text("To prepare")
    card.get_by_role("button", name="Mark ready").click()
    expect(card.get_by_test_id("reservation-status")).to_have_text("Ready to hand over")
    card.get_by_role("button", name="Hand over").click()
    expect(page.locator(f'li[data-reservation="{rid}"]')).to_have_count(0)
    expect(page.get_by_text("No reservations to prepare or hand over.")).to_be_visible()
    assert ok(console.api("GET", f"/v1/reservations/{rid}"))["status"] == "collected"

    # Inspect the return into the outlet, then refund it as a gift card.
    page.goto(console.url + "/commerce/returns")
    console.accessible(page)
    item = page.locator(f'li[data-return="{ret}"]')
    item.get_by_label("Back to stock").fill("0")
    item.get_by_label("To the outlet").fill("1")
    item.get_by_label("Condition note").fill("tag cut")
    item.get_by_role("button", name="Record the inspection").click()
    item = page.locator(f'li[data-return="{ret}"]')
    expect(item.get_by_test_id("outlet")).to_contain_text("€132.30")
    expect(item.get_by_test_id("outlet")).to_contain_text("tag cut")
    console.accessible(page)
    console.shoot(page, "commerce-returns")
    item.get_by_label("Gift card").check()
    item.get_by_role("button", name="Refund").click()
    expect(page.get_by_test_id("refund")).to_have_text("Refunded €189.00 as a gift card.")
    expect(page.get_by_test_id("giftcard-amount")).to_have_text("€207.90")
    code = page.get_by_test_id("giftcard-code").inner_text()
    console.accessible(page)

    body = ok(console.api("GET", f"/v1/returns/{ret}"))
    assert body["status"] == "refunded" and body["lines"][0]["outlet"] == 1
    assert body["refund"]["method"] == "gift_card"
    balance = ok(console.api("POST", "/v1/giftcards/balance", json={"code": code}))
    assert balance["balance"] == "207.90"
    listings = ok(console.api("GET", "/v1/outlet", params={"return_id": ret}))["listings"]
    assert [(x["location_id"], x["price"]) for x in listings] == [("hki-kamppi", "132.30")]
