"""What staff do with a routed signal, on SQLite and PostgreSQL: claim (one winner of a
race; a second claim is 409 `already_claimed` naming the holder), acknowledge, outcomes,
close, each recorded as an event in the log; conversion when the person orders within N
days (any channel); suppression while a claim is open and for the hold time after."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from routed_signals import WS, candidate, ms, only, order, person, route_now

from conftest import Polku
from polku.errors import Conflict
from polku.signals import actions
from polku.signals.queries import is_suppressed


def routed(polku: Polku, **fields: Any) -> int:
    c = candidate(**fields)
    route_now(polku, c)
    signal_id: int = only(polku, c)["id"]
    return signal_id


def logged(polku: Polku, name: str) -> list[dict[str, Any]]:
    events = polku.runtime.log.read(0, 10_000)
    return [e.message for e in events if e.event == name]


def post(polku: Polku, path: str, body: Any = None, status: int = 200) -> Any:
    response = polku.client.post(path, json=body, headers=polku.admin)
    assert response.status_code == status, response.text
    return response.json()


def test_claim_acknowledge_outcome_close_each_record_an_event(polku: Polku) -> None:
    signal_id = routed(polku)
    claimed = post(polku, f"/v1/signals/{signal_id}/claim", {"staff_id": "aino@kamppi"})
    assert claimed["status"] == "claimed" and claimed["claimed_by"] == "aino@kamppi"
    acked = post(polku, f"/v1/signals/{signal_id}/acknowledge", {"staff_id": "aino@kamppi"})
    assert acked["status"] == "acknowledged"
    post(polku, f"/v1/signals/{signal_id}/outcome", {"outcome": "contacted", "note": "called"})
    sold = post(polku, f"/v1/signals/{signal_id}/outcome", {"outcome": "sold"})
    assert sold["outcome"] == "sold"
    closed = post(polku, f"/v1/signals/{signal_id}/close")
    assert closed["status"] == "closed" and closed["closed_at"]
    assert post(polku, f"/v1/signals/{signal_id}/close")["closed_at"] == closed["closed_at"]

    [claim] = logged(polku, "Signal Claimed")
    assert claim["properties"]["signal_id"] == signal_id
    assert claim["properties"]["staff_id"] == "aino@kamppi"
    assert len(logged(polku, "Signal Acknowledged")) == 1
    outcomes = logged(polku, "Signal Outcome Recorded")
    assert [o["properties"]["outcome"] for o in outcomes] == ["contacted", "sold"]
    assert outcomes[0]["properties"]["note"] == "called"
    [close] = logged(polku, "Signal Closed")
    assert close["properties"]["outcome"] == "sold"


def test_a_second_claim_is_409_naming_who_holds_it(polku: Polku) -> None:
    signal_id = routed(polku)
    post(polku, f"/v1/signals/{signal_id}/claim", {"staff_id": "aino"})
    error = post(polku, f"/v1/signals/{signal_id}/claim", {"staff_id": "mikko"}, 409)["error"]
    assert error["code"] == "already_claimed" and "aino" in error["message"]
    assert "aino" in error["hint"] and error["field"] == "signal_id"
    again = post(polku, f"/v1/signals/{signal_id}/claim", {"staff_id": "aino"})  # a retry
    assert again["claimed_by"] == "aino"
    assert len(logged(polku, "Signal Claimed")) == 1
    error = post(polku, f"/v1/signals/{signal_id}/acknowledge", {"staff_id": "mikko"}, 409)
    assert error["error"]["code"] == "already_claimed"
    post(polku, f"/v1/signals/{signal_id}/close", {"staff_id": "aino"})
    error = post(polku, f"/v1/signals/{signal_id}/claim", {"staff_id": "mikko"}, 409)["error"]
    assert error["code"] == "signal_closed"


def test_of_staff_claiming_at_once_exactly_one_wins(polku: Polku) -> None:
    signal_id = routed(polku)

    def attempt(staff: str) -> str:
        try:
            actions.claim(polku.runtime, WS, signal_id, staff)
        except Conflict as exc:
            assert exc.code == "already_claimed"
            return "refused"
        return staff

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, [f"staff-{i}" for i in range(8)]))
    winners = [r for r in results if r != "refused"]
    assert len(winners) == 1
    [claim] = logged(polku, "Signal Claimed")
    assert claim["properties"]["staff_id"] == winners[0]


def test_bad_decisions_are_4xx_with_a_code(polku: Polku) -> None:
    signal_id = routed(polku)
    error = post(polku, f"/v1/signals/{signal_id}/acknowledge", None, 409)["error"]
    assert error["code"] == "not_claimed"
    error = post(polku, f"/v1/signals/{signal_id}/outcome", {"outcome": "maybe"}, 400)["error"]
    assert error["code"] == "invalid_outcome" and error["field"] == "outcome"
    assert "not_interested" in error["hint"]
    assert post(polku, "/v1/signals/999999/claim", {"staff_id": "a"}, 404)["error"]["code"] == (
        "unknown_signal"
    )
    error = post(polku, f"/v1/signals/{signal_id}/claim", {"staff_id": ""}, 400)["error"]
    assert error["field"] == "staff_id"
    assert post(polku, f"/v1/signals/{signal_id}/claim", {}, 400)["error"]["field"] == "staff_id"
    assert post(polku, "/v1/signals/abc/claim", {"staff_id": "a"}, 400)["error"]["code"]


def test_a_signal_converts_when_the_person_orders_within_the_window(polku: Polku) -> None:
    buyer = person(polku, "cust-7")
    other = person(polku, "cust-8")
    routed(polku, profile_id=buyer, kind="t_intent", at_ms=ms("2026-11-02T10:00:00+02:00"))
    routed(polku, profile_id=buyer, kind="t_cart", at_ms=ms("2026-11-20T10:00:00+02:00"))
    routed(polku, profile_id=other, kind="t_intent", at_ms=ms("2026-11-02T10:00:00+02:00"))
    order(polku, "cust-7", "POS-1", "2026-11-05T15:00:00+02:00", channel="store")
    order(polku, "cust-8", "W-9", "2026-11-20T15:00:00+02:00")  # too late for its signal

    def conversions(**params: Any) -> Any:
        # November only: the pipeline's own scoring may raise signals on these events too.
        window = {"since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z", **params}
        response = polku.client.get("/v1/signals/conversions", params=window, headers=polku.admin)
        assert response.status_code == 200, response.text
        return response.json()

    body = conversions()
    assert body["days"] == 7 and body["until"] == "2026-12-01T00:00:00.000Z"
    assert body["total"] == {"signals": 3, "conversions": 1, "rate": round(1 / 3, 4)}
    kinds = {k["kind"]: k for k in body["by_kind"]}
    assert kinds["t_intent"] == {"kind": "t_intent", "signals": 2, "conversions": 1, "rate": 0.5}
    assert kinds["t_cart"]["conversions"] == 0
    queues = {q["queue"]: q for q in body["by_queue"]}
    assert queues["automation"] == {"queue": "automation", **body["total"]}
    assert {r["rule"] for r in body["by_rule"]} >= {"journeys"}
    assert conversions(days=30)["total"]["conversions"] == 2  # cust-8's order is 18 days on
    assert conversions(since="2026-11-10T00:00:00Z")["total"]["signals"] == 1
    bad = polku.client.get("/v1/signals/conversions", params={"since": "soon"}, headers=polku.admin)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "since"


def test_a_claimed_customer_is_suppressed_until_the_hold_time_after_closing(polku: Polku) -> None:
    config = {"rules": [{"name": "all", "to": "automation"}], "hold_hours": 2}
    assert polku.client.put("/v1/signals/routing", json=config, headers=polku.admin).is_success
    profile = person(polku, "cust-9")
    signal_id = routed(polku, profile_id=profile)
    with polku.runtime.engine.connect() as conn:
        assert is_suppressed(conn, WS, profile, ms("2026-11-02T12:00:00+02:00")) is None
    claimed = actions.claim(polku.runtime, WS, signal_id, "aino")
    assert claimed.claimed_at is not None
    now = claimed.claimed_at
    with polku.runtime.engine.connect() as conn:
        held = is_suppressed(conn, WS, profile, now + 1)
        assert held is not None and held.staff_id == "aino" and held.until is None
        assert is_suppressed(conn, WS, profile, now - 1) is None  # before the claim
    closed = actions.close(polku.runtime, WS, signal_id)
    assert closed.closed_at is not None
    end = closed.closed_at
    with polku.runtime.engine.connect() as conn:
        after = is_suppressed(conn, WS, profile, end + 3_600_000)
        assert after is not None and after.until == end + 2 * 3_600_000
        assert is_suppressed(conn, WS, profile, end + 2 * 3_600_000 + 1) is None
    response = polku.client.get(
        f"/v1/profiles/{profile}/suppression",
        params={"at": str(end + 60_000)},
        headers=polku.admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["suppressed"] is True and body["staff_id"] == "aino"
    assert body["signal_id"] == signal_id and body["until"]
    later = polku.client.get(
        f"/v1/profiles/{profile}/suppression",
        params={"at": str(end + 3 * 3_600_000)},
        headers=polku.admin,
    )
    assert later.json() == {"suppressed": False, "profile_id": profile}


@pytest.mark.parametrize("at", ["yesterday", "-5"])
def test_suppression_refuses_bad_input(polku: Polku, at: str) -> None:
    profile = person(polku, "cust-10")
    response = polku.client.get(
        f"/v1/profiles/{profile}/suppression", params={"at": at}, headers=polku.admin
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "at"
    unknown = polku.client.get("/v1/profiles/p-nobody/suppression", headers=polku.admin)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_profile"


def test_concurrent_outcomes_and_closes_take_turns(polku: Polku) -> None:
    signal_id = routed(polku)
    actions.claim(polku.runtime, WS, signal_id, "aino")
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda i: actions.record_outcome(polku.runtime, WS, signal_id, "contacted"),
                range(6),
            )
        )
        list(pool.map(lambda _: actions.close(polku.runtime, WS, signal_id), range(4)))
    assert len(logged(polku, "Signal Outcome Recorded")) == 6
    assert len(logged(polku, "Signal Closed")) == 1
