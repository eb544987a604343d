"""The customer pages over HTTP: the search by every kind of identifier and by order id, the
360° view of a person seen on the web and at a till, the timeline by channel, and un-merge
through the page (with its role and CSRF checks)."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from console_world import WS, csrf_of, shown, signed_in, user
from customers_world import signal_for
from fastapi.testclient import TestClient

from conftest import Polku
from polku.commerce.catalog.actions import create_product
from polku.commerce.catalog.validation import ProductInput, VariantInput
from polku.commerce.locations.actions import create_location

_clock = itertools.count(1)


def at() -> str:
    """A fresh, strictly increasing event time."""
    seconds = next(_clock)
    return f"2026-11-02T10:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"


def send(polku: Polku, kind: str, **message: Any) -> str:
    message.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    message.setdefault("timestamp", at())
    response = polku.send(f"/v1/{kind}", message)
    assert response.status_code == 200, response.text
    return str(message["messageId"])


def receipt(polku: Polku, number: str, card: str, email: str | None = None) -> str:
    """A till receipt at store hki-1 with the customer's loyalty card (and receipt email)."""
    properties: dict[str, Any] = {
        "store_id": "hki-1",
        "receipt_id": number,
        "loyalty_card": card,
        "total": 59.9,
        "currency": "EUR",
        "products": [{"sku": "TUULI-M", "name": "Tuuli jacket", "quantity": 1, "price": 59.9}],
    }
    if email is not None:
        properties["receipt_email"] = email
    return send(
        polku,
        "track",
        anonymousId="till-7-session",
        event="POS Order Completed",
        context={"channel": "store", "device": {"id": "till-7", "type": "pos"}},
        properties=properties,
    )


def anna(polku: Polku) -> None:
    """Anna browses anonymously, identifies with her email, orders online, and buys at a
    till with her loyalty card; a later receipt with her email and the card merges the
    till's profile into hers."""
    send(polku, "page", anonymousId="anna-web", name="Jackets", context={"channel": "web"})
    send(
        polku,
        "identify",
        anonymousId="anna-web",
        context={"channel": "web"},
        traits={
            "first_name": "Anna",
            "last_name": "Virtanen",
            "email": "Anna.Virtanen@Koti.fi",
            "phone": "040 123 4567",
        },
    )
    send(
        polku,
        "track",
        anonymousId="anna-web",
        event="Order Completed",
        context={"channel": "web"},
        properties={"order_id": "W-1001", "total": 129.9, "currency": "EUR"},
    )
    receipt(polku, "r-1", "LC-77 001")
    polku.settle()
    receipt(polku, "r-2", "LC-77 001", email="anna.virtanen@koti.fi")
    polku.settle()


def profile_of_email(polku: Polku, email: str) -> str:
    response = polku.client.get(
        "/v1/profiles/lookup", params={"type": "email", "value": email}, headers=polku.admin
    )
    assert response.status_code == 200, response.text
    found: str = response.json()["profile_id"]
    return found


def merges_of(polku: Polku, profile_id: str) -> list[dict[str, Any]]:
    response = polku.client.get(f"/v1/profiles/{profile_id}/merges", headers=polku.admin)
    assert response.status_code == 200, response.text
    merges: list[dict[str, Any]] = response.json()["merges"]
    return merges


@pytest.fixture
def seeded(polku: Polku) -> Polku:
    anna(polku)
    return polku


def test_the_search_finds_a_customer_by_every_identifier_and_order_id(seeded: Polku) -> None:
    polku = seeded
    client = signed_in(polku, user(polku, "eero@shop.example", "agent"))
    anna_id = profile_of_email(polku, "anna.virtanen@koti.fi")
    for q, matched in (
        ("ANNA.virtanen@koti.fi ", "email"),
        ("+358 40 1234567", "phone"),
        ("LC77001", "loyalty card"),
        ("Anna", "name"),
        ("virt", "name"),
        ("koti.fi", "part of name"),
        ("W-1001", "order id"),
        ("pos:hki-1:r-1", "order id"),
    ):
        page = client.get("/console/customers", params={"q": q})
        assert page.status_code == 200, page.text
        text = shown(page)
        assert f'data-profile="{anna_id}"' in text, q
        assert "Anna Virtanen" in text
        assert matched in text, (q, matched)
    nobody = client.get("/console/customers", params={"q": "nobody@nowhere.fi"})
    assert nobody.status_code == 200
    assert "No customer matches" in shown(nobody)
    too_long = client.get("/console/customers", params={"q": "x" * 300})
    assert too_long.status_code == 400 and "longer than 200 characters" in shown(too_long)


