"""Small helpers shared by the routing and delivery tests: stores, people, candidates, and
`route` in a transaction of its own (as the signals consumer calls it in the pipeline's)."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import datetime
from typing import Any

import orjson
from fastapi.testclient import TestClient

from conftest import Polku
from polku.signals.candidates import MODEL_KIND, Candidate, Reason
from polku.signals.routing import route
from polku.storage.engine import writing

WS = "default"
WEEKDAYS_9_TO_21 = {day: [["09:00", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
_offsets = itertools.count(1_000)

# Monday 2 November 2026 in Helsinki (UTC+2): noon, 08:30 (opens at 9), and Sunday night.
MONDAY_NOON = "2026-11-02T12:00:00+02:00"
MONDAY_0830 = "2026-11-02T08:30:00+02:00"
SUNDAY_0300 = "2026-11-01T03:00:00+02:00"


def ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


def store(polku: Polku, location_id: str, **extra: Any) -> None:
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
        **extra,
    }
    response = polku.client.post("/v1/locations", json=body, headers=polku.admin)
    assert response.status_code == 201, response.text


def send(polku: Polku, *messages: dict[str, Any]) -> None:
    batch = [{"messageId": f"m-{uuid.uuid4().hex}", **m} for m in messages]
    response = polku.send("/v1/batch", {"batch": batch})
    assert response.status_code == 200, response.text
    polku.settle()


def person(polku: Polku, user_id: str, **traits: Any) -> str:
    """A profile for `user_id` with `traits`; its profile id."""
    send(polku, {"type": "identify", "userId": user_id, "traits": traits})
    response = polku.client.get(
        "/v1/profiles/lookup", params={"type": "user_id", "value": user_id}, headers=polku.admin
    )
    assert response.status_code == 200, response.text
    found: str = response.json()["profile_id"]
    return found


def order(polku: Polku, user_id: str, order_id: str, moment: str, channel: str = "web") -> None:
    send(
        polku,
        {
            "type": "track",
            "event": "Order Completed",
            "userId": user_id,
            "properties": {"order_id": order_id, "total": 89.9, "currency": "EUR"},
            "context": {"channel": channel},
            "timestamp": moment,
        },
    )


def candidate(profile_id: str = "p-unknown", **fields: Any) -> Candidate:
    values: dict[str, Any] = {
        "workspace_id": WS,
        "profile_id": profile_id,
        "kind": MODEL_KIND,
        "score": 0.9,
        "event_id": f"m-{uuid.uuid4().hex}",
        "offset": next(_offsets),
        "at_ms": ms(MONDAY_NOON),
        "dedupe_key": f"k-{uuid.uuid4().hex}",
        "products": ("TUULI-JACKET",),
        "channel": "web",
        "reasons": (
            Reason(
                "repeat_product_views",
                "Viewed Tuuli jacket 3 times in 7 days",
                "Katsoi tuotetta Tuuli-takki 3 kertaa 7 päivässä",
                0.6,
            ),
        ),
    }
    values.update(fields)
    return Candidate(**values)


def route_now(polku: Polku, *candidates: Candidate) -> None:
    with writing(polku.runtime.engine) as conn:
        route(conn, candidates)


def signals(polku: Polku, expect: int = 200, **params: Any) -> Any:
    """`GET /v1/signals`: the signals, or the error when `expect` is not 200."""
    response = polku.client.get("/v1/signals", params=params, headers=polku.admin)
    assert response.status_code == expect, response.text
    body = response.json()
    return body["signals"] if expect == 200 else body["error"]


def only(polku: Polku, c: Candidate) -> dict[str, Any]:
    """The one signal routed from `c`."""
    found = [s for s in signals(polku, limit=1000) if s["dedupe_key"] == c.dedupe_key]
    assert len(found) == 1, found
    return found[0]


class Watcher:
    """Reads one live signal stream in a thread; `ready` is set once the server watches."""

    def __init__(self, client: TestClient, headers: dict[str, str], **params: Any) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.ready = threading.Event()
        self.status = 0
        self.error: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._read, args=(client, headers, params))
        self._thread.start()

    def _read(self, client: TestClient, headers: dict[str, str], params: dict[str, Any]) -> None:
        kind = ""
        with client.stream("GET", "/v1/signals/live", params=params, headers=headers) as r:
            self.status = r.status_code
            if r.status_code != 200:
                self.error = orjson.loads(r.read())["error"]
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = orjson.loads(line.removeprefix("data: "))
                    if kind == "ready":
                        self.ready.set()
                    else:
                        self.items.append((kind, data))
        self.ready.set()

    def join(self) -> list[tuple[str, dict[str, Any]]]:
        self._thread.join(30)
        assert not self._thread.is_alive(), "the live stream did not end"
        return self.items
