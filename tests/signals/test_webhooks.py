"""CRM webhooks, on SQLite and PostgreSQL, against a real HTTP server in a thread: each new
signal is POSTed with its reasons, signed (HMAC-SHA256 over "<timestamp>.<body>", Stripe's
scheme), retried after the CRM first answers 500, and every attempt is in the delivery log;
endpoints only get their queues; bad endpoint configs are 400 naming the field."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from routed_signals import candidate, only, route_now, store

from conftest import Polku
from polku.signals.webhooks import retry_delay, verify

SECRET = "whsec_test_0123456789abcdef"


class CRM:
    """A CRM's webhook receiver: records each request, answers `answers` in turn (then 200)."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                crm.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = crm.answers.pop(0) if crm.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/polku"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def crm() -> Iterator[CRM]:
    server = CRM([500])
    try:
        yield server
    finally:
        server.close()


def webhook(polku: Polku, **body: Any) -> dict[str, Any]:
    response = polku.client.post("/v1/signals/webhooks", json=body, headers=polku.admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def deliveries(polku: Polku, **params: Any) -> list[dict[str, Any]]:
    response = polku.client.get("/v1/signals/deliveries", params=params, headers=polku.admin)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


def wait_delivered(polku: Polku, signal_id: int, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = deliveries(polku, signal_id=signal_id)
        if found and found[0]["status"] == "delivered":
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"not delivered in {timeout} s: {deliveries(polku)}")


def test_a_new_signal_is_posted_signed_and_retried_after_a_500(polku: Polku, crm: CRM) -> None:
    created = webhook(polku, url=crm.url, secret=SECRET)
    assert created["secret"] == SECRET and created["queues"] == []
    listed = polku.client.get("/v1/signals/webhooks", headers=polku.admin).json()["webhooks"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]

    c = candidate()
    route_now(polku, c)
    route_now(polku, c)  # redelivered: one delivery still
    signal_id = only(polku, c)["id"]
    delivery = wait_delivered(polku, signal_id)  # the pipeline's chore sends it

    assert len(crm.requests) == 2  # 500 first, then taken on the retry
    assert [a["status_code"] for a in delivery["log"]] == [500, 200]
    assert delivery["attempts"] == 2 and delivery["delivered_at"]
    assert delivery["endpoint_id"] == created["id"]
    first, second = delivery["log"]
    assert first["error"].startswith("HTTP 500") and second["error"] is None
    assert first["at"] < second["at"]

    for headers, body in crm.requests:
        assert headers["content-type"] == "application/json"
        assert headers["polku-event"] == "signal.routed"
        assert headers["polku-delivery"] == str(delivery["id"])
        assert headers["idempotency-key"] == f"polku-delivery-{delivery['id']}"
        # The receiver's check, by hand: t=<seconds>,v1=<HMAC-SHA256 of "<t>.<body>">.
        parts = dict(p.split("=", 1) for p in headers["polku-signature"].split(","))
        assert parts["t"] == headers["polku-timestamp"]
        assert abs(time.time() - int(parts["t"])) < 60
        expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
        assert hmac.compare_digest(parts["v1"], expected.hexdigest())
        assert verify(SECRET, headers["polku-signature"], body, now=time.time())
        assert not verify(
            "whsec_someone_else_000", headers["polku-signature"], body, now=time.time()
        )
        assert not verify(SECRET, headers["polku-signature"], body + b" ", now=time.time())
        assert not verify(SECRET, headers["polku-signature"], body, now=time.time() + 3600)
    payload = orjson.loads(crm.requests[-1][1])
    assert payload["type"] == "signal.routed" and payload["delivery_id"] == delivery["id"]
    assert payload["signal"]["id"] == signal_id
    assert payload["signal"]["reasons"][0]["fi"].startswith("Katsoi")
    assert payload["signal"]["queues"] == ["agents", "automation"]


def test_an_endpoint_gets_only_its_queues_and_nothing_once_removed(polku: Polku) -> None:
    crm = CRM([])
    try:
        store(polku, "hki-kamppi")
        kamppi = webhook(polku, url=crm.url, queues=["store:hki-kamppi"])
        assert kamppi["secret"].startswith("whsec_") and kamppi["queues"] == ["store:hki-kamppi"]
        online, at_store = candidate(), candidate(store_id="hki-kamppi")
        route_now(polku, online, at_store)
        wait_delivered(polku, only(polku, at_store)["id"])
        assert deliveries(polku, signal_id=only(polku, online)["id"]) == []
        assert len(crm.requests) == 1

        gone = polku.client.delete(f"/v1/signals/webhooks/{kamppi['id']}", headers=polku.admin)
        assert gone.status_code == 204
        later = candidate(store_id="hki-kamppi")
        route_now(polku, later)
        assert deliveries(polku, signal_id=only(polku, later)["id"]) == []
        assert len(deliveries(polku, endpoint_id=kamppi["id"])) == 1  # the log stays
        again = polku.client.delete("/v1/signals/webhooks/wh_nothing", headers=polku.admin)
        assert again.status_code == 404 and again.json()["error"]["code"] == "unknown_webhook"
    finally:
        crm.close()


def test_an_unreachable_crm_is_logged_and_retried_later(polku: Polku) -> None:
    crm = CRM([])
    url = crm.url
    crm.close()  # nothing listens there now
    webhook(polku, url=url)
    c = candidate()
    route_now(polku, c)
    signal_id = only(polku, c)["id"]
    deadline = time.monotonic() + 15
    while not (found := deliveries(polku, signal_id=signal_id))[0]["log"]:
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    [delivery] = found
    assert delivery["status"] == "pending" and delivery["next_attempt_at"]
    [attempt] = delivery["log"][:1]
    assert attempt["status_code"] is None and attempt["error"]


def test_retries_back_off_exponentially() -> None:
    assert [retry_delay(n) for n in range(1, 5)] == [2_000, 8_000, 32_000, 128_000]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"url": "ftp://crm.example.com/x"}, "url", "invalid_url"),
        ({"url": "not a url"}, "url", "invalid_url"),
        (
            {"url": "https://crm.example.com/x", "queues": ["cashiers"]},
            "queues[0]",
            "invalid_queue",
        ),
        ({"url": "https://crm.example.com/x", "secret": "short"}, "secret", "invalid_field"),
        ({"queues": []}, "url", "invalid_field"),
    ],
)
def test_bad_webhook_configs_are_400(polku: Polku, body: Any, field: str, code: str) -> None:
    response = polku.client.post("/v1/signals/webhooks", json=body, headers=polku.admin)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["field"], error["code"]) == (field, code)


def test_a_crm_that_does_not_answer_does_not_hold_up_the_pipeline(polku: Polku) -> None:
    crm = CRM([])
    release = threading.Event()
    answer = crm.server.RequestHandlerClass.do_POST

    def stuck(handler: BaseHTTPRequestHandler) -> None:
        crm.requests.append(({}, b""))
        release.wait(20)  # the CRM thinks for as long as the test says
        answer(handler)

    crm.server.RequestHandlerClass.do_POST = stuck  # type: ignore[method-assign]
    try:
        webhook(polku, url=crm.url)
        c = candidate()
        route_now(polku, c)
        deadline = time.monotonic() + 15
        while not crm.requests:  # the pipeline's chore has sent it; no answer yet
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # The pipeline goes on meanwhile (a send blocking it would take the 5 s timeout).
        response = polku.send("/v1/track", {"userId": "u-busy", "event": "Cart Viewed"})
        assert response.status_code == 200
        polku.settle(timeout=3)
        release.set()
        delivery = wait_delivered(polku, only(polku, c)["id"])
        assert delivery["attempts"] == 1
    finally:
        release.set()
        crm.close()
