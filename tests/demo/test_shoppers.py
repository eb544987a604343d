"""The demo's simulated shoppers: deterministic, well-formed Segment messages that link up."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import Polku
from polku.collect.vocabulary import check_properties
from polku.commerce.locations.geo import distance_km, locate_postal_code
from polku.demo import shoppers
from polku.demo.shoppers import (
    CATALOGUE,
    JOURNEYS,
    STORES,
    WAREHOUSE,
    DemoStore,
    JourneyKind,
    Shopper,
    ShopperSimulator,
    batches,
    colour_code,
    stock_level,
)
from polku.events import CHANNELS, MESSAGE_TYPES
from polku.identity.identifiers import IdentityConfig, extract, normalise
from polku.identity.queries import event_profile

ALLOWED_CHANNELS = {"web", "app", "store", "email", "sms", "chat"}
PRODUCTS = {p.id: p for p in CATALOGUE}
STORE_IDS = {s.id for s in STORES}
CONFIG = IdentityConfig()
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
Message = dict[str, Any]


def journeys(kind: JourneyKind | None, count: int, seed: int = 11) -> list[list[Message]]:
    simulator = ShopperSimulator(seed=seed, bad_event_rate=0)
    return [simulator.journey(kind) for _ in range(count)]


def is_bad(message: Message) -> bool:
    """A deliberately bad message: no identity at all, or a price sent as text."""
    properties = message.get("properties") or {}
    no_identity = "userId" not in message and "anonymousId" not in message
    return no_identity or isinstance(properties.get("price"), str)


def moment(message: Message) -> datetime:
    return datetime.fromisoformat(message["timestamp"])


def on_till(message: Message) -> bool:
    return bool(message["context"].get("device", {}).get("type") == "pos")


def linking_ids(messages: Iterable[Message]) -> set[tuple[str, str]]:
    """Identifiers that identity resolution may join people on (shared devices excluded)."""
    return {(i.type, i.value) for m in messages for i in extract(m, CONFIG) if not i.shared}


def km(a: DemoStore, b: DemoStore) -> float:
    return distance_km(a.latitude, a.longitude, b.latitude, b.longitude)


def checked_stores(checks: list[Message]) -> list[DemoStore]:
    return [next(s for s in STORES if s.id == c["properties"]["store_id"]) for c in checks]


def people(messages: list[Message]) -> int:
    """How many people identity resolution sees in these messages (connected identifiers)."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(node: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for message in messages:
        found = [(i.type, i.value) for i in extract(message, CONFIG) if not i.shared]
        if found:
            root(found[0])
        for other in found[1:]:
            parent[root(other)] = root(found[0])
    return len({root(node) for node in list(parent)})


# --- public surface ---------------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert sorted(shoppers.__all__) == [
        "BRAND",
        "CATALOGUE",
        "DemoProduct",
        "DemoStore",
        "JOURNEYS",
        "JourneyKind",
        "STORES",
        "Shopper",
        "ShopperSimulator",
        "WAREHOUSE",
        "batches",
        "colour_code",
        "stock_level",
    ]
    for name in shoppers.__all__:
        assert hasattr(shoppers, name)


def test_catalogue_and_stores() -> None:
    assert 25 <= len(CATALOGUE) <= 40
    assert len(PRODUCTS) == len(CATALOGUE)
    for product in CATALOGUE:
        assert product.price_cents > 0 and product.sizes and product.colours
        assert "/" in product.category
        size, colour = product.sizes[0], product.colours[0]
        assert product.sku(size, colour) == f"{product.id}-{colour_code(colour)}-{size}"
        assert len(set(product.skus)) == len(product.colours) * len(product.sizes)
        assert product.url.endswith(product.path) and " " not in product.path
        assert product.name_en and product.about_fi and product.about_en and product.material
    assert product.sku("M", "Musta") != product.sku("M", "Harmaa")
    assert CATALOGUE[0].sku("M", "Musta") == "P1001-MUS-M"
    assert {"Talvitakki Revontuli", "Merino-pipo"} <= {p.name for p in CATALOGUE}
    assert [s.id for s in STORES] == [
        "store-hki-kamppi",
        "store-esp-isoomena",
        "store-tre-ratina",
        "store-tku-hansa",
        "store-oulu-valkea",
        "store-jkl-forum",
    ]
    assert [s.city for s in STORES] == [
        "Helsinki",
        "Espoo",
        "Tampere",
        "Turku",
        "Oulu",
        "Jyväskylä",
    ]
    for place in (*STORES, WAREHOUSE):
        # Real places: a five-digit postal code and a point in Finland near its code's point.
        origin = locate_postal_code(place.postal_code, "FI")
        assert origin is not None, place.postal_code
        assert distance_km(place.latitude, place.longitude, *origin) < 5, place.id
    assert all(s.kind == "store" for s in STORES) and WAREHOUSE.kind == "warehouse"
    assert [s.id for s in STORES if not s.click_and_collect] == ["store-oulu-valkea"]


