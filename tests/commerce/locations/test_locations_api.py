"""Locations through HTTP: create, read, list, change and close stores and warehouses, the
events others react to, and the error for every bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from finnish_stores import HANSA, ISO_OMENA, KAMPPI, RATINA, SHOPPING_CENTRE, create, get, refused
from sqlalchemy import func, select

from conftest import Polku
from polku.access.actions import create_admin_token, create_workspace
from polku.collect.tables import dead_letters
from polku.log.tables import log_events
from polku.storage.engine import writing


def events(polku: Polku) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(event, partition key, message) of every event in the log, in order."""
    with polku.runtime.engine.connect() as conn:
        rows = conn.execute(select(log_events).order_by(log_events.c.offset)).all()
    return [(row.event, row.partition_key, orjson.loads(row.payload)) for row in rows]


def test_a_store_is_created_read_and_listed(polku: Polku) -> None:
    soon = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    created = create(
        polku,
        {
            **KAMPPI,
            "phone": "09 1234 5678",
            "email": "kamppi@example.fi",
            "hours": SHOPPING_CENTRE,
            "exceptions": [{"date": soon, "hours": [["10:00", "16:00"]], "note": "Inventory"}],
        },
    )
    assert created["location_id"] == "HEL-KAMPPI" and created["kind"] == "store"
    assert created["country"] == "FI" and created["timezone"] == "Europe/Helsinki"
    assert created["phone"] == "+358912345678" and created["active"] is True
    assert created["coordinates_source"] == "given" and created["latitude"] == 60.1689
    assert created["hours"]["sat"] == [["09:00", "18:00"]]
    assert created["exceptions"] == [
        {"date": soon, "closed": False, "hours": [["10:00", "16:00"]], "note": "Inventory"}
    ]
    assert get(polku, "/v1/locations/HEL-KAMPPI") == created

    # A warehouse without coordinates is placed at its postal code's point (Vantaa 01510).
    warehouse = create(
        polku,
        {
            "location_id": "WH-VANTAA",
            "name": "Central warehouse",
            "kind": "warehouse",
            "postal_code": "01510",
            "city": "Vantaa",
        },
    )
    assert warehouse["coordinates_source"] == "postal_code"
    assert 60.2 < warehouse["latitude"] < 60.4 and 24.8 < warehouse["longitude"] < 25.1
    # Without an id, one is made.
    made = create(polku, {**RATINA, "location_id": None})
    assert made["location_id"].startswith("loc-")

    every = [p["location_id"] for p in get(polku, "/v1/locations")["locations"]]
    assert every == sorted(["HEL-KAMPPI", "WH-VANTAA", made["location_id"]])
    stores = get(polku, "/v1/locations", kind="store")["locations"]
    assert {p["location_id"] for p in stores} == {"HEL-KAMPPI", made["location_id"]}
    collecting = get(polku, "/v1/locations", click_and_collect="true")["locations"]
    assert [p["location_id"] for p in collecting] == [made["location_id"]]


def test_changes_record_the_events_others_react_to(polku: Polku) -> None:
    create(polku, ISO_OMENA)
    create(polku, {**HANSA, "active": False})  # created closed: nothing to announce
    change = polku.client.patch(
        "/v1/locations/ESP-ISO-OMENA",
        json={"click_and_collect": False, "name": "Iso Omena"},
        headers=polku.admin,
    )
    assert change.status_code == 200, change.text
    assert change.json()["click_and_collect"] is False and change.json()["name"] == "Iso Omena"
    # A change nobody reacts to records nothing.
    quiet = polku.client.patch(
        "/v1/locations/ESP-ISO-OMENA", json={"phone": "+358 40 123 4567"}, headers=polku.admin
    )
    assert quiet.status_code == 200 and quiet.json()["phone"] == "+358401234567"
    closed = polku.client.post("/v1/locations/ESP-ISO-OMENA/deactivate", headers=polku.admin)
    assert closed.status_code == 200 and closed.json()["active"] is False
    again = polku.client.post("/v1/locations/ESP-ISO-OMENA/deactivate", headers=polku.admin)
    assert again.status_code == 200  # closing a closed location changes nothing
    reopened = polku.client.patch(
        "/v1/locations/TKU-HANSA", json={"active": True}, headers=polku.admin
    )
    assert reopened.status_code == 200 and reopened.json()["active"] is True

    recorded = events(polku)
    assert [(name, key) for name, key, _ in recorded] == [
        ("Location Opened", "location:ESP-ISO-OMENA"),
        ("Location Click and Collect Changed", "location:ESP-ISO-OMENA"),
        ("Location Closed", "location:ESP-ISO-OMENA"),
        ("Location Opened", "location:TKU-HANSA"),
    ]
    for _, _, message in recorded:
        assert "userId" not in message and "anonymousId" not in message
        assert message["type"] == "track" and message["properties"]["store_id"]
    assert recorded[1][2]["properties"]["click_and_collect"] is False
    assert recorded[1][2]["properties"]["location_id"] == "ESP-ISO-OMENA"

    # The pipeline passes them by: no profile, no dead letter.
    polku.settle()
    with polku.runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dead_letters)).scalar_one() == 0
    assert get(polku, "/v1/profiles")["profiles"] == []

    # A closed location leaves the list unless asked for.
    assert "ESP-ISO-OMENA" not in str(get(polku, "/v1/locations"))
    closed_ones = get(polku, "/v1/locations", active="false")["locations"]
    assert [p["location_id"] for p in closed_ones] == ["ESP-ISO-OMENA"]
    assert len(get(polku, "/v1/locations", active="any")["locations"]) == 2


