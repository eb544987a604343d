"""Every action a journey step can take, on SQLite and PostgreSQL: a signed webhook to a real
HTTP server, an alert on the agents' queue, a trait set on the profile, a coupon and a gift
card whose codes the next email shows, and a step's own template values."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from journey_world import World, open_world

from polku.settings import Settings
from polku.signals.webhooks import verify

CONSENT = {"marketing": {"email": True}}


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from open_world(settings)


def _journey(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"key": "acts", "trigger": {"event": "Ping"}, "steps": list(steps)}


def _ping(world: World, user: str) -> None:
    world.customer(user, email_address=f"{user}@example.fi", consent=CONSENT, first_name="Aino")
    world.event({"userId": user, "event": "Ping", "properties": {"note": "hello"}})


def test_a_signed_webhook_reaches_the_crm(world: World) -> None:
    assert world.gateway is not None
    url = world.gateway.url.replace("/sms", "/crm")
    world.put_journey(
        _journey({"id": "crm", "send": "webhook", "url": url, "secret": "s3cret-s3cret-s3cret"})
    )
    _ping(world, "a1")
    deadline = time.monotonic() + 10
    while not world.gateway.received and time.monotonic() < deadline:
        world.run()
    [hook] = world.gateway.received
    assert hook["_path"] == "/crm" and hook["journey"] == "acts" and hook["step"] == "crm"
    assert hook["event"]["note"] == "hello"
    assert verify("s3cret-s3cret-s3cret", hook["_signature"], hook["_raw"], now=time.time())
    assert hook["_idempotency_key"] == hook["send_id"]


def test_an_alert_lands_on_the_agents_queue(world: World) -> None:
    world.put_journey(
        _journey({"id": "call", "send": "alert", "queue": "agent", "note": "Call about the cart"})
    )
    _ping(world, "a2")
    world.run()
    found = world.client.get("/v1/signals", params={"queue": "agents"}, headers=world.admin)
    [signal] = found.json()["signals"]
    assert signal["kind"] == "journey:acts"
    assert signal["profile_id"] == world.profile_of("a2")
    assert "Call about the cart" in signal["reasons"][0]["en"]


def test_a_trait_is_set_on_the_profile(world: World) -> None:
    world.put_journey(_journey({"id": "tag", "send": "trait", "traits": {"journey_tag": "vip"}}))
    _ping(world, "a3")
    world.run()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        world.run()  # the identify goes through the outbox, then the pipeline
        profile = world.client.get(
            f"/v1/profiles/{world.profile_of('a3')}", headers=world.admin
        ).json()
        if profile["traits"].get("journey_tag") == "vip":
            break
        time.sleep(0.1)
    assert profile["traits"]["journey_tag"] == "vip"


def test_a_coupon_and_a_gift_card_show_in_the_next_email(world: World) -> None:
    world.put_journey(
        _journey(
            {"id": "coupon", "send": "coupon", "percent": 15, "valid_days": 14},
            {"id": "card", "send": "giftcard", "amount": 10, "currency": "EUR"},
            {
                "id": "mail",
                "send": "email",
                "values": {"survey_url": "https://survey.example/s"},
                "content": {
                    "en": {
                        "subject": "A gift",
                        "text": "Code {{ coupon.code }} card {{ giftcard.code }} "
                        "survey {{ survey_url }}",
                    }
                },
            },
        )
    )
    _ping(world, "a4")
    [message] = world.wait_for_mail(1)
    text = message.get_body(("plain",)).get_content()
    coupon = re.search(r"Code (\S+)", text)
    card = re.search(r"card (\S+)", text)
    assert coupon and re.fullmatch(r"[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", coupon.group(1))
    assert card and len(card.group(1).replace("-", "")) >= 12
    assert "survey https://survey.example/s" in text
    cards = world.client.get("/v1/giftcards", params={"userId": "a4"}, headers=world.admin)
    [issued] = cards.json()["giftcards"]
    assert card.group(1).replace("-", "")[-4:] == issued["code"].replace("-", "")[-4:]
    assert issued["amount"] == "10.00" and issued["reason"] == "goodwill"
