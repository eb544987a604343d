"""What the console tests share: stores, users of each role, signing in through the pages,
the CSRF token of a page, and signals routed to a queue (as the signals consumer routes
them in the pipeline's transaction). Copied in small part from tests/signals, because test
folders share no modules."""

from __future__ import annotations

import html
import itertools
import re
import uuid
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from conftest import Polku
from polku.console.actions import create_user
from polku.signals.candidates import MODEL_KIND, Candidate, Reason
from polku.signals.routing import route
from polku.storage.engine import writing

WS = "default"
PASSWORD = "kuusi kuusta kuusessa"
WEEKDAYS_9_TO_21 = {day: [["09:00", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
MONDAY_NOON = "2026-11-02T12:00:00+02:00"  # every test store is open
SUNDAY_0300 = "2026-11-01T03:00:00+02:00"  # every test store is closed: signals go to agents
_offsets = itertools.count(1_000)


def ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


def store(polku: Polku, location_id: str) -> None:
    body = {
        "location_id": location_id,
        "name": f"Store {location_id}",
        "address": ["Urho Kekkosen katu 1"],
        "postal_code": "00100",
        "city": "Helsinki",
        "latitude": 60.1689,
        "longitude": 24.9322,
        "click_and_collect": True,
        "hours": WEEKDAYS_9_TO_21,
    }
    response = polku.client.post("/v1/locations", json=body, headers=polku.admin)
    assert response.status_code == 201, response.text


def user(polku: Polku, email: str, role: str, *stores: str, locale: str | None = None) -> str:
    create_user(polku.runtime.engine, WS, email, role, PASSWORD, stores, locale)
    return email


def csrf_of(page: str) -> str:
    """The CSRF token in a page's first form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, f"no CSRF token in the page:\n{page[:2000]}"
    return found.group(1)


def shown(response: Any) -> str:
    """A page's text with HTML's character references decoded (`&#39;` is `'`)."""
    return html.unescape(response.text)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    """Open the sign-in page and post its form; the response (303 on success)."""
    page = client.get("/console/login")
    assert page.status_code == 200, page.text
    return client.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )


def signed_in(polku: Polku, email: str) -> TestClient:
    """A browser of its own (own cookies) signed in as `email`."""
    client = TestClient(polku.client.app)
    response = sign_in(client, email)
    assert response.status_code == 303, response.text
    return client


def routed(polku: Polku, store_id: str | None = None, at: str = MONDAY_NOON) -> int:
    """A new signal routed now (to `store_id`'s queue if open, else the agents' queue);
    its id."""
    c = Candidate(
        workspace_id=WS,
        profile_id=f"p-{uuid.uuid4().hex[:8]}",
        kind=MODEL_KIND,
        score=0.9,
        event_id=f"m-{uuid.uuid4().hex}",
        offset=next(_offsets),
        at_ms=ms(at),
        dedupe_key=f"k-{uuid.uuid4().hex}",
        products=("TUULI-JACKET",),
        channel="store" if store_id else "web",
        store_id=store_id,
        reasons=(
            Reason(
                "repeat_product_views",
                "Viewed Tuuli jacket 3 times in 7 days",
                "Katsoi tuotetta Tuuli-takki 3 kertaa 7 päivässä",
                0.6,
            ),
        ),
    )
    with writing(polku.runtime.engine) as conn:
        route(conn, [c])
    found = polku.client.get("/v1/signals", params={"limit": 1000}, headers=polku.admin)
    [signal] = [s for s in found.json()["signals"] if s["dedupe_key"] == c.dedupe_key]
    signal_id: int = signal["id"]
    return signal_id


def signal(polku: Polku, signal_id: int) -> dict[str, Any]:
    """The signal as the signals API shows it."""
    response = polku.client.get(f"/v1/signals/{signal_id}", headers=polku.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stream_events(client: TestClient, path: str, **params: str) -> list[tuple[str, str]]:
    """The (event, data) pairs of a bounded server-sent event stream."""
    found: list[tuple[str, str]] = []
    kind = ""
    with client.stream("GET", path, params=params) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                found.append((kind, line.removeprefix("data: ")))
    return found
