"""Undoing a wrong merge through the API: identifiers and events go back, both profiles are
recomputed, and the two are never merged again."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

from conftest import Polku
from polku.identity.actions import request_unmerge
from polku.identity.queries import event_profile

_clock = itertools.count(1)


def at() -> str:
    """A fresh, strictly increasing event time."""
    seconds = next(_clock)
    return f"2026-04-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"


def send(polku: Polku, kind: str, **message: Any) -> str:
    message.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    message.setdefault("timestamp", at())
    response = polku.send(f"/v1/{kind}", message)
    assert response.status_code == 200, response.text
    return str(message["messageId"])


def workspace(polku: Polku) -> str:
    source = polku.runtime.keys.source(polku.write_key)
    assert source is not None
    return source.workspace_id


def profile_of(polku: Polku, message_id: str) -> str:
    polku.settle()
    with polku.runtime.engine.connect() as conn:
        found = event_profile(conn, workspace(polku), message_id)
    assert found is not None, f"event {message_id} is not attributed to any profile"
    return found


def identifiers(polku: Polku, profile_id: str) -> dict[str, list[str]]:
    polku.settle()
    response = polku.client.get(f"/v1/profiles/{profile_id}/identifiers", headers=polku.admin)
    assert response.status_code == 200, response.text
    return {k: [i["value"] for i in v] for k, v in response.json()["identifiers"].items()}


def ledger(polku: Polku, profile_id: str) -> list[dict[str, Any]]:
    polku.settle()
    response = polku.client.get(f"/v1/profiles/{profile_id}/merges", headers=polku.admin)
    assert response.status_code == 200, response.text
    merges: list[dict[str, Any]] = response.json()["merges"]
    return merges


def profile(polku: Polku, profile_id: str) -> dict[str, Any]:
    """GET /v1/profiles/{id}: traits, counters and channels as the profiles consumer keeps them."""
    polku.settle()
    response = polku.client.get(f"/v1/profiles/{profile_id}", headers=polku.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def timeline(polku: Polku, profile_id: str) -> set[str]:
    """The messageIds on a profile's timeline."""
    polku.settle()
    response = polku.client.get(f"/v1/profiles/{profile_id}/timeline", headers=polku.admin)
    assert response.status_code == 200, response.text
    return {event["message_id"] for event in response.json()["events"]}


def unmerge(polku: Polku, merge_id: str, reason: str | None = None) -> Any:
    """POST the un-merge; without a reason the request has no body at all (it is optional)."""
    path = f"/v1/identity/merges/{merge_id}/unmerge"
    if reason is None:
        return polku.client.post(path, headers=polku.admin)
    return polku.client.post(path, json={"reason": reason}, headers=polku.admin)


def receipt(polku: Polku, number: str, email: str, card: str) -> str:
    """A till receipt with the customer's receipt email and loyalty card."""
    return send(
        polku,
        "track",
        anonymousId="till-2-session",
        event="POS Order Completed",
        context={"channel": "store", "device": {"id": "till-2", "type": "pos"}},
        properties={
            "store_id": "tre-1",
            "receipt_id": number,
            "receipt_email": email,
            "loyalty_card": card,
            "total": 12.5,
            "currency": "EUR",
        },
    )