def test_the_360_view_shows_identities_timeline_orders_and_the_ledger(seeded: Polku) -> None:
    polku = seeded
    client = signed_in(polku, user(polku, "aino@shop.example", "store_staff", *_store(polku)))
    anna_id = profile_of_email(polku, "anna.virtanen@koti.fi")
    page = client.get(f"/console/customers/{anna_id}")
    assert page.status_code == 200, page.text
    text = shown(page)
    for heading in (
        "Identities",
        "Traits",
        "Consents",
        "Timeline",
        "Cart",
        "Orders",
        "Returns and gift cards",
        "Click & collect",
        "Buying signals",
        "Recommendations",
        "Journeys",
        "Merge ledger",
    ):
        assert f">{heading}</h" in text, heading
    assert "anna.virtanen@koti.fi" in text and "+358401234567" in text and "LC77001" in text
    assert "W-1001" in text and "pos:hki-1:r-1" in text and "pos:hki-1:r-2" in text
    assert "1 \u00d7 Tuuli jacket" in text  # the multiplication sign
    assert "€129.90" in text
    assert 'data-channel="web"' in text and 'data-channel="store"' in text
    assert "Order Completed" in text and "POS Order Completed" in text and "Jackets" in text
    # A store clerk sees the ledger but may not un-merge.
    assert "Un-merge</button>" not in text

    stores_only = shown(client.get(f"/console/customers/{anna_id}", params={"channel": "store"}))
    timeline = stores_only.split('data-testid="timeline"')[1].split("</ol>")[0]
    assert 'data-channel="store"' in timeline and 'data-channel="web"' not in timeline
    bad = client.get(f"/console/customers/{anna_id}", params={"channel": "pigeon"})
    assert bad.status_code == 400 and "There is no channel “pigeon”" in shown(bad)
    unknown = client.get("/console/customers/no-such-profile")
    assert unknown.status_code == 404 and "There is no customer" in shown(unknown)


def _store(polku: Polku) -> tuple[str]:
    body = {
        "location_id": "hki-1",
        "name": "Helsinki 1",
        "address": ["Urho Kekkosen katu 1"],
        "postal_code": "00100",
        "city": "Helsinki",
        "latitude": 60.1689,
        "longitude": 24.9322,
    }
    response = polku.client.post("/v1/locations", json=body, headers=polku.admin)
    assert response.status_code == 201, response.text
    return ("hki-1",)


def test_finnish_pages_format_money_and_dates_in_finnish(seeded: Polku) -> None:
    polku = seeded
    client = signed_in(polku, user(polku, "eero@shop.example", "agent", locale="fi"))
    anna_id = profile_of_email(polku, "anna.virtanen@koti.fi")
    text = shown(client.get(f"/console/customers/{anna_id}"))
    assert "Tunnisteet" in text and "Aikajana" in text and "Yhdistämishistoria" in text
    assert "129,90\xa0€" in text
    assert "2.11.2026 klo" in text


