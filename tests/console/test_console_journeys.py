"""Journeys in the console: the list with its figures, enable and disable, the editor's
validation naming the step and field, saving a new version (the API agrees), the flow's
diagram, "why did this customer (not) get a message", a test send that arrives at a real
SMTP server addressed to the signed-in user, and the refusals (agents, a missing token)."""

from __future__ import annotations

import email
import email.policy
import json
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from console_world import csrf_of, shown, signed_in, store, user
from fastapi.testclient import TestClient

from conftest import Polku
from polku.app import create_app
from polku.runtime import Runtime
from polku.settings import Secret, Settings

THANKS: dict[str, Any] = {
    "key": "thanks",
    "name": {"en": "Thank buyers", "fi": "Kiitä ostajia"},
    "trigger": {"event": "Order Completed"},
    "steps": [
        {"id": "wait-a-bit", "wait": "1h"},
        {
            "id": "first-order",
            "if": [{"field": "profile.order_count", "op": "gt", "value": 0}],
            "then": "thank",
            "else": "end",
        },
        {
            "id": "thank",
            "send": "email",
            "template": {
                "en": {"subject": "Thank you, {{ profile.first_name }}", "text": "Kiitos!"},
            },
        },
    ],
}
BROKEN = """\
key: thanks
trigger:
  event: Order Completed
steps:
  - id: wait-a-bit
    wait: 1h
  - id: thank
    send: email
    template: no_such_template
"""
FIXED = BROKEN.replace("no_such_template", "order_thanks")


def put(polku: Polku, document: dict[str, Any], enabled: bool = True) -> None:
    response = polku.client.put(
        f"/v1/journeys/{document['key']}",
        json=document,
        params={"enabled": str(enabled).lower()},
        headers=polku.admin,
    )
    assert response.status_code in (200, 201), response.text


def marketer(polku: Polku) -> TestClient:
    return signed_in(polku, user(polku, "maija@example.com", "marketer"))


def buyer(polku: Polku, user_id: str, address: str) -> None:
    """A customer who identifies and completes an order (entering `thanks`)."""
    polku.client.put("/v1/journeys/settings", json={"holdout_percent": 0}, headers=polku.admin)
    traits = {"email": address, "first_name": "Aino"}
    for kind, body in (
        ("identify", {"userId": user_id, "traits": traits}),
        ("track", {"userId": user_id, "event": "Order Completed", "properties": {"total": 20}}),
    ):
        sent = polku.send(f"/v1/{kind}", {"messageId": uuid.uuid4().hex, **body})
        assert sent.status_code == 200, sent.text
    polku.settle()


def row_of(page: str, key: str) -> str:
    found = re.search(rf'<tr data-journey="{key}">(.*?)</tr>', page, re.S)
    assert found is not None, page[:3000]
    return found.group(1)


def test_the_list_shows_status_version_and_figures(polku: Polku) -> None:
    put(polku, THANKS)
    buyer(polku, "u-1", "aino@example.fi")
    client = marketer(polku)
    page = client.get("/console/journeys")
    assert page.status_code == 200
    row = row_of(page.text, "thanks")
    assert "Thank buyers" in row and "Enabled" in row
    assert 'data-testid="enrolled">1<' in row and 'data-testid="active">1<' in row
    assert 'data-testid="revenue">€0.00<' in row
    finnish = client.get("/console/journeys", headers={"Accept-Language": "fi"})
    assert "Kiitä ostajia" in finnish.text and "Käytössä" in row_of(finnish.text, "thanks")