def test_a_shared_loyalty_card_merge_is_undone(polku: Polku) -> None:
    # Anna holds the family's loyalty card; Ben, her partner, uses it at the till.
    anna_login = send(
        polku,
        "identify",
        userId="anna",
        anonymousId="anna-web",
        traits={"first_name": "Anna", "email": "anna@koti.fi", "loyalty_card": "LC-42"},
    )
    anna_order = send(
        polku,
        "track",
        userId="anna",
        event="Order Completed",
        properties={"order_id": "o-1", "total": 30, "currency": "EUR"},
        context={"channel": "web"},
    )
    ben_signup = send(
        polku,
        "identify",
        anonymousId="ben-web",
        traits={"first_name": "Ben", "email": "ben@koti.fi"},
    )
    ben_page = send(polku, "page", anonymousId="ben-web", name="Offers")
    anna = profile_of(polku, anna_login)
    ben = profile_of(polku, ben_signup)
    assert profile(polku, anna)["event_count"] == 2

    evidence = receipt(polku, "r-1", "ben@koti.fi", "LC42")
    # The receipt email is Ben's and outranks the card: Anna's profile is merged into Ben's.
    assert profile_of(polku, evidence) == ben
    assert profile_of(polku, anna_order) == ben
    [merge] = ledger(polku, ben)
    assert (merge["winner_id"], merge["loser_id"]) == (ben, anna)
    merged = profile(polku, ben)
    assert (merged["event_count"], merged["order_count"]) == (5, 2)
    assert profile(polku, anna)["redirected_from"] == anna
    assert profile(polku, anna)["profile_id"] == ben

    response = unmerge(polku, merge["merge_id"], reason="the family shares one card")
    assert response.status_code == 200, response.text
    # The un-merge is an event in the log, keyed by the profile that gets its life back.
    [logged] = polku.client.get(
        "/v1/debugger/events", params={"limit": 1}, headers=polku.admin
    ).json()["events"]
    assert logged["type"] == "polku.unmerge"
    assert logged["message"]["properties"] == {
        "merge_id": merge["merge_id"],
        "requested_by": "admin_api",
        "reason": "the family shares one card",
    }
    body = response.json()
    assert body["status"] == "undone"
    assert body["merge"]["undone"] is True and body["merge"]["undone_at"] is not None
    assert body["winner"]["profile_id"] == ben
    assert body["loser"]["profile_id"] == anna
    assert body["winner"]["identifiers"].keys() == {"email", "anonymous_id"}
    assert [i["value"] for i in body["winner"]["identifiers"]["email"]] == ["ben@koti.fi"]
    assert identifiers(polku, anna) == {
        "user_id": ["anna"],
        "email": ["anna@koti.fi"],
        "loyalty_card": ["LC42"],
        "anonymous_id": ["anna-web"],
    }

    # Anna's own events are hers again; the receipt that caused the merge stays with Ben.
    assert timeline(polku, anna) == {anna_login, anna_order}
    assert timeline(polku, ben) == {ben_signup, ben_page, evidence}

    # Both profiles are recomputed from their own events.
    anna_now, ben_now = profile(polku, anna), profile(polku, ben)
    assert anna_now["profile_id"] == anna and anna_now["redirected_from"] is None
    assert ben_now["profile_id"] == ben
    assert (anna_now["event_count"], anna_now["order_count"]) == (2, 1)
    assert (ben_now["event_count"], ben_now["order_count"]) == (3, 1)
    assert anna_now["traits"] == {
        "first_name": "Anna",
        "email": "anna@koti.fi",
        "loyalty_card": "LC-42",
    }
    assert ben_now["traits"] == {"first_name": "Ben", "email": "ben@koti.fi"}
    assert anna_now["channels"] == {"web": 1}
    assert ben_now["channels"] == {"store": 1}

    # Ben uses the card again: the receipt is his, but the two are not merged again.
    again = receipt(polku, "r-2", "ben@koti.fi", "LC-42")
    assert profile_of(polku, again) == ben
    assert profile(polku, ben)["event_count"] == 4
    assert profile(polku, anna)["event_count"] == 2
    assert identifiers(polku, anna)["loyalty_card"] == ["LC42"]
    assert "loyalty_card" not in identifiers(polku, ben)
    assert [m["merge_id"] for m in ledger(polku, ben)] == [merge["merge_id"]]

    # The ledger keeps the merge, marked undone; undoing it again is a conflict.
    stored = polku.client.get(f"/v1/identity/merges/{merge['merge_id']}", headers=polku.admin)
    assert stored.json()["undone"] is True
    twice = unmerge(polku, merge["merge_id"])
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "conflict"
    assert merge["merge_id"] in twice.json()["error"]["message"]


