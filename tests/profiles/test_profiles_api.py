"""The profiles API through HTTP: one shopper on the web, in the app and at a store till
becomes one profile, readable by id (also a merged id), identifier, search and timeline,
with last-write-wins traits and consent that carries its evidence."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from conftest import Polku
from polku.access.actions import create_admin_token, create_workspace, hash_token
from polku.access.tables import admin_tokens
from polku.identity.tables import identifiers as identifiers_table
from polku.storage.engine import writing

EMAIL = "Anna.Virtanen@Example.fi"


def ts(hour: int, minute: int = 0) -> str:
    return f"2026-03-01T{hour:02d}:{minute:02d}:00.000Z"


def batch(polku: Polku, *messages: dict[str, Any]) -> None:
    for message in messages:
        message.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    response = polku.send("/v1/batch", {"batch": list(messages)})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": len(messages)}, response.text
    polku.settle()


def get(polku: Polku, path: str, **params: Any) -> Any:
    response = polku.client.get(path, params=params, headers=polku.admin)
    assert response.status_code == 200, response.text
    return response.json()


def error(polku: Polku, path: str, status: int, **params: Any) -> dict[str, Any]:
    response = polku.client.get(path, params=params, headers=polku.admin)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


def lookup(polku: Polku, kind: str, value: str) -> str:
    found: str = get(polku, "/v1/profiles/lookup", type=kind, value=value)["profile_id"]
    return found


def web_session(polku: Polku) -> None:
    """An anonymous visitor browses the web shop."""
    batch(
        polku,
        {
            "type": "page",
            "anonymousId": "a1",
            "name": "Home",
            "timestamp": ts(9),
            "context": {"channel": "web", "page": {"path": "/"}},
        },
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": "a1",
            "properties": {"product_id": "sku-1", "name": "Rain jacket", "price": 89.0},
            "timestamp": ts(9, 1),
            "context": {"channel": "web"},
        },
    )


def app_login(polku: Polku) -> None:
    """The same person signs in on the app, with an email, a phone and a consent answer."""
    batch(
        polku,
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a2",
            "timestamp": ts(10),
            "context": {"channel": "app"},
            "traits": {
                "email": EMAIL,
                "name": "Anna Virtanen",
                "phone": "+358 40 123 4567",
                "consent": {"marketing": {"email": True}},
            },
        },
        {
            "type": "track",
            "event": "Product Added",
            "userId": "u1",
            "anonymousId": "a2",
            "properties": {"product_id": "sku-1", "quantity": 1},
            "timestamp": ts(10, 5),
            "context": {"channel": "app"},
        },
    )


def till_receipt(polku: Polku, *, at: str, receipt: str, **customer: Any) -> None:
    """A receipt from a store till (a shared device: its session id joins nobody)."""
    batch(
        polku,
        {
            "type": "track",
            "event": "POS Order Completed",
            "anonymousId": "till-7-session",
            "timestamp": at,
            "context": {"channel": "store", "device": {"id": "till-7", "type": "pos"}},
            "properties": {
                "store_id": "HEL-01",
                "receipt_id": receipt,
                "total": 59.9,
                "currency": "EUR",
                **customer,
            },
        },
    )


def tie_web_to_user(polku: Polku) -> None:
    """The person signs in on the web shop: the anonymous browser becomes theirs."""
    batch(
        polku,
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "timestamp": ts(13),
            "context": {"channel": "web"},
        },
    )


def journey(polku: Polku) -> tuple[str, str]:
    """The whole story; returns (surviving profile, the web profile merged into it)."""
    web_session(polku)
    app_login(polku)
    till_receipt(
        polku,
        at=ts(12),
        receipt="R-1001",
        loyalty_card="1234 5678-90",
        email="anna.virtanen@example.fi",
    )
    web_profile = lookup(polku, "anonymous_id", "a1")
    person = lookup(polku, "user_id", "u1")
    assert web_profile != person
    tie_web_to_user(polku)
    return person, web_profile


def test_one_person_across_web_app_and_store(polku: Polku) -> None:
    person, web_profile = journey(polku)

    profile = get(polku, f"/v1/profiles/{person}")
    assert profile["profile_id"] == person
    assert profile["redirected_from"] is None
    ids = {kind: [i["value"] for i in found] for kind, found in profile["identifiers"].items()}
    assert ids == {
        "user_id": ["u1"],
        "email": ["anna.virtanen@example.fi"],
        "phone": ["+358401234567"],
        "loyalty_card": ["1234567890"],
        "anonymous_id": ["a1", "a2"],
    }
    assert list(profile["identifiers"]) == [  # strongest type first
        "user_id",
        "email",
        "phone",
        "loyalty_card",
        "anonymous_id",
    ]
    assert profile["traits"] == {
        "email": EMAIL,
        "name": "Anna Virtanen",
        "phone": "+358 40 123 4567",
    }
    assert profile["channels"] == {"web": 3, "app": 2, "store": 1}
    assert profile["event_count"] == 6
    assert profile["order_count"] == 1
    assert profile["first_seen"] == ts(9)
    assert profile["last_seen"] == ts(13)

    # the anonymous web profile was merged: its id still answers, with the survivor
    merged = get(polku, f"/v1/profiles/{web_profile}")
    assert merged["profile_id"] == person
    assert merged["redirected_from"] == web_profile
    assert merged["traits"] == profile["traits"]

    page = get(polku, f"/v1/profiles/{web_profile}/timeline")
    assert page["profile_id"] == person
    assert page["redirected_from"] == web_profile
    assert len(page["events"]) == 6


def test_a_profile_created_and_merged_in_one_batch_still_resolves(polku: Polku) -> None:
    # one request, so the pipeline sees the anonymous profile and its merge in one batch
    batch(
        polku,
        {"type": "page", "anonymousId": "a1", "timestamp": ts(9), "context": {"channel": "web"}},
        {"type": "identify", "userId": "u1", "anonymousId": "a2", "timestamp": ts(10)},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "timestamp": ts(11)},
    )
    person = lookup(polku, "user_id", "u1")
    merges = get(polku, f"/v1/profiles/{person}/merges")["merges"]
    assert len(merges) == 1
    web_profile = merges[0]["loser_id"]
    for path in ("", "/timeline", "/consent"):
        found = get(polku, f"/v1/profiles/{web_profile}{path}")
        assert found["profile_id"] == person, path
        assert found["redirected_from"] == web_profile, path
    assert get(polku, f"/v1/profiles/{person}")["event_count"] == 3


def test_timeline_has_every_channel_newest_first_and_filters(polku: Polku) -> None:
    person, _ = journey(polku)
    path = f"/v1/profiles/{person}/timeline"

    events = get(polku, path)["events"]
    assert [(e["channel"], e["type"], e["event"]) for e in events] == [
        ("web", "identify", None),
        ("store", "track", "POS Order Completed"),
        ("app", "track", "Product Added"),
        ("app", "identify", None),
        ("web", "track", "Product Viewed"),
        ("web", "page", "Home"),
    ]
    assert [e["timestamp"] for e in events] == [ts(13), ts(12), ts(10, 5), ts(10), ts(9, 1), ts(9)]
    receipt = events[1]
    assert receipt["store_id"] == "HEL-01"
    assert receipt["message"]["properties"]["receipt_id"] == "R-1001"
    assert receipt["message"]["messageId"] == receipt["message_id"]
    assert receipt["received_at"].endswith("Z")

    def kinds(**params: Any) -> list[str | None]:
        return [e["event"] or e["type"] for e in get(polku, path, **params)["events"]]

    assert kinds(channel="store") == ["POS Order Completed"]
    both = ["identify", "Product Added", "identify", "Product Viewed", "Home"]
    assert kinds(channel=["web", "app"]) == both
    assert kinds(channel="web,app") == both
    assert kinds(event="Product Viewed") == ["Product Viewed"]
    assert kinds(event=["Product Viewed", "Product Added"]) == ["Product Added", "Product Viewed"]
    assert kinds(type="identify") == ["identify", "identify"]
    assert kinds(store_id="HEL-01") == ["POS Order Completed"]
    assert kinds(store_id="TKU-02") == []
    assert kinds(since=ts(10), until=ts(12)) == ["Product Added", "identify"]
    assert kinds(since="2026-03-01T12:00:00+00:00") == ["identify", "POS Order Completed"]
    epoch_ms = int(datetime(2026, 3, 1, 13, tzinfo=UTC).timestamp() * 1000)
    assert kinds(until=str(epoch_ms), channel="web") == ["Product Viewed", "Home"]


def test_timeline_pages_with_the_cursor(polku: Polku) -> None:
    person, _ = journey(polku)
    path = f"/v1/profiles/{person}/timeline"
    everything = [e["offset"] for e in get(polku, path)["events"]]

    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor is not None:
            params["cursor"] = cursor
        page = get(polku, path, **params)
        pages += 1
        seen.extend(e["offset"] for e in page["events"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # a receipt from a till that was offline arrives between pages, dated in the past
        if pages == 1:
            till_receipt(polku, at=ts(8), receipt="R-0999", loyalty_card="1234567890")
    assert pages == 2
    assert seen[:6] == everything
    assert len(seen) == 7  # the late receipt is older than all: it shows up on the last page
    assert seen[6] == max(seen)  # appended last, yet dated first

    # with a filter the cursor pages within the filtered events
    first = get(polku, path, limit=1, channel="store")
    assert first["events"][0]["message"]["properties"]["receipt_id"] == "R-1001"
    second = get(polku, path, limit=1, channel="store", cursor=first["next_cursor"])
    assert second["events"][0]["message"]["properties"]["receipt_id"] == "R-0999"
    assert second["next_cursor"] is None


def test_traits_are_last_write_wins_by_event_time(polku: Polku) -> None:
    batch(
        polku,
        {
            "type": "identify",
            "userId": "u1",
            "timestamp": ts(10),
            "traits": {"name": "Anna Virtanen", "city": "Helsinki"},
        },
    )
    # an older identify (a till that was offline) arrives later: it must not overwrite
    batch(
        polku,
        {
            "type": "identify",
            "userId": "u1",
            "timestamp": ts(8),
            "traits": {"name": "Anna V.", "city": "Espoo", "shoe_size": 38},
        },
    )
    person = lookup(polku, "user_id", "u1")
    profile = get(polku, f"/v1/profiles/{person}")
    assert profile["traits"] == {"name": "Anna Virtanen", "city": "Helsinki", "shoe_size": 38}
    assert profile["traits_updated_at"] == {"name": ts(10), "city": ts(10), "shoe_size": ts(8)}
    assert profile["first_seen"] == ts(8)
    assert profile["last_seen"] == ts(10)

    # a newer event does overwrite, also through context.traits of a track call
    batch(
        polku,
        {
            "type": "track",
            "event": "Store Visited",
            "userId": "u1",
            "timestamp": ts(11),
            "properties": {"store_id": "TKU-02"},
            "context": {"channel": "store", "traits": {"city": "Turku"}},
        },
    )
    traits = get(polku, f"/v1/profiles/{person}")["traits"]
    assert traits == {"name": "Anna Virtanen", "city": "Turku", "shoe_size": 38}


def test_consent_from_traits_and_from_the_api(polku: Polku) -> None:
    person, web_profile = journey(polku)
    consent = get(polku, f"/v1/profiles/{person}/consent")
    assert consent["profile_id"] == person
    email = consent["consent"]["marketing"]["email"]
    assert email["granted"] is True
    assert email["at"] == ts(10)
    assert email["source"] == "identify"
    assert email["source_id"] != ""  # the write key's source that sent the identify

    response = polku.client.put(
        f"/v1/profiles/{person}/consent",
        json={
            "purpose": "marketing",
            "channel": "sms",
            "granted": False,
            "source": "preference_centre",
        },
        headers=polku.admin,
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["status"] == "applied"
    assert changed["profile_id"] == person
    sms = changed["consent"]["marketing"]["sms"]
    assert sms["granted"] is False
    assert sms["source"] == "preference_centre"
    assert sms["message_id"].startswith("polku-consent-")
    assert sms["source_id"] == ""
    # stamped with the time it was received, like a collected event without a timestamp
    at = datetime.fromisoformat(sms["at"])
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60
    assert changed["consent"]["marketing"]["email"] == email

    assert get(polku, f"/v1/profiles/{person}/consent")["consent"] == changed["consent"]
    assert get(polku, f"/v1/profiles/{person}")["consent"] == changed["consent"]

    # the change is an event on the person's timeline, with its evidence
    events = get(polku, f"/v1/profiles/{person}/timeline", event="Consent Updated")["events"]
    assert len(events) == 1
    properties = events[0]["message"]["properties"]
    assert properties["purpose"] == "marketing"
    assert properties["channel"] == "sms"
    assert properties["granted"] is False
    assert properties["source"] == "preference_centre"
    assert events[0]["message"]["userId"] == "u1"

    # through a merged id, for every channel at once; the newest answer wins
    response = polku.client.put(
        f"/v1/profiles/{web_profile}/consent",
        json={"purpose": "personalisation", "granted": True},
        headers=polku.admin,
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["profile_id"] == person
    assert changed["redirected_from"] == web_profile
    everywhere = changed["consent"]["personalisation"]["*"]
    assert everywhere["granted"] is True
    assert everywhere["source"] == "api"

    # no identifier was added to the person by these events
    ids = get(polku, f"/v1/profiles/{person}/identifiers")["identifiers"]
    assert sorted(ids) == ["anonymous_id", "email", "loyalty_card", "phone", "user_id"]
    assert [i["value"] for i in ids["anonymous_id"]] == ["a1", "a2"]


def test_consent_for_a_profile_known_only_by_a_loyalty_card(polku: Polku) -> None:
    till_receipt(polku, at=ts(12), receipt="R-2000", loyalty_card="9999 0000 11")
    shopper = lookup(polku, "loyalty_card", "9999000011")
    response = polku.client.put(
        f"/v1/profiles/{shopper}/consent",
        json={"purpose": "marketing", "channel": "email", "granted": True, "source": "store"},
        headers=polku.admin,
    )
    assert response.status_code == 200, response.text
    assert response.json()["consent"]["marketing"]["email"]["source"] == "store"
    profile = get(polku, f"/v1/profiles/{shopper}")
    ids = {kind: [i["value"] for i in found] for kind, found in profile["identifiers"].items()}
    assert ids == {"loyalty_card": ["9999000011"]}
    assert profile["event_count"] == 2
    # the carrier id stands for a shared device: it never became anyone's identifier
    with polku.runtime.engine.connect() as conn:
        owners = conn.execute(
            select(identifiers_table.c.profile_id).where(
                identifiers_table.c.id_type == "anonymous_id"
            )
        ).all()
    assert owners == []


def test_consent_request_errors(polku: Polku) -> None:
    person, _ = journey(polku)
    path = f"/v1/profiles/{person}/consent"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"purpose": "marketing", "channel": "fax", "granted": True}, "channel"),
        ({"purpose": " ", "channel": "sms", "granted": True}, "purpose"),
        ({"purpose": "marketing", "channel": "sms", "granted": "yes"}, "granted"),
        ({"channel": "sms", "granted": True}, "purpose"),
        ({"purpose": "marketing", "granted": True, "source": "   "}, "source"),
    ]
    for body, field in cases:
        response = polku.client.put(path, json=body, headers=polku.admin)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_field"
        assert response.json()["error"]["field"] == field, response.text

    response = polku.client.put(
        "/v1/profiles/p_nobody/consent",
        json={"purpose": "marketing", "granted": True},
        headers=polku.admin,
    )
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "profile_id"
    # nothing was appended for the rejected requests
    events = get(polku, f"/v1/profiles/{person}/timeline", event="Consent Updated")["events"]
    assert events == []


def test_lookup_by_any_identifier_in_any_format(polku: Polku) -> None:
    person, _ = journey(polku)
    for kind, value in [
        ("email", "  ANNA.VIRTANEN@example.FI "),
        ("phone", "040 1234567"),
        ("phone", "+358401234567"),
        ("loyalty_card", "1234-5678 90"),
        ("user_id", "u1"),
        ("userId", "u1"),
        ("anonymous_id", "a2"),
    ]:
        found = get(polku, "/v1/profiles/lookup", type=kind, value=value)
        assert found["profile_id"] == person, (kind, value)
        assert found["traits"]["name"] == "Anna Virtanen"
    found = get(polku, "/v1/profiles/lookup", type="email", value=" ANNA.virtanen@EXAMPLE.fi")
    assert found["matched"] == {"type": "email", "value": "anna.virtanen@example.fi"}
    assert found["redirected_from"] is None


def test_lookup_errors_name_the_field(polku: Polku) -> None:
    journey(polku)
    path = "/v1/profiles/lookup"
    unknown = error(polku, path, 400, type="shoe_size", value="38")
    assert unknown["code"] == "invalid_field"
    assert unknown["field"] == "type"
    assert "email" in unknown["hint"]
    assert error(polku, path, 400, type="email")["field"] == "value"
    assert error(polku, path, 400, value="x")["field"] == "type"
    junk = error(polku, path, 400, type="email", value="not-an-email")
    assert junk["field"] == "value"
    assert "@" in junk["message"]
    missing = error(polku, path, 404, type="email", value="someone.else@example.fi")
    assert missing["code"] == "not_found"
    assert missing["field"] == "value"
    assert missing["hint"]


def test_search_by_name_email_phone_and_identifiers(polku: Polku) -> None:
    person, web_profile = journey(polku)
    batch(
        polku,
        {
            "type": "identify",
            "userId": "u2",
            "timestamp": ts(14),
            "traits": {"first_name": "Annika", "last_name": "Korhonen", "email": "ak@example.com"},
        },
        {
            "type": "identify",
            "userId": "u3",
            "timestamp": ts(15),
            "traits": {"name": "Mikko Annala", "email": "mikko@example.com"},
        },
    )
    other = lookup(polku, "user_id", "u2")
    third = lookup(polku, "user_id", "u3")

    def hits(q: str) -> list[tuple[str, str]]:
        found = get(polku, "/v1/profiles", q=q)["profiles"]
        return [(p["profile_id"], p["matched"]) for p in found]

    # name prefix, any case; a later word's prefix; then a match inside a word
    assert hits("ann") == [(other, "name"), (person, "name"), (third, "name")]
    assert hits("ANNA") == [(person, "name"), (third, "name")]
    assert hits("virt") == [(person, "name")]
    assert hits("nnik") == [(other, "contains")]
    assert hits("anna.virtanen@ex") == [(person, "email")]
    # exact identifiers: loyalty card and phone in other formats, the user id
    assert hits("1234 5678 90") == [(person, "loyalty_card")]
    assert hits("040-123 4567") == [(person, "phone")]
    assert hits("u2") == [(other, "user_id")]
    assert hits("nobody-like-this") == []

    summary = get(polku, "/v1/profiles", q="virtanen")["profiles"][0]
    assert summary == {
        "profile_id": person,
        "name": "Anna Virtanen",
        "email": "anna.virtanen@example.fi",
        "phone": "+358 40 123 4567",
        "first_seen": ts(9),
        "last_seen": ts(13),
        "event_count": 6,
        "order_count": 1,
        "matched": "name",
    }
    # no text: the most recently seen; merged profiles never show up
    recent = get(polku, "/v1/profiles", limit=2)["profiles"]
    assert [(p["profile_id"], p["matched"]) for p in recent] == [
        (third, "recent"),
        (other, "recent"),
    ]
    everyone = [p["profile_id"] for p in get(polku, "/v1/profiles")["profiles"]]
    assert sorted(everyone) == sorted([person, other, third])
    assert web_profile not in everyone
    assert len(get(polku, "/v1/profiles", q="ann", limit=1)["profiles"]) == 1
    # LIKE wildcards in the text are matched literally
    assert hits("%") == []
    assert hits("_nna") == []


def test_search_finds_names_outside_ascii(polku: Polku) -> None:
    batch(
        polku,
        {
            "type": "identify",
            "userId": "u9",
            "timestamp": ts(9),
            "traits": {"name": "Äijälä Öhman"},
        },
    )
    person = lookup(polku, "user_id", "u9")
    for q in ("Äijä", "äijä", "öhm", "Öhman"):
        found = get(polku, "/v1/profiles", q=q)["profiles"]
        assert [p["profile_id"] for p in found] == [person], q


def test_errors_have_code_field_and_hint(polku: Polku) -> None:
    person, _ = journey(polku)
    for path in (
        "/v1/profiles/p_nobody",
        "/v1/profiles/p_nobody/timeline",
        "/v1/profiles/p_nobody/consent",
        "/v1/profiles/p_" + "x" * 300,
        "/v1/profiles/p%00x",
    ):
        body = error(polku, path, 404)
        assert body["code"] == "not_found", path
        assert body["field"] == "profile_id", path
        assert body["message"] and body["hint"], path

    timeline = f"/v1/profiles/{person}/timeline"
    for params, field in [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "MTIzNA"}, "cursor"),  # base64 of "1234": not one of ours
        ({"channel": "fax"}, "channel"),
        ({"channel": "web,fax"}, "channel"),
        ({"type": "purchase"}, "type"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": ts(12), "until": ts(10)}, "until"),
        ({"event": "Product\x00Viewed"}, "event"),
        ({"store_id": "x" * 500}, "store_id"),
    ]:
        body = error(polku, timeline, 400, **params)
        assert body["code"] == "invalid_field", params
        assert body["field"] == field, params
        assert body["hint"], params
    assert error(polku, timeline, 400, limit=0)["field"] == "limit"
    assert error(polku, "/v1/profiles", 400, q="a\x00b")["field"] == "q"

    response = polku.client.get(f"/v1/profiles/{person}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_an_unknown_or_revoked_admin_token_gets_401(polku: Polku) -> None:
    person, _ = journey(polku)
    with writing(polku.runtime.engine) as conn:
        token = create_admin_token(conn, "default").token
    headers = {"Authorization": f"Bearer {token}"}
    assert polku.client.get(f"/v1/profiles/{person}", headers=headers).status_code == 200
    with writing(polku.runtime.engine) as conn:
        conn.execute(
            admin_tokens.update()
            .where(admin_tokens.c.token_hash == hash_token(token))
            .values(revoked=True)
        )
    for bearer in (token, token + "x"):
        response = polku.client.get(
            f"/v1/profiles/{person}", headers={"Authorization": f"Bearer {bearer}"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


def test_another_workspace_sees_nothing(polku: Polku) -> None:
    person, _ = journey(polku)
    with writing(polku.runtime.engine) as conn:
        other = create_workspace(conn, "ws_other")
        token = create_admin_token(conn, other).token
    headers = {"Authorization": f"Bearer {token}"}
    for path in (
        f"/v1/profiles/{person}",
        f"/v1/profiles/{person}/timeline",
        f"/v1/profiles/{person}/consent",
        "/v1/profiles/lookup?type=user_id&value=u1",
    ):
        response = polku.client.get(path, headers=headers)
        assert response.status_code == 404, path
    assert polku.client.get("/v1/profiles?q=anna", headers=headers).json() == {"profiles": []}
    response = polku.client.put(
        f"/v1/profiles/{person}/consent",
        json={"purpose": "marketing", "granted": False},
        headers=headers,
    )
    assert response.status_code == 404


def test_openapi_documents_the_routes(polku: Polku) -> None:
    spec = polku.client.get("/openapi.json").json()
    for path, method in [
        ("/v1/profiles", "get"),
        ("/v1/profiles/lookup", "get"),
        ("/v1/profiles/{profile_id}", "get"),
        ("/v1/profiles/{profile_id}/timeline", "get"),
        ("/v1/profiles/{profile_id}/consent", "get"),
        ("/v1/profiles/{profile_id}/consent", "put"),
    ]:
        operation = spec["paths"][path][method]
        assert operation["tags"] == ["profiles"], path
        assert operation["description"], path