def test_stock_levels_are_fixed_and_varied() -> None:
    skus = [sku for product in CATALOGUE for sku in product.skus]
    in_store = [stock_level(sku, "store-tku-hansa") for sku in skus]
    assert in_store == [stock_level(sku, "store-tku-hansa") for sku in skus]
    assert 0.15 < in_store.count(0) / len(skus) < 0.35  # sold out
    assert 0.08 < sum(1 <= n <= 3 for n in in_store) / len(skus) < 0.25  # the last units
    online = [stock_level(sku, WAREHOUSE.id) for sku in skus]
    assert sum(n > 0 for n in online) / len(skus) > 0.9 and max(online) <= 44
    assert stock_level("P1001-MUS-M", "store-hki-kamppi") == 2
    # A shopper who checks the stores can always find some colour and size of a product.
    for product in CATALOGUE:
        assert any(stock_level(sku, s.id) for sku in product.skus for s in STORES), product.id


def test_invalid_arguments_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="bad_event_rate must be between 0 and 1"):
        ShopperSimulator(bad_event_rate=1.5)
    with pytest.raises(ValueError, match="choose one of webrooming"):
        ShopperSimulator().journey("teleporting")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_shoppers"):
        next(ShopperSimulator().stream(-1))
    with pytest.raises(ValueError, match="size must be at least 1"):
        next(batches([], size=0))


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_messages() -> None:
    first = list(ShopperSimulator(seed=42).stream(60))
    second = list(ShopperSimulator(seed=42).stream(60))
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first[0]["messageId"] == second[0]["messageId"]
    other = list(ShopperSimulator(seed=43).stream(60))
    assert {m["messageId"] for m in other}.isdisjoint({m["messageId"] for m in first})


def test_start_sets_the_clock_and_a_naive_start_is_utc() -> None:
    naive = ShopperSimulator(start=datetime(2025, 3, 1, 12, 0)).journey()
    aware = ShopperSimulator(start=datetime(2025, 3, 1, 12, 0, tzinfo=UTC)).journey()
    assert naive == aware
    assert naive[0]["timestamp"] == "2025-03-01T12:00:00.000Z"
    default = ShopperSimulator().journey()
    assert default[0]["timestamp"] == "2026-11-02T07:00:00.000Z"


# --- every message is a Segment message -------------------------------------------------------


def test_every_message_is_a_well_formed_segment_message() -> None:
    messages = list(ShopperSimulator(seed=5, bad_event_rate=0).stream(150))
    assert len({m["messageId"] for m in messages}) == len(messages)
    assert set(CHANNELS) >= ALLOWED_CHANNELS
    for m in messages:
        assert m["type"] in MESSAGE_TYPES
        assert UUID4.match(m["messageId"]), m["messageId"]
        assert ISO_Z.match(m["timestamp"]), m["timestamp"]
        assert m.get("userId") or m.get("anonymousId"), m
        assert not is_bad(m)
        context = m["context"]
        assert context["channel"] in ALLOWED_CHANNELS
        if m["type"] == "track":
            assert isinstance(m["event"], str) and m["event"]
            assert isinstance(m["properties"], dict)
        if m["type"] == "identify":
            assert isinstance(m["traits"], dict)
        if context["channel"] == "web":
            assert set(context["page"]) >= {"path", "url", "title", "referrer"}
            assert context["page"]["url"].startswith("https://")
        if context["channel"] == "app":
            assert context["app"]["name"]
            assert context["device"]["id"]
            assert context["device"]["type"] in ("ios", "android")
        if context["channel"] == "store":
            assert m["properties"]["store_id"] in STORE_IDS
            assert context["device"]["shared"] is True
    assert {m["context"]["channel"] for m in messages} >= {"web", "app", "store"}
    assert {m["type"] for m in messages} >= {"page", "screen", "track", "identify"}