def test_an_identify_with_the_wrong_anonymous_id_is_undone(polku: Polku) -> None:
    own_page = send(polku, "page", anonymousId="laptop-1", name="Home")
    send(polku, "identify", userId="user-9", anonymousId="laptop-1", traits={"plan": "gold"})
    stranger_page = send(
        polku,
        "page",
        anonymousId="laptop-2",
        name="Shoes",
        context={"channel": "web", "traits": {"shoe_size": 44}},
    )
    owner = profile_of(polku, own_page)
    stranger = profile_of(polku, stranger_page)

    # A support tool identifies user-9 on the wrong browser...
    wrong = send(polku, "identify", userId="user-9", anonymousId="laptop-2")
    # ...and the stranger keeps browsing, now attributed to user-9.
    stranger_later = send(polku, "page", anonymousId="laptop-2", name="Cart")
    assert profile_of(polku, stranger_later) == owner
    assert profile(polku, owner)["traits"]["shoe_size"] == 44
    [merge] = ledger(polku, owner)
    assert merge["evidence"]["message_id"] == wrong

    response = unmerge(polku, merge["merge_id"])
    assert response.status_code == 200, response.text
    assert [i["value"] for i in response.json()["loser"]["identifiers"]["anonymous_id"]] == [
        "laptop-2"
    ]

    # The stranger's pages are theirs again, also the one seen after the merge.
    assert timeline(polku, stranger) == {stranger_page, stranger_later}
    assert wrong in timeline(polku, owner)
    owner_now, stranger_now = profile(polku, owner), profile(polku, stranger)
    assert owner_now["event_count"] == 3
    assert stranger_now["event_count"] == 2
    assert owner_now["traits"] == {"plan": "gold"}
    assert stranger_now["traits"] == {"shoe_size": 44}

    # The same wrong link again does not merge them; the stranger's browser stays theirs.
    repeated = send(polku, "identify", userId="user-9", anonymousId="laptop-2")
    assert profile_of(polku, repeated) == owner
    assert identifiers(polku, owner) == {"user_id": ["user-9"], "anonymous_id": ["laptop-1"]}
    assert profile_of(polku, send(polku, "page", anonymousId="laptop-2")) == stranger
    assert len(ledger(polku, owner)) == 1


def test_unmerging_an_unknown_merge_is_not_found(polku: Polku) -> None:
    response = unmerge(polku, "mg_000000000000000000000000")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["field"] == "merge_id"
    assert "hint" in error
    head = polku.runtime.log.head()
    assert head == 0  # nothing was appended to the log


def test_unmerge_needs_an_admin_token(polku: Polku) -> None:
    response = polku.client.post("/v1/identity/merges/mg_x/unmerge", json={})
    assert response.status_code == 401


def test_profiles_kept_apart_stay_apart_after_one_of_them_is_merged_further(
    polku: Polku,
) -> None:
    a_signup = send(polku, "identify", anonymousId="a-web", traits={"email": "a@koti.fi"})
    b_signup = send(polku, "identify", anonymousId="b-web", traits={"email": "b@koti.fi"})
    a, b = profile_of(polku, a_signup), profile_of(polku, b_signup)
    # A newsletter form on B's browser typed with A's address: B is merged into A, wrongly.
    send(
        polku,
        "track",
        anonymousId="b-web",
        event="Newsletter Signed Up",
        properties={"email": "a@koti.fi"},
    )
    [wrong] = ledger(polku, a)
    assert unmerge(polku, wrong["merge_id"]).status_code == 200

    # A signs in: A's profile is merged into the signed-in user's profile (rightly)...
    zed_login = send(polku, "identify", userId="zed", anonymousId="z-web")
    zed = profile_of(polku, zed_login)
    send(polku, "identify", userId="zed", anonymousId="a-web")
    assert profile_of(polku, a_signup) == zed
    # ...and that user is now linked to B's browser: still the person B was kept apart from.
    link = send(polku, "identify", userId="zed", anonymousId="b-web")
    assert profile_of(polku, link) == zed
    assert profile_of(polku, b_signup) == b
    assert identifiers(polku, b) == {"email": ["b@koti.fi"], "anonymous_id": ["b-web"]}
    assert [m["merge_id"] for m in ledger(polku, b)] == [wrong["merge_id"]]


def test_two_racing_unmerge_requests_are_applied_once(polku: Polku) -> None:
    owner = profile_of(polku, send(polku, "identify", userId="u-r", anonymousId="r-1"))
    other = send(polku, "page", anonymousId="r-2")
    stranger = profile_of(polku, other)
    send(polku, "identify", userId="u-r", anonymousId="r-2")
    [merge] = ledger(polku, owner)

    # Both requests are validated before the pipeline applies either of them.
    polku.runtime.pipeline.stop()
    for _ in range(2):
        receipt = asyncio.run(
            request_unmerge(polku.runtime, workspace(polku), merge["merge_id"], "test", "race")
        )
    polku.runtime.pipeline.start()
    assert asyncio.run(polku.runtime.progress.wait_for(receipt))

    failures = polku.client.get(
        "/v1/debugger/rejections", params={"code": "pipeline_failed"}, headers=polku.admin
    ).json()["rejections"]
    assert failures == []
    assert profile_of(polku, other) == stranger
    assert identifiers(polku, stranger) == {"anonymous_id": ["r-2"]}
    assert profile(polku, owner)["event_count"] == 2
    assert profile(polku, stranger)["event_count"] == 1
