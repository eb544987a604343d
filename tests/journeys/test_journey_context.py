"""The context of a journey message, built from real data on SQLite and PostgreSQL: a
shopper with a cart and a preferred store gets their lines with the stock at that store,
the store's name, address and hours today, recommendations with store stock, signed links,
and a message that renders from it; a person with nothing (or no profile at all) gets empty
parts and still a message.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from conftest import Polku
from polku.channels.links import read_token
from polku.commerce.catalog.actions import create_product
from polku.commerce.catalog.validation import ProductInput, VariantInput
from polku.commerce.locations.actions import create_location
from polku.journeys import context as context_module
from polku.journeys.content import Content
from polku.journeys.context import Links, message_context

WS = "default"
SECRET = "test-channel-secret"
BASE = "https://polku.example"
WEEK = {day: [["09:00", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
CONTENT = Content()


def send(polku: Polku, *messages: dict[str, Any]) -> None:
    response = polku.send("/v1/batch", {"batch": list(messages)})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(messages), response.text
    polku.settle()


def track(event: str, user: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "userId": user,
        "messageId": f"m-{uuid.uuid4().hex}",
        "properties": properties,
    }


def identify(user: str, **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user,
        "traits": traits,
        "messageId": f"i-{uuid.uuid4().hex}",
    }


def profile_of(polku: Polku, user: str) -> str:
    found = polku.client.get(
        "/v1/profiles/lookup", params={"type": "user_id", "value": user}, headers=polku.admin
    )
    assert found.status_code == 200, found.text
    profile_id: str = found.json()["profile_id"]
    return profile_id


def receive(polku: Polku, location: str, sku: str, quantity: int) -> None:
    response = polku.client.post(
        "/v1/stock/receipts",
        json={"location_id": location, "lines": [{"sku": sku, "quantity": quantity}]},
        headers=polku.admin,
    )
    assert response.status_code == 201, response.text


def links(profile_id: str) -> Links:
    return Links(BASE, SECRET, WS, profile_id, "send-1", shop_url="https://shop.example")


def context(polku: Polku, profile_id: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("event", None)
    with polku.runtime.engine.connect() as conn:
        return message_context(
            conn, WS, profile_id, send_id="send-1", links=links(profile_id), **kwargs
        )


@pytest.fixture
def shop(polku: Polku) -> Iterator[Polku]:
    """A jacket and a beanie, a Tampere store open 9-21 every day, and a warehouse."""
    rt = polku.runtime
    create_product(
        rt,
        WS,
        ProductInput(
            product_id="takki-1",
            name="Kuoritakki Tunturi",
            category=("Vaatteet", "Takit"),
            attributes={"url": "https://shop.example/tuotteet/takki-1"},
            variants=(VariantInput(sku="takki-1-M", price_minor=24900, currency="EUR", size="M"),),
        ),
    )
    create_product(
        rt,
        WS,
        ProductInput(
            product_id="pipo-2",
            name="Villapipo",
            category=("Asusteet", "Päähineet"),
            translations={"en": {"name": "Wool beanie"}},
            attributes={"url": "https://shop.example/tuotteet/pipo-2"},
            variants=(VariantInput(sku="pipo-2", price_minor=2990, currency="EUR"),),
        ),
    )
    create_location(
        rt,
        WS,
        {
            "location_id": "tre-keskusta",
            "name": "Tampere Keskusta",
            "city": "Tampere",
            "postal_code": "33100",
            "address": ["Hämeenkatu 10"],
            "click_and_collect": True,
        },
        hours=WEEK,
    )
    create_location(
        rt,
        WS,
        {
            "location_id": "wh-vantaa",
            "name": "Keskusvarasto",
            "kind": "warehouse",
            "city": "Vantaa",
            "postal_code": "01510",
        },
    )
    receive(polku, "tre-keskusta", "takki-1-M", 2)
    receive(polku, "tre-keskusta", "pipo-2", 2)
    receive(polku, "wh-vantaa", "pipo-2", 40)
    # Other shoppers make the beanie popular, so it is what there is to recommend.
    send(polku, *(track("Product Viewed", f"other-{i}", product_id="pipo-2") for i in range(3)))
    yield polku


def test_a_shopper_with_a_cart_gets_lines_stock_at_their_store_and_the_store(
    shop: Polku,
) -> None:
    send(
        shop,
        identify(
            "aino",
            first_name="Aino",
            email="aino@example.com",
            locale="fi-FI",
            preferred_store="tre-keskusta",
        ),
    )
    added = shop.client.post(
        "/v1/carts/lines",
        json={"userId": "aino", "sku": "takki-1-M", "quantity": 1},
        headers=shop.admin,
    )
    assert added.status_code == 200, added.text
    shop.settle()
    aino = profile_of(shop, "aino")
    event = {"event": "Checkout Started", "properties": {"value": 249, "currency": "EUR"}}

    found = context(shop, aino, event=event, at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC))

    assert found["locale"] == "fi"
    assert found["profile"]["id"] == aino and found["profile"]["first_name"] == "Aino"
    assert found["event"] == {"value": Decimal(249), "currency": "EUR"}
    assert found["event_name"] == "Checkout Started"
    cart = found["cart"]
    assert cart["value"] == Decimal("249.00") and cart["currency"] == "EUR"
    [line] = cart["lines"]
    assert (line["name"], line["quantity"], line["price"]) == (
        "Kuoritakki Tunturi",
        1,
        Decimal("249.00"),
    )
    assert line["at_store"] == 2 and line["online"] == 0 and line["available"] is True
    assert line["availability"] == "2 jäljellä myymälässä Tampere Keskusta, varaa noudettavaksi"
    store = found["store"]
    assert store["id"] == "tre-keskusta" and store["name"] == "Tampere Keskusta"
    assert store["city"] == "Tampere" and store["address"] == "Hämeenkatu 10, 33100 Tampere"
    assert store["hours_today"] == "9\u201321" and store["open_today"] is True
    assert store["click_and_collect"] is True
    # recommendations: not what is in the cart, priced, with the stock at Aino's store
    assert found["recommendations"], found["recommendations"]
    beanie = found["recommendations"][0]
    assert beanie["product_id"] == "pipo-2" and beanie["name"] == "Villapipo"
    assert beanie["price"] == Decimal("29.90") and beanie["url"].endswith("/pipo-2")
    assert beanie["stock"] == "2 jäljellä myymälässä Tampere Keskusta, varaa noudettavaksi"
    assert beanie["reason"]
    # signed links
    unsubscribe = found["unsubscribe_url"]
    assert unsubscribe.startswith(BASE + "/u/")
    assert read_token(SECRET, unsubscribe.rsplit("/", 1)[1]) == {
        "w": WS,
        "p": aino,
        "u": "marketing",
        "c": "email",
    }
    link = found["track"]("https://shop.example/cart")
    payload = read_token(SECRET, link.rsplit("/", 1)[1])
    assert payload is not None and payload["t"] == "https://shop.example/cart"
    assert payload["s"] == "send-1" and found["track"]("") == ""

    message = CONTENT.render("abandoned_cart", "email", found)
    assert message.subject == "Aino, ostoskorisi odottaa sinua"
    assert "Kuoritakki Tunturi" in message.text and "249,00\u00a0€" in message.text
    assert "myymälään Tampere Keskusta (Hämeenkatu 10, 33100 Tampere)" in message.text
    assert "Villapipo" in message.html and unsubscribe in message.html
    sms = CONTENT.render("abandoned_cart", "sms", found)
    assert "Varaa ja nouda myymälästä Tampere Keskusta" in sms.text


def test_english_words_and_the_event_store_for_a_pickup(shop: Polku) -> None:
    send(shop, identify("ville", first_name="Ville", language="en"))
    added = shop.client.post(
        "/v1/carts/lines",
        json={"userId": "ville", "sku": "pipo-2", "quantity": 3},
        headers=shop.admin,
    )
    assert added.status_code == 200, added.text
    shop.settle()
    ville = profile_of(shop, "ville")
    ready = {
        "event": "Click and Collect Ready",
        "properties": {"order_id": "CC-7", "store_id": "tre-keskusta"},
    }
    found = context(shop, ville, event=ready, purpose="transactional", channel="sms")
    assert found["locale"] == "en" and found["store"]["name"] == "Tampere Keskusta"
    assert found["store"]["hours_today"] == "09:00\u201321:00"
    [line] = found["cart"]["lines"]  # in English, with the stock online and at the store
    assert line["name"] == "Wool beanie" and (line["online"], line["at_store"]) == (40, 2)
    assert line["availability"] == "2 left at Tampere Keskusta, reserve for pickup"
    token = found["unsubscribe_url"].rsplit("/", 1)[1]
    assert read_token(SECRET, token) == {"w": WS, "p": ville, "u": "transactional", "c": "sms"}
    for item in found["recommendations"]:
        assert item["stock"] in ("2 left at Tampere Keskusta, reserve for pickup", "")
    message = CONTENT.render("click_collect_ready", "sms", found)
    assert message.text.startswith("Hi Ville, your order CC-7 is ready for pickup at Tampere")


def test_the_viewed_product_coupon_and_money_fields_of_the_event(shop: Polku) -> None:
    send(shop, identify("eino", first_name="Eino", locale="fi"))
    eino = profile_of(shop, "eino")
    viewed = {
        "event": "Product Viewed",
        "properties": {
            "product_id": "pipo-2",
            "previous_price": 39,
            "products": [{"product_id": "pipo-2", "price": 29.9}],
        },
    }
    found = context(shop, eino, event=viewed, coupon={"code": "TAKAISIN-1", "percent": 15})
    product = found["product"]
    assert product["name"] == "Villapipo" and product["price"] == Decimal("29.90")
    assert product["previous_price"] == Decimal(39)
    assert found["event"]["products"][0]["price"] == Decimal("29.9")
    assert found["coupon"] == {"code": "TAKAISIN-1", "percent": 15}
    message = CONTENT.render("win_back", "email", found)
    assert "Saat 15\u00a0%:n alennuksen seuraavasta ostoksestasi koodilla TAKAISIN-1" in (
        message.text
    )
    price = CONTENT.render("price_drop", "email", found)
    assert "Nyt 29,90\u00a0€ (aiemmin 39,00\u00a0€)" in price.text


def test_a_restock_names_the_product_by_its_sku_with_the_units_at_the_store(
    shop: Polku,
) -> None:
    send(shop, identify("maija", first_name="Maija", preferred_store="tre-keskusta"))
    maija = profile_of(shop, "maija")
    restock = {
        "event": "Stock Received",
        "properties": {"sku": "takki-1-M", "location_id": "tre-keskusta"},
    }
    found = context(shop, maija, event=restock, locale="fi")
    product = found["product"]
    assert (product["product_id"], product["name"], product["price"]) == (
        "takki-1",
        "Kuoritakki Tunturi",
        Decimal("249.00"),
    )
    assert product["at_store"] == 2 and product["url"].endswith("/takki-1")
    assert product["stock"] == "2 jäljellä myymälässä Tampere Keskusta, varaa noudettavaksi"
    message = CONTENT.render("back_in_stock", "email", found)
    assert message.subject == "Kuoritakki Tunturi on taas saatavilla myymälässä Tampere Keskusta"


def test_a_person_with_nothing_gets_empty_parts_and_still_a_message(polku: Polku) -> None:
    send(polku, identify("tyhja"))
    nobody = profile_of(polku, "tyhja")
    found = context(polku, nobody, recommendations=3)
    assert found["profile"]["first_name"] == "" and found["locale"] == "en"
    assert found["cart"] is None and found["store"] is None and found["product"] is None
    assert found["recommendations"] == [] and found["coupon"] is None
    assert found["event"] == {} and found["event_name"] == ""
    for name in CONTENT.names():
        message = CONTENT.render(name, "email", found)
        assert message.subject and message.text
    # a warehouse is no store to send anyone to
    assert context(polku, nobody, event={"store_id": "wh-vantaa"})["store"] is None


def test_the_public_names_are_pinned() -> None:
    assert context_module.__all__ == ["FEW_LEFT", "Links", "message_context"]


def test_an_unknown_profile_degrades_instead_of_failing(polku: Polku) -> None:
    found = context(polku, "p_does_not_exist", event={"order_id": "A-1"})
    assert found["profile"] == {
        "id": "p_does_not_exist",
        "first_name": "",
        "traits": {},
        "order_count": 0,
    }
    assert found["cart"] is None and found["store"] is None
    assert found["event"] == {"order_id": "A-1"}
    assert CONTENT.render("order_thanks", "email", found).subject == (
        "Thank you for your order A-1!"
    )
