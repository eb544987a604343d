"""Every page of the console passes axe-core (no serious or critical violation), in both
languages and on a store tablet's screen, and can be worked with the keyboard alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_console import Console, open_console

pytestmark = pytest.mark.slow


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from open_console(tmp_path)


PAGES = (
    "/",
    "/signals",
    "/signals/report",
    "/customers",
    "/customers?q=nobody",
    "/commerce",
    "/commerce/reservations",
    "/commerce/returns",
    "/journeys",
    "/journeys/new",
)


def test_the_pages_pass_axe_in_finnish_on_a_tablet(console: Console) -> None:
    from playwright.sync_api import expect

    console.store("HEL-KAMPPI", "Kamppi", 60.1689, 24.9322)
    admin = console.user("admin@example.fi", "admin")
    page = console.page(admin, locale="fi-FI", width=820, height=1180)
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    console.accessible(page)
    for path in PAGES:
        response = page.goto(console.url + path)
        assert response is not None and response.status == 200, path
        console.accessible(page)
    page.goto(console.url + "/")
    console.shoot(page, "home-fi-tablet")


def test_the_sign_in_page_passes_axe_and_works_with_the_keyboard(console: Console) -> None:
    from playwright.sync_api import expect

    email = console.user("agent@example.fi", "agent")
    context = console.browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(console.url + "/login")
    console.accessible(page)
    expect(page.get_by_label("Email")).to_be_focused()  # autofocus: type at once
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type("kuusi kuusta")
    page.keyboard.press("Enter")
    # A refused sign-in keeps the email and puts the cursor back in the password field,
    # which names the error (read out with the field) and is itself an alert.
    password = page.get_by_label("Password")
    expect(password).to_be_focused()
    expect(password).to_have_accessible_description(re.compile(r"\S"))
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value(email)
    page.keyboard.type("kuusi kuusta kuusessa")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("role")).to_have_text("Customer-service agent")
    console.accessible(page)
