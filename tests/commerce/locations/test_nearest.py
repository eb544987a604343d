"""The nearest stores, through GET /v1/locations/nearest: from coordinates, a Finnish postal
code or a (preferred) store, with distance and opening status; and the geography under it."""

from __future__ import annotations

from typing import Any

import pytest
from finnish_stores import FIVE_STORES, SHOPPING_CENTRE, create, get, refused

from conftest import Polku
from polku.commerce.locations.geo import distance_km, locate_postal_code, normalise_postal_code

HELSINKI_CENTRAL_STATION = (60.1710, 24.9414)
# Wednesday 13 May 2026, 13:00 in Finland; shopping centres are open 09-21.
WEDNESDAY_NOON = "2026-05-13T13:00:00+03:00"


@pytest.fixture
def five(polku: Polku) -> Polku:
    for body in FIVE_STORES:
        create(polku, {**body, "hours": SHOPPING_CENTRE})
    return polku


def nearest(polku: Polku, **params: Any) -> dict[str, Any]:
    found: dict[str, Any] = get(polku, "/v1/locations/nearest", **params)
    return found


def ids(found: dict[str, Any]) -> list[str]:
    return [place["location_id"] for place in found["locations"]]


def test_nearest_by_coordinates(five: Polku) -> None:
    lat, lon = HELSINKI_CENTRAL_STATION
    found = nearest(five, lat=lat, lon=lon, k=5, at=WEDNESDAY_NOON)
    assert ids(found) == ["HEL-KAMPPI", "ESP-ISO-OMENA", "TKU-HANSA", "TRE-RATINA", "OUL-VALKEA"]
    distances = [place["distance_km"] for place in found["locations"]]
    assert distances == sorted(distances)
    assert distances[0] < 1.0  # Kamppi is a short walk from the station
    assert 10 < distances[1] < 12  # Iso Omena, in Espoo
    assert 145 < distances[2] < 160 and 155 < distances[3] < 170  # Turku, Tampere
    assert 500 < distances[4] < 560  # Oulu
    assert found["origin"] == {
        "latitude": lat,
        "longitude": lon,
        "source": "coordinates",
        "postal_code": None,
        "place": None,
        "location_id": None,
    }
    first = found["locations"][0]
    assert first["status"] == {
        "open_now": True,
        "closes_at": "2026-05-13T21:00:00+03:00",
        "next_opening": "2026-05-14T09:00:00+03:00",
        "note": None,
    }
    assert first["name"] == "Helsinki Kamppi" and first["address"] == ["Urho Kekkosen katu 1"]
    # Late in the evening they are closed, opening in the morning.
    late = nearest(five, lat=lat, lon=lon, k=2, at="2026-05-13T22:00:00+03:00")
    assert [p["status"]["open_now"] for p in late["locations"]] == [False, False]
    assert late["locations"][0]["status"]["next_opening"] == "2026-05-14T09:00:00+03:00"


def test_nearest_by_postal_code_and_click_and_collect(five: Polku) -> None:
    tampere = nearest(five, postal_code="33100", k=2)
    assert ids(tampere) == ["TRE-RATINA", "TKU-HANSA"]  # Turku 142 km, Espoo 157 km
    assert tampere["locations"][0]["distance_km"] < 2
    assert tampere["origin"]["source"] == "postal_code"
    assert tampere["origin"]["postal_code"] == "33100" and tampere["origin"]["place"] == "Tampere"
    assert ids(nearest(five, postal_code="90100", k=1)) == ["OUL-VALKEA"]
    assert ids(nearest(five, postal_code="20100", k=1)) == ["TKU-HANSA"]
    assert ids(nearest(five, postal_code="02230", k=1)) == ["ESP-ISO-OMENA"]
    # Kamppi offers no click and collect: the nearest that does, from central Helsinki.
    downtown = nearest(five, postal_code="00 100", k=2, click_and_collect="true")
    assert ids(downtown) == ["ESP-ISO-OMENA", "TKU-HANSA"]
    # Within a radius.
    assert ids(nearest(five, postal_code="00100", max_km=50)) == ["HEL-KAMPPI", "ESP-ISO-OMENA"]


