"""The console in a real browser: Debian's Chromium, driven by Playwright, against a real
`polku serve` process.

A store clerk signs in, opens their store's buying-signal queue, and watches it: a shopper
checks a jacket's stock at the clerk's store (events through the collection API, scored and
routed by the server's pipeline), and the signal appears without a reload. The clerk claims
it, records "sold", and the page shows the outcome; the signals API agrees. The browser is
never downloaded: `scripts/test` installs Debian's `chromium` when it is missing, and under
CI=true a missing browser fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_server import PolkuServer

CHROMIUM = os.environ.get("POLKU_TEST_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
STORE = "HEL-KAMPPI"
CLERK = "aino@kamppi.example"
PASSWORD = "kuusi kuusta kuusessa"
ALL_DAY = {day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}

pytestmark = pytest.mark.slow


def _browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401  (only to learn whether it is installed)
    except ImportError:
        return "the Python package playwright is not installed (pip install -e '.[test]')"
    if shutil.which(CHROMIUM) is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/test does it)"
    return None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PolkuServer]:
    problem = _browser_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: the browser test must run)")
        pytest.skip(problem)
    polku = PolkuServer(tmp_path / "data", tmp_path / "serve.log")
    try:
        polku.start()
        yield polku
    except BaseException as exc:
        exc.add_note(f"--- polku serve output ---\n{polku.logs()}")
        raise
    finally:
        polku.stop()


def _store(server: PolkuServer) -> None:
    body = {
        "location_id": STORE,
        "name": "Kamppi",
        "address": ["Urho Kekkosen katu 1"],
        "postal_code": "00100",
        "city": "Helsinki",
        "latitude": 60.1689,
        "longitude": 24.9322,
        "click_and_collect": True,
        "hours": ALL_DAY,
    }
    response = httpx.post(
        f"{server.url}/v1/locations",
        json=body,
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text


def _shopper_checks_stock(server: PolkuServer) -> None:
    """A shopper living 2.7 km from Kamppi checks a jacket's stock there: the shipped rule
    `stock_check_near_home` raises a signal that routing puts on `store:HEL-KAMPPI`."""
    now = datetime.now(UTC).isoformat()
    anonymous = f"dev-{uuid.uuid4().hex[:8]}"
    batch: list[dict[str, Any]] = [
        {
            "type": "identify",
            "anonymousId": anonymous,
            "messageId": str(uuid.uuid4()),
            "timestamp": now,
            "traits": {"address": {"postal_code": "00510"}},
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
    response = httpx.post(
        f"{server.url}/v1/batch", json={"batch": batch}, auth=(server.write_key, ""), timeout=10
    )
    assert response.status_code == 200, response.text


def test_a_store_clerk_claims_a_live_signal_and_records_a_sale(
    server: PolkuServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    _store(server)
    created = server.polku(
        "users",
        "create",
        CLERK,
        "--role",
        "store_staff",
        "--store",
        STORE,
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert f"Created store_staff {CLERK} for {STORE}" in created

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(locale="en-GB", viewport={"width": 1024, "height": 768})
            page.set_default_timeout(30_000)
            page.goto(f"{server.url}/console/")
            expect(page).to_have_url(f"{server.url}/console/login")
            page.get_by_label("Email").fill(CLERK)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_test_id("role")).to_have_text("Store staff")
            expect(page.get_by_test_id("stores")).to_have_text(STORE)

            page.get_by_role("link", name="Buying signals").first.click()
            expect(page.get_by_role("heading", level=1)).to_have_text(
                f"Buying signals: Store {STORE}"
            )
            expect(page.get_by_text("No signals in this queue.")).to_be_visible()
            page.screenshot(path=str(tmp_path / "signals-empty.png"))

            _shopper_checks_stock(server)
            # No reload: the list polls its fragment and the new signal appears by itself.
            card = page.locator("li.signal").filter(has_text="stock_check_near_home")
            expect(card).to_be_visible(timeout=45_000)
            expect(card).to_contain_text("Checked stock of TUULI-JACKET at Kamppi")
            expect(card.get_by_test_id("status")).to_have_text("Open")
            signal_id = card.get_attribute("data-signal")
            page.screenshot(path=str(tmp_path / "signals-live.png"))

            card.get_by_role("button", name="Claim").click()
            card = page.locator(f'li.signal[data-signal="{signal_id}"]')
            expect(card.get_by_test_id("status")).to_have_text(f"Claimed by {CLERK}")
            card.get_by_label("Outcome").select_option("sold")
            card.get_by_role("button", name="Record outcome").click()
            card = page.locator(f'li.signal[data-signal="{signal_id}"]')
            expect(card.get_by_test_id("outcome")).to_have_text("Sold")
            page.screenshot(path=str(tmp_path / "signals-sold.png"))

            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(f"{server.url}/console/login")
            page.goto(f"{server.url}/console/signals")
            expect(page).to_have_url(f"{server.url}/console/login")
        finally:
            browser.close()

    response = httpx.get(
        f"{server.url}/v1/signals/{signal_id}",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    )
    body = response.json()
    assert body["claimed_by"] == CLERK and body["outcome"] == "sold", body
    assert body["queues"] == ["automation", f"store:{STORE}"]
