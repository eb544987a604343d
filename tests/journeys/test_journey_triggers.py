"""Every kind of trigger, on SQLite and PostgreSQL: an event with a `wait_for` that branches
on the event or its timeout, a buying signal, entering a segment (on change, and by time
passing), a birthday, back in stock at the person's store, a price drop on a viewed
product; re-entry rules; and a running enrollment staying on its version while the journey
is edited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from journey_world import World, open_world

from polku.commerce.catalog.actions import create_product, update_variant
from polku.commerce.catalog.validation import ProductInput, VariantInput
from polku.commerce.locations.actions import create_location
from polku.settings import Settings

WS = "default"
CONSENT = {"marketing": {"email": True}}
WEEK = {day: [["09:00", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from open_world(settings)


def _mail(step: str = "mail", subject: str = "Hello") -> dict[str, Any]:
    return {
        "id": step,
        "send": "email",
        "content": {"en": {"subject": subject, "text": "Hi {{ profile.first_name }}"}},
    }


def _customer(world: World, user: str, **traits: Any) -> None:
    world.customer(user, email_address=f"{user}@example.fi", consent=CONSENT, **traits)


def _subjects(world: World, user: str) -> list[str]:
    return [str(m["Subject"]) for m in world.mailbox.to(f"{user}@example.fi")]


def test_wait_for_goes_one_way_on_the_event_and_the_other_on_timeout(world: World) -> None:
    world.put_journey(
        {
            "key": "follow-up",
            "trigger": {"event": "Checkout Started"},
            "steps": [
                {
                    "id": "order?",
                    "wait_for": {"event": "Order Completed", "timeout": "1d"},
                    "on_event": "thanks",
                    "on_timeout": "nudge",
                },
                {**_mail("thanks", "Thanks"), "next": "end"},
                _mail("nudge", "Forgot something?"),
            ],
        }
    )
    for user in ("w1", "w2"):
        _customer(world, user)
        world.event({"userId": user, "event": "Checkout Started"})
    world.event({"userId": "w1", "event": "Order Completed", "properties": {"order_id": "o-1"}})
    world.run()
    world.clock.advance(hours=25)
    world.wait_for_mail(2)
    assert _subjects(world, "w1") == ["Thanks"]
    assert _subjects(world, "w2") == ["Forgot something?"]
    outcomes = [d["outcome"] for d in world.trace("follow-up", "w2")["decisions"]]
    assert "timed_out" in outcomes


def test_a_buying_signal_triggers(world: World) -> None:
    world.put_journey(
        {
            "key": "interested",
            "trigger": {"signal": {"kind": "repeat_product_views"}},
            "steps": [_mail("mail", "Still thinking about it?")],
        }
    )
    _customer(world, "b1")
    for _ in range(3):
        world.clock.advance(minutes=2)
        world.event(
            {
                "userId": "b1",
                "event": "Product Viewed",
                "properties": {"product_id": "P9", "name": "Sauna bucket"},
            }
        )
    world.wait_for_mail(1)
    assert _subjects(world, "b1") == ["Still thinking about it?"]
    [enrollment] = world.trace("interested", "b1")["enrollments"]
    assert enrollment["status"] == "finished"


def test_entering_a_segment_triggers_once(world: World) -> None:
    response = world.client.put(
        "/v1/segments/loyal",
        json={
            "name": "Loyal",
            "where": [{"field": "profile.order_count", "op": "gte", "value": 2}],
        },
        headers=world.admin,
    )
    assert response.status_code == 200, response.text
    world.put_journey(
        {
            "key": "loyal-thanks",
            "trigger": {"segment": "loyal"},
            "steps": [_mail("mail", "You are one of our best")],
        }
    )
    _customer(world, "g1")
    for n in range(3):
        world.event(
            {
                "userId": "g1",
                "event": "Order Completed",
                "properties": {"order_id": f"g1-{n}", "total": 10, "currency": "EUR"},
            }
        )
        world.run()
    world.wait_for_mail(1)
    world.run()
    assert _subjects(world, "g1") == ["You are one of our best"]
    members = world.client.get("/v1/segments/loyal/members", headers=world.admin).json()
    assert [m["profile_id"] for m in members["members"]] == [world.profile_of("g1")]
    bad = world.client.put(
        "/v1/segments/x",
        json={"where": [{"field": "event.event", "op": "eq", "value": 1}]},
        headers=world.admin,
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "where"


def test_time_passing_moves_people_into_a_segment(world: World) -> None:
    world.client.put(
        "/v1/segments/lapsing",
        json={"where": [{"field": "profile.days_since_last_order", "op": "gte", "value": 60}]},
        headers=world.admin,
    )
    world.put_journey(
        {
            "key": "come-back",
            "trigger": {"segment": "lapsing"},
            "steps": [_mail("mail", "We miss you")],
        }
    )
    _customer(world, "l1")
    world.event(
        {
            "userId": "l1",
            "event": "Order Completed",
            "properties": {"order_id": "l1-1", "total": 10, "currency": "EUR"},
        }
    )
    world.run()
    assert world.runtime.journeys is not None
    world.runtime.journeys.sweep()
    assert _subjects(world, "l1") == []
    world.clock.advance(days=61)
    world.runtime.journeys.sweep()
    world.wait_for_mail(1)
    assert _subjects(world, "l1") == ["We miss you"]


def test_a_birthday_enrolls_once_that_day(world: World) -> None:
    world.put_journey(
        {
            "key": "birthday",
            "trigger": {"date": {"trait": "birthday"}},
            "steps": [_mail("mail", "Happy birthday")],
        }
    )
    today = datetime.fromtimestamp(world.clock.now_ms() / 1000, ZoneInfo("Europe/Helsinki"))
    _customer(world, "d1", birthday=f"1990-{today.month:02d}-{today.day:02d}")
    _customer(world, "d2", birthday="1990-01-01" if today.month != 1 else "1990-06-01")
    world.settle()
    assert world.runtime.journeys is not None
    world.runtime.journeys.sweep()
    world.runtime.journeys.sweep()
    world.wait_for_mail(1)
    world.run()
    assert _subjects(world, "d1") == ["Happy birthday"]
    assert _subjects(world, "d2") == []


def _shop(world: World) -> None:
    rt = world.runtime
    create_product(
        rt,
        WS,
        ProductInput(
            product_id="takki",
            name="Kuoritakki",
            variants=(VariantInput(sku="takki-M", price_minor=20000, currency="EUR"),),
        ),
    )
    create_location(
        rt,
        WS,
        {
            "location_id": "tre",
            "name": "Tampere",
            "city": "Tampere",
            "postal_code": "33100",
            "click_and_collect": True,
        },
        hours=WEEK,
    )
    create_location(
        rt,
        WS,
        {"location_id": "hki", "name": "Helsinki", "city": "Helsinki", "postal_code": "00100"},
        hours=WEEK,
    )


def test_back_in_stock_at_the_persons_store(world: World) -> None:
    _shop(world)
    world.put_journey(
        {
            "key": "back",
            "trigger": {"stock": "back_in_stock"},
            "steps": [_mail("mail", "It is back at {{ store.name }}")],
        }
    )
    _customer(world, "k1", preferred_store="tre")
    _customer(world, "k2", preferred_store="hki")
    for user in ("k1", "k2"):
        world.event(
            {
                "userId": user,
                "event": "Product Viewed",
                "properties": {"product_id": "takki", "sku": "takki-M"},
            }
        )
    world.run()
    received = world.client.post(
        "/v1/stock/receipts",
        json={"location_id": "tre", "lines": [{"sku": "takki-M", "quantity": 3}]},
        headers=world.admin,
    )
    assert received.status_code == 201, received.text
    world.wait_for_mail(1)
    world.run()
    assert _subjects(world, "k1") == ["It is back at Tampere"]
    assert _subjects(world, "k2") == []


def test_a_price_drop_on_a_viewed_product(world: World) -> None:
    _shop(world)
    world.put_journey(
        {
            "key": "cheaper",
            "trigger": {"stock": "price_drop"},
            "steps": [_mail("mail", "Now cheaper")],
        }
    )
    _customer(world, "p1")
    _customer(world, "p2")
    world.event({"userId": "p1", "event": "Product Viewed", "properties": {"product_id": "takki"}})
    world.run()
    update_variant(world.runtime, WS, "takki-M", {"price": 150})
    world.wait_for_mail(1)
    world.run()
    assert _subjects(world, "p1") == ["Now cheaper"]
    assert _subjects(world, "p2") == []


def test_re_entry_rules_and_version_pinning(world: World) -> None:
    journey = {
        "key": "once",
        "trigger": {"event": "Ping"},
        "entry": {"re_entry": "never"},
        "steps": [{"id": "wait", "wait": "1h"}, _mail("mail", "Version one")],
    }
    world.put_journey(journey)
    _customer(world, "r1")
    world.event({"userId": "r1", "event": "Ping"})
    world.run()
    world.put_journey(
        {**journey, "steps": [{"id": "wait", "wait": "1h"}, _mail("mail", "Version two")]}
    )
    world.event({"userId": "r1", "event": "Ping"})
    world.clock.advance(hours=2)
    world.wait_for_mail(1)
    world.run()
    assert _subjects(world, "r1") == ["Version one"]
    trace = world.trace("once", "r1")
    assert [e["version"] for e in trace["enrollments"]] == [1]
    assert any(d["outcome"] == "already_enrolled" for d in trace["decisions"])
    world.event({"userId": "r1", "event": "Ping"})
    world.run()
    trace = world.trace("once", "r1")
    assert trace["decisions"][-1]["outcome"] == "re_entry_never"
    versions = world.client.get("/v1/journeys/once/versions", headers=world.admin).json()
    assert [v["version"] for v in versions["versions"]] == [2, 1]


def test_bad_requests_get_a_code_and_the_field(world: World) -> None:
    bad = world.client.put(
        "/v1/journeys/x",
        content=b"key: x\nsteps: [",
        headers={**world.admin, "Content-Type": "application/yaml"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_journey"
    bad = world.client.put(
        "/v1/journeys/x",
        json={"key": "x", "trigger": {"event": "A"}, "steps": [{"id": "s", "wait": "soon"}]},
        headers=world.admin,
    )
    body = bad.json()["error"]
    assert bad.status_code == 400 and body["field"] == "steps[0:s].wait" and body["hint"]
    assert world.client.get("/v1/journeys/nope", headers=world.admin).status_code == 404
    assert (
        world.client.get(
            "/v1/journeys/nope/trace", params={"profile": "p"}, headers=world.admin
        ).status_code
        == 404
    )
    assert world.client.post("/v1/journeys/library/nope", headers=world.admin).status_code == 404
    assert world.client.get("/v1/journeys").status_code == 401
    # As curl -d sends them: no JSON content type, still read as JSON.
    plain = {**world.admin, "Content-Type": "application/x-www-form-urlencoded"}
    saved = world.client.put(
        "/v1/journeys/settings", content=b'{"holdout_percent": 10}', headers=plain
    )
    assert saved.status_code == 200 and saved.json()["holdout_percent"] == 10
    bad = world.client.put(
        "/v1/journeys/settings", content=b'{"holdout_percent": "x"}', headers=plain
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "holdout_percent"
    bad = world.client.put("/v1/segments/s", content=b"[1]", headers=plain)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "body"
    made = world.client.put(
        "/v1/segments/s",
        content=b'{"where": [{"field": "profile.order_count", "op": "gte", "value": 1}]}',
        headers=plain,
    )
    assert made.status_code == 200, made.text
    installed = world.client.post("/v1/journeys/library/abandoned-cart", headers=world.admin)
    assert installed.status_code == 201, installed.text
    again = world.client.post("/v1/journeys/library/abandoned-cart", headers=world.admin)
    assert again.status_code == 200 and again.json()["created"] is False
