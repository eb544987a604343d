"""Recommendations through the HTTP API, on SQLite and PostgreSQL: every context with its
reasons in English and Finnish, the business rules (bought, returned, consent, active,
stock online or at the person's store, diversity, boosts), the live session answers that
need no retraining, training on demand, and bad input that gets a 4xx and never a 500.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from conftest import Polku

EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}

# product id: (name, category, attributes)
PRODUCTS: dict[str, tuple[str, list[str], dict[str, Any]]] = {
    "takki-lumi": ("Talvitakki Lumi", ["Takit"], {"margin": 0.2}),
    "takki-revontuli": ("Talvitakki Revontuli", ["Takit"], {}),
    "takki-tuisku": ("Kuoritakki Tuisku", ["Takit"], {}),
    "takki-kide": ("Untuvatakki Kide", ["Takit"], {}),
    "hanska-villa": ("Villahanskat", ["Asusteet", "Hanskat"], {}),
    "hanska-nahka": ("Nahkahanskat", ["Asusteet", "Hanskat"], {"outlet": True}),
    "pipo-kettu": ("Pipo Kettu", ["Asusteet", "Pipot"], {}),
    "pipo-susi": ("Pipo Susi", ["Asusteet", "Pipot"], {}),
    "sukat-villa": ("Villasukat", ["Asusteet", "Sukat"], {"replenishable": True}),
    "kenka-polku": ("Talvikenkä Polku", ["Kengät"], {}),
    "kenka-kivi": ("Vaelluskenkä Kivi", ["Kengät"], {}),
    "huivi-ratina": ("Huivi Ratina", ["Asusteet", "Huivit"], {}),  # stocked at Ratina only
    "loppu-kassi": ("Kassi Loppu", ["Laukut"], {}),  # no stock anywhere
    "vanha-takki": ("Vanha takki", ["Takit"], {}),  # made inactive
}


def post(polku: Polku, path: str, body: dict[str, Any], status: int = 201) -> Any:
    response = polku.client.post(path, json=body, headers=polku.admin)
    assert response.status_code == status, response.text
    return response.json()


def get(polku: Polku, path: str = "/v1/recommendations", status: int = 200, **params: Any) -> Any:
    response = polku.client.get(path, params=params, headers=polku.admin)
    assert response.status_code == status, response.text
    return response.json()


def send(polku: Polku, *messages: dict[str, Any]) -> None:
    for start in range(0, len(messages), 100):
        chunk = list(messages[start : start + 100])
        response = polku.send("/v1/batch", {"batch": chunk})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(chunk), response.text
    polku.settle()


def track(event: str, who: str, *, anonymous: bool = False, **properties: Any) -> dict[str, Any]:
    person = {"anonymousId": who} if anonymous else {"userId": who}
    return {
        "type": "track",
        "event": event,
        "messageId": f"m-{uuid.uuid4().hex}",
        "properties": properties,
        **person,
    }


def order(who: str, *products: str, store: str | None = None) -> dict[str, Any]:
    event = "POS Order Completed" if store else "Order Completed"
    props: dict[str, Any] = {
        "order_id": f"o-{uuid.uuid4().hex[:10]}",
        "products": [{"product_id": p, "quantity": 1, "price": 10} for p in products],
    }
    if store:
        props["store_id"] = store
        props["receipt_id"] = props["order_id"]
    return track(event, who, **props)


def profile_of(polku: Polku, user: str) -> str:
    found: str = get(polku, "/v1/profiles/lookup", type="user_id", value=user)["profile_id"]
    return found


def train(polku: Polku) -> dict[str, Any]:
    found: dict[str, Any] = post(polku, "/v1/recommendations/train?wait=true", {}, 200)
    assert found["status"] == "trained", found
    return found


@pytest.fixture
def shop(polku: Polku) -> Polku:
    """The catalogue above, two stores and a warehouse with stock, and 40 shoppers whose
    orders tie jackets to gloves and hats, and shoes to socks."""
    for pid, (name, category, attributes) in PRODUCTS.items():
        post(
            polku,
            "/v1/catalog/products",
            {
                "product_id": pid,
                "name": name,
                "category": category,
                "attributes": attributes,
                "translations": {"en": {"name": name + " (en)"}},
                "variants": [{"sku": f"{pid}-1", "price": "49.90", "currency": "EUR"}],
            },
        )
    response = polku.client.patch(
        "/v1/catalog/products/vanha-takki", json={"active": False}, headers=polku.admin
    )
    assert response.status_code == 200, response.text
    for location_id, name, city, postal in [
        ("hki-kamppi", "Kamppi", "Helsinki", "00100"),
        ("tre-ratina", "Ratina", "Tampere", "33100"),
    ]:
        post(
            polku,
            "/v1/locations",
            {
                "location_id": location_id,
                "name": name,
                "city": city,
                "postal_code": postal,
                "click_and_collect": True,
                "hours": EVERY_DAY,
            },
        )
    post(
        polku,
        "/v1/locations",
        {
            "location_id": "wh-vantaa",
            "name": "Keskusvarasto",
            "kind": "warehouse",
            "city": "Vantaa",
            "postal_code": "01510",
        },
    )
    online = [p for p in PRODUCTS if p not in ("huivi-ratina", "loppu-kassi")]
    post(
        polku,
        "/v1/stock/receipts",
        {"location_id": "wh-vantaa", "lines": [{"sku": f"{p}-1", "quantity": 50} for p in online]},
    )
    post(
        polku,
        "/v1/stock/receipts",
        {"location_id": "tre-ratina", "lines": [{"sku": "huivi-ratina-1", "quantity": 5}]},
    )
    events: list[dict[str, Any]] = []
    jackets = ["takki-lumi", "takki-revontuli", "takki-tuisku", "takki-kide"]
    for n in range(40):
        who = f"shopper-{n}"
        if n % 2 == 0:
            jacket = jackets[n % 4]
            events += [
                track("Product Viewed", who, product_id=jacket),
                track("Product Viewed", who, product_id="hanska-villa"),
                order(who, jacket, "hanska-villa", "pipo-kettu"),
            ]
        else:
            events += [
                track("Product Viewed", who, product_id="kenka-polku"),
                order(who, "kenka-polku", "sukat-villa", store="tre-ratina"),
            ]
        if n % 5 == 0:
            events.append(order(who, "huivi-ratina", store="tre-ratina"))
    send(polku, *events)
    return polku


def _check_items(body: dict[str, Any], k: int) -> list[str]:
    ids = [item["product_id"] for item in body["items"]]
    assert len(ids) == len(set(ids)) and len(ids) <= k
    for item in body["items"]:
        reason = item["reason"]
        assert reason["code"] and reason["en"] and reason["fi"] and reason["text"]
        assert item["availability"]["words"]["en"] and item["availability"]["words"]["fi"]
        assert item["product_id"] not in ("vanha-takki", "loppu-kassi")  # inactive, no stock
    return ids


def test_home_is_personal_in_stock_and_leaves_out_what_was_bought(shop: Polku) -> None:
    trained = train(shop)
    assert trained["version"] == 1 and trained["interactions"] > 100
    # A new shopper looked at a jacket and bought gloves.
    send(
        shop,
        track("Product Viewed", "anna", product_id="takki-lumi"),
        order("anna", "hanska-villa", "sukat-villa"),
    )
    body = get(shop, profile=profile_of(shop, "anna"), context="home", k=5)
    assert body["personalised"] is True and body["fallback"] is None
    assert body["model_version"] == 1
    ids = _check_items(body, 5)
    assert ids, body
    assert "hanska-villa" not in ids  # bought
    assert "huivi-ratina" not in ids  # in stock at Ratina only, and no store is known
    assert body["stock_filter"] == "online"
    codes = {item["reason"]["code"] for item in body["items"]}
    assert codes & {"personal", "viewed_next", "also_liked"}, body


def test_replenishable_products_may_come_back_and_returned_ones_do_not(shop: Polku) -> None:
    train(shop)
    body = get(shop, profile=profile_of(shop, "shopper-1"), context="home", k=20)
    ids = _check_items(body, 20)
    assert "kenka-polku" not in ids  # bought, not replenishable
    assert "sukat-villa" in ids  # bought, but socks run out
    send(shop, track("Order Refunded", "shopper-1", products=[{"product_id": "sukat-villa"}]))
    again = get(shop, profile=profile_of(shop, "shopper-1"), context="home", k=20)
    assert "sukat-villa" not in _check_items(again, 20)
    assert again["excluded"].get("returned") == 1


def test_the_product_page_shows_what_is_bought_together_with_it(shop: Polku) -> None:
    train(shop)
    body = get(shop, context="product", product="takki-lumi", k=4, lang="fi")
    ids = _check_items(body, 4)
    assert "takki-lumi" not in ids
    assert ids[0] == "hanska-villa"
    first = body["items"][0]["reason"]
    assert first["code"] == "bought_together"
    assert first["because"] == "takki-lumi"
    assert first["en"] == "Often bought together with Talvitakki Lumi (en)"
    assert first["fi"] == "Ostetaan usein yhdessä tuotteen ”Talvitakki Lumi” kanssa"
    assert first["text"] == first["fi"]
    assert body["fallback"] == "no_profile" and body["personalised"] is False


def test_cart_and_post_purchase_complete_what_is_there(shop: Polku) -> None:
    train(shop)
    cart = get(shop, context="cart", items="kenka-polku", k=3)
    assert _check_items(cart, 3)[0] == "sukat-villa"
    assert cart["items"][0]["reason"]["code"] == "completes_cart"
    after = get(shop, profile=profile_of(shop, "shopper-0"), context="post_purchase", k=3)
    ids = _check_items(after, 3)
    assert ids and not set(ids) & {"takki-lumi", "hanska-villa", "pipo-kettu"}
    assert {i["reason"]["code"] for i in after["items"]} <= {
        "after_purchase",
        "similar",
        "personal",
        "popular",
    }


def test_search_and_next_best_offer(shop: Polku) -> None:
    train(shop)
    found = get(shop, context="search", q="hanskat", k=5)
    ids = _check_items(found, 5)
    assert "hanska-villa" in ids or "hanska-nahka" in ids
    assert any(i["reason"]["code"] == "search" for i in found["items"])
    offer = get(
        shop,
        profile=profile_of(shop, "shopper-2"),
        context="next_best_offer",
        k=3,
        boost="margin,outlet",
    )
    assert offer["personalised"] is True
    assert _check_items(offer, 3)


def test_stock_at_the_persons_store_is_named(shop: Polku) -> None:
    train(shop)
    send(shop, {"type": "identify", "userId": "ville", "traits": {"preferred_store": "tre-ratina"}})
    body = get(
        shop, profile=profile_of(shop, "ville"), context="product", product="kenka-polku", k=10
    )
    assert body["store"] == {"location_id": "tre-ratina", "name": "Ratina"}
    assert body["stock_filter"] == "online and store"
    ids = _check_items(body, 10)
    assert "huivi-ratina" in ids  # only Ratina has it
    scarf = next(i for i in body["items"] if i["product_id"] == "huivi-ratina")
    assert scarf["availability"]["store"]["sellable"] == 5
    assert scarf["availability"]["online"] == 0
    assert scarf["availability"]["words"]["en"] == "In stock at Ratina"
    # The same at Kamppi, asked for explicitly: not there, not shown.
    kamppi = get(shop, context="product", product="kenka-polku", k=10, store="hki-kamppi")
    assert "huivi-ratina" not in _check_items(kamppi, 10)


def test_a_product_that_sells_out_leaves_the_answer_at_once(shop: Polku) -> None:
    # Serving keeps catalogue rows for seconds, never stock: the count applies to the very
    # next answer, although the scarf's catalogue row was just read.
    train(shop)
    asked = {"context": "product", "product": "kenka-polku", "k": 10, "store": "tre-ratina"}
    assert "huivi-ratina" in _check_items(get(shop, **asked), 10)
    post(
        shop,
        "/v1/stock/counts",
        {"location_id": "tre-ratina", "lines": [{"sku": "huivi-ratina-1", "quantity": 0}]},
    )
    shop.settle()
    again = get(shop, **asked)
    assert "huivi-ratina" not in _check_items(again, 10)
    assert again["excluded"].get("no_stock", 0) >= 1


def test_diversity_keeps_one_category_from_filling_the_list(shop: Polku) -> None:
    train(shop)
    body = get(shop, context="product", product="takki-kide", k=3)
    categories = [tuple(i["category"]) for i in body["items"]]
    assert max(categories.count(c) for c in categories) <= 2


def test_withdrawn_consent_and_unknown_profiles_get_the_non_personal_answer(shop: Polku) -> None:
    train(shop)
    send(
        shop,
        track("Consent Updated", "shopper-0", purpose="personalisation", granted=False),
    )
    body = get(shop, profile=profile_of(shop, "shopper-0"), context="home", k=5)
    assert body["personalised"] is False and body["fallback"] == "no_consent"
    assert "consent" in body["note"]
    assert {i["reason"]["code"] for i in body["items"]} <= {"popular", "popular_store"}
    assert _check_items(body, 5)
    unknown = get(shop, profile="p-does-not-exist", context="home", k=5)
    assert unknown["fallback"] == "unknown_profile" and unknown["profile_id"] is None
    assert _check_items(unknown, 5)


def test_a_newcomer_in_a_segment_gets_what_the_segment_took_to(shop: Polku) -> None:
    response = shop.client.put(
        "/v1/segments/hikers",
        json={
            "name": "Hikers",
            "where": [{"field": "profile.traits.hobby", "op": "eq", "value": "hiking"}],
        },
        headers=shop.admin,
    )
    assert response.status_code == 200, response.text
    hikers = [f"hiker-{n}" for n in range(6)]
    send(
        shop,
        *[
            {
                "type": "identify",
                "userId": who,
                "messageId": f"m-{uuid.uuid4().hex}",
                "traits": {"hobby": "running" if who == "new-runner" else "hiking"},
            }
            for who in [*hikers, "new-hiker", "new-runner"]
        ],
        *[order(who, "kenka-kivi") for who in hikers],
    )
    members = shop.client.get("/v1/segments/hikers/members", headers=shop.admin).json()
    assert len(members["members"]) == 7, members
    train(shop)
    newcomer = get(shop, profile=profile_of(shop, "new-hiker"), context="home", k=5)
    first = newcomer["items"][0]
    assert first["product_id"] == "kenka-kivi", newcomer["items"]
    assert first["reason"]["code"] == "popular_segment"
    assert first["reason"]["segment"] == "hikers"
    assert first["reason"]["fi"] == "Suosittu kaltaistesi asiakkaiden keskuudessa"
    # Someone outside the segment gets the shop's popular items, not the hikers' shoe.
    other = get(shop, profile=profile_of(shop, "new-runner"), context="home", k=5)
    assert other["items"][0]["product_id"] != "kenka-kivi"
    assert "popular_segment" not in {i["reason"]["code"] for i in other["items"]}


def test_views_shape_the_session_answer_within_seconds_without_retraining(shop: Polku) -> None:
    train(shop)
    visitors = [f"anon-{n}" for n in range(6)]
    send(
        shop,
        *[
            e
            for v in visitors
            for e in (
                track("Product Viewed", v, anonymous=True, product_id="pipo-susi"),
                track("Product Viewed", v, anonymous=True, product_id="kenka-kivi"),
            )
        ],
    )
    # A new anonymous visitor looks at the hat: the shoes come next, from live counts.
    send(shop, track("Product Viewed", "anon-new", anonymous=True, product_id="pipo-susi"))
    who = get(shop, "/v1/profiles/lookup", type="anonymous_id", value="anon-new")["profile_id"]
    body = get(shop, profile=who, context="home", k=3)
    assert body["items"][0]["product_id"] == "kenka-kivi", body
    assert body["items"][0]["reason"]["code"] == "viewed_next"
    assert body["items"][0]["reason"]["en"].startswith("Shoppers who looked at Pipo Susi")


def test_serving_works_before_any_training_and_status_tells_the_version(shop: Polku) -> None:
    status = get(shop, "/v1/recommendations/status")
    assert status["version"] is None
    body = get(shop, context="product", product="takki-lumi", k=3)
    assert body["model_version"] is None
    assert _check_items(body, 3)[0] == "hanska-villa"  # from the live bought-together pairs
    # That request also started a first training in the background; these come after it.
    first = train(shop)["version"]
    assert train(shop)["version"] == first + 1
    status = get(shop, "/v1/recommendations/status")
    assert status["version"] == first + 1 and status["summary"]["interactions"] > 100
    started = post(shop, "/v1/recommendations/train", {}, 202)
    assert started["status"] in ("started", "already_running")


@pytest.mark.parametrize(
    ("params", "status", "code", "field"),
    [
        ({"context": "checkout"}, 400, "unknown_context", "context"),
        ({"k": 0}, 400, "invalid_field", "k"),
        ({"k": 51}, 400, "invalid_field", "k"),
        ({"k": "many"}, 400, "invalid_field", "k"),
        ({"context": "product"}, 400, "missing_product", "product"),
        ({"context": "product", "product": "nope"}, 404, "unknown_product", "product"),
        ({"context": "search"}, 400, "missing_query", "q"),
        ({"store": "nowhere"}, 400, "unknown_store", "store"),
        ({"boost": "cheap"}, 400, "unknown_boost", "boost"),
        ({"lang": "sv"}, 400, "invalid_field", "lang"),
        ({"lat": 60.1}, 400, "invalid_field", "lon"),
        ({"profile": "x" * 65}, 400, "invalid_field", "profile"),
    ],
)
def test_bad_input_gets_a_4xx_with_code_field_and_hint(
    shop: Polku, params: dict[str, Any], status: int, code: str, field: str
) -> None:
    error = get(shop, status=status, **params)["error"]
    assert error["code"] == code and error["field"] == field
    assert error["message"]


def test_recommendations_need_an_admin_token(shop: Polku) -> None:
    response = shop.client.get("/v1/recommendations")
    assert response.status_code == 401


def test_replay_rebuilds_the_same_answers(shop: Polku) -> None:
    send(
        shop,
        track("Product Viewed", "anon-r", anonymous=True, product_id="pipo-susi"),
        track("Product Viewed", "anon-r", anonymous=True, product_id="kenka-kivi"),
        # A till that sends only SKUs: the line still counts for its product.
        order("shopper-3", store="tre-ratina")
        | {
            "properties": {
                "receipt_id": "R-9",
                "store_id": "tre-ratina",
                "products": [{"sku": "pipo-susi-1"}],
            }
        },
    )
    train(shop)
    asked = [
        {"context": "product", "product": "pipo-susi", "k": 5},
        {"context": "home", "profile": profile_of(shop, "shopper-3"), "k": 5},
    ]
    before = [get(shop, **params)["items"] for params in asked]
    pipeline = shop.runtime.pipeline
    assert pipeline is not None
    pipeline.replay()
    assert [get(shop, **params)["items"] for params in asked] == before
    # The receipt's SKU became its product: the last order the post-purchase answer starts from.
    after = get(shop, profile=profile_of(shop, "shopper-3"), context="post_purchase", k=5)
    assert any(i["reason"]["because"] == "pipo-susi" for i in after["items"]), after