def test_nearest_from_a_preferred_store(five: Polku) -> None:
    found = nearest(five, location_id="TRE-RATINA", k=3)
    assert ids(found)[0] == "TRE-RATINA" and found["locations"][0]["distance_km"] == 0
    assert found["origin"]["source"] == "location"
    assert found["origin"]["location_id"] == "TRE-RATINA"


def test_closed_stores_and_warehouses_are_not_nearest(five: Polku) -> None:
    response = five.client.post("/v1/locations/HEL-KAMPPI/deactivate", headers=five.admin)
    assert response.status_code == 200
    create(
        five,
        {
            "location_id": "WH",
            "name": "Warehouse",
            "kind": "warehouse",
            "postal_code": "00100",
            "city": "Helsinki",
        },
    )
    assert ids(nearest(five, postal_code="00100", k=1)) == ["ESP-ISO-OMENA"]
    assert ids(nearest(five, postal_code="00100", k=1, kind="warehouse")) == ["WH"]
    assert ids(nearest(five, postal_code="00100", k=2, kind="any")) == ["WH", "ESP-ISO-OMENA"]


def test_a_locations_own_postal_code_always_resolves(polku: Polku) -> None:
    # Polku ships Finland's postal codes only; a Stockholm store's code is known by the store.
    create(
        polku,
        {
            "location_id": "STO",
            "name": "Stockholm Gallerian",
            "postal_code": "111 47",
            "city": "Stockholm",
            "country": "SE",
            "latitude": 59.3326,
            "longitude": 18.0649,
            "timezone": "Europe/Stockholm",
        },
    )
    found = nearest(polku, postal_code="11147", country="SE")
    assert ids(found) == ["STO"] and found["locations"][0]["distance_km"] == 0
    assert found["origin"]["place"] == "Stockholm"
    refused(
        polku.client.get(
            "/v1/locations/nearest",
            params={"postal_code": "111 48", "country": "SE"},
            headers=polku.admin,
        ),
        400,
        "postal_code",
    )


def test_bad_searches_are_refused_with_the_field(five: Polku) -> None:
    def search(**params: Any) -> Any:
        return five.client.get("/v1/locations/nearest", params=params, headers=five.admin)

    refused(search(), 400, "lat")
    refused(search(lat=91, lon=24.9), 400, "lat")
    refused(search(lat=60.2, lon=181), 400, "lon")
    refused(search(lat="north", lon=24.9), 400, "lat")
    refused(search(lat=60.2), 400, "lon")
    refused(search(lat=60.2, lon=24.9, postal_code="00100"), 400, "postal_code")
    refused(search(postal_code="00001"), 400, "postal_code")  # no such code
    refused(search(postal_code="helsinki"), 400, "postal_code")
    refused(search(location_id="NOPE"), 404, "location_id")
    refused(search(postal_code="00100", k=0), 400, "k")
    refused(search(postal_code="00100", k=51), 400, "k")
    refused(search(postal_code="00100", at="soon"), 400, "at")
    refused(search(postal_code="00100", kind="kiosk"), 400, "kind")


def test_geography() -> None:
    # Helsinki to Tampere (city centres): about 160 km as the crow flies.
    assert distance_km(60.1699, 24.9384, 61.4978, 23.7610) == pytest.approx(161.5, abs=2)
    assert distance_km(60.17, 24.94, 60.17, 24.94) == 0
    assert locate_postal_code("00100") == (60.1714, 24.9316)
    assert locate_postal_code("FI-33100") == (61.4942, 23.7817)
    assert locate_postal_code("22100", "AX") is not None  # Åland: Mariehamn
    assert locate_postal_code("22100") == locate_postal_code("22100", "AX")
    assert locate_postal_code("00001") is None
    assert locate_postal_code("00100", "SE") is None
    assert normalise_postal_code("00 100") == "00100"
    assert normalise_postal_code("0010") is None
    assert normalise_postal_code("sw1a 1aa", "GB") == "SW1A 1AA"
