"""The signal report: signals, conversions and sales per day, per queue and per kind over
the last 30 days, as charts and as a table, of the viewer's own queues only."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from console_world import WS, csrf_of, ms, routed, shown, signed_in, store, user

from conftest import Polku
from polku.signals.candidates import MODEL_KIND, Candidate
from polku.signals.routing import route
from polku.storage.engine import writing


def _last_weekday_noon() -> str:
    """Noon of the latest weekday before today in Helsinki (the test stores are open)."""
    moment = datetime.now(ZoneInfo("Europe/Helsinki")).replace(
        hour=12, minute=0, second=0, microsecond=0
    ) - timedelta(days=1)
    while moment.weekday() >= 5:
        moment -= timedelta(days=1)
    return moment.isoformat()


def test_the_report_counts_the_viewers_queues(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    store(polku, "tre-ratina")
    at = _last_weekday_noon()
    first = routed(polku, "hki-kamppi", at=at)
    routed(polku, "hki-kamppi", at=at)
    routed(polku, "tre-ratina", at=at)
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    form = {"csrf_token": csrf_of(clerk.get("/console/signals").text)}
    clerk.post(f"/console/signals/{first}/claim", data=form)
    clerk.post(f"/console/signals/{first}/outcome", data={**form, "outcome": "sold"})

    page = clerk.get("/console/signals/report")
    assert page.status_code == 200
    text = shown(page)
    assert "In all: 2 signals, 0 conversions (0.0%), 1 sold." in text
    assert text.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 3
    assert "Store hki-kamppi: 2" in text and "tre-ratina" not in text
    assert "Purchase intent: 2" in text and "purchase_intent:" not in text
    by_queue = text.split('data-testid="by-queue"')[1].split("</table>")[0]
    assert '<th scope="row">Store hki-kamppi</th>' in by_queue
    assert by_queue.count('class="num">2<') == 1 and by_queue.count('class="num">1<') == 1

    admin = signed_in(polku, user(polku, "admin@example.com", "admin"))
    everything = shown(admin.get("/console/signals/report"))
    assert "In all: 3 signals" in everything and "Store tre-ratina: 1" in everything
    finnish = shown(clerk.get("/console/signals/report", headers={"Accept-Language": "fi"}))
    assert "Yhteensä: 2 signaalia, 0 konversiota (0,0\u00a0%), 1 myyty." in finnish
    assert "Ostoaikomus: 2" in finnish


def test_the_report_is_for_signal_workers_and_checks_its_input(polku: Polku) -> None:
    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    assert marketer.get("/console/signals/report").status_code == 403
    agent = signed_in(polku, user(polku, "eero@example.com", "agent"))
    assert agent.get("/console/signals/report").status_code == 200
    for bad in ("0", "lots", "367"):
        refused = agent.get("/console/signals/report", params={"days": bad})
        assert refused.status_code == 400 and "<html" in refused.text
        assert "days must be a number from 1 to 366." in shown(refused)


def test_an_order_after_a_signal_is_its_conversion_as_the_api_counts_it(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    at = _last_weekday_noon()
    assert polku.send("/v1/identify", {"userId": "anna-k", "traits": {"name": "Anna"}}).is_success
    polku.settle()
    profile_id = polku.client.get(
        "/v1/profiles/lookup", params={"type": "user_id", "value": "anna-k"}, headers=polku.admin
    ).json()["profile_id"]
    candidate = Candidate(
        workspace_id=WS,
        profile_id=profile_id,
        kind=MODEL_KIND,
        score=0.9,
        event_id=f"m-{uuid.uuid4().hex}",
        offset=9_500,
        at_ms=ms(at),
        dedupe_key=f"k-{uuid.uuid4().hex}",
        products=("TUULI-JACKET",),
        channel="store",
        store_id="hki-kamppi",
    )
    with writing(polku.runtime.engine) as conn:
        route(conn, [candidate])
    order = {
        "userId": "anna-k",
        "event": "Order Completed",
        "timestamp": (datetime.fromisoformat(at) + timedelta(hours=2)).isoformat(),
        "properties": {
            "order_id": "o-anna-1",
            "total": 189,
            "currency": "EUR",
            "products": [{"product_id": "TUULI-JACKET", "price": 189, "quantity": 1}],
        },
    }
    assert polku.send("/v1/track", order).is_success
    polku.settle()
    api = polku.client.get("/v1/signals/conversions", headers=polku.admin).json()
    assert api["total"]["conversions"] == 1
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    page = shown(clerk.get("/console/signals/report"))
    assert "In all: 1 signal, 1 conversion (100.0%), 0 sold." in page
