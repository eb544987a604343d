"""The guards on every message, on SQLite and PostgreSQL, with a real SMTP server and a real
HTTP server as the SMS gateway: quiet hours hold an SMS until morning (and a consent
withdrawn meanwhile still stops it), frequency caps drop with the reason, a claim by a
salesperson suppresses marketing, holdout and control groups get nothing but count for
uplift, and transactional mail needs no marketing consent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from journey_world import World, open_world
from sqlalchemy import text

from polku.journeys.config import bucket
from polku.settings import Settings
from polku.signals.candidates import Candidate
from polku.signals.routing import route
from polku.storage.engine import writing

HELSINKI = ZoneInfo("Europe/Helsinki")


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from open_world(settings)


def _journey(key: str, *steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": key, "trigger": {"event": "Ping"}, "steps": list(steps), **extra}


SMS = {
    "id": "text",
    "send": "sms",
    "content": {
        "en": {"sms": "Hello {{ profile.first_name }}"},
        "fi": {"sms": "Hei {{ profile.first_name }}"},
    },
}
EMAIL = {"id": "mail", "send": "email", "content": {"en": {"subject": "News", "text": "Hi"}}}


def _ping(world: World, user: str) -> None:
    world.event({"userId": user, "event": "Ping"})


def _at(world: World, hour: int, minute: int = 0, day_offset: int = 0) -> None:
    now = datetime.fromtimestamp(world.clock.now_ms() / 1000, HELSINKI)
    moment = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    world.clock.set(int(moment.timestamp() * 1000) + day_offset * 86_400_000)


def test_quiet_hours_hold_an_sms_until_morning(world: World) -> None:
    assert world.gateway is not None
    world.put_journey(_journey("nudge", SMS))
    world.customer(
        "q1",
        phone="+358401234567",
        first_name="Aino",
        locale="fi",
        consent={"marketing": {"sms": True}},
    )
    _at(world, 22, 30)
    _ping(world, "q1")
    world.run()
    assert world.gateway.received == []
    trace = world.trace("nudge", "q1")
    assert [s["status"] for s in trace["sends"]] == ["held"]
    assert trace["sends"][0]["reason"] == "quiet_hours"
    _at(world, 7, 59, day_offset=1)
    world.run()
    assert world.gateway.received == []
    _at(world, 8, 1, day_offset=1)
    world.run()
    [sms] = world.gateway.received
    assert sms["to"] == "+358401234567" and sms["text"].startswith("Hei Aino")
    assert sms["_idempotency_key"] == world.trace("nudge", "q1")["sends"][0]["send_id"]
    outcomes = [d["outcome"] for d in world.trace("nudge", "q1")["decisions"]]
    assert "held" in outcomes and outcomes[-1] == "sent"


def test_consent_withdrawn_while_held_stops_the_message(world: World) -> None:
    assert world.gateway is not None
    world.put_journey(_journey("nudge", SMS))
    world.customer("q2", phone="+358401234568", consent={"marketing": {"sms": True}})
    _at(world, 23, 0)
    _ping(world, "q2")
    world.run()
    world.customer("q2", consent={"marketing": {"sms": False}})
    _at(world, 9, 0, day_offset=1)
    world.run()
    assert world.gateway.received == []
    [send] = world.trace("nudge", "q2")["sends"]
    assert send["status"] == "dropped" and send["reason"] == "consent"


def test_frequency_cap_drops_the_second_marketing_email(world: World) -> None:
    second = {**EMAIL, "id": "again"}
    world.put_journey(_journey("twice", EMAIL, second))
    world.customer("c1", email_address="c1@example.fi", consent={"marketing": {"email": True}})
    _ping(world, "c1")
    world.wait_for_mail(1)
    sends = {s["step_id"]: s for s in world.trace("twice", "c1")["sends"]}
    assert sends["mail"]["status"] == "sent"
    assert sends["again"]["status"] == "dropped" and sends["again"]["reason"] == "frequency_cap"
    assert len(world.mailbox.messages) == 1


def test_a_claimed_customer_gets_no_marketing(world: World) -> None:
    world.put_journey(_journey("promo", EMAIL))
    world.customer("s1", email_address="s1@example.fi", consent={"marketing": {"email": True}})
    profile = world.profile_of("s1")
    with writing(world.runtime.engine) as conn:
        route(
            conn,
            [
                Candidate(
                    _ws(world),
                    profile,
                    "test",
                    0.9,
                    "evt-1",
                    1,
                    world.clock.now_ms() - 1000,
                    "claim-test",
                )
            ],
            to="agents",
        )
    signal = world.client.get(
        "/v1/signals", params={"queue": "agents"}, headers=world.admin
    ).json()["signals"][0]
    claimed = world.client.post(
        f"/v1/signals/{signal['id']}/claim", json={"staff_id": "aino"}, headers=world.admin
    )
    assert claimed.status_code == 200, claimed.text
    _ping(world, "s1")
    world.run()
    assert world.mailbox.messages == []
    [send] = world.trace("promo", "s1")["sends"]
    assert send["reason"] == "suppressed"


def test_holdout_and_control_get_nothing_but_count(world: World) -> None:
    world.client.put("/v1/journeys/settings", json={"holdout_percent": 30}, headers=world.admin)
    world.put_journey(
        _journey("promo", EMAIL, entry={"control": 30}, goal={"event": "Order Completed"})
    )
    users = [f"h{i}" for i in range(12)]
    for user in users:
        world.customer(
            user, email_address=f"{user}@example.fi", consent={"marketing": {"email": True}}
        )
        _ping(world, user)
    world.run()
    world.run()
    ws = _ws(world)
    expected_arms = {}
    for user in users:
        profile = world.profile_of(user)
        if bucket("holdout", ws, profile) < 30:
            expected_arms[user] = "holdout"
        elif bucket("control", "promo", profile) < 30:
            expected_arms[user] = "control"
        else:
            expected_arms[user] = "journey"
    for user, arm in expected_arms.items():
        trace = world.trace("promo", user)
        assert trace["enrollments"][0]["arm"] == arm
        [send] = trace["sends"]
        assert send["status"] == ("sent" if arm == "journey" else "dropped"), (user, send)
        if arm != "journey":
            assert send["reason"] == arm
    stats = world.client.get("/v1/journeys/promo/stats", headers=world.admin).json()
    assert sum(a["enrolled"] for a in stats["arms"].values()) == len(users)


def test_transactional_mail_needs_no_marketing_consent(world: World) -> None:
    mail = {**EMAIL, "purpose": "transactional"}
    world.put_journey(_journey("receipt", mail))
    world.customer("t1", email_address="t1@example.fi")
    _ping(world, "t1")
    [message] = world.wait_for_mail(1)
    assert message["List-Unsubscribe"] is None


def _ws(world: World) -> str:
    with world.runtime.engine.connect() as conn:
        return str(conn.execute(text("SELECT workspace_id FROM workspaces")).scalar())


def test_delivery_reports_and_clicks_reach_the_trace_and_the_numbers(world: World) -> None:
    assert world.gateway is not None
    sms = {**SMS, "next": "mail"}
    mail = {
        "id": "mail",
        "send": "email",
        "purpose": "transactional",
        "content": {
            "en": {"subject": "Look", "text": "See {{ track('https://shop.example/p/1') }}"}
        },
    }
    world.put_journey(_journey("nudge", sms, mail))
    world.customer(
        "f1",
        phone="+358401234569",
        email_address="f1@example.fi",
        consent={"marketing": {"sms": True}},
    )
    _ping(world, "f1")
    [message] = world.wait_for_mail(1)
    [text] = world.gateway.received
    report = world.client.post(
        "/v1/channels/sms/reports",
        json={"reference": text["reference"], "status": "delivered", "id": "gw-1"},
        headers={"Authorization": "Bearer gateway-token"},
    )
    assert report.status_code in (200, 202), report.text
    link = next(w for w in message.get_body(("plain",)).get_content().split() if "/l/" in w)
    clicked = world.client.get(link[link.index("/l/") :], follow_redirects=False)
    assert clicked.status_code == 302 and clicked.headers["location"] == "https://shop.example/p/1"
    world.run()
    feedback = [
        (d["step"], d["outcome"])
        for d in world.trace("nudge", "f1")["decisions"]
        if d["kind"] == "feedback"
    ]
    assert ("text", "delivered") in feedback and ("mail", "clicked") in feedback
    stats = world.client.get("/v1/journeys/nudge/stats", headers=world.admin).json()
    steps = {s["step"]: s for s in stats["steps"]}
    assert steps["text"]["feedback"] == {"delivered": 1}
    assert steps["mail"]["feedback"] == {"clicked": 1}


def test_a_gateway_in_trouble_gets_the_message_again_later(world: World) -> None:
    assert world.gateway is not None
    world.gateway.refuse = 1
    world.put_journey(_journey("nudge", SMS))
    world.customer("g1", phone="+358401234570", consent={"marketing": {"sms": True}})
    _ping(world, "g1")
    world.run()
    assert world.gateway.received == []
    [send] = world.trace("nudge", "g1")["sends"]
    assert send["status"] == "queued" and send["attempts"] == 1 and "503" in send["error"]
    world.clock.advance(minutes=2)  # the first retry is due after a minute
    world.run()
    [sms] = world.gateway.received
    [send] = world.trace("nudge", "g1")["sends"]
    assert send["status"] == "sent" and send["attempts"] == 2
    assert sms["_idempotency_key"] == send["send_id"]
    outcomes = [
        d["outcome"] for d in world.trace("nudge", "g1")["decisions"] if d["kind"] == "delivery"
    ]
    assert outcomes == ["retrying", "sent"]
