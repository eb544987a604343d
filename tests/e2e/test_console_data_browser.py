"""The data pages in a real browser: an admin watches the debugger while an event and a
rejected event are posted to the real server, and both appear without a reload, the
rejected one with its reason; the admin creates a store clerk on the users page. A bad
event shows up as rejected on the open debugger through its server-sent stream (no reload),
its page gives the reason and the body; a CRM webhook added on the channels page is listed
with its secret shown once."""

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
    expect(page.get_by_role("main").get_by_role("status")).to_contain_text("clerk@example.fi")
    expect(page.get_by_test_id("users")).to_contain_text(STORE)
    console.accessible(page)
    console.shoot(page, "data-users")


def test_a_rejected_event_appears_live_with_its_reason_and_a_webhook_is_added(
    console: Console,
) -> None:
    from playwright.sync_api import expect

    page = console.page(console.user("ada@example.fi", "admin"))
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/console/data/stream" in r.url else None)
    page.goto(console.url + "/data?kind=rejected")
    expect(page.get_by_text("Nothing has been rejected.")).to_be_visible()
    page.evaluate("() => { window.stillTheSamePage = true; }")

    bad = {"event": "Jacket Viewed", "messageId": "m-live-bad", "properties": {"size": "M"}}
    assert _track(console, bad).status_code == 400
    [stored] = [
        r
        for r in console.api("GET", "/v1/debugger/rejections").json()["rejections"]
        if r["message_id"] == "m-live-bad"
    ]
    rejected = page.get_by_test_id("rejected")
    expect(rejected).to_contain_text(stored["code"], timeout=10_000)
    assert page.evaluate("() => window.stillTheSamePage === true")  # no reload: swapped in
    assert any("/console/data/stream?kind=rejected" in url for url in streams), streams

    rejected.get_by_role("link", name=stored["code"]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Rejected event")
    expect(page.get_by_test_id("reason")).to_have_text(stored["message"])
    expect(page.get_by_test_id("rejection")).to_contain_text(stored["field"])
    expect(page.get_by_test_id("body")).to_contain_text('"event": "Jacket Viewed"')
    console.accessible(page)
    console.shoot(page, "data-rejection")

    page.goto(console.url + "/data/channels")
    form = page.locator("form[action='/console/data/channels/webhooks']")
    form.get_by_label("URL", exact=True).fill("https://crm.example.com/hooks/polku")
    form.get_by_label("Queues (comma-separated; empty for every queue)").fill("agents")
    form.get_by_role("button", name="Add the webhook").click()
    expect(page.get_by_role("main").get_by_role("status")).to_contain_text("not shown again")
    expect(page.get_by_test_id("new-secret")).to_contain_text("whsec_")
    webhooks = page.get_by_test_id("webhooks")
    expect(webhooks).to_contain_text("https://crm.example.com/hooks/polku")
    expect(webhooks).to_contain_text("agents")
    console.accessible(page)
    console.shoot(page, "data-channels")
    [hook] = console.api("GET", "/v1/signals/webhooks").json()["webhooks"]
    assert hook["url"] == "https://crm.example.com/hooks/polku" and hook["active"]
