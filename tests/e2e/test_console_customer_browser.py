"""The customer 360° view in a real browser against a real `polku serve`.

A shopper browses the web shop anonymously, identifies with her email, and buys at a till
with her loyalty card; a later receipt with her email and the card makes identity merge the
till's profile into hers (events through the collection API, processed by the server's
pipeline). An agent searches for her by email, opens her 360° page, filters the timeline to
the store, un-merges the two identities and sees the split; a screenshot is saved and both
pages pass the accessibility check.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_console import Console, open_console

AGENT = "eero@shop.example"
EMAIL = "anna.virtanen@koti.fi"

pytestmark = pytest.mark.slow


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from open_console(tmp_path)


def _send(console: Console, kind: str, seconds: int, **message: Any) -> None:
    message.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    message["timestamp"] = f"2026-11-02T10:00:{seconds:02d}.000Z"
    response = httpx.post(
        f"{console.server.url}/v1/{kind}",
        json=message,
        auth=(console.server.write_key, ""),
        timeout=10,
    )
    assert response.status_code == 200, response.text


def _receipt(console: Console, seconds: int, number: str, email: str | None = None) -> None:
    properties: dict[str, Any] = {
        "store_id": "hki-1",
        "receipt_id": number,
        "loyalty_card": "LC-77 001",
        "total": 59.9,
        "currency": "EUR",
    }
    if email:
        properties["receipt_email"] = email
    _send(
        console,
        "track",
        seconds,
        anonymousId="till-7-session",
        event="POS Order Completed",
        context={"channel": "store", "device": {"id": "till-7", "type": "pos"}},
        properties=properties,
    )


def _until(what: str, check: Any, timeout: float = 30.0) -> Any:
    """Poll `check` until it answers something truthy (the server's pipeline is behind)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def _merges(console: Console) -> list[dict[str, Any]]:
    found = console.api("GET", "/v1/profiles/lookup", params={"type": "email", "value": EMAIL})
    if found.status_code != 200:
        return []
    profile = found.json()["profile_id"]
    merges: list[dict[str, Any]] = console.api("GET", f"/v1/profiles/{profile}/merges").json()[
        "merges"
    ]
    return merges


def test_an_agent_opens_a_customer_and_un_merges_two_identities(console: Console) -> None:
    from playwright.sync_api import expect

    web = {"channel": "web"}
    _send(console, "page", 1, anonymousId="anna-web", name="Jackets", context=web)
    _send(
        console,
        "identify",
        2,
        anonymousId="anna-web",
        context=web,
        traits={"first_name": "Anna", "last_name": "Virtanen", "email": EMAIL},
    )
    _receipt(console, 3, "r-1")
    _until("the till's own profile", lambda: _lookup_card(console))
    _receipt(console, 4, "r-2", email=EMAIL)
    [merge] = _until("the merge", lambda: _merges(console))

    console.user(AGENT, "agent")
    page = console.page(AGENT)
    page.goto(console.url + "/customers")
    console.accessible(page)
    page.get_by_label("Name, email, phone, loyalty card or order id").fill(EMAIL.upper())
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Anna Virtanen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Anna Virtanen")
    expect(page.get_by_test_id("profile-id")).to_have_text(merge["winner_id"])
    expect(page.get_by_role("heading", name="Merge ledger")).to_be_visible()

    page.get_by_label("Channel").select_option("store")
    page.get_by_role("button", name="Show").click()
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator("li[data-channel=store]")).to_have_count(2)
    expect(timeline.locator("li[data-channel=web]")).to_have_count(0)
    console.accessible(page)
    console.shoot(page, "customer-360")

    page.get_by_label("Why is it wrong?").fill("a shared family card")
    page.get_by_role("button", name="Un-merge").click()
    expect(page.get_by_test_id("notice")).to_contain_text("The merge was undone")
    expect(page.get_by_test_id("merge-status")).to_contain_text("Undone")
    console.accessible(page)
    [after] = console.api("GET", f"/v1/profiles/{merge['winner_id']}/merges").json()["merges"]
    assert after["undone"] is True
    split = console.api("GET", f"/v1/profiles/{merge['loser_id']}").json()
    assert split["profile_id"] == merge["loser_id"]
    page.get_by_role("link", name="Open the other profile").click()
    # The page showed the surviving profile; the link opens the one that got its life back.
    expect(page.get_by_test_id("profile-id")).to_have_text(merge["loser_id"])


def _lookup_card(console: Console) -> bool:
    found = console.api(
        "GET", "/v1/profiles/lookup", params={"type": "loyalty_card", "value": "LC77001"}
    )
    return found.status_code == 200
