"""The signal queue live and in detail: the server-sent stream (its role check, and the
`changed` event when the queue changes), and each card's customer by name, products by
name and their stock at the store."""

from __future__ import annotations

import asyncio
import time
import uuid

from console_world import (
    MONDAY_NOON,
    WS,
    csrf_of,
    ms,
    routed,
    shown,
    signal,
    signed_in,
    store,
    stream_events,
    user,
)

from conftest import Polku
from polku.console.signals_pages import STREAM_SECONDS, queue_changes
from polku.signals.candidates import MODEL_KIND, Candidate, Reason
from polku.signals.routing import route
from polku.storage.engine import writing


def test_the_stream_says_changed_when_a_signal_arrives(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    page = clerk.get("/console/signals")
    assert 'data-stream="/console/signals/stream?queue=store%3Ahki-kamppi"' in page.text
    marker = page.text.split('data-marker="')[1].split('"')[0]
    quiet = stream_events(
        clerk, "/console/signals/stream", queue="store:hki-kamppi", since=marker, seconds="1.2"
    )
    assert quiet == []
    routed(polku, "hki-kamppi")
    changed = stream_events(
        clerk, "/console/signals/stream", queue="store:hki-kamppi", since=marker, seconds="1.2"
    )
    assert len(changed) == 1 and changed[0][0] == "changed" and changed[0][1] != marker


def test_the_stream_is_checked_like_the_page(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    store(polku, "tre-ratina")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    other = clerk.get("/console/signals/stream", params={"queue": "store:tre-ratina"})
    assert other.status_code == 403 and "store:tre-ratina" in shown(other)
    unknown = clerk.get("/console/signals/stream", params={"queue": "store:nowhere"})
    assert unknown.status_code == 403
    too_long = clerk.get(
        "/console/signals/stream", params={"queue": "store:hki-kamppi", "seconds": "999"}
    )
    assert too_long.status_code == 400
    assert "seconds must be a number from 0.1 to 15." in shown(too_long)
    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    assert marketer.get("/console/signals/stream").status_code == 403
    anonymous = polku.client.get("/console/signals/stream", follow_redirects=False)
    assert anonymous.status_code == 303


def _anna_at_kamppi(polku: Polku) -> tuple[int, str]:
    """A jacket with 3 units at Kamppi, and a signal there about Anna, who is known by
    name, email and phone: (the signal's id, her profile id)."""
    store(polku, "hki-kamppi")
    product = {
        "product_id": "TUULI-JACKET",
        "name": "Tuuli jacket",
        "category": ["Naiset", "Takit"],
        "variants": [{"sku": "TUULI-M", "price": "189.00", "currency": "EUR", "size": "M"}],
    }
    created = polku.client.post("/v1/catalog/products", json=product, headers=polku.admin)
    assert created.status_code == 201, created.text
    count = {"location_id": "hki-kamppi", "lines": [{"sku": "TUULI-M", "quantity": 3}]}
    counted = polku.client.post("/v1/stock/counts", json=count, headers=polku.admin)
    assert counted.status_code < 300, counted.text
    identify = {
        "userId": "anna-k",
        "traits": {
            "name": "Anna Korhonen",
            "email": "anna@example.com",
            "phone": "+358401234567",
            "consent": {"marketing": {"sms": True, "email": False}},
        },
    }
    assert polku.send("/v1/identify", identify).status_code == 200
    polku.settle()
    lookup = polku.client.get(
        "/v1/profiles/lookup", params={"type": "user_id", "value": "anna-k"}, headers=polku.admin
    )
    profile_id = lookup.json()["profile_id"]
    candidate = Candidate(
        workspace_id=WS,
        profile_id=profile_id,
        kind=MODEL_KIND,
        score=0.9,
        event_id=f"m-{uuid.uuid4().hex}",
        offset=9_000,
        at_ms=ms(MONDAY_NOON),
        dedupe_key=f"k-{uuid.uuid4().hex}",
        products=("TUULI-JACKET",),
        channel="store",
        store_id="hki-kamppi",
        reasons=(Reason("repeat_product_views", "Viewed it", "Katsoi sitä", 0.6),),
    )
    with writing(polku.runtime.engine) as conn:
        route(conn, [candidate])
    listed = polku.client.get(
        "/v1/signals", params={"queue": "store:hki-kamppi"}, headers=polku.admin
    )
    return int(listed.json()["signals"][0]["id"]), profile_id


def test_a_card_names_the_customer_the_products_and_the_stock(polku: Polku) -> None:
    _, profile_id = _anna_at_kamppi(polku)
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    page = shown(clerk.get("/console/signals"))
    assert f'<a href="/console/customers/{profile_id}">Anna Korhonen <anna@example.com></a>' in page
    assert "Tuuli jacket · " in page and "3 in stock at Store hki-kamppi" in page
    finnish = shown(clerk.get("/console/signals", headers={"Accept-Language": "fi"}))
    assert "3 varastossa: Store hki-kamppi" in finnish


def test_contact_and_reserve_for_pickup_from_the_card(polku: Polku) -> None:
    signal_id, _ = _anna_at_kamppi(polku)
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    form = {"csrf_token": csrf_of(clerk.get("/console/signals").text), "queue": "store:hki-kamppi"}
    clerk.post(f"/console/signals/{signal_id}/claim", data=form)
    page = clerk.get("/console/signals").text
    contact = page.split('data-testid="contact">')[1].split("</dd>")[0]
    assert contact == '<a href="tel:+358401234567">+358401234567</a>'  # no consent by email

    contacted = clerk.post(f"/console/signals/{signal_id}/contact", data=form)
    assert contacted.status_code == 200 and signal(polku, signal_id)["outcome"] == "contacted"

    elsewhere = {**form, "sku": "TUULI-M", "store": "tre-ratina"}
    refused = clerk.post(f"/console/signals/{signal_id}/reserve", data=elsewhere)
    assert refused.status_code == 409 and "at the signal's store" in shown(refused)

    reserve = {**form, "sku": "TUULI-M", "store": "hki-kamppi"}
    reserved = clerk.post(f"/console/signals/{signal_id}/reserve", data=reserve)
    assert reserved.status_code == 200, reserved.text
    assert signal(polku, signal_id)["outcome"] == "reserved"
    assert "2 in stock at Store hki-kamppi" in shown(reserved)
    held = polku.client.get(
        "/v1/reservations", params={"location_id": "hki-kamppi"}, headers=polku.admin
    ).json()["reservations"]
    assert [(r["status"], r["lines"], r["user_id"]) for r in held] == [
        ("held", [{"sku": "TUULI-M", "quantity": 1}], "anna-k")
    ]


def test_the_api_reserves_for_pickup_as_the_card_does(polku: Polku) -> None:
    signal_id, _ = _anna_at_kamppi(polku)
    path = f"/v1/signals/{signal_id}/reserve"
    elsewhere = polku.client.post(
        path, json={"sku": "TUULI-M", "store": "tre-ratina"}, headers=polku.admin
    )
    assert elsewhere.status_code == 400
    assert elsewhere.json()["error"]["field"] == "store" and elsewhere.json()["error"]["hint"]
    no_size = polku.client.post(path, json={}, headers=polku.admin)
    assert no_size.status_code == 400 and no_size.json()["error"]["field"] == "sku"
    unknown = polku.client.post(path, json={"sku": "NO-SUCH-SKU"}, headers=polku.admin)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "unknown_sku"
    assert unknown.json()["error"]["field"] == "sku"
    not_an_id = polku.client.post(
        "/v1/signals/abc/reserve", json={"sku": "TUULI-M"}, headers=polku.admin
    )
    assert not_an_id.status_code == 400 and not_an_id.json()["error"]["field"] == "signal_id"

    reserved = polku.client.post(
        path, json={"sku": "TUULI-M", "staff_id": "aino"}, headers=polku.admin
    )
    assert reserved.status_code == 201, reserved.text
    body = reserved.json()
    assert body["signal"]["outcome"] == "reserved"
    assert body["reservation"]["location_id"] == "hki-kamppi"
    assert body["reservation"]["lines"] == [{"sku": "TUULI-M", "quantity": 1}]
    assert body["reservation"]["user_id"] == "anna-k"


class _GoneClient:
    """A request whose client has already disconnected."""

    async def is_disconnected(self) -> bool:
        return True


def test_the_stream_ends_when_the_client_goes_away(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    routed(polku, "hki-kamppi")
    stream = queue_changes(
        _GoneClient(),  # type: ignore[arg-type]
        polku.runtime.engine,
        WS,
        "store:hki-kamppi",
        seen="",
        seconds=STREAM_SECONDS,
    )

    async def read() -> list[bytes]:
        return [chunk async for chunk in stream]

    started = time.monotonic()
    assert asyncio.run(read()) == [b"retry: 2000\n\n"]
    assert time.monotonic() - started < 2
