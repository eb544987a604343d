"""The signals API over HTTP, on SQLite and PostgreSQL: a queue's list and its filters, one
signal with its reasons in English and Finnish, unknown queues (404 with a hint), bad
filters (400 naming the field), the admin token, and the live feed of a queue receiving a
signal the moment it is routed."""

from __future__ import annotations

import time

import pytest
from routed_signals import (
    MONDAY_NOON,
    SUNDAY_0300,
    Watcher,
    candidate,
    ms,
    only,
    route_now,
    send,
    signals,
    store,
)

from conftest import Polku
from polku.signals.routing import route
from polku.storage.engine import make_engine, writing


def test_queues_list_and_filter_signals(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    at_store = candidate(store_id="hki-kamppi", channel="store")
    online = candidate(kind="cart_abandoned", at_ms=ms(SUNDAY_0300))
    route_now(polku, at_store, online)
    store_id = only(polku, at_store)["id"]

    assert [s["id"] for s in signals(polku, queue="store:hki-kamppi")] == [store_id]
    assert [s["dedupe_key"] for s in signals(polku, queue="agents")] == [online.dedupe_key]
    assert len(signals(polku, queue="automation")) == 2
    assert [s["kind"] for s in signals(polku, kind="cart_abandoned")] == ["cart_abandoned"]
    assert [s["id"] for s in signals(polku, store="hki-kamppi")] == [store_id]
    assert [s["id"] for s in signals(polku, since=MONDAY_NOON)] == [store_id]
    assert len(signals(polku, status="open")) == 2
    claim = polku.client.post(
        f"/v1/signals/{store_id}/claim", json={"staff_id": "aino"}, headers=polku.admin
    )
    assert claim.status_code == 200
    assert [s["id"] for s in signals(polku, status="claimed")] == [store_id]
    assert signals(polku, queue="store:hki-kamppi", status="open") == []


def test_one_signal_shows_who_what_where_and_why(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    c = candidate(store_id="hki-kamppi", details={"cart_value": 129.9, "PageValues": 12.5})
    route_now(polku, c)
    signal_id = only(polku, c)["id"]
    response = polku.client.get(f"/v1/signals/{signal_id}", headers=polku.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["profile_id"] == c.profile_id and body["score"] == 0.9
    assert body["products"] == ["TUULI-JACKET"] and body["store_id"] == "hki-kamppi"
    assert body["queues"] == ["automation", "store:hki-kamppi"]
    [reason] = body["reasons"]
    assert reason["code"] == "repeat_product_views" and reason["weight"] == 0.6
    assert reason["en"].startswith("Viewed") and reason["fi"].startswith("Katsoi")
    assert body["details"]["PageValues"] == 12.5
    assert body["event_id"] == c.event_id and body["offset"] == c.offset
    assert body["at"] == "2026-11-02T10:00:00.000Z" and body["status"] == "open"
    missing = polku.client.get("/v1/signals/424242", headers=polku.admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_signal"


def test_an_unknown_queue_is_404_with_a_hint(polku: Polku) -> None:
    error = signals(polku, 404, queue="store:hki-nowhere")
    assert error["code"] == "unknown_queue" and error["field"] == "queue"
    assert "GET /v1/locations" in error["hint"]
    error = signals(polku, 400, queue="cashiers")
    assert error["code"] == "invalid_queue" and "store:<location_id>" in error["hint"]
    live = polku.client.get(
        "/v1/signals/live", params={"queue": "store:hki-nowhere"}, headers=polku.admin
    )
    assert live.status_code == 404 and live.json()["error"]["code"] == "unknown_queue"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"since": "last week"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"queue": "x" * 200}, "queue"),
    ],
)
def test_bad_filters_are_400_naming_the_field(
    polku: Polku, params: dict[str, str], field: str
) -> None:
    assert signals(polku, 400, **params)["field"] == field


def test_every_route_needs_an_admin_token(polku: Polku) -> None:
    for method, path in [
        ("GET", "/v1/signals"),
        ("GET", "/v1/signals/live?queue=agents"),
        ("GET", "/v1/signals/routing"),
        ("GET", "/v1/signals/conversions"),
        ("GET", "/v1/signals/webhooks"),
        ("GET", "/v1/signals/deliveries"),
        ("POST", "/v1/signals/1/claim"),
        ("GET", "/v1/profiles/p1/suppression"),
    ]:
        response = polku.client.request(method, path, json={"staff_id": "a"})
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["code"] == "unauthorized"