def test_till_messages_carry_the_store_and_a_customer_identifier() -> None:
    tills = [m for m in ShopperSimulator(seed=8).stream(200) if on_till(m) and not is_bad(m)]
    assert {m["event"] for m in tills} >= {"POS Order Completed", "Return Received"}
    for m in tills:
        props = m["properties"]
        assert props["store_id"] in STORE_IDS
        assert props["register_id"] == m["context"]["device"]["id"]
        assert props.get("loyalty_card") or props.get("receipt_email"), props
        assert m["context"]["device"] == {
            "id": m["context"]["device"]["id"],
            "type": "pos",
            "shared": True,
        }
        # The till is a shared device: its identifiers must never join two people.
        shared = {i.type for i in extract(m, CONFIG) if i.shared}
        assert shared == {"device_id", "anonymous_id"}
    sales = [m for m in tills if m["event"] == "POS Order Completed"]
    assert sales and all(m["properties"]["currency"] == "EUR" for m in sales)
    assert all(re.fullmatch(r"R-[A-Z-]+-\d+", m["properties"]["receipt_id"]) for m in sales)
    assert any("receipt_email" in m["properties"] for m in sales)


def test_products_reference_the_catalogue_and_amounts_add_up() -> None:
    checked = 0
    for m in ShopperSimulator(seed=9, bad_event_rate=0).stream(120):
        props = m.get("properties", {})
        items = [props] if "product_id" in props else []
        items += props.get("products", [])
        for item in items:
            product = PRODUCTS[item["product_id"]]
            if "sku" in item:
                assert item["sku"] in product.skus
                if "size" in item:
                    assert item["sku"] == product.sku(item["size"], item["variant"])
            if "price" in item:
                assert item["price"] == product.price
            checked += 1
        if "products" in props and "total" in props and "shipping" in props:
            cents = sum(round(i["price"] * 100) * i["quantity"] for i in props["products"])
            # Prices include 25.5 % VAT; subtotal and revenue leave VAT and shipping out.
            assert round(props["total"] * 100) == cents + round(props["shipping"] * 100)
            assert props["subtotal"] == props["revenue"] == pytest.approx(cents / 125.5, abs=0.01)
            net_shipping = props["shipping"] / 1.255
            assert props["subtotal"] + props["tax"] + net_shipping == pytest.approx(
                props["total"], abs=0.02
            )
    assert checked > 200


# --- time -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", JOURNEYS)
def test_timestamps_never_go_back_within_a_journey(kind: JourneyKind) -> None:
    for journey in journeys(kind, 25):
        times = [moment(m) for m in journey]
        assert times == sorted(times)


def test_stream_is_in_time_order_and_holds_exactly_the_journeys() -> None:
    streamed = list(ShopperSimulator(seed=4).stream(80))
    times = [moment(m) for m in streamed]
    assert times == sorted(times)
    simulator = ShopperSimulator(seed=4)
    one_by_one = [m for _ in range(80) for m in simulator.journey()]
    key = "messageId"
    assert sorted(m[key] for m in streamed) == sorted(m[key] for m in one_by_one)


def test_stream_without_a_count_does_not_end() -> None:
    endless = ShopperSimulator(seed=2).stream()
    assert len(list(itertools.islice(endless, 3000))) == 3000


def test_journeys_span_minutes_to_days() -> None:
    for journey in journeys("webrooming", 20):
        span = moment(journey[-1]) - moment(journey[0])
        assert span.total_seconds() >= 2 * 3600  # the store visit comes hours or days later
        assert span.days <= 4
    for journey in journeys("abandoner", 20):
        assert (moment(journey[-1]) - moment(journey[0])).total_seconds() < 3600


