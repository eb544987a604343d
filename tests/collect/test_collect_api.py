"""The collection API speaks the Segment HTTP Tracking API and what analytics-next posts.

Every test goes through HTTP (the in-process client) and reads back what was stored through
the debugger endpoints, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import gzip
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest

if TYPE_CHECKING:
    from conftest import Polku  # the `polku` fixture of tests/conftest.py


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _stored(polku: Polku, message_id: str) -> list[dict[str, Any]]:
    response = polku.client.get(
        "/v1/debugger/events", params={"messageId": message_id}, headers=polku.admin
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _one(polku: Polku, message_id: str) -> dict[str, Any]:
    events = _stored(polku, message_id)
    assert len(events) == 1, events
    return events[0]


def _mid() -> str:
    return str(uuid.uuid4())


_CALLS: dict[str, dict[str, Any]] = {
    "track": {"event": "Newsletter Signed Up", "properties": {"list": "weekly"}},
    "identify": {"traits": {"email": "aino@kauppa.fi", "name": "Aino"}},
    "page": {"name": "Home", "properties": {"url": "https://kauppa.fi/"}},
    "screen": {"name": "Cart"},
    "group": {"groupId": "household-7", "traits": {"name": "Virtanen family"}},
    "alias": {"previousId": "anon-before-login"},
}


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v1/track", "track"),
        ("/v1/t", "track"),
        ("/v1/identify", "identify"),
        ("/v1/i", "identify"),
        ("/v1/page", "page"),
        ("/v1/p", "page"),
        ("/v1/screen", "screen"),
        ("/v1/s", "screen"),
        ("/v1/group", "group"),
        ("/v1/g", "group"),
        ("/v1/alias", "alias"),
        ("/v1/a", "alias"),
    ],
)
def test_each_message_endpoint_stores_its_type(polku: Polku, path: str, kind: str) -> None:
    message_id = _mid()
    body = {"userId": "u-1", "messageId": message_id, **_CALLS[kind]}
    response = polku.send(path, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    stored = _one(polku, message_id)
    assert stored["type"] == kind
    assert stored["message"]["type"] == kind
    assert stored["message"]["userId"] == "u-1"
    for key, value in _CALLS[kind].items():
        assert stored["message"][key] == value
    if kind == "track":
        assert stored["event"] == "Newsletter Signed Up"


def test_short_path_accepts_its_own_type_in_the_body(polku: Polku) -> None:
    # analytics-next sends the type inside the body as well as in the path.
    message_id = _mid()
    body = {"type": "page", "anonymousId": "a-1", "messageId": message_id, "name": "Home"}
    assert polku.send("/v1/p", body).status_code == 200
    assert _one(polku, message_id)["type"] == "page"


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/b", "/v1/import"])
def test_batch_paths_store_every_message(polku: Polku, path: str) -> None:
    ids = {kind: _mid() for kind in _CALLS}
    batch = [
        {"type": kind, "userId": "u-2", "messageId": ids[kind], **fields}
        for kind, fields in _CALLS.items()
    ]
    response = polku.send(path, {"batch": batch})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": len(batch)}
    for kind, message_id in ids.items():
        assert _one(polku, message_id)["type"] == kind


def test_write_key_as_basic_username(polku: Polku) -> None:
    message_id = _mid()
    response = polku.client.post(
        "/v1/track",
        json={"userId": "u-3", "event": "Signed In", "messageId": message_id},
        auth=(polku.write_key, ""),
    )
    assert response.status_code == 200, response.text
    assert _one(polku, message_id)["message"]["event"] == "Signed In"


def test_write_key_in_body_and_text_plain_as_analytics_next_sends(polku: Polku) -> None:
    # analytics-next's batching dispatcher: no Authorization header, writeKey in the body,
    # Content-Type text/plain (a "simple" request that needs no CORS preflight).
    ids = [_mid(), _mid()]
    context = {
        "library": {"name": "analytics.js", "version": "npm:next-1.70.0"},
        "page": {"path": "/", "url": "https://kauppa.fi/"},
    }
    body = {
        "batch": [
            {
                "type": "page",
                "anonymousId": "a-2",
                "messageId": ids[0],
                "name": "Home",
                "context": context,
            },
            {
                "type": "track",
                "anonymousId": "a-2",
                "messageId": ids[1],
                "event": "Clicked",
                "context": context,
                "writeKey": polku.write_key,
            },
        ],
        "sentAt": _iso(datetime.now(UTC)),
        "writeKey": polku.write_key,
    }
    response = polku.client.post(
        "/v1/b", content=orjson.dumps(body), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    stored = _one(polku, ids[1])["message"]
    assert "writeKey" not in stored  # the key is a credential, never kept in the log
    assert stored["context"]["channel"] == "web"  # derived from the library and page


def test_write_key_in_body_of_a_single_message(polku: Polku) -> None:
    message_id = _mid()
    body = {
        "type": "track",
        "anonymousId": "a-3",
        "event": "Clicked",
        "messageId": message_id,
        "writeKey": polku.write_key,
    }
    response = polku.client.post(
        "/v1/t", content=orjson.dumps(body), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text
    assert "writeKey" not in _one(polku, message_id)["message"]


def test_gzip_request_body(polku: Polku) -> None:
    ids = [_mid() for _ in range(20)]
    batch = [{"type": "track", "userId": "u-4", "event": "Clicked", "messageId": m} for m in ids]
    response = polku.client.post(
        "/v1/batch",
        content=gzip.compress(orjson.dumps({"batch": batch})),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        auth=polku.auth,
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 20
    assert all(_one(polku, m)["message"]["userId"] == "u-4" for m in ids)


def test_gzip_single_message(polku: Polku) -> None:
    message_id = _mid()
    body = {"userId": "u-5", "traits": {"plan": "gold"}, "messageId": message_id}
    response = polku.client.post(
        "/v1/identify",
        content=gzip.compress(orjson.dumps(body)),
        headers={"Content-Encoding": "gzip"},
        auth=polku.auth,
    )
    assert response.status_code == 200, response.text
    assert _one(polku, message_id)["message"]["traits"] == {"plan": "gold"}


def test_cors_preflight_from_a_browser_origin(polku: Polku) -> None:
    response = polku.client.options(
        "/v1/t",
        headers={
            "Origin": "https://kauppa.fi",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://kauppa.fi")
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "content-type" in allowed and "authorization" in allowed


def test_cors_headers_on_a_posted_event(polku: Polku) -> None:
    response = polku.client.post(
        "/v1/t",
        json={"anonymousId": "a-4", "event": "Clicked", "writeKey": polku.write_key},
        headers={"Origin": "https://kauppa.fi"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] in ("*", "https://kauppa.fi")


def test_cors_headers_on_a_rejection_too(polku: Polku) -> None:
    # The browser must be able to read why its event was refused.
    response = polku.client.post(
        "/v1/t", json={"anonymousId": "a-4"}, headers={"Origin": "https://kauppa.fi"}
    )
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] in ("*", "https://kauppa.fi")


def test_same_batch_twice_is_stored_once(polku: Polku) -> None:
    ids = [_mid() for _ in range(5)]
    body = {
        "batch": [
            {"type": "track", "userId": "u-6", "event": "Clicked", "messageId": m} for m in ids
        ]
    }
    head_before = polku.client.get("/health").json()["log_head"]
    for _ in range(2):  # an SDK retrying after a timeout sends the same batch again
        response = polku.send("/v1/batch", body)
        assert response.status_code == 200, response.text
    for message_id in ids:
        assert len(_stored(polku, message_id)) == 1
    assert polku.client.get("/health").json()["log_head"] == head_before + len(ids)


def test_duplicate_message_ids_within_one_batch_are_stored_once(polku: Polku) -> None:
    message_id = _mid()
    first = {"type": "track", "userId": "u-7", "event": "First", "messageId": message_id}
    second = {**first, "event": "Second"}
    assert polku.send("/v1/batch", {"batch": [first, second]}).status_code == 200
    assert _one(polku, message_id)["event"] == "First"


def test_same_message_id_from_single_endpoints_is_stored_once(polku: Polku) -> None:
    message_id = _mid()
    body = {"userId": "u-8", "event": "Clicked", "messageId": message_id}
    assert polku.send("/v1/track", body).status_code == 200
    assert polku.send("/v1/t", body).status_code == 200
    assert len(_stored(polku, message_id)) == 1


def test_message_id_is_generated_when_missing(polku: Polku) -> None:
    assert polku.send("/v1/track", {"userId": "u-9", "event": "No Id"}).status_code == 200
    events = polku.client.get("/v1/debugger/events", headers=polku.admin).json()["events"]
    newest = events[0]
    assert newest["event"] == "No Id"
    assert newest["messageId"]
    assert newest["message"]["messageId"] == newest["messageId"]


def test_timestamp_corrected_for_a_client_clock_running_ahead(polku: Polku) -> None:
    # The device's clock is 10 s ahead. It recorded the event 5 s (by its clock) before it
    # sent it, so the event really happened 5 s before the server received it.
    skew = timedelta(seconds=10)
    device_now = datetime.now(UTC) + skew
    message_id = _mid()
    body = {
        "userId": "u-10",
        "event": "Product Viewed",
        "messageId": message_id,
        "originalTimestamp": _iso(device_now - timedelta(seconds=5)),
        "sentAt": _iso(device_now),
    }
    assert polku.send("/v1/track", body).status_code == 200
    stored = _one(polku, message_id)["message"]
    received = _ms(stored["receivedAt"])
    timestamp = _ms(stored["timestamp"])
    assert timestamp == received - 5000  # receivedAt - (sentAt - originalTimestamp)
    assert stored["originalTimestamp"] == body["originalTimestamp"]
    assert stored["sentAt"] == body["sentAt"]
    # The correction moved the event about 10 s back from what the device's clock said.
    shift = _ms(body["originalTimestamp"]) - timestamp
    assert 9000 <= shift <= 11000, shift


def test_batch_sent_at_applies_to_messages_with_timestamp_only(polku: Polku) -> None:
    # Server-side SDKs (analytics-python) send `timestamp` per message and `sentAt` per batch.
    device_now = datetime.now(UTC) + timedelta(seconds=10)
    message_id = _mid()
    body = {
        "batch": [
            {
                "type": "track",
                "userId": "u-11",
                "event": "Clicked",
                "messageId": message_id,
                "timestamp": _iso(device_now - timedelta(seconds=2)),
            }
        ],
        "sentAt": _iso(device_now),
    }
    assert polku.send("/v1/batch", body).status_code == 200
    stored = _one(polku, message_id)["message"]
    assert _ms(stored["timestamp"]) == _ms(stored["receivedAt"]) - 2000


def test_historical_timestamp_without_sent_at_is_kept(polku: Polku) -> None:
    message_id = _mid()
    body = {
        "userId": "u-12",
        "event": "Order Completed",
        "messageId": message_id,
        "timestamp": "2019-03-01T12:00:00.000Z",
    }
    assert polku.send("/v1/track", body).status_code == 200
    stored = _one(polku, message_id)
    assert stored["message"]["timestamp"] == "2019-03-01T12:00:00.000Z"
    assert _ms(stored["message"]["receivedAt"]) > _ms("2025-01-01T00:00:00Z")


def test_timestamp_with_offset_is_stored_in_utc(polku: Polku) -> None:
    message_id = _mid()
    body = {
        "userId": "u-13",
        "event": "Store Visited",
        "properties": {"store_id": "HEL-01"},
        "messageId": message_id,
        "timestamp": "2024-06-01T15:30:00+03:00",
    }
    assert polku.send("/v1/track", body).status_code == 200
    assert _one(polku, message_id)["message"]["timestamp"] == "2024-06-01T12:30:00.000Z"


def test_received_at_is_stamped_by_the_server(polku: Polku) -> None:
    message_id = _mid()
    before = int(time.time() * 1000)
    body = {
        "userId": "u-14",
        "event": "Clicked",
        "messageId": message_id,
        "receivedAt": "2001-01-01T00:00:00.000Z",  # a client cannot choose it
    }
    assert polku.send("/v1/track", body).status_code == 200
    after = int(time.time() * 1000)
    stored = _one(polku, message_id)
    received = _ms(stored["message"]["receivedAt"])
    assert before <= received <= after
    assert stored["receivedAt"] == stored["message"]["receivedAt"]
    # Without any client time, the event happened when it was received.
    assert stored["message"]["timestamp"] == stored["message"]["receivedAt"]


def test_batch_context_is_merged_into_each_message(polku: Polku) -> None:
    ids = [_mid(), _mid()]
    body = {
        "context": {"channel": "store", "library": {"name": "till-sync", "version": "2"}},
        "batch": [
            {"type": "track", "userId": "u-15", "event": "A", "messageId": ids[0]},
            {
                "type": "track",
                "userId": "u-15",
                "event": "B",
                "messageId": ids[1],
                "context": {"channel": "web"},
            },
        ],
    }
    assert polku.send("/v1/batch", body).status_code == 200
    first = _one(polku, ids[0])["message"]["context"]
    second = _one(polku, ids[1])["message"]["context"]
    assert first["channel"] == "store" and first["library"]["name"] == "till-sync"
    assert second["channel"] == "web"  # the message's own context wins
    assert second["library"]["name"] == "till-sync"


def test_channel_is_derived_from_the_library(polku: Polku) -> None:
    web, app = _mid(), _mid()
    batch = [
        {
            "type": "page",
            "anonymousId": "a-5",
            "messageId": web,
            "context": {"library": {"name": "analytics.js", "version": "next-1.70.0"}},
        },
        {
            "type": "screen",
            "anonymousId": "a-5",
            "messageId": app,
            "context": {"library": {"name": "analytics-ios", "version": "4.1"}},
        },
    ]
    assert polku.send("/v1/batch", {"batch": batch}).status_code == 200
    assert _one(polku, web)["message"]["context"]["channel"] == "web"
    assert _one(polku, app)["message"]["context"]["channel"] == "app"


def test_browser_settings_document_points_at_this_host(polku: Polku) -> None:
    response = polku.client.get(f"/v1/projects/{polku.write_key}/settings")
    assert response.status_code == 200, response.text
    document = response.json()
    segment = document["integrations"]["Segment.io"]
    assert segment["apiKey"] == polku.write_key
    assert segment["apiHost"] == "testserver/v1"
    assert segment["protocol"] == "http"
    # analytics-next reads these at start-up; a missing key makes it throw.
    assert document["plan"]["track"]["__default"]["enabled"] is True
    assert isinstance(document["remotePlugins"], list)
    assert isinstance(document["middlewareSettings"], dict)


def test_browser_settings_for_an_unknown_key_is_404(polku: Polku) -> None:
    response = polku.client.get("/v1/projects/wk_nosuchkey/settings")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_write_key"
    assert error["field"] == "writeKey"
    assert "polku keys" in error["hint"]


def test_metrics_endpoint_accepts_analytics_next_metrics(polku: Polku) -> None:
    body = {
        "series": [
            {
                "type": "Counter",
                "metric": "analytics_js.invoke.track",
                "value": 1,
                "tags": {"library": "analytics.js"},
            }
        ]
    }
    response = polku.client.post(
        "/v1/m", content=orjson.dumps(body), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200
    assert response.json() == {"success": True}


def test_debugger_needs_an_admin_token(polku: Polku) -> None:
    for path in ("/v1/debugger/events", "/v1/debugger/rejections"):
        response = polku.client.get(path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        wrong = polku.client.get(path, headers={"Authorization": "Bearer pk_wrong"})
        assert wrong.status_code == 401
        # A write key can only write events.
        as_key = polku.client.get(path, headers={"Authorization": f"Bearer {polku.write_key}"})
        assert as_key.status_code == 401


def test_debugger_events_pages_newest_first(polku: Polku) -> None:
    ids = [_mid() for _ in range(3)]
    for message_id in ids:
        polku.send("/v1/track", {"userId": "u-16", "event": "Clicked", "messageId": message_id})
    first = polku.client.get("/v1/debugger/events", params={"limit": 2}, headers=polku.admin)
    page = first.json()["events"]
    assert [e["messageId"] for e in page] == [ids[2], ids[1]]
    older = polku.client.get(
        "/v1/debugger/events",
        params={"limit": 2, "before_offset": page[-1]["offset"]},
        headers=polku.admin,
    ).json()["events"]
    assert older[0]["messageId"] == ids[0]


def test_collection_endpoints_are_in_the_openapi_document(polku: Polku) -> None:
    paths = polku.client.get("/openapi.json").json()["paths"]
    for kind in (*_CALLS, "batch"):
        assert "post" in paths[f"/v1/{kind}"]
    assert "/v1/projects/{write_key}/settings" in paths
