"""Rule signals: the YAML, its checks, and hysteresis and de-duplication on features."""

from __future__ import annotations

from typing import Any

import pytest

from polku.errors import InvalidRule
from polku.signals.candidates import MODEL_KIND
from polku.signals.features import Tracker
from polku.signals.rules import Memory, Places, Timer, candidate, load_rules, parse_rules


def view(at: str, product: str = "p1", anon: str = "a1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": anon,
        "timestamp": at,
        "context": {"channel": "web"},
        "properties": {"product_id": product, "name": "Trail jacket", **extra},
    }


def names(fired: list[Any]) -> list[str]:
    return [f.rule.name for f in fired]


def test_the_shipped_rules_load() -> None:
    book = load_rules()
    kinds = {rule.name: rule.kind for rule in book.rules}
    assert kinds == {
        "repeat_product_views": "feature",
        "stock_check_near_home": "near_store",
        "high_value_cart_idle": "idle_cart",
        MODEL_KIND: "model",
    }


def test_three_views_in_7_days_fire_once_and_rearm_when_the_views_age_out() -> None:
    book, tracker, memory, places = load_rules(), Tracker(), Memory(), Places()
    days = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    fired = [book.evaluate(tracker.observe(view(f"{d}T10:00:00Z")), memory, places) for d in days]
    assert [names(f) for f in fired] == [[], [], ["repeat_product_views"], []]
    signal = fired[2][0]
    assert signal.products == ("p1",) and signal.score == 0.6
    assert signal.reasons[0].en == "Viewed Trail jacket 3 times in 7 days"
    assert signal.reasons[0].fi == "Katsoi tuotetta Trail jacket 3 kertaa 7 päivässä"
    # a view a week after the last ones re-arms the rule (1 view / 3 < 0.5) ...
    quiet = book.evaluate(tracker.observe(view("2026-03-12T10:00:00Z")), memory, places)
    assert quiet == [] and memory == {}
    again = [
        book.evaluate(tracker.observe(view(f"2026-03-{d}T10:00:00Z")), memory, places)
        for d in (13, 14)
    ]
    assert [names(f) for f in again] == [[], ["repeat_product_views"]]


def test_one_signal_per_kind_person_product_and_window() -> None:
    book, tracker, places = load_rules(), Tracker(), Places()
    fired = []
    for memory in (Memory(), Memory()):  # the same behaviour twice, hysteresis forgotten
        tracker = Tracker()
        for day in ("01", "02", "03"):
            fired += book.evaluate(
                tracker.observe(view(f"2026-03-{day}T10:00:00Z")), memory, places
            )
    keys = {
        candidate(f, workspace_id="w", profile_id="pr1", event_id="m", offset=1).dedupe_key
        for f in fired
    }
    assert len(fired) == 2 and len(keys) == 1


def test_a_stock_check_near_home_fires_and_far_away_does_not() -> None:
    book, tracker, memory = load_rules(), Tracker(), Memory()
    places = Places(
        {"HEL-KAMPPI": (60.1690, 24.9330), "TRE-KESKUSTA": (61.4980, 23.7610)},
        {"HEL-KAMPPI": "Kamppi"},
    )
    tracker.observe(
        {
            "type": "identify",
            "userId": "u1",
            "timestamp": "2026-03-01T09:00:00Z",
            "traits": {"address": {"postal_code": "00510"}},
        }
    )

    def check(store: str, at: str) -> list[Any]:
        message = {
            "type": "track",
            "event": "Store Stock Checked",
            "userId": "u1",
            "timestamp": at,
            "context": {"channel": "web"},
            "properties": {"store_id": store, "product_id": "p1", "name": "Trail jacket"},
        }
        return book.evaluate(tracker.observe(message), memory, places)

    assert check("TRE-KESKUSTA", "2026-03-01T10:00:00Z") == []
    near = check("HEL-KAMPPI", "2026-03-01T10:05:00Z")
    assert names(near) == ["stock_check_near_home"] and near[0].store_id == "HEL-KAMPPI"
    assert near[0].details["distance_km"] == 2.7
    assert near[0].reasons[0].en == ("Checked stock of Trail jacket at Kamppi, 2.7 km from home")
    assert check("HEL-KAMPPI", "2026-03-01T10:06:00Z") == []  # not re-armed