# --- shoppers and their identifiers -----------------------------------------------------------


def test_shoppers_are_finnish_personas_with_unique_identifiers() -> None:
    simulator = ShopperSimulator(seed=12)
    personas: list[Shopper] = []
    for _ in range(400):
        simulator.journey()
        assert simulator.last_shopper is not None
        personas.append(simulator.last_shopper)
    for shopper in personas:
        assert re.fullmatch(r"[a-z-]+\.[a-z]+\d*@esimerkki\.fi", shopper.email), shopper.email
        assert re.fullmatch(r"\+35840\d{7}", shopper.phone)
        assert normalise("phone", shopper.phone, CONFIG) == shopper.phone
        assert normalise("email", shopper.email, CONFIG) == shopper.email
        if shopper.loyalty_card is not None:
            assert re.fullmatch(r"LC\d{8}", shopper.loyalty_card)
        assert shopper.browser_id != shopper.app_anonymous_id
        assert shopper.home_store_id in STORE_IDS
        assert shopper.name == f"{shopper.first_name} {shopper.last_name}"
    for field in ("user_id", "email", "phone", "browser_id", "app_device_id"):
        values = [getattr(s, field) for s in personas]
        assert len(set(values)) == len(values), field
    cards = [s.loyalty_card for s in personas if s.loyalty_card is not None]
    assert len(set(cards)) == len(cards) and 0 < len(cards) < len(personas)


def test_webrooming_links_web_and_store_when_the_shopper_logs_in() -> None:
    logged_in = anonymous = 0
    for journey in journeys("webrooming", 40):
        web = [m for m in journey if m["context"]["channel"] == "web"]
        store = [m for m in journey if m["context"]["channel"] == "store"]
        assert web and store and len(web) + len(store) == len(journey)
        assert any(m.get("event") == "Store Stock Checked" for m in web)
        assert store[-1]["event"] == "POS Order Completed"
        stocked = [m for m in web if m.get("event") == "Store Stock Checked"][-1]["properties"]
        assert stocked["in_stock"] and stocked["store_id"] == store[-1]["properties"]["store_id"]
        bought = {p["sku"] for p in store[-1]["properties"]["products"]}
        assert stocked["sku"] in bought
        checks = [m for m in web if m.get("event") == "Store Stock Checked"]
        for check in checks:  # the stock the demo store was seeded with, nearest store first
            props = check["properties"]
            assert props["quantity_available"] == stock_level(props["sku"], props["store_id"])
            assert props["in_stock"] == (props["quantity_available"] > 0)
        assert not any(c["properties"]["in_stock"] for c in checks[:-1])
        stores = checked_stores(checks)
        assert [km(stores[0], s) for s in stores] == sorted(km(stores[0], s) for s in stores)
        if any(m["type"] == "identify" for m in web):
            logged_in += 1
            assert linking_ids(web) & linking_ids(store)
            assert people(journey) == 1
        else:
            anonymous += 1  # browsed without logging in: the store sale stays unlinked
            assert not linking_ids(web) & linking_ids(store)
            assert people(journey) == 2
    assert logged_in and anonymous


@pytest.mark.parametrize("kind", ["showrooming", "cross_device", "returner"])
def test_journeys_of_a_shopper_who_logs_in_resolve_to_one_person(kind: JourneyKind) -> None:
    for journey in journeys(kind, 25):
        assert people(journey) == 1


def test_showrooming_goes_from_the_store_to_the_app() -> None:
    for journey in journeys("showrooming", 20):
        visit, *rest = journey
        assert visit["event"] == "Store Visited"
        assert visit["context"]["channel"] == "store"
        card = visit["properties"]["loyalty_card"]
        assert {m["context"]["channel"] for m in rest} == {"app"}
        identify = next(m for m in rest if m["type"] == "identify")
        assert identify["userId"] and identify["traits"]["loyalty_card"] == card
        events = [m["event"] for m in rest if m["type"] == "track"]
        assert events[0] == "Product Viewed" and events[-1] == "Order Completed"
        assert {"Product Added", "Checkout Started"} <= set(events)


