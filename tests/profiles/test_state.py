"""The profile state as pure functions: folding events in, merging two states, and reading
consent from messages. No database: these are the rules the projection applies."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import orjson
import pytest

from polku.events import LoggedEvent
from polku.profiles.state import ProfileState, apply_event, consent_changes, merge_states

_offsets = itertools.count(1)


def event(message: dict[str, Any], at: int, *, source_id: str = "src_web") -> LoggedEvent:
    message = {"messageId": f"m{next(_offsets)}", **message}
    return LoggedEvent(
        offset=next(_offsets),
        workspace_id="ws",
        message_id=message["messageId"],
        type=message["type"],
        partition_key=message.get("userId", "anon"),
        received_at=at,
        timestamp=at,
        payload=orjson.dumps(message),
        source_id=source_id,
        event=message.get("event"),
    )


def identify(at: int, **traits: Any) -> LoggedEvent:
    return event({"type": "identify", "userId": "u1", "traits": traits}, at)


def fresh(profile_id: str = "p_1", at: int = 1000) -> ProfileState:
    return ProfileState(profile_id, "ws", at, at)


def comparable(state: ProfileState) -> dict[str, Any]:
    """Everything but the id: what must not depend on which profile survived."""
    return {
        "first_seen": state.first_seen,
        "last_seen": state.last_seen,
        "traits": state.traits,
        "trait_times": state.trait_times,
        "consent": state.consent,
        "channels": state.channels,
        "event_count": state.event_count,
        "order_count": state.order_count,
        "last_offset": state.last_offset,
    }


# -- apply_event --------------------------------------------------------------------------


def test_traits_are_last_write_wins_by_event_time_not_arrival() -> None:
    state = fresh()
    apply_event(state, identify(2000, name="Anna Virtanen", city="Helsinki"))
    apply_event(state, identify(1500, name="Anna V.", city="Espoo", plan="gold"))  # late, older
    assert state.traits == {"name": "Anna Virtanen", "city": "Helsinki", "plan": "gold"}
    assert state.trait_times == {"name": 2000, "city": 2000, "plan": 1500}
    apply_event(state, identify(3000, city="Turku"))
    assert state.traits["city"] == "Turku"
    assert state.trait_times["city"] == 3000
    # equal times: the later event in the log wins
    apply_event(state, identify(3000, city="Tampere"))
    assert state.traits["city"] == "Tampere"


def test_context_traits_of_other_calls_count_but_consent_is_not_a_trait() -> None:
    state = fresh()
    track = {
        "type": "track",
        "event": "Product Viewed",
        "userId": "u1",
        "context": {"channel": "web", "traits": {"email": "a@example.fi", "consent": {"x": True}}},
    }
    tracked = event(track, 1200)
    apply_event(state, tracked)
    assert state.traits == {"email": "a@example.fi"}
    assert state.email == "a@example.fi"
    # the source names the message type, the write key's source and the messageId
    source = f"track:src_web:{tracked.message_id}"
    assert state.consent == {"x": {"*": {"granted": True, "at": 1200, "source": source}}}


def test_counters_channels_and_seen_times() -> None:
    state = fresh(at=5000)
    apply_event(
        state, event({"type": "page", "anonymousId": "a", "context": {"channel": "web"}}, 4000)
    )
    order = {
        "type": "track",
        "event": "POS Order Completed",
        "anonymousId": "a",
        "context": {"channel": "store"},
        "properties": {"store_id": "HEL-01", "receipt_id": "R1"},
    }
    apply_event(state, event(order, 6000))
    apply_event(state, event({**order, "event": "Order Completed", "context": {}}, 5500))
    assert state.event_count == 3
    assert state.order_count == 2
    assert state.channels == {"web": 1, "store": 1}
    assert (state.first_seen, state.last_seen) == (4000, 6000)


def test_search_columns_come_from_traits() -> None:
    state = fresh()
    apply_event(state, identify(1, email="  Anna@Example.FI ", first_name="Anna", lastName="V"))
    assert state.email == "anna@example.fi"
    assert state.name == "Anna V"
    assert state.phone is None
    apply_event(state, identify(2, name=" Anna Virtanen ", phone=358401234567))
    assert state.name == "Anna Virtanen"
    assert state.phone == "358401234567"


def test_consent_is_last_write_wins_per_purpose_and_channel() -> None:
    state = fresh()
    apply_event(
        state,
        event(
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"consent": {"marketing": {"email": True, "sms": True}}},
            },
            2000,
        ),
    )
    withdrawn = event(
        {
            "type": "track",
            "event": "Consent Updated",
            "userId": "u1",
            "properties": {"purpose": "marketing", "channel": "sms", "granted": False},
        },
        3000,
        source_id="",
    )
    apply_event(state, withdrawn)
    stale = {
        "type": "track",
        "event": "Consent Updated",
        "userId": "u1",
        "properties": {"purpose": "marketing", "channel": "email", "granted": False},
    }
    apply_event(state, event(stale, 1000))  # older than the grant: ignored
    marketing = state.consent["marketing"]
    assert marketing["email"]["granted"] is True
    assert marketing["email"]["at"] == 2000
    assert marketing["sms"] == {
        "granted": False,
        "at": 3000,
        "source": f"track:api:{withdrawn.message_id}",
    }


# -- merge_states -------------------------------------------------------------------------


def two_people() -> tuple[ProfileState, ProfileState]:
    web = fresh("p_web", 1000)
    apply_event(
        web,
        event(
            {"type": "page", "anonymousId": "a1", "context": {"channel": "web", "traits": {}}},
            1000,
        ),
    )
    apply_event(web, identify(1500, name="Anna", city="Espoo", consent={"marketing": True}))
    app = fresh("p_app", 1200)
    apply_event(
        app,
        event(
            {
                "type": "identify",
                "userId": "u1",
                "context": {"channel": "app"},
                "traits": {"name": "Anna Virtanen", "consent": {"marketing": {"*": False}}},
            },
            2000,
        ),
    )
    order = {
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "context": {"channel": "app"},
    }
    apply_event(app, event(order, 1200))
    return web, app


def test_merge_adds_counters_and_keeps_the_newest_values() -> None:
    web, app = two_people()
    merged = copy.deepcopy(app)
    merge_states(merged, web)
    assert merged.event_count == 4
    assert merged.order_count == 1
    assert merged.channels == {"web": 1, "app": 2}
    assert (merged.first_seen, merged.last_seen) == (1000, 2000)
    assert merged.traits == {"name": "Anna Virtanen", "city": "Espoo"}
    assert merged.trait_times == {"name": 2000, "city": 1500}
    assert merged.consent["marketing"]["*"]["granted"] is False
    assert merged.consent["marketing"]["*"]["at"] == 2000


def test_merge_does_not_depend_on_which_profile_survives() -> None:
    web, app = two_people()
    one, other = copy.deepcopy(web), copy.deepcopy(app)
    merge_states(one, copy.deepcopy(app))
    merge_states(other, copy.deepcopy(web))
    assert comparable(one) == comparable(other)


def test_events_after_a_merge_still_follow_event_time() -> None:
    web, app = two_people()
    merged = copy.deepcopy(web)
    merge_states(merged, app)
    newest = identify(2500, city="Turku")
    apply_event(merged, newest)
    assert merged.traits == {"name": "Anna Virtanen", "city": "Turku"}
    assert merged.last_seen == 2500


def test_merge_is_commutative_when_two_values_have_the_same_time() -> None:
    a, b = fresh("p_a"), fresh("p_b")
    apply_event(a, identify(1000, city="Espoo", consent={"marketing": True}))
    apply_event(b, identify(1000, city="Turku", consent={"marketing": False}))
    one, other = copy.deepcopy(a), copy.deepcopy(b)
    merge_states(one, copy.deepcopy(b))
    merge_states(other, copy.deepcopy(a))
    assert comparable(one) == comparable(other)


# -- consent_changes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            {
                "type": "identify",
                "traits": {"consent": {"marketing": {"email": True, "sms": False}}},
            },
            [("marketing", "email", True), ("marketing", "sms", False)],
        ),
        (
            {"type": "identify", "traits": {"consent": {"profiling": False}}},
            [("profiling", "*", False)],
        ),
        (
            {"type": "track", "event": "X", "context": {"traits": {"consent": {"ads": True}}}},
            [("ads", "*", True)],
        ),
        (
            {
                "type": "track",
                "event": "Consent Updated",
                "properties": {"purpose": "marketing", "channel": "sms", "granted": True},
            },
            [("marketing", "sms", True)],
        ),
        (
            {
                "type": "track",
                "event": "Consent Updated",
                "properties": {"purpose": "marketing", "granted": False},
            },
            [("marketing", "*", False)],
        ),
        # not answers: non-boolean grants, a purpose that is not text, no consent at all
        (
            {"type": "identify", "traits": {"consent": {"marketing": {"email": "yes"}, "x": 1}}},
            [],
        ),
        (
            {
                "type": "track",
                "event": "Consent Updated",
                "properties": {"purpose": 7, "granted": True},
            },
            [],
        ),
        (
            {
                "type": "track",
                "event": "Consent Updated",
                "properties": {"purpose": "marketing", "granted": "true"},
            },
            [],
        ),
        ({"type": "identify", "traits": {"consent": "all"}}, []),
        ({"type": "identify", "traits": {"name": "Anna"}}, []),
        ({"type": "page", "properties": {"purpose": "marketing", "granted": True}}, []),
    ],
)
def test_consent_changes(message: dict[str, Any], expected: list[tuple[str, str, bool]]) -> None:
    assert consent_changes(message) == expected


def test_a_group_call_traits_are_not_the_persons_consent() -> None:
    # group traits describe the group; only context.traits may speak for the person
    group = {"type": "group", "groupId": "g1", "traits": {"consent": {"marketing": True}}}
    assert consent_changes(group) == []
