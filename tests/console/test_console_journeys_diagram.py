"""The flow of a journey as SVG: a box per step and one for the end, an arrow for every
way on (then/else, a wait_for's event and timeout, each split arm), words for screen
readers in `<title>` and `<desc>`, names escaped; and the pages in Finnish."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

from console_world import csrf_of, signed_in, user

from conftest import Polku
from polku.console.journey_diagram import WORDS, diagram, edges
from polku.journeys.actions import check_document

SVG = "{http://www.w3.org/2000/svg}"
TEST: dict[str, Any] = {
    "key": "ab-test",
    "name": {"en": "A <b>bold</b> test"},
    "trigger": {"event": "Product Viewed"},
    "steps": [
        {
            "id": "arms",
            "split": [
                {"weight": 45, "next": "short"},
                {"weight": 45, "next": "long"},
                {"weight": 10, "next": "end"},
            ],
        },
        {"id": "short", "wait": "30m", "next": "ask"},
        {"id": "long", "wait": "2d"},
        {
            "id": "ask",
            "wait_for": {"event": "Order Completed", "timeout": "3d"},
            "on_event": "end",
            "on_timeout": "cart?",
        },
        {
            "id": "cart?",
            "if": [{"field": "cart.value", "op": "gt", "value": 0}],
            "then": "mail",
            "else": "end",
        },
        {
            "id": "mail",
            "send": "email",
            "template": "abandoned_cart",
        },
    ],
}


def words() -> dict[str, str]:
    return {word: word.replace("_", " ") for word in WORDS}


def test_every_step_and_every_way_on_is_drawn_and_said() -> None:
    journey = check_document(TEST)
    svg = diagram(journey, title="The flow of A <b>bold</b> test", words=words())
    root = ElementTree.fromstring(str(svg))  # well-formed, names escaped
    assert root.get("role") == "img"
    assert root.findtext(f"{SVG}title") == "The flow of A <b>bold</b> test"
    boxes = [g.get("data-step") for g in root.iter(f"{SVG}g")]
    assert boxes == ["arms", "short", "long", "ask", "cart?", "mail", "end"]
    flow = {(e.source, e.target, e.label) for e in edges(journey)}
    assert flow == {
        ("arms", "short", "45%"),
        ("arms", "long", "45%"),
        ("arms", "end", "10%"),
        ("short", "ask", ""),
        ("long", "ask", ""),
        ("ask", "end", "on_event"),
        ("ask", "cart?", "on_timeout"),
        ("cart?", "mail", "then"),
        ("cart?", "end", "else"),
        ("mail", "end", ""),
    }
    arrows = [p for p in root.iter() if p.get("marker-end")]
    assert len(arrows) == len(flow)
    desc = root.findtext(f"{SVG}desc") or ""
    assert "arms (split 45% / 45% / 10%) goes to 45% short, 45% long, 10% end" in desc
    assert "ask (wait for Order Completed (3d)) goes to on event end, on timeout cart?" in desc
    assert "cart? (if cart.value gt 0) goes to then mail, else end" in desc
    assert "mail (send email: abandoned_cart) goes to end" in desc
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "on timeout" in labels and "else" in labels and "10%" in labels


def test_a_marked_step_is_outlined_in_red() -> None:
    journey = check_document(TEST)
    svg = str(diagram(journey, title="t", words=words(), marked="ask"))
    box = re.search(r'data-step="ask">.*?<rect([^>]*)/>', svg)
    assert box is not None and 'stroke="#a40e26"' in box.group(1)


def test_the_pages_speak_finnish(polku: Polku) -> None:
    response = polku.client.put("/v1/journeys/ab-test", json=TEST, headers=polku.admin)
    assert response.status_code == 201, response.text
    client = signed_in(polku, user(polku, "maija@example.com", "marketer", locale="fi"))
    page = client.get("/console/journeys/ab-test")
    assert page.status_code == 200
    assert "Kulku" in page.text and "Vaiheittain" in page.text and "jatkuu" in page.text
    assert "Lähetä minulle" in page.text and "Miksi asiakas sai" in page.text
    editor = client.get("/console/journeys/ab-test/edit")
    assert "Tallenna uutena versiona" in editor.text and "Kulun esikatselu" in editor.text
    broken = client.post(
        "/console/journeys/ab-test/edit",
        data={
            "csrf_token": csrf_of(editor.text),
            "document": "key: ab-test\ntrigger: {event: X}\nsteps: []\n",
            "action": "validate",
        },
    )
    assert broken.status_code == 400 and 'data-testid="error-field">steps<' in broken.text