def test_cross_device_cart_follows_the_shopper_to_the_app() -> None:
    for journey in journeys("cross_device", 20):
        web = [m for m in journey if m["context"]["channel"] == "web"]
        app = [m for m in journey if m["context"]["channel"] == "app"]
        added = next(m for m in web if m.get("event") == "Product Added")
        assert "userId" not in added
        login = next(m for m in web if m["type"] == "identify")
        viewed = next(m for m in app if m.get("event") == "Cart Viewed")
        assert viewed["properties"]["cart_id"] == added["properties"]["cart_id"]
        assert viewed["userId"] == login["userId"]
        assert viewed["anonymousId"] != login["anonymousId"]
        assert app[-1]["event"] == "Order Completed"


def test_abandoner_leaves_at_checkout() -> None:
    left_email = 0
    for journey in journeys("abandoner", 30):
        events = [m.get("event") for m in journey]
        assert "Product Added" in events and "Checkout Started" in events
        assert "Order Completed" not in events
        assert all("userId" not in m for m in journey)
        left_email += any(m["type"] == "identify" for m in journey)
    assert 0 < left_email < 30


def test_returner_returns_part_of_an_online_order_at_a_store() -> None:
    for journey in journeys("returner", 25):
        order = next(m for m in journey if m.get("event") == "Order Completed")
        received = next(m for m in journey if m.get("event") == "Return Received")
        refunded = next(m for m in journey if m.get("event") == "Order Refunded")
        requested = next(m for m in journey if m.get("event") == "Return Requested")
        assert moment(order) < moment(requested) <= moment(received) <= moment(refunded)
        order_id = order["properties"]["order_id"]
        assert received["properties"]["order_id"] == refunded["properties"]["order_id"] == order_id
        assert received["properties"]["store_id"] in STORE_IDS
        returned = received["properties"]["products"]
        ordered = {p["sku"] for p in order["properties"]["products"]}
        assert {p["sku"] for p in returned} <= ordered
        assert refunded["properties"]["total"] == sum(p["price"] for p in returned)
        assert received["properties"]["total"] == refunded["properties"]["total"]
        assert received["properties"].get("loyalty_card") or received["properties"].get(
            "receipt_email"
        )


def test_hesitant_shopper_checks_a_nearby_store_and_buys_nothing() -> None:
    checked_logged_in = 0
    simulator = ShopperSimulator(seed=11, bad_event_rate=0)
    for _ in range(30):
        journey = simulator.journey("hesitant")
        assert simulator.last_shopper is not None
        tracks = [m for m in journey if m["type"] == "track"]
        events = [m["event"] for m in tracks]
        assert not {"Order Completed", "POS Order Completed", "Product Added"} & set(events)
        first_check = events.index("Store Stock Checked")
        views = [m for m in tracks[:first_check] if m["event"] == "Product Viewed"]
        assert 3 <= len(views) <= 5
        assert len({m["properties"]["sku"] for m in views}) == 1  # the same product each time
        checks = [m for m in tracks if m["event"] == "Store Stock Checked"]
        assert checks[0]["properties"]["store_id"] == simulator.last_shopper.home_store_id
        for check in checks:
            props = check["properties"]
            assert props["sku"] == views[0]["properties"]["sku"]
            # What the shopper is told is the stock the demo store was seeded with.
            assert props["quantity_available"] == stock_level(props["sku"], props["store_id"])
            assert props["in_stock"] == (props["quantity_available"] > 0)
        home = next(s for s in STORES if s.id == checks[0]["properties"]["store_id"])
        for check in checks:  # only stores near them, nearest first
            store = next(s for s in STORES if s.id == check["properties"]["store_id"])
            assert km(home, store) <= 50
        assert [km(home, s) for s in checked_stores(checks)] == sorted(
            km(home, s) for s in checked_stores(checks)
        )
        assert people(journey) == 1
        checked_logged_in += "userId" in checks[0]
    assert 0 < checked_logged_in < 30


# --- deliberately bad messages ----------------------------------------------------------------


