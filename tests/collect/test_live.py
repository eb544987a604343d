"""The live event debugger (`GET /v1/debugger/live`): server-sent events of what arrives and
what is refused, from the moment the watch is in place."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import orjson
from fastapi.testclient import TestClient

from conftest import Polku


class Watcher:
    """Reads one live stream in a thread; `ready` is set once the server says it watches."""

    def __init__(self, client: TestClient, headers: dict[str, str], **params: Any) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.ready = threading.Event()
        self.status = 0
        self.content_type = ""
        self._thread = threading.Thread(target=self._read, args=(client, headers, params))
        self._thread.start()

    def _read(self, client: TestClient, headers: dict[str, str], params: dict[str, Any]) -> None:
        kind = ""
        with client.stream("GET", "/v1/debugger/live", params=params, headers=headers) as r:
            self.status = r.status_code
            self.content_type = r.headers.get("content-type", "")
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = orjson.loads(line.removeprefix("data: "))
                    if kind == "ready":
                        self.ready.set()
                    else:
                        self.items.append((kind, data))
        self.ready.set()  # also when the stream ended without a ready (a failed request)

    def join(self) -> list[tuple[str, dict[str, Any]]]:
        self._thread.join(30)
        assert not self._thread.is_alive(), "the live stream did not end"
        return self.items


def test_live_feed_shows_accepted_events_and_rejections_as_they_happen(polku: Polku) -> None:
    before = f"m-{uuid.uuid4().hex}"
    polku.send("/v1/track", {"userId": "u1", "event": "Before", "messageId": before})

    watcher = Watcher(polku.client, polku.admin, limit=3, seconds=20)
    assert watcher.ready.wait(20)
    assert watcher.status == 200 and watcher.content_type.startswith("text/event-stream")

    ids = [f"m-{uuid.uuid4().hex}" for _ in range(2)]
    response = polku.send(
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "track",
                    "userId": "u1",
                    "event": "Product Viewed",
                    "messageId": ids[0],
                    "context": {"channel": "app"},
                },
                {"type": "track", "event": "No One", "messageId": "m-nobody"},
                {"type": "page", "anonymousId": "a1", "name": "Home", "messageId": ids[1]},
            ]
        },
    )
    assert response.status_code == 200

    items = watcher.join()
    events = [data for kind, data in items if kind == "event"]
    rejections = [data for kind, data in items if kind == "rejection"]
    assert [e["messageId"] for e in events] == ids  # nothing from before the watch
    assert events[0]["channel"] == "app" and events[0]["event"] == "Product Viewed"
    assert events[1]["type"] == "page"
    assert len(rejections) == 1
    assert rejections[0]["messageId"] == "m-nobody"
    assert rejections[0]["index"] == 1
    assert rejections[0]["code"]


def test_live_feed_needs_an_admin_token(polku: Polku) -> None:
    response = polku.client.get("/v1/debugger/live", params={"limit": 1})
    assert response.status_code == 401
    assert response.json()["error"]["code"]


def test_live_feed_ends_after_its_time_with_nothing_to_show(polku: Polku) -> None:
    watcher = Watcher(polku.client, polku.admin, seconds=0.5)
    assert watcher.join() == []
    assert watcher.status == 200
