"""Preferences learnt from a person's orders, pickups and visits across channels, stated ones
that win, and the checkout defaults that preselect them with their reasons; on SQLite and
PostgreSQL, through the HTTP API.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from conftest import Polku

EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
USER = "cust-77"


def post(polku: Polku, path: str, body: dict[str, Any]) -> Any:
    response = polku.client.post(path, json=body, headers=polku.admin)
    assert response.status_code in (200, 201), response.text
    return response.json()


def get(polku: Polku, path: str, status: int = 200, **params: Any) -> Any:
    response = polku.client.get(path, params=params, headers=polku.admin)
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def shop(polku: Polku) -> Polku:
    """Three stores: two offer click and collect, the outlet does not."""
    for location_id, name, city, postal, cc in [
        ("hki-kamppi", "Kamppi", "Helsinki", "00100", True),
        ("tre-ratina", "Ratina", "Tampere", "33100", True),
        ("oulu-outlet", "Outlet", "Oulu", "90100", False),
    ]:
        post(
            polku,
            "/v1/locations",
            {
                "location_id": location_id,
                "name": name,
                "city": city,
                "postal_code": postal,
                "click_and_collect": cc,
                "hours": EVERY_DAY,
            },
        )
    return polku


def when(day: int, month: int = 11, year: int = 2026) -> str:
    return f"{year}-{month:02d}-{day:02d}T12:00:00.000Z"


def message(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "messageId": f"m-{uuid.uuid4().hex}", **fields}


def order(
    day: int, shipping: str | None, payment: str | None, store: str | None = None, **extra: Any
) -> dict[str, Any]:
    properties: dict[str, Any] = {"order_id": f"o-{uuid.uuid4().hex[:8]}", "total": 20}
    if shipping is not None:
        properties["shipping_method"] = shipping
    if payment is not None:
        properties["payment_method"] = payment
    if store is not None:
        properties["store_id"] = store
    return message(
        "track",
        event="Order Completed",
        userId=USER,
        properties=properties,
        context={"channel": extra.pop("channel", "web")},
        timestamp=extra.pop("at", when(day)),
    )


def receipt(day: int, store: str, payment: str = "card") -> dict[str, Any]:
    return message(
        "track",
        event="POS Order Completed",
        anonymousId="till-session",
        context={"channel": "store", "device": {"id": "till-9", "type": "pos"}},
        properties={
            "store_id": store,
            "receipt_id": f"r-{uuid.uuid4().hex[:8]}",
            "loyalty_card": "LC-7777",
            "payment_method": payment,
            "total": 12,
        },
        timestamp=when(day),
    )


def send(polku: Polku, *messages: dict[str, Any]) -> None:
    response = polku.send("/v1/batch", {"batch": list(messages)})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(messages), response.text
    polku.settle()


def customer(polku: Polku, **traits: Any) -> str:
    send(
        polku,
        message(
            "identify",
            userId=USER,
            traits={"email": "sanna@example.fi", "loyalty_card": "LC 7777", **traits},
            timestamp=when(1, 10),
        ),
    )
    found: str = get(polku, "/v1/profiles/lookup", type="user_id", value=USER)["profile_id"]
    return found


def history(polku: Polku) -> None:
    """Sanna: four home deliveries and one click and collect online, mostly by card; two
    till purchases at Kamppi; one online order collected at Ratina; a visit to Kamppi."""
    send(
        polku,
        order(2, "home_delivery", "card"),
        order(4, "click_and_collect", "mobile", store="tre-ratina", channel="app"),
        order(6, "home_delivery", "card"),
        order(8, "Home_Delivery", "card"),
        order(10, "home_delivery", "card", channel="app"),
        receipt(11, "hki-kamppi"),
        receipt(12, "hki-kamppi", payment="cash"),
        message(
            "track",
            event="Store Visited",
            userId=USER,
            properties={"store_id": "hki-kamppi", "method": "wifi"},
            context={"channel": "store"},
            timestamp=when(13),
        ),
    )


def test_preferences_are_learnt_from_orders_across_channels(shop: Polku) -> None:
    sanna = customer(shop)
    history(shop)
    found = get(shop, f"/v1/profiles/{sanna}/preferences")
    assert found["profile_id"] == sanna and found["redirected_from"] is None

    delivery = found["delivery_method"]
    assert (delivery["value"], delivery["source"]) == ("home_delivery", "inferred")
    assert delivery["reason"] == "used in 4 of the last 5 orders"
    assert delivery["evidence"] == {
        "count": 4,
        "of": 5,
        "last_used": "2026-11-10T12:00:00.000Z",
        "by_kind": {"order": 4},
    }
    assert delivery["alternatives"] == [{"value": "click_and_collect", "count": 1}]
    assert 0.6 < delivery["confidence"] < 0.85

    store = found["store"]
    assert (store["value"], store["source"]) == ("hki-kamppi", "inferred")
    assert store["reason"] == (
        "chosen in 2 of the last 3 store purchases and pickups (2 till purchases); visited once"
    )
    assert store["evidence"]["by_kind"] == {"receipt": 2, "visit": 1}
    assert store["alternatives"] == [{"value": "tre-ratina", "count": 1}]

    payment = found["payment_method"]
    assert (payment["value"], payment["reason"]) == ("card", "used in 5 of the last 7 orders")
    assert payment["inferred"] is None


def test_recent_choices_weigh_more_than_old_ones(shop: Polku) -> None:
    sanna = customer(shop)
    send(
        shop,
        *(order(day, "parcel_locker", "card", at=when(day, 1, 2025)) for day in (3, 4, 5)),
        order(20, "home_delivery", "card"),
        order(21, "home_delivery", "card"),
    )
    delivery = get(shop, f"/v1/profiles/{sanna}/preferences")["delivery_method"]
    # Three lockers almost two years ago weigh less than two deliveries this month.
    assert (delivery["value"], delivery["reason"]) == (
        "home_delivery",
        "used in 2 of the last 5 orders",
    )
    assert delivery["alternatives"] == [{"value": "parcel_locker", "count": 3}]


def test_checkout_defaults_preselect_with_reasons(shop: Polku) -> None:
    sanna = customer(shop)
    history(shop)
    defaults = get(shop, "/v1/checkout/defaults", userId=USER)
    assert defaults["profile_id"] == sanna and defaults["personalised"] is True
    assert defaults["delivery_method"] == {
        "value": "home_delivery",
        "source": "inferred",
        "confidence": defaults["delivery_method"]["confidence"],
        "reason": "used in 4 of the last 5 orders",
    }
    store = defaults["store"]
    assert (store["location_id"], store["name"], store["known"]) == ("hki-kamppi", "Kamppi", True)
    assert (store["click_and_collect"], store["open_now"], store["preselect"]) == (True, True, True)
    assert store["closes_at"] is None  # open round the clock
    assert store["reason"].startswith("chosen in 2 of the last 3 store purchases")
    assert defaults["payment_method"]["value"] == "card"
    assert defaults["payment_method"]["reason"] == "used in 5 of the last 7 orders"
    assert get(shop, "/v1/checkout/defaults", profile=sanna) == {**defaults}
    assert get(shop, "/v1/checkout/defaults", anonymousId="till-session")["profile_id"] is None


def test_a_stated_store_wins_and_cash_is_never_a_checkout_default(shop: Polku) -> None:
    sanna = customer(shop, preferred_store="tre-ratina")
    send(shop, receipt(3, "hki-kamppi", "cash"), receipt(4, "hki-kamppi", "cash"))
    send(shop, order(5, "home_delivery", "klarna"))
    found = get(shop, f"/v1/profiles/{sanna}/preferences")
    store = found["store"]
    assert (store["value"], store["source"], store["confidence"]) == ("tre-ratina", "stated", 1.0)
    assert store["reason"] == "stated by the customer (trait preferred_store)"
    assert store["inferred"]["value"] == "hki-kamppi"
    assert found["payment_method"]["value"] == "cash"

    defaults = get(shop, "/v1/checkout/defaults", userId=USER)
    assert defaults["store"]["location_id"] == "tre-ratina"
    assert defaults["store"]["source"] == "stated" and defaults["store"]["preselect"] is True
    payment = defaults["payment_method"]
    assert (payment["value"], payment["reason"]) == (
        "klarna",
        "used in their only order so far (2026-11-05)",
    )


def test_a_store_known_only_from_visits(shop: Polku) -> None:
    sanna = customer(shop)
    visits = [("tre-ratina", 3), ("tre-ratina", 4), ("hki-kamppi", 5)]
    send(
        shop,
        *(
            message(
                "track",
                event="Store Visited",
                userId=USER,
                properties={"store_id": store, "method": "check_in"},
                timestamp=when(day),
            )
            for store, day in visits
        ),
    )
    store = get(shop, f"/v1/profiles/{sanna}/preferences")["store"]
    assert (store["value"], store["reason"]) == (
        "tre-ratina",
        "visited in 2 of the last 3 store visits",
    )
    assert store["evidence"]["by_kind"] == {"visit": 2}


def test_a_store_without_click_and_collect_is_shown_but_not_preselected(shop: Polku) -> None:
    customer(shop)
    send(shop, receipt(3, "oulu-outlet"), receipt(4, "oulu-outlet"))
    store = get(shop, "/v1/checkout/defaults", userId=USER)["store"]
    assert (store["location_id"], store["click_and_collect"]) == ("oulu-outlet", False)
    assert store["preselect"] is False
    assert store["reason"].endswith("it does not offer click and collect, so it is not preselected")


def test_withdrawn_personalisation_consent_keeps_only_stated_choices(shop: Polku) -> None:
    customer(shop, preferred_delivery_method="parcel_locker")
    history(shop)
    send(
        shop,
        message(
            "track",
            event="Consent Updated",
            userId=USER,
            properties={"purpose": "personalisation", "granted": False},
            timestamp=when(20),
        ),
    )
    defaults = get(shop, "/v1/checkout/defaults", userId=USER)
    assert defaults["personalised"] is False
    assert defaults["delivery_method"]["value"] == "parcel_locker"
    assert defaults["delivery_method"]["source"] == "stated"
    assert defaults["store"] is None and defaults["payment_method"] is None
    assert "consent" in defaults["note"]


def test_a_merged_profile_id_resolves(shop: Polku) -> None:
    sanna = customer(shop)
    send(
        shop,
        message(
            "identify",
            anonymousId="guest-1",
            traits={"email": "guest@example.fi"},
            timestamp=when(1, 9),
        ),
        message(
            "track",
            event="Order Completed",
            anonymousId="guest-1",
            properties={"order_id": "g-1", "shipping_method": "parcel_locker"},
            timestamp=when(2),
        ),
    )
    guest: str = get(shop, "/v1/profiles/lookup", type="anonymous_id", value="guest-1")[
        "profile_id"
    ]
    assert guest != sanna
    # The guest signs in on the same browser: the guest profile is merged into Sanna's.
    send(shop, message("identify", userId=USER, anonymousId="guest-1", timestamp=when(3)))
    found = get(shop, f"/v1/profiles/{guest}/preferences")
    assert (found["profile_id"], found["redirected_from"]) == (sanna, guest)
    assert found["delivery_method"]["value"] == "parcel_locker"
    defaults = get(shop, "/v1/checkout/defaults", profile=guest)
    assert (defaults["profile_id"], defaults["redirected_from"]) == (sanna, guest)
    assert defaults["delivery_method"]["value"] == "parcel_locker"


def test_availability_falls_back_to_the_inferred_store(shop: Polku) -> None:
    sanna = customer(shop)
    history(shop)
    post(
        shop,
        "/v1/catalog/products",
        {
            "product_id": "pipo-1",
            "name": "Pipo",
            "variants": [{"sku": "pipo-1-one", "price": "19.90", "currency": "EUR"}],
        },
    )
    for store in ("hki-kamppi", "tre-ratina"):
        post(
            shop,
            "/v1/stock/receipts",
            {"location_id": store, "lines": [{"sku": "pipo-1-one", "quantity": 3}]},
        )
    body = get(shop, "/v1/availability", sku="pipo-1-one", profile=sanna)
    first = body["variants"][0]["stores"][0]
    assert (first["location_id"], first["preferred"]) == ("hki-kamppi", True)


def test_bad_checkout_requests_are_refused_with_the_field(shop: Polku) -> None:
    customer(shop)
    cases = [
        ({}, 400, "missing_customer", "profile"),
        ({"userId": USER, "anonymousId": "x"}, 400, "invalid_field", "anonymousId"),
        ({"userId": "undefined"}, 400, "invalid_field", "userId"),
        ({"userId": USER, "channel": "fax"}, 400, "invalid_field", "channel"),
        ({"profile": "p_nobody"}, 404, "not_found", "profile_id"),
    ]
    for params, status, code, field in cases:
        error = get(shop, "/v1/checkout/defaults", status, **params)["error"]
        assert (error["code"], error.get("field")) == (code, field), (params, error)
    unknown = get(shop, "/v1/checkout/defaults", userId="nobody-yet")
    assert unknown["profile_id"] is None and unknown["store"] is None
    assert get(shop, "/v1/profiles/p_nobody/preferences", 404)["error"]["field"] == "profile_id"
