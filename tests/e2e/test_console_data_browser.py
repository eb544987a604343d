"""The data pages in a real browser: an admin watches the debugger while an event and a
rejected event are posted to the real server, and both appear without a reload, the
rejected one with its reason; the admin creates a store clerk on the users page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_console import PASSWORD, Console, open_console

pytestmark = pytest.mark.slow

STORE = "HEL-KAMPPI"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from open_console(tmp_path)


def _track(console: Console, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        console.server.url + "/v1/track",
        json=body,
        auth=(console.server.write_key, ""),
        timeout=30,
    )


def test_the_debugger_shows_events_live_and_an_admin_creates_a_clerk(console: Console) -> None:
    from playwright.sync_api import expect

    console.store(STORE, "Kamppi", 60.1689, 24.9322)
    page = console.page(console.user("ada@example.fi", "admin"))
    page.goto(console.url + "/data")
    expect(page.get_by_role("heading", level=1)).to_have_text("Event debugger")
    console.accessible(page)

    assert _track(console, {"userId": "u-live", "event": "Jacket Viewed"}).status_code < 300
    assert _track(console, {"event": "Nobody Sent This"}).status_code >= 400
    accepted = page.get_by_test_id("accepted")
    expect(accepted).to_contain_text("Jacket Viewed", timeout=15_000)
    expect(accepted).to_contain_text("u-live")
    expect(page.get_by_test_id("rejected")).to_contain_text("userId", timeout=15_000)
    console.shoot(page, "data-debugger")

    page.goto(console.url + "/data/sources")
    console.accessible(page)
    page.goto(console.url + "/data/channels")
    expect(page.get_by_test_id("channel-settings")).to_contain_text("POLKU_SMTP_URL")
    console.accessible(page)

    page.goto(console.url + "/data/users")
    form = page.locator("form[action='/console/data/users']")
    form.get_by_label("Email", exact=True).fill("clerk@example.fi")
    form.get_by_label("Role").select_option("store_staff")
    form.get_by_label("Stores (for store staff, comma-separated ids)").fill(STORE)
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_role("button", name="Create the user").click()
    expect(page.get_by_role("status")).to_contain_text("clerk@example.fi")
    expect(page.get_by_test_id("users")).to_contain_text(STORE)
    console.accessible(page)
    console.shoot(page, "data-users")
