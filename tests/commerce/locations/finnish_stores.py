"""Real Finnish stores and small HTTP helpers shared by the location tests."""

from __future__ import annotations

from typing import Any

from conftest import Polku

WEEKDAYS_9_TO_21 = {day: [["09:00", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
SHOPPING_CENTRE = {**WEEKDAYS_9_TO_21, "sat": [["09:00", "18:00"]], "sun": [["12:00", "18:00"]]}

# Coordinates of the shopping centres themselves (WGS84), with their postal codes.
KAMPPI = {
    "location_id": "HEL-KAMPPI",
    "name": "Helsinki Kamppi",
    "address": ["Urho Kekkosen katu 1"],
    "postal_code": "00100",
    "city": "Helsinki",
    "latitude": 60.1689,
    "longitude": 24.9322,
    "click_and_collect": False,
}
ISO_OMENA = {
    "location_id": "ESP-ISO-OMENA",
    "name": "Espoo Iso Omena",
    "address": ["Piispansilta 11"],
    "postal_code": "02230",
    "city": "Espoo",
    "latitude": 60.1613,
    "longitude": 24.7381,
    "click_and_collect": True,
}
RATINA = {
    "location_id": "TRE-RATINA",
    "name": "Tampere Ratina",
    "address": ["Vuolteenkatu 1"],
    "postal_code": "33100",
    "city": "Tampere",
    "latitude": 61.4928,
    "longitude": 23.7668,
    "click_and_collect": True,
}
HANSA = {
    "location_id": "TKU-HANSA",
    "name": "Turku Hansa",
    "address": ["Yliopistonkatu 22"],
    "postal_code": "20100",
    "city": "Turku",
    "latitude": 60.4506,
    "longitude": 22.2652,
    "click_and_collect": True,
}
OULU = {
    "location_id": "OUL-VALKEA",
    "name": "Oulu Valkea",
    "address": ["Isokatu 25"],
    "postal_code": "90100",
    "city": "Oulu",
    "latitude": 65.0126,
    "longitude": 25.4715,
    "click_and_collect": True,
}
FIVE_STORES = (KAMPPI, ISO_OMENA, RATINA, HANSA, OULU)


def create(polku: Polku, body: dict[str, Any]) -> dict[str, Any]:
    response = polku.client.post("/v1/locations", json=body, headers=polku.admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def get(polku: Polku, path: str, **params: Any) -> Any:
    response = polku.client.get(path, params=params, headers=polku.admin)
    assert response.status_code == 200, response.text
    return response.json()


def status(polku: Polku, location_id: str, at: str) -> dict[str, Any]:
    found: dict[str, Any] = get(polku, f"/v1/locations/{location_id}/status", at=at)
    return found


def refused(response: Any, status_code: int, field: str | None) -> dict[str, Any]:
    """The error of a refused request, checked for the project's shape."""
    assert response.status_code == status_code, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] and error["message"], error
    assert error.get("field") == field, error
    if status_code < 500:
        assert error.get("hint"), error
    return error
