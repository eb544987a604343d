"""Each role signs in in a real browser and gets its own console: the navigation lists what
the role may use, in the user's language, and a page outside it answers 403 with a page
saying so (checked on the server, not only left out of the menu)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_console import Console, open_console

pytestmark = pytest.mark.slow

STORE = "HEL-KAMPPI"
NAV_EN = {
    "admin": ["Buying signals", "Customers", "Stock and orders", "Journeys", "Data"],
    "marketer": ["Customers", "Journeys", "Data"],
    "agent": ["Buying signals", "Customers", "Stock and orders"],
    "store_staff": ["Buying signals", "Customers", "Stock and orders"],
}
FORBIDDEN = {"marketer": "/signals", "agent": "/journeys", "store_staff": "/journeys"}


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from open_console(tmp_path)


def test_each_role_sees_its_own_console_and_a_403_page_outside_it(console: Console) -> None:
    from playwright.sync_api import expect

    console.store(STORE, "Kamppi", 60.1689, 24.9322)
    for role, names in NAV_EN.items():
        stores = (STORE,) if role == "store_staff" else ()
        email = console.user(f"{role.replace('_', '-')}@example.fi", role, *stores)
        page = console.page(email)
        nav = page.get_by_role("navigation", name="Polku console").get_by_role("link")
        expect(nav).to_have_text(names)
        if role in FORBIDDEN:
            response = page.goto(console.url + FORBIDDEN[role])
            assert response is not None and response.status == 403, role
            expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
            expect(page.get_by_role("alert")).to_contain_text("may not use this page")
        page.context.close()


def test_a_finnish_user_gets_the_console_in_finnish(console: Console) -> None:
    from playwright.sync_api import expect

    email = console.user("markkinoija@example.fi", "marketer", locale="fi")
    page = console.page(email, locale="en-GB")  # the user's own setting wins the browser's
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_test_id("role")).to_have_text("Markkinoija")
    nav = page.get_by_role("navigation", name="Polku-konsoli").get_by_role("link")
    expect(nav).to_have_text(["Asiakkaat", "Asiakaspolut", "Data"])
    page.get_by_label("Kieli").select_option("en")
    page.get_by_role("button", name="Vaihda").click()
    expect(page.get_by_test_id("role")).to_have_text("Marketer")
    console.shoot(page, "home-marketer")
