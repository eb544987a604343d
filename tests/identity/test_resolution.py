"""Identity resolution end to end: events in through the collection API, the identity graph
out through the identity API (identifiers, merge ledger) and the event -> profile attribution.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from conftest import Polku
from polku.identity.queries import event_profile

_clock = itertools.count(1)


def at() -> str:
    """A fresh, strictly increasing event time, so every event's time is distinct and known."""
    seconds = next(_clock)
    return f"2026-03-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"


def send(polku: Polku, kind: str, **message: Any) -> str:
    """Send one message to /v1/{kind}; return its messageId."""
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
    """The profile an event is attributed to, after the pipeline has caught up."""
    polku.settle()
    with polku.runtime.engine.connect() as conn:
        found = event_profile(conn, workspace(polku), message_id)
    assert found is not None, f"event {message_id} is not attributed to any profile"
    return found


def identifiers(polku: Polku, profile_id: str) -> dict[str, list[str]]:
    polku.settle()
    response = polku.client.get(f"/v1/profiles/{profile_id}/identifiers", headers=polku.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    return {kind: [i["value"] for i in found] for kind, found in body["identifiers"].items()}


def ledger(polku: Polku, profile_id: str) -> list[dict[str, Any]]:
    polku.settle()
    response = polku.client.get(f"/v1/profiles/{profile_id}/merges", headers=polku.admin)
    assert response.status_code == 200, response.text
    merges: list[dict[str, Any]] = response.json()["merges"]
    return merges


# --- joining ---------------------------------------------------------------------------------


def test_anonymous_browsing_joins_the_login(polku: Polku) -> None:
    browsing = send(
        polku,
        "page",
        anonymousId="anon-1",
        name="Home",
        context={"channel": "web", "page": {"path": "/"}},
    )
    viewed = send(
        polku,
        "track",
        anonymousId="anon-1",
        event="Product Viewed",
        properties={"product_id": "sku-1"},
    )
    login = send(
        polku,
        "identify",
        userId="user-1",
        anonymousId="anon-1",
        traits={"email": "anna@kauppa.fi"},
    )
    after = send(polku, "track", userId="user-1", event="Cart Viewed")

    profile = profile_of(polku, browsing)
    assert {profile_of(polku, m) for m in (viewed, login, after)} == {profile}
    assert identifiers(polku, profile) == {
        "user_id": ["user-1"],
        "email": ["anna@kauppa.fi"],
        "anonymous_id": ["anon-1"],
    }
    assert ledger(polku, profile) == []  # attaching identifiers is not a merge


def test_the_same_user_on_two_devices_merges_into_one_profile_with_evidence(
    polku: Polku,
) -> None:
    laptop = send(polku, "page", anonymousId="laptop", name="Home")
    phone = send(polku, "page", anonymousId="phone", name="Home")
    assert profile_of(polku, laptop) != profile_of(polku, phone)
    phone_profile = profile_of(polku, phone)

    send(polku, "identify", userId="user-2", anonymousId="laptop")
    evidence = send(polku, "identify", userId="user-2", anonymousId="phone")

    survivor = profile_of(polku, evidence)
    assert survivor == profile_of(polku, laptop) == profile_of(polku, phone)
    assert identifiers(polku, survivor) == {
        "user_id": ["user-2"],
        "anonymous_id": ["laptop", "phone"],
    }
    [merge] = ledger(polku, survivor)
    assert merge["winner_id"] == survivor
    assert merge["loser_id"] == phone_profile
    assert merge["evidence"]["message_id"] == evidence
    assert merge["identifiers"] == [{"type": "anonymous_id", "value": "phone"}]
    assert "anonymous_id" in merge["reason"] and "phone" in merge["reason"]
    assert merge["undone"] is False
    # The merged profile's ledger shows the same entry, and its id now resolves to the survivor.
    assert ledger(polku, phone_profile) == [merge]
    response = polku.client.get(f"/v1/profiles/{phone_profile}/identifiers", headers=polku.admin)
    assert response.json()["profile_id"] == survivor
    assert response.json()["requested_id"] == phone_profile
    one = polku.client.get(f"/v1/identity/merges/{merge['merge_id']}", headers=polku.admin)
    assert one.status_code == 200
    assert one.json() == merge


def test_a_till_receipt_joins_the_profile_holding_its_loyalty_card_or_email(
    polku: Polku,
) -> None:
    online = send(
        polku,
        "identify",
        userId="user-3",
        anonymousId="anon-3",
        traits={"email": "Pekka@Kauppa.fi", "loyalty_card": "1234 5678-90"},
    )
    till = {"id": "till-07", "type": "pos"}
    by_card = send(
        polku,
        "track",
        anonymousId="till-07-session",
        event="POS Order Completed",
        context={"channel": "store", "device": till},
        properties={"store_id": "hki-1", "receipt_id": "r-1", "loyalty_card": "1234567890"},
    )
    by_email = send(
        polku,
        "track",
        anonymousId="till-07-session",
        event="POS Order Completed",
        context={"channel": "store", "device": till},
        properties={"store_id": "hki-1", "receipt_id": "r-2", "receipt_email": "pekka@kauppa.fi"},
    )
    profile = profile_of(polku, online)
    assert profile_of(polku, by_card) == profile
    assert profile_of(polku, by_email) == profile
    # The till's device id and session are never attached to a person.
    found = identifiers(polku, profile)
    assert "device_id" not in found
    assert found["anonymous_id"] == ["anon-3"]


def test_two_users_on_one_browser_never_merge(polku: Polku) -> None:
    first = send(polku, "identify", userId="user-a", anonymousId="family-pc")
    second = send(polku, "identify", userId="user-b", anonymousId="family-pc")
    later = send(polku, "track", userId="user-b", anonymousId="family-pc", event="Cart Viewed")

    profile_a, profile_b = profile_of(polku, first), profile_of(polku, second)
    assert profile_a != profile_b
    assert profile_of(polku, later) == profile_b
    assert identifiers(polku, profile_a) == {
        "user_id": ["user-a"],
        "anonymous_id": ["family-pc"],
    }
    assert identifiers(polku, profile_b) == {"user_id": ["user-b"]}
    assert ledger(polku, profile_a) == ledger(polku, profile_b) == []


def test_a_shared_device_never_joins_two_people(polku: Polku) -> None:
    kiosk = {"id": "kiosk-3", "type": "pos"}
    tablet = {"id": "tablet-9", "type": "phone", "shared": True}
    anna = send(
        polku,
        "identify",
        anonymousId="kiosk-browser",
        traits={"email": "anna@kauppa.fi"},
        context={"device": kiosk},
    )
    ben = send(
        polku,
        "identify",
        anonymousId="kiosk-browser",
        traits={"email": "ben@kauppa.fi"},
        context={"device": kiosk},
    )
    cecilia = send(
        polku,
        "identify",
        anonymousId="tablet-browser",
        traits={"email": "cecilia@kauppa.fi"},
        context={"device": tablet},
    )
    dan = send(
        polku,
        "identify",
        anonymousId="tablet-browser",
        traits={"email": "dan@kauppa.fi"},
        context={"device": tablet},
    )
    profiles = [profile_of(polku, m) for m in (anna, ben, cecilia, dan)]
    assert len(set(profiles)) == 4
    for profile, email in zip(profiles, ["anna", "ben", "cecilia", "dan"], strict=True):
        assert identifiers(polku, profile) == {"email": [f"{email}@kauppa.fi"]}


def test_junk_values_never_join_people(polku: Polku) -> None:
    sent = [
        send(
            polku,
            "identify",
            userId="undefined",
            anonymousId=f"anon-junk-{n}",
            traits={"email": "test@example.com", "phone": "null", "loyalty_card": "0000"},
        )
        for n in range(3)
    ]
    sent.append(send(polku, "track", userId="null", anonymousId="anon-junk-9", event="Cart Viewed"))
    profiles = [profile_of(polku, m) for m in sent]
    assert len(set(profiles)) == 4
    assert identifiers(polku, profiles[0]) == {"anonymous_id": ["anon-junk-0"]}
    for profile in profiles:
        assert ledger(polku, profile) == []


def test_emails_and_phones_are_normalised_before_matching(polku: Polku) -> None:
    by_email = send(polku, "identify", anonymousId="e-1", traits={"email": " Anna@Kauppa.FI "})
    same_email = send(polku, "identify", anonymousId="e-1", traits={"email": "anna@kauppa.fi"})
    other_device = send(
        polku,
        "track",
        anonymousId="e-2",
        event="Newsletter Signed Up",
        properties={"email": "ANNA@kauppa.fi"},
    )
    by_phone = send(polku, "identify", anonymousId="p-1", traits={"phone": "040 123 4567"})
    same_phone = send(polku, "identify", anonymousId="p-2", traits={"phone": "+358 40 1234567"})

    email_profile = profile_of(polku, by_email)
    assert profile_of(polku, same_email) == email_profile
    assert profile_of(polku, other_device) == email_profile
    assert identifiers(polku, email_profile)["email"] == ["anna@kauppa.fi"]

    phone_profile = profile_of(polku, by_phone)
    assert profile_of(polku, same_phone) == phone_profile
    assert identifiers(polku, phone_profile) == {
        "phone": ["+358401234567"],
        "anonymous_id": ["p-1", "p-2"],
    }


def test_the_stronger_identifier_decides_which_profile_survives(polku: Polku) -> None:
    # The email profile is older, but the userId outranks the email: its profile survives.
    older = send(polku, "identify", anonymousId="old-browser", traits={"email": "eve@kauppa.fi"})
    email_profile = profile_of(polku, older)
    newer = send(polku, "identify", userId="user-eve", anonymousId="new-browser")
    user_profile = profile_of(polku, newer)
    evidence = send(
        polku,
        "track",
        userId="user-eve",
        event="Newsletter Signed Up",
        properties={"email": "eve@kauppa.fi"},
    )
    assert profile_of(polku, evidence) == user_profile
    assert profile_of(polku, older) == user_profile
    [merge] = ledger(polku, user_profile)
    assert (merge["winner_id"], merge["loser_id"]) == (user_profile, email_profile)
    assert merge["evidence"]["message_id"] == evidence
    assert identifiers(polku, user_profile) == {
        "user_id": ["user-eve"],
        "email": ["eve@kauppa.fi"],
        "anonymous_id": ["old-browser", "new-browser"],
    }


# --- the identity API ------------------------------------------------------------------------


def test_identity_routes_need_an_admin_token_and_name_unknown_ids(polku: Polku) -> None:
    for path in (
        "/v1/profiles/p_nobody/identifiers",
        "/v1/profiles/p_nobody/merges",
        "/v1/identity/merges/mg_nothing",
    ):
        assert polku.client.get(path).status_code == 401
        response = polku.client.get(path, headers=polku.admin)
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "not_found"
        assert "p_nobody" in error["message"] or "mg_nothing" in error["message"]
    spec = polku.client.get("/openapi.json").json()
    documented = spec["paths"]["/v1/identity/merges/{merge_id}/unmerge"]["post"]
    assert documented["tags"] == ["identity"]
    assert "Undo a wrong merge" in documented["description"]