def test_moving_a_location_placed_by_its_postal_code(polku: Polku) -> None:
    create(polku, {"location_id": "POP", "name": "Pop-up", "postal_code": "00100", "city": "H"})
    moved = polku.client.patch(
        "/v1/locations/POP", json={"postal_code": "33100", "city": "Tampere"}, headers=polku.admin
    )
    assert moved.status_code == 200, moved.text
    assert 61.4 < moved.json()["latitude"] < 61.6  # re-placed in Tampere
    pinned = polku.client.patch(
        "/v1/locations/POP", json={"latitude": 61.4928, "longitude": 23.7668}, headers=polku.admin
    )
    assert pinned.json()["coordinates_source"] == "given"
    kept = polku.client.patch(
        "/v1/locations/POP", json={"postal_code": "33200"}, headers=polku.admin
    )
    assert kept.json()["latitude"] == 61.4928  # given coordinates stay


def test_every_bad_input_gets_the_error_shape(polku: Polku) -> None:
    create(polku, KAMPPI)
    admin = polku.admin

    def post(body: dict[str, Any]) -> Any:
        return polku.client.post("/v1/locations", json=body, headers=admin)

    fresh = {**KAMPPI, "location_id": "NEW"}
    refused(post(KAMPPI), 409, "location_id")
    refused(post({**fresh, "timezone": "Europe/Helsingfors"}), 400, "timezone")
    refused(post({**fresh, "timezone": "../etc/passwd"}), 400, "timezone")
    refused(post({**fresh, "latitude": 91.0}), 400, "latitude")
    refused(post({**fresh, "longitude": -180.5}), 400, "longitude")
    refused(post({**fresh, "latitude": None, "longitude": 24.9}), 400, "latitude")
    refused(post({k: v for k, v in fresh.items() if k != "longitude"}), 400, "longitude")
    refused(post({**fresh, "postal_code": "0010"}), 400, "postal_code")
    refused(
        post({"location_id": "X", "name": "X", "postal_code": "00001", "city": "X"}),
        400,
        "latitude",
    )  # a postal code Polku cannot place, and no coordinates
    refused(post({**fresh, "kind": "kiosk"}), 400, "kind")
    refused(post({**fresh, "country": "Finland"}), 400, "country")
    refused(post({**fresh, "phone": "call us"}), 400, "phone")
    refused(post({**fresh, "email": "kamppi-at-example"}), 400, "email")
    refused(post({**fresh, "location_id": "has space"}), 400, "location_id")
    refused(post({**fresh, "name": "  "}), 400, "name")
    refused(post({k: v for k, v in fresh.items() if k != "city"}), 400, "city")
    refused(post({**fresh, "colour": "red"}), 400, "colour")
    refused(
        post({**fresh, "hours": {"mon": [["10:00", "09:00"], ["08:00", "12:00"]]}}),
        400,
        "hours.mon[0]",
    )
    refused(post({**fresh, "latitude": "north"}), 400, "latitude")
    refused(post({**fresh, "click_and_collect": "yes"}), 400, "click_and_collect")
    # Nothing of the refused requests was stored or announced.
    assert [p["location_id"] for p in get(polku, "/v1/locations")["locations"]] == ["HEL-KAMPPI"]
    assert [name for name, _, _ in events(polku)] == ["Location Opened"]

    refused(polku.client.get("/v1/locations/NOPE", headers=admin), 404, "location_id")
    refused(polku.client.get("/v1/locations/%00", headers=admin), 404, "location_id")
    refused(polku.client.patch("/v1/locations/NOPE", json={}, headers=admin), 404, "location_id")
    refused(polku.client.post("/v1/locations/NOPE/deactivate", headers=admin), 404, "location_id")
    refused(
        polku.client.patch(
            "/v1/locations/HEL-KAMPPI", json={"timezone": "Mars/Olympus"}, headers=admin
        ),
        400,
        "timezone",
    )
    refused(
        polku.client.patch("/v1/locations/HEL-KAMPPI", json={"latitude": 60.0}, headers=admin),
        400,
        "longitude",
    )
    refused(
        polku.client.delete("/v1/locations/HEL-KAMPPI/exceptions/24.12.2026", headers=admin),
        400,
        "date",
    )
    refused(polku.client.get("/v1/locations", params={"kind": "kiosk"}, headers=admin), 400, "kind")
    refused(polku.client.get("/v1/locations"), 401, None)


def test_a_workspace_sees_only_its_own_locations(polku: Polku) -> None:
    create(polku, KAMPPI)
    with writing(polku.runtime.engine) as conn:
        create_workspace(conn, "other", "Another retailer")
        token = create_admin_token(conn, "other", "test").token
    other = {"Authorization": f"Bearer {token}"}
    assert polku.client.get("/v1/locations", headers=other).json() == {"locations": []}
    refused(polku.client.get("/v1/locations/HEL-KAMPPI", headers=other), 404, "location_id")
    # The same id is free in the other workspace.
    response = polku.client.post("/v1/locations", json=KAMPPI, headers=other)
    assert response.status_code == 201, response.text


def test_openapi_documents_the_routes(polku: Polku) -> None:
    spec = polku.client.get("/openapi.json").json()
    paths = {path: ops for path, ops in spec["paths"].items() if path.startswith("/v1/locations")}
    assert set(paths) == {
        "/v1/locations",
        "/v1/locations/nearest",
        "/v1/locations/{location_id}",
        "/v1/locations/{location_id}/deactivate",
        "/v1/locations/{location_id}/hours",
        "/v1/locations/{location_id}/exceptions",
        "/v1/locations/{location_id}/exceptions/{day}",
        "/v1/locations/{location_id}/status",
    }
    for path, operations in paths.items():
        for operation in operations.values():
            assert operation["tags"] == ["locations"], path
            assert operation.get("description"), path
    assert any(tag["name"] == "locations" for tag in spec["tags"])
