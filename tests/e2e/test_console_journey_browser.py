"""Editing a journey in a real browser against a real `polku serve`: a marketer opens the
journeys list, opens the abandoned-cart journey (installed from the library through the
API), edits it with a mistake, reads the validation error naming the step and field, fixes
it, saves, and sees version 2 and the flow's diagram; the API agrees. Each page passes the
axe-core check and is photographed for docs/console.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_console import Console, open_console

pytestmark = pytest.mark.slow

MARKETER = "maija@markkinointi.example"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from open_console(tmp_path)


def test_a_marketer_edits_validates_and_saves_a_journey(console: Console) -> None:
    from playwright.sync_api import expect

    installed = console.api("POST", "/v1/journeys/library/abandoned-cart")
    assert installed.status_code == 201, installed.text
    console.user(MARKETER, "marketer")
    page = console.page(MARKETER)

    page.goto(console.url + "/journeys")
    row = page.locator('tr[data-journey="abandoned-cart"]')
    expect(row).to_contain_text("Abandoned cart")
    expect(row.get_by_test_id("status")).to_have_text("Disabled")
    console.accessible(page)
    console.shoot(page, "journeys-list")

    row.get_by_role("link", name="Abandoned cart").click()
    expect(page.get_by_test_id("diagram").locator('[data-step="remind"]')).to_have_count(1)
    page.get_by_role("link", name="Edit the journey").click()

    editor = page.locator("#document")
    original = editor.input_value()
    assert "template: abandoned_cart" in original
    editor.fill(original.replace("template: abandoned_cart", "template: abandoned_kart", 1))
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_test_id("error-field")).to_have_text("steps[2:remind].template")
    expect(page.get_by_test_id("editor-error")).to_contain_text("abandoned_kart")
    expect(page.get_by_test_id("error-line")).to_be_visible()
    expect(page.locator("pre.excerpt mark")).to_contain_text("template: abandoned_kart")
    console.accessible(page)
    console.shoot(page, "journey-editor")
    assert console.api("GET", "/v1/journeys/abandoned-cart").json()["version"] == 1

    editor = page.locator("#document")
    editor.fill(original.replace("wait: 1h", "wait: 2h", 1))
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_test_id("editor-valid")).to_be_visible()
    expect(page.locator('svg.journey-diagram [data-step="wait-an-hour"]')).to_contain_text("2h")
    page.get_by_role("button", name="Save as new version").click()

    expect(page.get_by_test_id("saved")).to_have_text("Saved as version 2.")
    expect(page.get_by_test_id("version")).to_have_text("2")
    diagram = page.get_by_test_id("diagram")
    for step in ("wait-an-hour", "still-there", "remind", "sms-nudge", "end"):
        expect(diagram.locator(f'[data-step="{step}"]')).to_have_count(1)
    console.accessible(page)
    console.shoot(page, "journey-detail")
    saved = console.api("GET", "/v1/journeys/abandoned-cart").json()
    assert saved["version"] == 2 and saved["document"]["steps"][0]["wait"] == "2h"