def test_bad_messages_are_extras_and_the_good_ones_do_not_change() -> None:
    good = list(ShopperSimulator(seed=3, bad_event_rate=0).stream(60))
    mixed = list(ShopperSimulator(seed=3, bad_event_rate=0.3).stream(60))
    good_ids = {m["messageId"] for m in good}
    assert [m for m in mixed if m["messageId"] in good_ids] == good
    extra = [m for m in mixed if m["messageId"] not in good_ids]
    assert 0.2 * len(good) < len(extra) < 0.4 * len(good)
    assert all(is_bad(m) for m in extra)
    assert not any(is_bad(m) for m in good)
    prices = [m.get("properties", {}).get("price") for m in extra]
    texts = [price for price in prices if isinstance(price, str)]
    assert texts and all(re.fullmatch(r"\d+,\d\d", t) for t in texts)
    assert any("userId" not in m and "anonymousId" not in m for m in extra)


def test_default_rate_adds_a_few_bad_messages() -> None:
    messages = list(ShopperSimulator(seed=1).stream(300))
    bad = sum(is_bad(m) for m in messages)
    assert 0 < bad < 0.05 * len(messages)


# --- batches ----------------------------------------------------------------------------------


def test_batches_split_into_lists_of_size() -> None:
    messages = list(ShopperSimulator(seed=6).stream(10))
    groups = list(batches(messages, size=7))
    assert [len(g) for g in groups[:-1]] == [7] * (len(groups) - 1)
    assert 1 <= len(groups[-1]) <= 7
    assert [m for g in groups for m in g] == messages
    assert list(batches([])) == []
    endless = batches(ShopperSimulator().stream())
    assert len(next(endless)) == 50


def test_good_messages_pass_the_vocabulary_and_bad_prices_do_not() -> None:
    for m in ShopperSimulator(seed=10, bad_event_rate=0.2).stream(60):
        if m["type"] != "track":
            continue
        problems = check_properties(m["event"], m["properties"])
        if isinstance(m["properties"].get("price"), str):
            assert [p.field for p in problems] == ["properties.price"]
        else:
            assert problems == [], (m["event"], problems)


# --- through a real Polku ---------------------------------------------------------------------


def profile_of(polku: Polku, message_id: str) -> str | None:
    source = polku.runtime.keys.source(polku.write_key)
    assert source is not None
    with polku.runtime.engine.connect() as conn:
        return event_profile(conn, source.workspace_id, message_id)


def test_the_collection_api_accepts_the_good_and_dead_letters_the_bad(polku: Polku) -> None:
    messages = list(ShopperSimulator(seed=21, bad_event_rate=0.1).stream(25))
    good = {m["messageId"] for m in ShopperSimulator(seed=21, bad_event_rate=0).stream(25)}
    accepted = 0
    rejected: list[dict[str, Any]] = []
    for batch in batches(messages, size=40):
        response = polku.send("/v1/batch", {"batch": batch})
        assert response.status_code == 200, response.text
        accepted += response.json()["accepted"]
        rejected += response.json().get("rejected", [])
    assert accepted == len(good)
    assert {r["messageId"] for r in rejected} == {m["messageId"] for m in messages} - good
    assert {r["code"] for r in rejected} == {"missing_identity", "wrong_type"}
    listed = polku.client.get("/v1/debugger/rejections", headers=polku.admin).json()
    assert len(listed["rejections"]) == len(rejected)


def test_a_webrooming_shopper_who_logs_in_becomes_one_profile(polku: Polku) -> None:
    simulator = ShopperSimulator(seed=30, bad_event_rate=0)
    found: dict[bool, list[Message]] = {}
    while len(found) < 2:
        journey = simulator.journey("webrooming")
        found.setdefault(any(m["type"] == "identify" for m in journey), journey)
    response = polku.send("/v1/batch", {"batch": found[True] + found[False]})
    assert response.status_code == 200, response.text
    polku.settle()
    for logged_in, journey in found.items():
        browsing = profile_of(polku, journey[0]["messageId"])
        sale = profile_of(polku, journey[-1]["messageId"])
        assert journey[-1]["event"] == "POS Order Completed"
        assert browsing is not None and sale is not None
        assert (browsing == sale) is logged_in
