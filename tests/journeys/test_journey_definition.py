"""Journey documents: what a valid one becomes, and the errors a marketer gets for the
mistakes they make, each naming the step and the field, with what to write instead."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from polku.errors import InvalidJourney
from polku.journeys.actions import check_document, library
from polku.journeys.conditions import parse_duration
from polku.journeys.definition import Branch, Send, Split, Wait, WaitFor, WaitUntil, parse_text

GOOD: dict[str, Any] = {
    "key": "welcome",
    "name": {"en": "Welcome", "fi": "Tervetuloa"},
    "trigger": {"event": "Signed Up"},
    "entry": {"re_entry": "never", "control": 10},
    "exit": [{"event": "Order Completed"}],
    "goal": {"event": "Order Completed", "within": "14d"},
    "steps": [
        {"id": "hello", "send": "email", "template": "order_thanks", "purpose": "transactional"},
        {"id": "pause", "wait": "2d"},
        {"id": "morning", "wait_until": "09:30"},
        {
            "id": "vip?",
            "if": [{"field": "profile.order_count", "op": ">=", "value": 3}],
            "then": "ab",
            "else": "bought?",
        },
        {
            "id": "bought?",
            "wait_for": {"event": "Order Completed", "timeout": "3d"},
            "on_event": "end",
            "on_timeout": "ab",
        },
        {"id": "ab", "split": [{"weight": 50, "next": "sms"}, {"weight": 50, "next": "end"}]},
        {"id": "sms", "send": "sms", "content": {"en": {"sms": "Hi!"}, "fi": {"sms": "Moi!"}}},
    ],
}


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    target: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is _DELETE:
        del target[int(last) if last.isdigit() else last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return doc


_DELETE = object()


def test_a_valid_document_becomes_steps() -> None:
    journey = check_document(GOOD)
    kinds = [type(s) for s in journey.steps]
    assert kinds == [Send, Wait, WaitUntil, Branch, WaitFor, Split, Send]
    assert journey.entry.re_entry == "never" and journey.entry.control == 10
    assert journey.goal is not None and journey.goal.within_ms == 14 * 86_400_000
    assert journey.step("vip?").then == "ab"  # type: ignore[union-attr]
    assert journey.successors(journey.step("bought?")) == ["end", "ab"]
    assert check_document(GOOD).checksum == journey.checksum


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("key", "Bad Key", "key", "lowercase"),
        ("trigger", {"event": "X", "signal": {}}, "trigger", "exactly one"),
        ("trigger", {"stock": "sale"}, "trigger.stock", "back_in_stock"),
        ("steps.1.wait", "soon", "steps[1:pause].wait", "duration"),
        ("steps.2.wait_until", "25:00", "steps[2:morning].wait_until", "time of day"),
        (
            "steps.3.if",
            [{"field": "weather.today", "op": "eq", "value": 1}],
            "steps[3:vip?].if[0].field",
            "Start the path",
        ),
        (
            "steps.3.if",
            [{"field": "profile.order_count", "op": "gt", "value": "three"}],
            "steps[3:vip?].if[0].value",
            "number",
        ),
        ("steps.3.then", "nowhere", "steps[3:vip?]", "no step"),
        (
            "steps.4.wait_for",
            {"event": "Order Completed"},
            "steps[4:bought?].wait_for.timeout",
            "timeout",
        ),
        ("steps.0.template", "no_such_template", "steps[0:hello].template", "no shipped"),
        ("steps.6.content", {"en": {"sms": "Hi {{ profile.name"}}, "steps[6:sms].content", ""),
        ("steps.5.split", [{"weight": 50, "next": "sms"}], "steps[5:ab].split", "two or more"),
        ("steps.0.send", "fax", "steps[0:hello].send", "email"),
        ("entry.control", 150, "entry.control", "percentage"),
    ],
)
def test_errors_name_the_step_and_the_field(path: str, value: Any, field: str, words: str) -> None:
    with pytest.raises(InvalidJourney) as caught:
        check_document(_with(path, value))
    assert caught.value.field is not None and caught.value.field.startswith(field), (
        caught.value.field
    )
    assert words in caught.value.message + (caught.value.hint or "")
    assert caught.value.hint


def test_duplicate_ids_unreachable_steps_and_loops_without_a_wait() -> None:
    doc = _with("steps.2.id", "pause")
    with pytest.raises(InvalidJourney, match="Two steps"):
        check_document(doc)
    doc = copy.deepcopy(GOOD)
    doc["steps"][6]["next"] = "end"
    doc["steps"].append({"id": "orphan", "wait": "1h"})
    with pytest.raises(InvalidJourney, match="No step leads to 'orphan'") as caught:
        check_document(doc)
    assert caught.value.field == "steps[7:orphan]"
    loop = {
        "key": "loop",
        "trigger": {"event": "X"},
        "steps": [
            {
                "id": "a",
                "if": [{"field": "profile.order_count", "op": "gt", "value": 0}],
                "then": "b",
                "else": "end",
            },
            {"id": "b", "send": "trait", "traits": {"x": 1}, "next": "a"},
        ],
    }
    with pytest.raises(InvalidJourney, match="without a wait"):
        check_document(loop)


def test_yaml_errors_say_where() -> None:
    with pytest.raises(InvalidJourney, match="line 2"):
        parse_text("key: x\n  steps: [\n")


def test_durations() -> None:
    assert parse_duration("90m", "w") == 90 * 60_000
    assert parse_duration(30, "w") == 30_000
    with pytest.raises(InvalidJourney):
        parse_duration("-1h", "w")


def test_every_ready_made_journey_is_valid_and_off_by_default() -> None:
    found = library()
    assert {
        "abandoned-cart",
        "browse-abandonment",
        "post-purchase",
        "win-back",
        "back-in-stock",
        "birthday",
    } <= set(found)
    for key, document in found.items():
        journey = check_document(document)
        assert journey.key == key
        assert journey.name.get("fi") and journey.name.get("en")