def test_the_live_feed_of_a_queue_receives_a_newly_routed_signal(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    store(polku, "esp-iso-omena")
    route_now(polku, candidate(store_id="hki-kamppi"))  # before the watch: not sent
    watcher = Watcher(polku.client, polku.admin, queue="store:hki-kamppi", limit=2, seconds=20)
    assert watcher.ready.wait(20) and watcher.status == 200
    elsewhere = candidate(store_id="esp-iso-omena")
    first = candidate(store_id="hki-kamppi")
    started = time.monotonic()
    route_now(polku, elsewhere, first)
    second = candidate(store_id="hki-kamppi", kind="cart_abandoned")
    route_now(polku, second)
    route_now(polku, second)  # redelivered: not sent twice (nor routed twice)
    items = watcher.join()
    assert time.monotonic() - started < 15
    assert [kind for kind, _ in items] == ["signal", "signal"]
    assert [data["dedupe_key"] for _, data in items] == [first.dedupe_key, second.dedupe_key]
    assert items[0][1]["reasons"][0]["fi"].startswith("Katsoi")
    assert "store:hki-kamppi" in items[0][1]["queues"]


def test_the_live_feed_sees_signals_routed_by_another_process(polku: Polku) -> None:
    """A worker or the pipeline's child process writes through an engine of its own: no
    in-process wake-up, so the feed finds the signal by watching the table."""
    store(polku, "hki-kamppi")
    watcher = Watcher(polku.client, polku.admin, queue="store:hki-kamppi", limit=1, seconds=20)
    assert watcher.ready.wait(20) and watcher.status == 200
    elsewhere = make_engine(polku.runtime.settings)
    try:
        c = candidate(store_id="hki-kamppi")
        with writing(elsewhere) as conn:
            route(conn, [c])
    finally:
        elsewhere.dispose()
    [(kind, data)] = watcher.join()
    assert kind == "signal" and data["dedupe_key"] == c.dedupe_key


def test_events_through_the_pipeline_reach_the_live_feed(polku: Polku) -> None:
    """End to end: collected events, the signals consumer's rules, routing in the pipeline's
    transaction, the feed of the automation queue."""
    only_views = {
        "rules": [{"name": "views", "to": "automation", "kinds": ["repeat_product_views"]}]
    }
    assert polku.client.put("/v1/signals/routing", json=only_views, headers=polku.admin).is_success
    watcher = Watcher(polku.client, polku.admin, queue="automation", limit=1, seconds=20)
    assert watcher.ready.wait(20) and watcher.status == 200
    views = [
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": "cust-e2e",
            "properties": {"product_id": "TUULI-JACKET", "name": "Tuuli jacket"},
            "context": {"channel": "web"},
            "timestamp": f"2026-11-02T10:0{i}:00Z",
        }
        for i in range(3)
    ]
    send(polku, *views)
    [(kind, data)] = watcher.join()
    assert kind == "signal" and data["kind"] == "repeat_product_views"
    assert data["reasons"] and data["reasons"][0]["fi"]
    assert "automation" in data["queues"]


@pytest.mark.parametrize(
    ("method", "path", "content", "code"),
    [
        ("GET", "/v1/signals/99999999999999999999", None, "invalid_field"),
        ("GET", "/v1/signals/0", None, "invalid_field"),
        ("POST", "/v1/signals/1/claim", b'{"staff_id": ', "invalid_json"),
        ("POST", "/v1/signals/1/outcome", b'{"outcome": 7}', "invalid_field"),
        (
            "PUT",
            "/v1/signals/routing",
            b'{"rules": [{"name": "a", "to": "agents", "min_score": NaN}]}',
            None,
        ),
        ("GET", "/v1/signals/deliveries?signal_id=99999999999999999999", None, "invalid_field"),
        ("GET", "/v1/profiles/" + "p" * 300 + "/suppression", None, "unknown_profile"),
    ],
)
def test_bad_input_is_4xx_never_500(
    polku: Polku, method: str, path: str, content: bytes | None, code: str | None
) -> None:
    headers = {**polku.admin, "Content-Type": "application/json"}
    response = polku.client.request(method, path, content=content, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["message"] and (code is None or error["code"] == code)
