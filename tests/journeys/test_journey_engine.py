"""Journeys end to end on SQLite and PostgreSQL: an event triggers, a wait is a durable timer
that the (hand-moved) clock releases, a condition branches, the guards decide, the email
reaches a real SMTP server, and the decision trace says why each person did or did not
get the message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from journey_world import World, open_world

from polku.settings import Settings


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from open_world(settings)


REMINDER: dict[str, Any] = {
    "key": "cart-reminder",
    "name": {"en": "Cart reminder", "fi": "Ostoskorimuistutus"},
    "trigger": {
        "event": "Product Added",
        "where": [{"field": "event.properties.price", "op": "gte", "value": 20}],
    },
    "exit": [{"event": "Order Completed"}],
    "goal": {"event": "Order Completed", "within": "7d"},
    "steps": [
        {"id": "wait", "wait": "1h"},
        {
            "id": "remind",
            "send": "email",
            "content": {
                "en": {
                    "subject": "You left {{ event.name }} in your cart",
                    "text": "Hi {{ profile.first_name }}, it is still there.",
                },
                "fi": {
                    "subject": "{{ event.name }} jäi ostoskoriisi",
                    "text": "Hei {{ profile.first_name }}, se odottaa sinua.",
                },
            },
        },
    ],
}

CONSENT = {"marketing": {"email": True}}


def _added(world: World, user: str, price: float = 49.9) -> None:
    world.event(
        {
            "userId": user,
            "event": "Product Added",
            "properties": {
                "product_id": "P1",
                "sku": "P1-M",
                "name": "Trail-takki",
                "price": price,
                "quantity": 1,
            },
        }
    )


def test_a_wait_then_an_email_in_the_customers_language(world: World) -> None:
    world.put_journey(REMINDER)
    world.customer(
        "u1", email_address="aino@example.fi", consent=CONSENT, locale="fi-FI", first_name="Aino"
    )
    _added(world, "u1")
    world.run()
    assert world.mailbox.messages == []  # it waits an hour first
    trace = world.trace("cart-reminder", "u1")
    assert trace["enrollments"][0]["waiting"] == "timer"
    world.clock.advance(minutes=61)
    [message] = world.wait_for_mail(1)
    assert message["Subject"] == "Trail-takki jäi ostoskoriisi"
    assert "Hei Aino" in message.get_body(("plain",)).get_content()
    assert message["List-Unsubscribe"]
    trace = world.trace("cart-reminder", "u1")
    assert trace["verdict"].startswith("Sent: email at step 'remind'")
    assert [s["status"] for s in trace["sends"]] == ["sent"]


def test_no_consent_no_message_and_the_trace_says_so(world: World) -> None:
    world.put_journey(REMINDER)
    world.customer("u2", email_address="ville@example.fi")
    _added(world, "u2")
    world.clock.advance(hours=2)
    world.run()
    world.run()
    assert world.mailbox.messages == []
    trace = world.trace("cart-reminder", "u2")
    assert "consent" in trace["verdict"]
    [send] = trace["sends"]
    assert send["status"] == "dropped" and send["reason"] == "consent"


def test_filters_exit_and_goal(world: World) -> None:
    world.put_journey(REMINDER)
    world.customer("u3", email_address="u3@example.fi", consent=CONSENT)
    _added(world, "u3", price=5)  # under the filter's 20
    world.run()
    assert world.trace("cart-reminder", "u3")["verdict"] == "Not enrolled: trigger filters failed."
    _added(world, "u3", price=30)
    world.run()
    world.event(
        {
            "userId": "u3",
            "event": "Order Completed",
            "properties": {"order_id": "o1", "total": 30.0, "currency": "EUR"},
        }
    )
    world.clock.advance(hours=2)
    world.run()
    assert world.mailbox.messages == []
    trace = world.trace("cart-reminder", "u3")
    [enrollment] = trace["enrollments"]
    assert enrollment["status"] == "exited" and enrollment["goal_at"] is not None
    stats = world.client.get("/v1/journeys/cart-reminder/stats", headers=world.admin).json()
    assert stats["arms"]["journey"]["goal_reached"] == 1
    assert stats["arms"]["journey"]["revenue_minor"] == 3000


def test_a_replay_of_the_log_sends_nothing_again(world: World) -> None:
    world.put_journey(REMINDER)
    world.customer("u4", email_address="u4@example.fi", consent=CONSENT)
    _added(world, "u4")
    world.clock.advance(minutes=61)
    world.wait_for_mail(1)
    before = world.trace("cart-reminder", "u4")["enrollments"]
    assert world.runtime.pipeline is not None
    world.runtime.pipeline.replay()
    world.clock.advance(hours=2)
    world.run()
    world.run()
    assert len(world.mailbox.messages) == 1
    assert world.trace("cart-reminder", "u4")["enrollments"] == before
