"""Features from events: the in-memory tracker over Segment-shaped messages."""

from __future__ import annotations

from datetime import date
from typing import Any

from polku.signals.candidates import UCI_COLUMNS
from polku.signals.features import (
    PersonState,
    SessionState,
    Snapshot,
    Tracker,
    page_type,
    special_day,
)


def message(kind: str, at: str, anon: str = "a1", event: str | None = None, **props: Any) -> Any:
    body: dict[str, Any] = {
        "type": kind,
        "anonymousId": anon,
        "timestamp": at,
        "context": {"channel": props.pop("channel", "web")},
        "properties": props,
    }
    if event is not None:
        body["event"] = event
    return body


def buying_session(anon: str = "a1", day: str = "2026-12-12") -> list[Any]:
    """Home, a product, its size guide, add to cart, cart, checkout, order (a Saturday)."""
    return [
        message("page", f"{day}T08:00:00Z", anon, path="/"),
        message(
            "track",
            f"{day}T08:00:30Z",
            anon,
            "Product Viewed",
            product_id="p1",
            name="Trail jacket",
        ),
        message("track", f"{day}T08:01:30Z", anon, "Size Guide Viewed", product_id="p1"),
        message(
            "track",
            f"{day}T08:02:00Z",
            anon,
            "Product Added",
            product_id="p1",
            price=120,
            quantity=1,
        ),
        message("track", f"{day}T08:02:10Z", anon, "Cart Viewed"),
        message("track", f"{day}T08:03:10Z", anon, "Checkout Started", revenue=120),
        message("track", f"{day}T08:05:10Z", anon, "Order Completed", order_id="o1", revenue=120),
    ]


def observe_all(tracker: Tracker, messages: list[Any]) -> Snapshot:
    snapshot = None
    for m in messages:
        snapshot = tracker.observe(m)
    assert snapshot is not None
    return snapshot


def test_a_buying_session_counts_its_views_durations_and_research() -> None:
    tracker = Tracker()
    snapshots = [tracker.observe(m) for m in buying_session()]
    added, last = snapshots[3], snapshots[-1]
    assert added.cart_value == 120.0 and added.cart_adds == 1 and added.cart_products == ("p1",)
    assert snapshots[2].size_guide_views == 1
    assert snapshots[2].product_views_7d == 1  # the size guide is no new view of the product
    row = last.uci_row()
    assert list(row) == list(UCI_COLUMNS)
    assert row == {
        "Administrative": 3,  # cart, checkout, order confirmation
        "Administrative_Duration": 180.0,  # 60 s in the cart + 120 s in checkout
        "Informational": 1,  # the home page
        "Informational_Duration": 30.0,
        "ProductRelated": 2,  # the product and its size guide
        "ProductRelated_Duration": 100.0,  # 60 + 30 (until the add) + 10 (until the cart)
        "BounceRates": 0.0,
        "ExitRates": 0.0,
        "PageValues": 0.0,  # nobody bought after these pages before
        "SpecialDay": 0.2,  # 12 days before Christmas Eve
        "Month": "Dec",
        "OperatingSystems": 7,
        "Browser": 12,
        "Region": 9,
        "TrafficType": 1,
        "VisitorType": "New_Visitor",
        "Weekend": True,
    }
    assert last.checkout_started and last.session_purchases == 1
    assert last.cart_value == 0.0  # the order emptied the cart
    assert last.days_since_last_purchase is None  # no purchase before this one


def test_page_values_bounces_and_exits_follow_google_analytics() -> None:
    tracker = Tracker()
    observe_all(tracker, buying_session())
    # a second visitor looks at the product the first one bought after viewing, and leaves
    second = tracker.observe(
        message("track", "2026-12-12T09:00:00Z", "a2", "Product Viewed", product_id="p1")
    )
    assert second.page_value == 120.0  # 120 € of revenue / 1 unique view
    assert second.bounce_rate == 0.0 and second.exit_rate == 0.0
    third = tracker.observe(
        message("track", "2026-12-12T09:10:00Z", "a3", "Product Viewed", product_id="p1")
    )
    # the second visitor's one-view session is a bounce and an exit on the product page
    assert third.bounce_rate == 1.0  # 1 bounce / 1 entrance (the first visitor entered home)
    assert third.exit_rate == 1 / 3  # 1 exit / 3 views (two by the first visitor)
    assert third.page_value == 60.0  # 120 € / 2 unique views
    stats = tracker.pages.pages["path:/"]
    assert (stats.entrances, stats.bounces, stats.exits, stats.value) == (1, 0, 0, 120.0)


def test_thirty_minutes_apart_is_a_new_session_of_a_returning_visitor() -> None:
    tracker = Tracker()
    first = tracker.observe(message("page", "2026-06-10T10:00:00Z", path="/"))
    same = tracker.observe(message("page", "2026-06-10T10:29:00Z", path="/ohje"))
    later = tracker.observe(message("page", "2026-06-10T11:00:00Z", path="/"))
    assert first.session_id == same.session_id != later.session_id
    assert same.page_seconds[1] == 29 * 60
    assert later.page_counts == (0, 1, 0) and later.page_seconds == (0.0, 0.0, 0.0)
    assert later.uci_row()["VisitorType"] == "Returning_Visitor"
    assert later.uci_row()["Month"] == "June" and later.uci_row()["Weekend"] is False