def test_un_merge_through_the_page_splits_the_profile(seeded: Polku) -> None:
    polku = seeded
    anna_id = profile_of_email(polku, "anna.virtanen@koti.fi")
    [merge] = merges_of(polku, anna_id)
    other = merge["loser_id"] if merge["winner_id"] == anna_id else merge["winner_id"]
    # The merged-away id opens the surviving profile.
    agent = signed_in(polku, user(polku, "eero@shop.example", "agent"))
    moved = agent.get(f"/console/customers/{other}", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"].endswith(anna_id)

    page = agent.get(f"/console/customers/{anna_id}")
    action = f"/console/customers/{anna_id}/merges/{merge['merge_id']}/unmerge"
    assert action in page.text
    token = csrf_of(page.text)

    # Without the CSRF token, and for roles that may not: 403, nothing changes.
    refused = agent.post(action, data={"reason": "x"}, follow_redirects=False)
    assert refused.status_code == 403
    for role in ("marketer", "store_staff"):
        email = f"{role}@shop.example"
        stores = ("hki-1",) if role == "store_staff" else ()
        if stores:
            _store(polku)
        clerk = signed_in(polku, user(polku, email, role, *stores))
        token_of = csrf_of(clerk.get(f"/console/customers/{anna_id}").text)
        denied = clerk.post(action, data={"csrf_token": token_of}, follow_redirects=False)
        assert denied.status_code == 403, role
    assert merges_of(polku, anna_id)[0]["undone"] is False

    done = agent.post(
        action, data={"csrf_token": token, "reason": "shared card"}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith(f"/console/customers/{anna_id}?notice=unmerged")
    after = agent.get(done.headers["location"])
    assert "The merge was undone" in shown(after)
    assert "Undone" in shown(after)
    polku.settle()
    split = polku.client.get(f"/v1/profiles/{other}", headers=polku.admin).json()
    assert split["profile_id"] == other and split["redirected_from"] is None
    assert merges_of(polku, anna_id)[0]["undone"] is True
    # Undoing it twice is a conflict page, not an error.
    twice = agent.post(action, data={"csrf_token": token}, follow_redirects=False)
    assert twice.status_code == 409 and "already undone" in shown(twice)


def _shop(polku: Polku) -> None:
    """A jacket in stock at store hki-1 (click & collect) and in a warehouse."""
    rt = polku.runtime
    create_product(
        rt,
        WS,
        ProductInput(
            product_id="takki-1",
            name="Talvitakki Revontuli",
            category=("Naiset", "Takit"),
            variants=(VariantInput(sku="takki-1-M", price_minor=18900, currency="EUR", size="M"),),
        ),
    )
    every_day = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    for location_id, kind in (("hki-1", "store"), ("wh-vantaa", "warehouse")):
        fields = {"location_id": location_id, "name": location_id, "kind": kind}
        fields |= {"city": "Helsinki", "postal_code": "00100", "click_and_collect": True}
        create_location(rt, WS, fields, hours=every_day)
    for location_id in ("hki-1", "wh-vantaa"):
        lines = [{"sku": "takki-1-M", "quantity": 5}]
        body = {"location_id": location_id, "lines": lines}
        response = polku.client.post("/v1/stock/receipts", json=body, headers=polku.admin)
        assert response.status_code == 201, response.text


def test_the_360_view_shows_cart_reservations_gift_cards_and_signals(polku: Polku) -> None:
    _shop(polku)
    send(
        polku,
        "identify",
        userId="olli-1",
        anonymousId="olli-phone",
        context={"channel": "app"},
        traits={"name": "Olli Mäkelä", "email": "olli@koti.fi"},
    )
    polku.settle()
    admin = polku.admin
    line = {"userId": "olli-1", "sku": "takki-1-M", "quantity": 2}
    assert polku.client.post("/v1/carts/lines", json=line, headers=admin).status_code == 200
    held = {"location_id": "hki-1", "lines": [{"sku": "takki-1-M", "quantity": 1}]}
    held["userId"] = "olli-1"
    reserved = polku.client.post("/v1/reservations", json=held, headers=admin)
    assert reserved.status_code == 201, reserved.text
    card = {"amount": "25.00", "currency": "EUR", "userId": "olli-1"}
    issued = polku.client.post("/v1/giftcards", json=card, headers=admin)
    assert issued.status_code == 201, issued.text
    bought = datetime.now(UTC) - timedelta(days=3)
    send(
        polku,
        "track",
        userId="olli-1",
        event="Order Completed",
        timestamp=bought.isoformat().replace("+00:00", "Z"),
        context={"channel": "app"},
        properties={
            "order_id": "A-3003",
            "currency": "EUR",
            "total": 189,
            "products": [{"sku": "takki-1-M", "quantity": 1, "price": 189}],
        },
    )
    polku.settle()
    back = {"order_id": "A-3003", "lines": [{"sku": "takki-1-M", "reason": "wrong_size"}]}
    returned = polku.client.post("/v1/returns", json=back, headers=admin)
    assert returned.status_code == 201, returned.text
    polku.settle()
    olli = profile_of_email(polku, "olli@koti.fi")
    signal_id = signal_for(polku, olli, "hki-1")

    client = signed_in(polku, user(polku, "eero@shop.example", "agent", locale="fi"))
    found = shown(client.get("/console/customers", params={"q": "olli-1"}))
    assert f'data-profile="{olli}"' in found and "käyttäjätunnus" in found
    text = shown(client.get(f"/console/customers/{olli}"))
    cart = text.split('id="cart"')[1].split("</section>")[0]
    assert "Talvitakki Revontuli" in cart and "378,00\xa0€" in cart
    reservations = text.split('id="reservations"')[1].split("</section>")[0]
    assert reserved.json()["reservation_id"] in reservations and "Varattu" in reservations
    returns = text.split('id="returns"')[1].split("</section>")[0]
    assert "25,00\xa0€" in returns and issued.json()["code"][-4:] in returns
    assert returned.json()["return_id"] in returns and "A-3003" in returns
    assert "Pyydetty" in returns  # requested
    signals = text.split('id="signals"')[1].split("</section>")[0]
    assert f"#{signal_id}" in signals and "Katsoi tuotetta Talvitakki" in signals
    assert "Olli Mäkelä" in text


def test_the_360_view_lists_journeys_with_their_decision_trace(polku: Polku) -> None:
    installed = polku.client.post(
        "/v1/journeys/library/order-thanks", params={"enabled": True}, headers=polku.admin
    )
    assert installed.status_code == 201, installed.text
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    send(
        polku,
        "track",
        userId="liisa-1",
        event="Order Completed",
        timestamp=now,
        context={"channel": "web", "traits": {"email": "liisa@koti.fi", "name": "Liisa"}},
        properties={"order_id": "W-2002", "total": 20, "currency": "EUR"},
    )
    polku.settle()
    liisa = profile_of_email(polku, "liisa@koti.fi")
    deadline = time.monotonic() + 15
    while not _enrolled(polku, liisa):
        assert time.monotonic() < deadline, "the journey never enrolled the customer"
        time.sleep(0.1)

    client = signed_in(polku, user(polku, "mari@shop.example", "marketer"))
    text = shown(client.get(f"/console/customers/{liisa}"))
    journeys = text.split('id="journeys"')[1].split("</section>")[0]
    assert 'data-journey="order-thanks"' in journeys and "Order thank-you" in journeys
    assert "<details>" in journeys and "Decision trace" in journeys
    trace = journeys.split('<ol class="trace">')[1].split("</ol>")[0]
    assert "thanks" in trace  # the step the decisions were taken at


def _enrolled(polku: Polku, profile_id: str) -> bool:
    response = polku.client.get(f"/v1/profiles/{profile_id}/journeys", headers=polku.admin)
    return response.status_code == 200 and bool(response.json()["enrollments"])


def test_bad_requests_are_pages_that_say_why(seeded: Polku) -> None:
    polku = seeded
    anna_id = profile_of_email(polku, "anna.virtanen@koti.fi")
    anonymous = TestClient(polku.client.app)
    signed_out = anonymous.get(f"/console/customers/{anna_id}", follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/console/login"
    agent = signed_in(polku, user(polku, "eero@shop.example", "agent"))
    token = csrf_of(agent.get(f"/console/customers/{anna_id}").text)
    unknown = agent.post(
        f"/console/customers/{anna_id}/merges/m-nope/unmerge",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert unknown.status_code == 404 and "There is no merge “m-nope”" in shown(unknown)
    send(polku, "identify", anonymousId="ben-web", traits={"email": "ben@koti.fi"})
    polku.settle()
    ben = profile_of_email(polku, "ben@koti.fi")
    [merge] = merges_of(polku, anna_id)
    elsewhere = agent.post(
        f"/console/customers/{ben}/merges/{merge['merge_id']}/unmerge",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert elsewhere.status_code == 404
    assert "not in this customer's merge ledger" in shown(elsewhere)
    assert merges_of(polku, anna_id)[0]["undone"] is False
    nobody = "p_" + "0" * 24
    for path in (f"/console/customers/{'x' * 500}", f"/console/customers/{nobody}"):
        page = agent.get(path)
        assert page.status_code in (404, 422) and "Traceback" not in page.text, path
