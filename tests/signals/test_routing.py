"""Routing (`polku.signals.routing.route`), on SQLite and PostgreSQL: one signal per dedupe
key whatever the redelivery or the race, the store chosen for a person (the stock check's
store, the preferred store, the nearest click-and-collect store) when it is open or opens
soon, agents otherwise, high-value online signals to agents, everything to automation, and
routing rules stored and validated through the API."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from routed_signals import (
    MONDAY_0830,
    MONDAY_NOON,
    SUNDAY_0300,
    candidate,
    ms,
    only,
    person,
    route_now,
    signals,
    store,
)
from sqlalchemy import func, select

from conftest import Polku
from polku.signals.tables import routes
from polku.signals.tables import signals as signal_rows


def queues(polku: Polku, **fields: Any) -> list[str]:
    c = candidate(**fields)
    route_now(polku, c)
    found: list[str] = only(polku, c)["queues"]
    return found


def count(polku: Polku, table: Any) -> int:
    with polku.runtime.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_redelivered_candidate_adds_nothing(polku: Polku) -> None:
    c = candidate()
    route_now(polku, c)
    route_now(polku, c)  # the pipeline applied the batch again after a crash
    route_now(polku, c, candidate(dedupe_key=c.dedupe_key, score=0.99))  # same key, later
    assert count(polku, signal_rows) == 1
    assert count(polku, routes) == len(only(polku, c)["queues"]) == 2
    assert only(polku, c)["score"] == 0.9


def test_workers_racing_on_one_key_make_one_signal(polku: Polku) -> None:
    keys = [candidate() for _ in range(5)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: route_now(polku, *keys), range(4)))
    assert count(polku, signal_rows) == 5
    assert sorted(s["dedupe_key"] for s in signals(polku)) == sorted(c.dedupe_key for c in keys)


def test_a_store_signal_goes_to_the_store_whose_stock_was_checked(polku: Polku) -> None:
    store(polku, "HKI-KAMPPI")
    store(polku, "ESP-ISO-OMENA")
    assert queues(polku, store_id="HKI-KAMPPI", channel="store") == [
        "automation",
        "store:HKI-KAMPPI",
    ]
    c = candidate(store_id="ESP-ISO-OMENA")
    route_now(polku, c)
    assert only(polku, c)["store_id"] == "ESP-ISO-OMENA"


def test_a_store_that_opens_soon_gets_it_and_a_closed_one_does_not(polku: Polku) -> None:
    store(polku, "HKI-KAMPPI")
    assert "store:HKI-KAMPPI" in queues(polku, store_id="HKI-KAMPPI", at_ms=ms(MONDAY_0830))
    closed = queues(polku, store_id="HKI-KAMPPI", at_ms=ms(SUNDAY_0300))
    assert closed == ["agents", "automation"]


def test_the_preferred_store_then_the_nearest_click_and_collect_store(polku: Polku) -> None:
    store(polku, "HKI-KAMPPI", click_and_collect=False)
    store(
        polku,
        "TRE-RATINA",
        postal_code="33100",
        city="Tampere",
        latitude=61.4928,
        longitude=23.7668,
    )
    stated = person(polku, "u-stated", preferred_store="HKI-KAMPPI", postal_code="33100")
    assert "store:HKI-KAMPPI" in queues(polku, profile_id=stated)
    # No store stated or inferred: the nearest with click and collect to the postal code;
    # Kamppi is nearer to Helsinki's 00180 but has no click and collect.
    near = person(polku, "u-near", postal_code="00180")
    assert "store:TRE-RATINA" in queues(polku, profile_id=near)
    nowhere = person(polku, "u-nowhere")
    assert queues(polku, profile_id=nowhere) == ["agents", "automation"]


def test_high_value_online_signals_go_to_agents(polku: Polku) -> None:
    config = {
        "rules": [
            {
                "name": "high_value_online",
                "to": "agents",
                "channels": ["web", "app"],
                "min_score": 0.7,
                "min_cart_value": 150,
            },
            {"name": "journeys", "to": "automation"},
        ]
    }
    response = polku.client.put("/v1/signals/routing", json=config, headers=polku.admin)
    assert response.status_code == 200, response.text
    assert queues(polku, details={"cart_value": 240.0}) == ["agents", "automation"]
    assert queues(polku, details={"cart_value": 40.0}) == ["automation"]
    assert queues(polku, details={"cart_value": 240.0}, channel="store") == ["automation"]
    assert queues(polku, details={"cart_value": 240.0}, score=0.5) == ["automation"]


def test_rules_match_on_kind_and_name_a_store_queue(polku: Polku) -> None:
    store(polku, "HKI-KAMPPI")
    config = {
        "rules": [
            {"name": "jackets", "to": "store:HKI-KAMPPI", "kinds": ["jacket_interest"]},
            {"name": "strong", "to": "agents", "min_score": 0.8},
        ],
        "conversion_days": 3,
    }
    response = polku.client.put("/v1/signals/routing", json=config, headers=polku.admin)
    assert response.status_code == 200, response.text
    assert queues(polku, kind="jacket_interest", score=0.5) == ["store:HKI-KAMPPI"]
    assert queues(polku, score=0.85) == ["agents"]
    assert queues(polku, score=0.5) == []  # no rule: stored, on no queue
    saved = polku.client.get("/v1/signals/routing", headers=polku.admin).json()
    assert saved["default"] is False and saved["conversion_days"] == 3
    assert [r["name"] for r in saved["rules"]] == ["jackets", "strong"]


def test_the_default_config_is_shown_until_one_is_saved(polku: Polku) -> None:
    body = polku.client.get("/v1/signals/routing", headers=polku.admin).json()
    assert body["default"] is True
    assert [r["to"] for r in body["rules"]] == ["store", "agents", "automation"]
    # What GET shows, PUT takes back.
    again = polku.client.put(
        "/v1/signals/routing", json=body | {"default": None}, headers=polku.admin
    )
    assert again.status_code == 400 and again.json()["error"]["field"] == "default"
    del body["default"]
    assert (
        polku.client.put("/v1/signals/routing", json=body, headers=polku.admin).status_code == 200
    )


def test_bad_routing_configs_are_refused_naming_the_field(polku: Polku) -> None:
    def refused(config: Any) -> dict[str, Any]:
        response = polku.client.put("/v1/signals/routing", json=config, headers=polku.admin)
        assert response.status_code == 400, response.text
        error: dict[str, Any] = response.json()["error"]
        assert error["message"]
        return error

    ok = {"name": "r", "to": "agents"}
    assert refused({"rules": []})["field"] == "rules"
    assert refused({"rules": [{**ok, "min_score": 1.5}]})["field"] == "rules[0].min_score"
    assert refused({"rules": [{**ok, "to": "nowhere"}]})["code"] == "invalid_queue"
    assert refused({"rules": [{**ok, "to": "store:"}]})["field"] == "rules[0].to"
    assert refused({"rules": [ok, {**ok, "colour": "red"}]})["field"] == "rules[1].colour"
    assert refused({"rules": [ok, ok]})["code"] == "duplicate_rule"
    assert refused({"rules": [{**ok, "kinds": "purchase_intent"}]})["field"] == "rules[0].kinds"
    assert refused({"rules": [ok], "hold_hours": -1})["field"] == "hold_hours"
    assert refused([1, 2])["code"] == "invalid_field"
    assert polku.client.get("/v1/signals/routing", headers=polku.admin).json()["default"]


def test_a_signal_keeps_its_event_and_the_event_time(polku: Polku) -> None:
    c = candidate(at_ms=ms(MONDAY_NOON), session_id="s-1", channel="app")
    route_now(polku, c)
    found = only(polku, c)
    assert found["at"] == "2026-11-02T10:00:00.000Z"  # the event's time, not the wall clock
    assert (found["event_id"], found["offset"]) == (c.event_id, c.offset)
    assert (found["session_id"], found["channel"]) == ("s-1", "app")