def test_repeat_views_within_24_hours_and_7_days() -> None:
    tracker = Tracker()
    times = ["2026-03-01T10:00:00Z", "2026-03-05T10:00:00Z", "2026-03-05T18:00:00Z"]
    views = [
        tracker.observe(message("track", at, "a1", "Product Viewed", product_id="p9"))
        for at in times
    ]
    assert [(v.product_views_24h, v.product_views_7d) for v in views] == [(1, 1), (1, 2), (2, 3)]
    late = tracker.observe(
        message("track", "2026-03-09T10:00:00Z", "a1", "Product Viewed", product_id="p9")
    )
    assert (late.product_views_24h, late.product_views_7d) == (1, 3)  # March 1 fell out


def test_a_page_and_its_product_viewed_event_are_one_view() -> None:
    tracker = Tracker()
    tracker.observe(message("page", "2026-03-01T10:00:00Z", path="/p/p9", category="product"))
    both = tracker.observe(
        message("track", "2026-03-01T10:00:01Z", "a1", "Product Viewed", product_id="p9")
    )
    assert both.page_counts == (0, 0, 1) and both.views == 1


def test_research_online_then_the_store_is_a_channel_hop() -> None:
    tracker = Tracker()
    check = tracker.observe(
        {
            "type": "track",
            "event": "Store Stock Checked",
            "userId": "u1",
            "anonymousId": "d1",
            "timestamp": "2026-03-02T10:00:00Z",
            "context": {"channel": "web"},
            "properties": {"store_id": "HEL-01", "product_id": "p9"},
        }
    )
    assert check.stock_checks == 1 and check.stock_checked_stores == ("HEL-01",)
    visit = tracker.observe(
        {
            "type": "track",
            "event": "Store Visited",
            "userId": "u1",
            "timestamp": "2026-03-03T15:00:00Z",
            "context": {"channel": "store"},
            "properties": {"store_id": "HEL-01"},
        }
    )
    assert visit.hop == "online_to_store" and visit.hops_online_to_store == 1
    back = tracker.observe(
        message("track", "2026-03-04T09:00:00Z", "d1", "Product Viewed", product_id="p9")
    )
    assert back.hop == "store_to_online" and back.hops_store_to_online == 1
    assert back.returning


def test_days_since_the_last_purchase() -> None:
    tracker = Tracker()
    observe_all(tracker, buying_session(day="2026-11-01"))
    later = tracker.observe(message("page", "2026-11-11T08:05:10Z", path="/"))
    assert later.days_since_last_purchase == 10.0


def test_states_survive_their_bytes() -> None:
    tracker = Tracker()
    observe_all(tracker, buying_session())
    for key, person in tracker.people.items():
        assert PersonState.from_bytes(person.to_bytes()) == person, key
    for key, session in tracker.sessions.items():
        assert SessionState.from_bytes(session.to_bytes()) == session, key


def test_page_types_and_special_days() -> None:
    assert page_type({"type": "page", "properties": {"path": "/ostoskori"}}) == "Administrative"
    assert page_type({"type": "page", "properties": {"path": "/haku?q=x"}}) == "ProductRelated"
    assert page_type({"type": "page", "name": "Stores"}) == "Informational"
    assert page_type({"type": "track", "event": "Product Added"}) is None
    # Valentine's: 0 until 1 February, highest on the 8th, 0 again from the 13th
    values = [special_day(date(2026, 2, d)) for d in range(1, 15)]
    assert values == [0.0, 0.2, 0.2, 0.4, 0.6, 0.8, 0.8, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.0]
    assert special_day(date(2026, 11, 21)) == 1.0  # Black Friday 27 November, 6 days ahead


def test_an_identify_alone_is_no_visit() -> None:
    tracker = Tracker()
    imported = tracker.observe(
        {"type": "identify", "userId": "u5", "timestamp": "2026-03-01T08:00:00Z", "traits": {}}
    )
    assert imported.sessions == 0 and tracker.sessions == {}
    visit = tracker.observe(
        {
            "type": "page",
            "userId": "u5",
            "timestamp": "2026-03-05T08:00:00Z",
            "context": {"channel": "web"},
            "properties": {"path": "/"},
        }
    )
    assert visit.sessions == 1 and visit.uci_row()["VisitorType"] == "New_Visitor"


def test_signing_in_joins_the_devices_history_to_the_persons() -> None:
    tracker = Tracker()
    tracker.observe(
        message("track", "2026-03-01T08:00:00Z", "d1", "Product Viewed", product_id="p1")
    )
    tracker.observe(
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": "u1",
            "timestamp": "2026-03-02T08:00:00Z",
            "context": {"channel": "app"},
            "properties": {"product_id": "p1"},
        }
    )
    both = tracker.observe(
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": "u1",
            "anonymousId": "d1",
            "timestamp": "2026-03-03T08:00:00Z",
            "context": {"channel": "web"},
            "properties": {"product_id": "p1"},
        }
    )
    assert both.product_views_7d == 3 and both.sessions == 3