def test_the_model_rule_has_hysteresis_on_the_probability() -> None:
    book, tracker, memory, places = load_rules(), Tracker(), Memory(), Places()
    snapshot = tracker.observe(view("2026-03-01T10:00:00Z"))
    seen = [
        names(book.evaluate(snapshot, memory, places, probability=p))
        for p in (0.5, 0.65, 0.7, 0.45, 0.61, 0.3, 0.62)
    ]
    assert seen == [[], [MODEL_KIND], [], [], [], [], [MODEL_KIND]]


def test_idle_cart_timers_follow_the_cart() -> None:
    book, tracker = load_rules(), Tracker()
    added = tracker.observe(
        {
            "type": "track",
            "event": "Product Added",
            "anonymousId": "a1",
            "timestamp": "2026-03-01T10:00:00Z",
            "properties": {"product_id": "p1", "price": 180, "quantity": 1},
        }
    )
    [(rule, timer)] = book.timers(added)
    assert rule == "high_value_cart_idle" and isinstance(timer, Timer)
    assert timer.due_ms == added.at_ms + 30 * 60_000 and timer.products == ("p1",)
    fired = book.fire_idle(timer)
    assert fired is not None and fired.at_ms == timer.due_ms
    assert fired.reasons[0].en == "Left a cart worth 180.00 € untouched for 30 minutes"
    removed = tracker.observe(
        {
            "type": "track",
            "event": "Product Removed",
            "anonymousId": "a1",
            "timestamp": "2026-03-01T10:10:00Z",
            "properties": {"product_id": "p1", "price": 180, "quantity": 1},
        }
    )
    assert book.timers(removed) == [("high_value_cart_idle", None)]


@pytest.mark.parametrize(
    ("text", "message", "field"),
    [
        ("rules: 3", "has no list of rules", "rules"),
        ("rules: [{name: x, when: {}}", "not valid YAML", "rules"),
        ("rules: [{name: Bad Name}]", "no valid name", "rules[0].name"),
        (
            "rules: [{name: r, when: {views_forever: {at_least: 3}}, reason: {en: a, fi: b}}]",
            "'views_forever' is not a numeric feature",
            "when.views_forever",
        ),
        (
            "rules: [{name: r, when: {views: {more_than: 3}}, reason: {en: a, fi: b}}]",
            "unknown comparison",
            "when.views.more_than",
        ),
        (
            "rules: [{name: r, when: {views: {at_least: many}}, reason: {en: a, fi: b}}]",
            "expected a number",
            "when.views.at_least",
        ),
        (
            "rules: [{name: r, when: {views: {at_least: 3}}, reason: {en: a}}]",
            "English and Finnish",
            "reason",
        ),
        (
            "rules: [{name: r, when: {views: {at_least: 3}}, reason: {en: '{nope}', fi: b}}]",
            "unknown placeholder {nope}",
            "reason.en",
        ),
        (
            "rules: [{name: r, when: {views: {at_least: 3}}, window: soon, "
            "reason: {en: a, fi: b}}]",
            "is not a duration",
            "window",
        ),
        ("rules: [{name: r, reason: {en: a, fi: b}}]", "exactly one of", "when"),
        (
            "rules: [{name: r, when: {views: {at_least: 1}}, on: [Product Viewed], "
            "reason: {en: a, fi: b}}]",
            "YAML reads a bare `on` as true",
            "True",
        ),
        ("rules: [{name: intent, model: {threshold: 0.6}}]", "kind 'purchase_intent'", "name"),
        (
            "rules: [{model: {threshold: 0.6}, rearm_below: 0.7}]",
            "not below the threshold",
            "rearm_below",
        ),
        (
            "rules: [{name: r, idle_cart: {minutes: 0}, reason: {en: a, fi: b}}]",
            "out of range",
            "idle_cart.minutes",
        ),
    ],
)
def test_a_wrong_rule_is_named_with_its_field_and_a_fix(
    text: str, message: str, field: str
) -> None:
    with pytest.raises(InvalidRule) as caught:
        parse_rules(text, source="my.yaml")
    error = caught.value
    assert message in error.message and error.field == field
    assert error.hint and error.code == "invalid_rule" and error.status == 400
