"""The channels page: CRM webhooks made and removed by an admin (in the signals tables the
API reads, the secret shown once, each with its recent deliveries), bad URLs refused with a
400 in the user's language, and the test SMS through a real HTTP server standing in for
the gateway, to a number normalised as identity normalises phones."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
from console_world import csrf_of, routed, shown, signed_in, user
from fastapi.testclient import TestClient

from conftest import Polku
from http_receiver import Receiver
from polku.app import create_app
from polku.runtime import Runtime
from polku.settings import Settings
from polku.signals import actions as signal_actions
from polku.signals import queries as signal_queries
from polku.signals.webhooks import deliver_due

CRM = "https://crm.example.com/hooks/polku"


@pytest.fixture
def gateway() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def texting(settings: Settings, gateway: Receiver) -> Iterator[Polku]:
    """A Polku whose SMS gateway is `gateway`."""
    settings = settings.replace(sms_gateway_url=gateway.url + "/messages", sms_sender="Kauppa")
    runtime = Runtime.open(settings)
    created = runtime.bootstrap()
    assert created is not None
    try:
        with TestClient(create_app(settings, runtime)) as client:
            yield Polku(runtime, client, created[0], created[1].token)
    finally:
        runtime.close()


def test_a_webhook_made_on_the_page_is_in_the_signals_tables_until_removed(polku: Polku) -> None:
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    page = admin.get("/console/data/channels")
    assert page.status_code == 200 and "No webhooks yet." in page.text
    token = csrf_of(page.text)
    made = admin.post(
        "/console/data/channels/webhooks",
        data={"csrf_token": token, "url": CRM, "queues": "agents, store:hki-kamppi"},
    )
    assert made.status_code == 201, made.text
    secret = made.text.split('data-testid="new-secret">')[1].split("<")[0]
    assert secret.startswith("whsec_")

    listed = polku.client.get("/v1/signals/webhooks", headers=polku.admin).json()["webhooks"]
    assert [(w["url"], w["queues"], w["active"]) for w in listed] == [
        (CRM, ["agents", "store:hki-kamppi"], True)
    ]
    endpoint = listed[0]["id"]
    again = admin.get("/console/data/channels")
    assert CRM in again.text and endpoint in again.text and "agents, store:hki-kamppi" in again.text
    assert secret not in again.text  # shown only once

    removed = admin.post(
        f"/console/data/channels/webhooks/{endpoint}/delete",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    with polku.runtime.engine.connect() as conn:
        [stored] = signal_actions.list_webhooks(conn, "default")
    assert stored["id"] == endpoint and stored["active"] is False
    after = admin.get("/console/data/channels").text
    assert "Removed" in after and f"/webhooks/{endpoint}/delete" not in after

    gone = admin.post(
        "/console/data/channels/webhooks/wh_nothing/delete", data={"csrf_token": token}
    )
    assert gone.status_code == 404 and "wh_nothing" in shown(gone)


def test_bad_webhook_input_gets_a_400_in_the_users_language(polku: Polku) -> None:
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    token = csrf_of(admin.get("/console/data/channels").text)
    for url in ("ftp://crm.example.com/x", "crm.example.com", "https://", "", CRM + "x" * 2000):
        bad = admin.post("/console/data/channels/webhooks", data={"csrf_token": token, "url": url})
        assert bad.status_code == 400, url
        assert "must be an http:// or https:// address" in shown(bad)
    queue = admin.post(
        "/console/data/channels/webhooks",
        data={"csrf_token": token, "url": CRM, "queues": "the shop"},
    )
    assert queue.status_code == 400 and "store:hki-kamppi" in shown(queue)
    assert f'value="{CRM}"' in queue.text  # what was typed stays in the form
    many = ", ".join(f"store:s-{i}" for i in range(101))
    too_many = admin.post(
        "/console/data/channels/webhooks", data={"csrf_token": token, "url": CRM, "queues": many}
    )
    assert too_many.status_code == 400 and "at most 100" in shown(too_many)

    fi = signed_in(polku, user(polku, "eila@example.com", "admin", locale="fi"))
    fi_token = csrf_of(fi.get("/console/data/channels").text)
    finnish = fi.post(
        "/console/data/channels/webhooks", data={"csrf_token": fi_token, "url": "mailto:x@y.fi"}
    )
    assert finnish.status_code == 400 and "Osoitteen on oltava http://" in shown(finnish)
    assert polku.client.get("/v1/signals/webhooks", headers=polku.admin).json()["webhooks"] == []


def test_only_an_admin_with_the_token_changes_webhooks(polku: Polku) -> None:
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    made = signal_actions.create_webhook(polku.runtime, "default", CRM)
    forged = admin.post("/console/data/channels/webhooks", data={"csrf_token": "x", "url": CRM})
    assert forged.status_code == 403
    unsigned = admin.post(f"/console/data/channels/webhooks/{made['id']}/delete", data={})
    assert unsigned.status_code == 403
    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    token = csrf_of(marketer.get("/console/data").text)
    assert marketer.get("/console/data/channels").status_code == 403
    create = marketer.post(
        "/console/data/channels/webhooks", data={"csrf_token": token, "url": CRM}
    )
    assert create.status_code == 403
    delete = marketer.post(
        f"/console/data/channels/webhooks/{made['id']}/delete", data={"csrf_token": token}
    )
    assert delete.status_code == 403
    hooks = polku.client.get("/v1/signals/webhooks", headers=polku.admin).json()["webhooks"]
    assert [(w["id"], w["active"]) for w in hooks] == [(made["id"], True)]


def test_a_webhook_lists_its_deliveries_with_the_last_answer(polku: Polku) -> None:
    closed = Receiver([(503, b"{}")] * 100)  # the CRM is down
    try:
        made = signal_actions.create_webhook(polku.runtime, "default", closed.url + "/crm")
        signal_id = routed(polku)
        deadline = time.monotonic() + 15
        while True:
            deliver_due(polku.runtime, timeout=2)
            with polku.runtime.engine.connect() as conn:
                found = signal_queries.deliveries_of(conn, "default", endpoint_id=made["id"])
            if found and found[0]["attempts"] >= 1:
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.05)
    finally:
        closed.close()
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    table = admin.get("/console/data/channels").text.split('data-testid="webhooks"')[1]
    row = table.split('class="deliveries"')[1].split("</table>")[0]
    assert f"<td>{signal_id}</td>" in row and "Waiting to retry" in row and "HTTP 503" in row
    finnish = signed_in(polku, user(polku, "eila@example.com", "admin", locale="fi"))
    assert "Odottaa uutta yritystä" in finnish.get("/console/data/channels").text


def test_the_test_sms_reaches_the_gateway_with_the_number_normalised(
    texting: Polku, gateway: Receiver
) -> None:
    admin = signed_in(texting, user(texting, "ada@example.com", "admin"))
    page = admin.get("/console/data/channels")
    assert 'action="/console/data/channels/test-sms"' in page.text
    assert "deployment settings" in page.text
    token = csrf_of(page.text)
    sent = admin.post(
        "/console/data/channels/test-sms", data={"csrf_token": token, "phone": "040 123 4567"}
    )
    assert sent.status_code == 200, sent.text
    assert "A test SMS was sent to +358401234567; the gateway's id for it is m-1." in shown(sent)
    [body] = [orjson.loads(r.body) for r in gateway.requests]
    assert (body["to"], body["from"]) == ("+358401234567", "Kauppa")
    assert "Polku console" in body["text"]

    for typed in ("12", "not a phone", "+1" * 30):
        bad = admin.post(
            "/console/data/channels/test-sms", data={"csrf_token": token, "phone": typed}
        )
        assert bad.status_code == 400 and "with the country code" in shown(bad), typed
    assert len(gateway.requests) == 1
    forged = admin.post("/console/data/channels/test-sms", data={"phone": "+358401234567"})
    assert forged.status_code == 403 and len(gateway.requests) == 1

    gateway.answers.append((400, b'{"error": "no"}'))
    refused = admin.post(
        "/console/data/channels/test-sms",
        data={"csrf_token": token, "phone": "+358401234567"},
        headers={"Accept-Language": "fi"},
    )
    assert refused.status_code == 502
    assert "Tekstiviestiyhdyskäytävä ei ottanut testiviestiä vastaan" in shown(refused)


def test_without_a_gateway_there_is_no_test_sms(polku: Polku) -> None:
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    page = admin.get("/console/data/channels", headers={"Accept-Language": "fi"})
    assert 'action="/console/data/channels/test-sms"' not in page.text
    assert "asennuksen asetuksia" in page.text and "POLKU_SMS_GATEWAY_URL" in page.text
    token = csrf_of(page.text)
    unset = admin.post(
        "/console/data/channels/test-sms", data={"csrf_token": token, "phone": "+358401234567"}
    )
    assert unset.status_code == 409 and "set POLKU_SMS_GATEWAY_URL" in unset.text
