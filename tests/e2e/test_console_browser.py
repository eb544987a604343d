"""The console in a real browser: Debian's Chromium, driven by Playwright, against a real
`polku serve` process (`e2e_console`).

A store clerk signs in, opens their store's buying-signal queue, and watches it: a shopper
checks a jacket's stock at the clerk's store (events through the collection API, scored and
routed by the server's pipeline), and the signal appears without a reload (the queue's
server-sent stream), with the jacket's name and its stock at the store. The clerk claims
it, reserves the jacket for pickup from the card, records "sold", and opens the report,
whose charts and table count the signal. The signals and reservations APIs agree. Each
page is checked with axe-core and photographed for docs/console.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_console import Console, open_console

STORE = "HEL-KAMPPI"
CLERK = "aino@kamppi.example"

pytestmark = pytest.mark.slow


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from open_console(tmp_path)


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def _shop(console: Console) -> None:
    """Kamppi, and a jacket with 3 units there."""
    console.store(STORE, "Kamppi", 60.1689, 24.9322)
    product = {
        "product_id": "TUULI-JACKET",
        "name": "Tuuli jacket",
        "category": ["Naiset", "Takit"],
        "variants": [{"sku": "TUULI-M", "price": "189.00", "currency": "EUR", "size": "M"}],
    }
    _ok(console.api("POST", "/v1/catalog/products", json=product))
    count = {"location_id": STORE, "lines": [{"sku": "TUULI-M", "quantity": 3}]}
    _ok(console.api("POST", "/v1/stock/counts", json=count))


def _shopper_checks_stock(console: Console) -> None:
    """A shopper living 2.7 km from Kamppi checks the jacket's stock there: the shipped rule
    `stock_check_near_home` raises a signal that routing puts on `store:HEL-KAMPPI`."""
    now = datetime.now(UTC).isoformat()
    anonymous = f"dev-{uuid.uuid4().hex[:8]}"
    batch: list[dict[str, Any]] = [
        {
            "type": "identify",
            "anonymousId": anonymous,
            "messageId": str(uuid.uuid4()),
            "timestamp": now,
            "traits": {"address": {"postal_code": "00510"}, "name": "Anna Korhonen"},
        },
        {
            "type": "track",
            "event": "Store Stock Checked",
            "anonymousId": anonymous,
            "messageId": str(uuid.uuid4()),
            "timestamp": now,
            "context": {"channel": "web"},
            "properties": {"store_id": STORE, "product_id": "TUULI-JACKET"},
        },
    ]
    server = console.server
    response = httpx.post(
        f"{server.url}/v1/batch", json={"batch": batch}, auth=(server.write_key, ""), timeout=10
    )
    assert response.status_code == 200, response.text


def test_a_store_clerk_works_a_live_signal_and_reads_the_report(console: Console) -> None:
    from playwright.sync_api import expect

    _shop(console)
    console.user(CLERK, "store_staff", STORE)
    page = console.page(CLERK, width=1024, height=768)
    expect(page.get_by_test_id("role")).to_have_text("Store staff")

    page.get_by_role("link", name="Buying signals").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Buying signals: Store {STORE}")
    expect(page.get_by_text("No signals in this queue.")).to_be_visible()
    console.accessible(page)

    _shopper_checks_stock(console)
    # No reload: the stream says the queue changed and the page fetches the list.
    card = page.locator("li.signal").filter(has_text="stock_check_near_home")
    expect(card).to_be_visible(timeout=45_000)
    expect(card).to_contain_text("Checked stock of")
    expect(card.get_by_test_id("customer")).to_have_text("Anna Korhonen")
    expect(card.get_by_test_id("products")).to_contain_text("Tuuli jacket · 3 in stock at Kamppi")
    expect(card.get_by_test_id("status")).to_have_text("Open")
    signal_id = card.get_attribute("data-signal")

    card.get_by_role("button", name="Claim").click()
    card = page.locator(f'li.signal[data-signal="{signal_id}"]')
    expect(card.get_by_test_id("status")).to_have_text(f"Claimed by {CLERK}")
    console.shoot(page, "signals-queue")
    console.accessible(page)

    card.get_by_role("button", name="Reserve for pickup").click()
    card = page.locator(f'li.signal[data-signal="{signal_id}"]')
    expect(card.get_by_test_id("outcome")).to_have_text("Reserved")
    expect(card.get_by_test_id("products")).to_contain_text("2 in stock at Kamppi")

    card.get_by_label("Outcome").select_option("sold")
    card.get_by_role("button", name="Record outcome").click()
    card = page.locator(f'li.signal[data-signal="{signal_id}"]')
    expect(card.get_by_test_id("outcome")).to_have_text("Sold")

    page.get_by_role("link", name="Report: signals and conversions").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Signal report")
    expect(page.get_by_test_id("total")).to_have_text(
        "In all: 1 signal, 0 conversions (0.0%), 1 sold."
    )
    expect(page.locator("svg.chart")).to_have_count(3)
    expect(page.get_by_test_id("by-queue")).to_contain_text(f"Store {STORE}")
    expect(page.get_by_test_id("by-kind")).to_contain_text("stock_check_near_home")
    console.shoot(page, "signals-report")
    console.accessible(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{console.url}/login")
    page.goto(f"{console.url}/signals")
    expect(page).to_have_url(f"{console.url}/login")

    body = _ok(console.api("GET", f"/v1/signals/{signal_id}"))
    assert body["claimed_by"] == CLERK and body["outcome"] == "sold", body
    assert body["queues"] == ["automation", f"store:{STORE}"]
    held = _ok(console.api("GET", "/v1/reservations", params={"location_id": STORE}))
    assert [(r["status"], r["lines"]) for r in held["reservations"]] == [
        ("held", [{"sku": "TUULI-M", "quantity": 1}])
    ]
