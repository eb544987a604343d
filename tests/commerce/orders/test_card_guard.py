"""Card numbers never reach the log: collection refuses an event that carries one (with its
own code, the field, and what to send instead), keeps the good events of the batch, and
masks the number in the dead letter; receipt ids, phones, barcodes and loyalty cards pass.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from conftest import Polku
from polku.collect.tables import dead_letters
from polku.log.tables import log_events
from polku.privacy.cards import card_network, find_card_number

# The payment networks' published test numbers: real-looking, never a real card.
TEST_CARDS = {
    "4111 1111 1111 1111": "Visa",
    "4111-1111-1111-1111": "Visa",
    "4012888888881881": "Visa",
    "5555555555554444": "Mastercard",
    "2223003122003222": "Mastercard",
    "378282246310005": "American Express",
    "3782 822463 10005": "American Express",
    "6011111111111117": "Discover",
    "3530111333300000": "JCB",
    "30569309025904": "Diners Club",
    "6759649826438453": "Maestro",
    "6200000000000005": "UnionPay",
}


def luhn_completed(body: str) -> str:
    """`body` with the check digit that makes it pass the Luhn check."""
    for digit in "0123456789":
        candidate = body + digit
        total = sum(
            (d if i % 2 == 0 else (2 * d if 2 * d < 10 else 2 * d - 9))
            for i, d in enumerate(int(c) for c in reversed(candidate))
        )
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


# Long numbers that are not payment cards, and must pass.
INNOCENT = {
    "receipt_id": luhn_completed("411111111111111"),  # an id field: the till's own number
    "loyalty_card": luhn_completed("604200001042000"),  # a Luhn loyalty card in a 6 range
    "sku": "4006381333931",  # an EAN-13 barcode
    "note": "receipt 2026112210150007 from till 3",  # date-like, not a card range
    "phone": "+358 40 123 4567",
    "alt_phone": "+44 7911 123456 78",
    "iban": "FI21 1234 5600 0007 85",
    "sizes": "36 38 40 42 44 46 48",
    "ratio": 0.4111111111111111,
    "ean_list": "4006381333931, 4006381333948",
    "reference": "INV" + luhn_completed("411111111111111"),
    "big_number": luhn_completed("41111111111111111111"),  # 21 digits: no card is that long
    "amount": 4111111111111.0,
}


@pytest.mark.parametrize("number", sorted(TEST_CARDS))
def test_every_network_test_number_is_found(number: str) -> None:
    found = find_card_number({"properties": {"payment": {"note": f"paid with {number}."}}})
    assert found is not None
    assert (found.field, found.network) == ("properties.payment.note", TEST_CARDS[number])
    assert found.last4 == number.replace(" ", "").replace("-", "")[-4:]
    assert number not in str(found.redacted) and found.last4 in str(found.redacted)


def test_innocent_long_numbers_are_not_cards() -> None:
    assert find_card_number({"properties": INNOCENT, "traits": INNOCENT}) is None
    assert card_network("4006381333931") is None  # 13 digits: a barcode, not a Visa card
    # The same digits under a key that is no identifier are a card.
    digits = INNOCENT["receipt_id"]
    found = find_card_number({"properties": {"comment": digits}})
    assert found is not None and found.field == "properties.comment"


def track(properties: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": "cust-1",
        "messageId": f"m-{uuid.uuid4().hex}",
        "properties": properties,
        **fields,
    }


def stored_bytes(polku: Polku) -> bytes:
    """Everything the log and the dead-letter store hold."""
    with polku.runtime.engine.connect() as conn:
        logged = [bytes(p) for p in conn.execute(select(log_events.c.payload)).scalars()]
        dead = [bytes(p or b"") for p in conn.execute(select(dead_letters.c.payload)).scalars()]
    return b"\n".join(logged + dead)


def test_an_event_with_a_card_number_is_refused_and_never_stored(polku: Polku) -> None:
    response = polku.send(
        "/v1/track",
        track({"order_id": "o-1", "payment_method": "4111 1111 1111 1111", "total": 10}),
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("card_number", "properties.payment_method")
    assert "method type" in error["message"] and "token" in error["message"]
    assert "ending 1111" in error["message"] and "4111 1111" not in error["message"]

    # In a batch: the good events are kept, the one with a card is listed by its index.
    good = track({"order_id": "o-2", "payment_method": "card", **INNOCENT})
    card_in_traits = {
        "type": "identify",
        "userId": "cust-1",
        "traits": {"email": "a@example.fi", "saved_card": 5555555555554444},
    }
    card_in_products = track(
        {"order_id": "o-3", "products": [{"sku": "X-1", "engraving": "3782-822463-10005"}]}
    )
    response = polku.send("/v1/batch", {"batch": [good, card_in_traits, card_in_products]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [
        (1, "card_number", "traits.saved_card"),
        (2, "card_number", "properties.products[0].engraving"),
    ]
    polku.settle()
    order = polku.client.get("/v1/orders/o-2", headers=polku.admin).json()
    assert order["payment_method"] == "card"

    # The dead letters keep the events, with the numbers masked.
    rejections = polku.client.get(
        "/v1/debugger/rejections", params={"code": "card_number"}, headers=polku.admin
    ).json()["rejections"]
    assert len(rejections) == 3
    masked = {r["field"]: r["payload"] for r in rejections}
    assert masked["properties.payment_method"]["properties"]["payment_method"] == (
        "**** **** **** 1111"
    )
    assert masked["traits.saved_card"]["traits"]["saved_card"] == "************4444"
    everything = stored_bytes(polku)
    for number in ("4111 1111 1111 1111", "5555555555554444", "3782-822463-10005", "822463"):
        assert number.encode() not in everything
    assert INNOCENT["receipt_id"].encode() in everything  # the innocent ones were kept


def test_a_card_number_in_the_page_url_is_refused(polku: Polku) -> None:
    page = {
        "type": "page",
        "anonymousId": "web-1",
        "name": "Checkout",
        "context": {"page": {"url": "https://shop.example/pay?card=4012888888881881&cvc=1"}},
    }
    response = polku.send("/v1/page", page)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "context.page.url"


def test_a_request_refused_whole_keeps_no_card_number_in_its_dead_letter(polku: Polku) -> None:
    body = {
        "batch": {"type": "track", "userId": "u1", "properties": {"note": "4111 1111 1111 1111"}}
    }
    response = polku.client.post("/v1/batch", json=body, auth=polku.auth)
    assert response.status_code == 400  # `batch` is not a list: refused before any message
    stored = polku.client.get("/v1/debugger/rejections", headers=polku.admin).json()
    text = str(stored["rejections"][0]["payload"])
    assert "4111 1111 1111 1111" not in text and "**** **** **** 1111" in text