def test_enable_and_disable_go_through_the_journeys_actions(polku: Polku) -> None:
    put(polku, THANKS, enabled=False)
    client = marketer(polku)
    token = csrf_of(client.get("/console/journeys").text)
    done = client.post(
        "/console/journeys/thanks/enable", data={"csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/journeys"
    assert polku.client.get("/v1/journeys/thanks", headers=polku.admin).json()["enabled"]
    client.post("/console/journeys/thanks/disable", data={"csrf_token": token})
    assert not polku.client.get("/v1/journeys/thanks", headers=polku.admin).json()["enabled"]
    unknown = client.post("/console/journeys/nope/enable", data={"csrf_token": token})
    assert unknown.status_code == 404 and "There is no journey “nope”" in shown(unknown)


def test_validate_names_the_step_and_field_and_saves_nothing(polku: Polku) -> None:
    put(polku, THANKS)
    client = marketer(polku)
    editor = client.get("/console/journeys/thanks/edit")
    assert editor.status_code == 200 and "id: first-order" in shown(editor)
    form = {"csrf_token": csrf_of(editor.text), "document": BROKEN, "action": "validate"}
    checked = client.post("/console/journeys/thanks/edit", data=form)
    assert checked.status_code == 400
    text = shown(checked)
    assert 'data-testid="error-field">steps[1:thank].template<' in text
    assert "no_such_template" in text
    assert 'data-testid="error-line">On line 9:' in text
    assert "<mark>   9      template: no_such_template</mark>" in text
    outlined = r'data-testid="live-diagram">.*?data-step="thank">.*?<rect([^>]*)/>'
    live = re.search(outlined, text, re.S)
    assert live is not None and 'stroke="#a40e26"' in live.group(1)  # the step outlined
    assert polku.client.get("/v1/journeys/thanks", headers=polku.admin).json()["version"] == 1
    saved = client.post("/console/journeys/thanks/edit", data={**form, "action": "save"})
    assert saved.status_code == 400
    assert polku.client.get("/v1/journeys/thanks", headers=polku.admin).json()["version"] == 1

    valid = client.post("/console/journeys/thanks/edit", data={**form, "document": FIXED})
    assert valid.status_code == 200 and 'data-testid="editor-valid"' in valid.text
    assert 'data-step="thank"' in valid.text  # the preview of the flow


def test_bad_yaml_and_a_changed_key_are_400_pages(polku: Polku) -> None:
    put(polku, THANKS)
    client = marketer(polku)
    token = csrf_of(client.get("/console/journeys/thanks/edit").text)
    bad = client.post(
        "/console/journeys/thanks/edit",
        data={"csrf_token": token, "document": "key: thanks\nsteps: [\n", "action": "validate"},
    )
    assert bad.status_code == 400 and "is not valid YAML or JSON at line" in shown(bad)
    other = client.post(
        "/console/journeys/thanks/edit",
        data={"csrf_token": token, "document": FIXED.replace("key: thanks", "key: x")},
    )
    assert other.status_code == 400 and "The document's key “x” is not “thanks”" in shown(other)
    listed = client.post(
        "/console/journeys/thanks/edit",
        data={"csrf_token": token, "document": "- a\n- b\n", "action": "save"},
    )
    assert listed.status_code == 400 and "must be a mapping" in shown(listed)


def test_save_makes_version_2_which_the_api_serves(polku: Polku) -> None:
    put(polku, THANKS)
    client = marketer(polku)
    token = csrf_of(client.get("/console/journeys/thanks/edit").text)
    saved = client.post(
        "/console/journeys/thanks/edit",
        data={"csrf_token": token, "document": FIXED, "action": "save"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/console/journeys/thanks?saved=2"
    body = polku.client.get("/v1/journeys/thanks", headers=polku.admin).json()
    assert body["version"] == 2 and body["document"]["steps"][1]["template"] == "order_thanks"
    versions = polku.client.get("/v1/journeys/thanks/versions", headers=polku.admin).json()
    assert versions["versions"][0]["created_by"] == "maija@example.com"
    page = client.get(saved.headers["location"])
    assert 'data-testid="saved">Saved as version 2.<' in page.text
    assert 'data-testid="version">2<' in page.text
    odd = client.get("/console/journeys/thanks", params={"saved": "x", "who": "y" * 5000})
    assert odd.status_code == 404 and "Saved as" not in odd.text  # no profile 'yyy…'


def test_a_new_journey_is_saved_and_an_existing_key_is_a_409(polku: Polku) -> None:
    client = marketer(polku)
    editor = client.get("/console/journeys/new")
    assert editor.status_code == 200
    token = csrf_of(editor.text)
    created = client.post(
        "/console/journeys/new",
        data={"csrf_token": token, "document": FIXED, "action": "save"},
        follow_redirects=False,
    )
    assert created.headers["location"] == "/console/journeys/thanks?saved=1"
    again = client.post(
        "/console/journeys/new", data={"csrf_token": token, "document": FIXED, "action": "save"}
    )
    assert again.status_code == 409 and "There is a journey “thanks” already" in shown(again)


def test_the_detail_page_draws_the_flow_and_the_numbers(polku: Polku) -> None:
    put(polku, THANKS)
    buyer(polku, "u-1", "aino@example.fi")
    page = marketer(polku).get("/console/journeys/thanks")
    assert page.status_code == 200
    svg = re.search(r'<svg[^>]*class="journey-diagram".*?</svg>', page.text, re.S)
    assert svg is not None
    drawing = shown(type("R", (), {"text": svg.group(0)})())
    for step in ("wait-a-bit", "first-order", "thank", "end"):
        assert f'data-step="{step}"' in drawing
    assert "<title>The flow of Thank buyers</title>" in drawing
    assert "first-order (if profile.order_count gt 0) goes to then thank, else end" in drawing
    assert 'class="chart"' in page.text  # the funnel
    first = re.search(r'<tr data-step="wait-a-bit">(.*?)</tr>', page.text, re.S)
    assert first is not None and '<td class="num">1</td>' in first.group(1)
    assert 'data-testid="arms">journey 1<' in first.group(1)


def test_why_explains_by_email_and_an_unknown_person_is_a_404(polku: Polku) -> None:
    put(polku, THANKS)
    buyer(polku, "u-1", "aino@example.fi")
    client = marketer(polku)
    page = client.get("/console/journeys/thanks", params={"who": "AINO@example.fi"})
    assert page.status_code == 200
    assert "In the journey, at step wait-a-bit" in shown(page)
    missing = client.get("/console/journeys/thanks", params={"who": "nobody@example.fi"})
    assert missing.status_code == 404
    assert "There is no profile “nobody@example.fi”" in shown(missing)


def test_agents_and_store_staff_get_403_and_a_missing_token_is_refused(polku: Polku) -> None:
    put(polku, THANKS)
    agent = signed_in(polku, user(polku, "eero@example.com", "agent"))
    store(polku, "hki-kamppi")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    for path in ("/console/journeys", "/console/journeys/thanks", "/console/journeys/new"):
        assert agent.get(path).status_code == 403 and clerk.get(path).status_code == 403
    assert clerk.get("/console/journeys/thanks/edit").status_code == 403
    token = csrf_of(agent.get("/console/").text)
    refused = agent.post("/console/journeys/thanks/disable", data={"csrf_token": token})
    assert refused.status_code == 403
    client = marketer(polku)
    for path in ("/console/journeys/thanks/disable", "/console/journeys/thanks/edit"):
        assert client.post(path, data={"document": FIXED}).status_code == 403
    proof = client.post("/console/journeys/thanks/steps/thank/proof", data={})
    assert proof.status_code == 403
    assert polku.client.get("/v1/journeys/thanks", headers=polku.admin).json()["enabled"]


def test_a_test_send_without_smtp_says_so(polku: Polku) -> None:
    put(polku, THANKS)
    client = marketer(polku)
    token = csrf_of(client.get("/console/journeys/thanks").text)
    sent = client.post("/console/journeys/thanks/steps/thank/proof", data={"csrf_token": token})
    assert sent.status_code == 409
    assert "No email server is configured" in shown(sent)
    wait = client.post(
        "/console/journeys/thanks/steps/wait-a-bit/proof", data={"csrf_token": token}
    )
    assert wait.status_code == 400 and "does not send an email" in shown(wait)


# -- a test send through a real SMTP server -------------------------------------------------


@dataclass
class Mailbox:
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or envelope.content or b"")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@dataclass
class Mailed:
    polku: Polku
    mailbox: Mailbox


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def mailed(settings: Settings) -> Iterator[Mailed]:
    """A Polku whose email channel is a real SMTP server (aiosmtpd) on a free port."""
    mailbox, port = Mailbox(), _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings = settings.replace(smtp_url=Secret(f"smtp://127.0.0.1:{port}"))
    runtime = Runtime.open(settings)
    created = runtime.bootstrap()
    assert created is not None
    try:
        with TestClient(create_app(settings, runtime)) as client:
            yield Mailed(Polku(runtime, client, created[0], created[1].token), mailbox)
    finally:
        runtime.close()
        controller.stop()


def test_a_test_send_arrives_addressed_to_the_user_and_counts_nothing(mailed: Mailed) -> None:
    polku = mailed.polku
    put(polku, THANKS)
    buyer(polku, "u-1", "aino@example.fi")
    before = polku.client.get("/v1/journeys/thanks/stats", headers=polku.admin).json()
    client = marketer(polku)
    token = csrf_of(client.get("/console/journeys/thanks").text)
    sent = client.post(
        "/console/journeys/thanks/steps/thank/proof",
        data={"csrf_token": token, "profile": "aino@example.fi"},
    )
    assert sent.status_code == 200, shown(sent)
    assert "Test message sent to maija@example.com" in shown(sent)
    [(recipients, message)] = mailed.mailbox.messages
    assert recipients == ["maija@example.com"] and message["To"] == "maija@example.com"
    assert message["Subject"] == "[Test] Thank you, Aino"
    after = polku.client.get("/v1/journeys/thanks/stats", headers=polku.admin).json()
    assert after == before
    sends = polku.client.get(
        "/v1/journeys/thanks/trace",
        params={
            "profile": polku.client.get(
                "/v1/profiles/lookup",
                params={"type": "email", "value": "aino@example.fi"},
                headers=polku.admin,
            ).json()["profile_id"]
        },
        headers=polku.admin,
    ).json()["sends"]
    assert sends == []
    sample = client.post("/console/journeys/thanks/steps/thank/proof", data={"csrf_token": token})
    assert sample.status_code == 200 and len(mailed.mailbox.messages) == 2


def test_a_dropped_message_shows_its_reason_on_its_step_and_in_why(polku: Polku) -> None:
    at_once = {**THANKS, "steps": THANKS["steps"][2:]}
    put(polku, at_once)
    buyer(polku, "u-1", "aino@example.fi")  # no consent to marketing email
    client = marketer(polku)
    page = client.get("/console/journeys/thanks")
    row = re.search(r'<tr data-step="thank">(.*?)</tr>', page.text, re.S)
    assert row is not None, page.text[:3000]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    assert cells[:5] == ["1", "0", "0", "0", "1"]  # entered, waiting, exited, sent, dropped
    assert cells[6] == (
        '<span data-reason="consent">no consent to marketing on this channel</span> 1'
    )
    why = client.get("/console/journeys/thanks", params={"who": "aino@example.fi"})
    verdict = re.search(r'data-testid="verdict">(.*?)<', shown(why))
    assert verdict is not None
    assert verdict.group(1) == (
        "Not sent: the message of step thank (Email) was dropped "
        "(no consent to marketing on this channel)."
    )


def test_a_json_document_validates_too_with_the_line_of_the_step(polku: Polku) -> None:
    put(polku, THANKS)
    client = marketer(polku)
    token = csrf_of(client.get("/console/journeys/thanks/edit").text)
    document = json.dumps(
        {**THANKS, "steps": [*THANKS["steps"][:2], {"id": "thank", "send": "mail"}]}, indent=2
    )
    checked = client.post(
        "/console/journeys/thanks/edit",
        data={"csrf_token": token, "document": document, "action": "validate"},
    )
    assert checked.status_code == 400
    text = shown(checked)
    field = re.search(r'data-testid="error-field">([^<]+)<', text)
    assert field is not None and field.group(1) == "steps[2:thank].send"
    assert re.findall(r"<mark>.*?</mark>", text) == ['<mark>  29        "send": "mail"</mark>']
