"""Read locations: one, a filtered list, the nearest to a point, and where a search starts
from (coordinates, a postal code, or a store such as the customer's preferred one).

Everything is scoped to one workspace: an id from another workspace reads as unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson
from sqlalchemy import Connection, Select, func, select

from polku.commerce.locations.geo import (
    check_coordinates,
    distance_km,
    normalise_postal_code,
    postal_area,
)
from polku.commerce.locations.tables import locations
from polku.errors import InvalidField, NotFound

__all__ = [
    "KINDS",
    "Location",
    "Nearby",
    "Origin",
    "get_location",
    "list_locations",
    "locate",
    "nearest",
    "plausible_id",
    "resolve_origin",
    "unknown_location",
]

KINDS: Final = ("store", "warehouse")
"""What a location is: a store customers visit, or a warehouse that only ships."""

_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True, slots=True)
class Location:
    """A store or warehouse. `address` holds the street lines (without postal code and city);
    `latitude`/`longitude` are WGS84 degrees; `timezone` is an IANA name; inactive means
    closed for good."""

    location_id: str
    name: str
    kind: str
    address: tuple[str, ...]
    postal_code: str
    city: str
    country: str
    latitude: float
    longitude: float
    timezone: str
    click_and_collect: bool
    active: bool
    phone: str | None = None
    email: str | None = None
    coordinates_source: str = "given"  # or "postal_code": placed at its postal code's point
    created_at: int = 0  # epoch ms
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class Nearby:
    """A location and how far it is from the origin of the search, in kilometres."""

    location: Location
    distance_km: float


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a nearest-location search starts, and what it was found from."""

    latitude: float
    longitude: float
    source: Literal["coordinates", "postal_code", "location"]
    postal_code: str | None = None
    place: str | None = None  # the post office of the postal code, when Polku's data has it
    location_id: str | None = None


def plausible_id(location_id: str) -> bool:
    """Whether `location_id` could name a location (else it is unknown without asking SQL)."""
    return _ID.fullmatch(location_id) is not None


def unknown_location(location_id: str) -> NotFound:
    """The one error every route and function gives for a location the workspace lacks."""
    return NotFound(
        f"There is no location {location_id[:100]!r} in this workspace.",
        field="location_id",
        hint="List the locations with GET /v1/locations; ids are the retailer's own, as "
        "given when the location was created (e.g. HEL-01).",
        message_id="unknown_location_id",
        params={"location": location_id[:100]},
    )


def location_of(row: Any) -> Location:
    """A `Location` from a row of the locations table."""
    return Location(
        location_id=row.location_id,
        name=row.name,
        kind=row.kind,
        address=tuple(orjson.loads(row.address)),
        postal_code=row.postal_code,
        city=row.city,
        country=row.country,
        latitude=row.latitude,
        longitude=row.longitude,
        timezone=row.timezone,
        click_and_collect=bool(row.click_and_collect),
        active=bool(row.active),
        phone=row.phone,
        email=row.email,
        coordinates_source=row.coordinates_source,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get_location(conn: Connection, workspace_id: str, location_id: str) -> Location | None:
    """The location `location_id` (active or not), or None when the workspace has none."""
    if not plausible_id(location_id):
        return None
    row = conn.execute(
        select(locations).where(
            locations.c.workspace_id == workspace_id, locations.c.location_id == location_id
        )
    ).first()
    return None if row is None else location_of(row)


def list_locations(
    conn: Connection,
    workspace_id: str,
    *,
    kind: str | None = None,
    click_and_collect: bool | None = None,
    active: bool | None = True,
) -> list[Location]:
    """The workspace's locations by id; each filter left as None matches everything
    (`active=None`: open and closed ones)."""
    query = _filtered(select(locations), workspace_id, kind, click_and_collect, active)
    return [location_of(row) for row in conn.execute(query.order_by(locations.c.location_id))]


def _filtered(
    query: Select[Any],
    workspace_id: str,
    kind: str | None,
    click_and_collect: bool | None,
    active: bool | None,
) -> Select[Any]:
    query = query.where(locations.c.workspace_id == workspace_id)
    if kind is not None:
        if kind not in KINDS:
            raise InvalidField(
                f"Unknown location kind {kind[:20]!r}.",
                field="kind",
                hint=f"Use one of {', '.join(KINDS)}.",
            )
        query = query.where(locations.c.kind == kind)
    if click_and_collect is not None:
        query = query.where(locations.c.click_and_collect == click_and_collect)
    if active is not None:
        query = query.where(locations.c.active == active)
    return query


def nearest(
    conn: Connection,
    workspace_id: str,
    latitude: float,
    longitude: float,
    *,
    k: int | None = None,
    kind: str | None = "store",
    click_and_collect: bool | None = None,
    max_km: float | None = None,
) -> list[Nearby]:
    """The active locations nearest to (`latitude`, `longitude`), nearest first, at most `k`
    (None: all) and at most `max_km` away. Ties go by location id, so the order is stable.

    Ranks on the coordinates alone, then reads the chosen locations whole: two queries."""
    points = conn.execute(
        _filtered(
            select(locations.c.location_id, locations.c.latitude, locations.c.longitude),
            workspace_id,
            kind,
            click_and_collect,
            True,
        )
    ).all()
    ranked = sorted(
        (distance_km(latitude, longitude, lat, lon), location_id)
        for location_id, lat, lon in points
    )
    if max_km is not None:
        ranked = [(km, location_id) for km, location_id in ranked if km <= max_km]
    chosen = ranked if k is None else ranked[:k]
    if not chosen:
        return []
    rows = conn.execute(
        select(locations).where(
            locations.c.workspace_id == workspace_id,
            locations.c.location_id.in_([location_id for _, location_id in chosen]),
        )
    ).all()
    found = {row.location_id: location_of(row) for row in rows}
    return [Nearby(found[location_id], km) for km, location_id in chosen if location_id in found]


def locate(
    conn: Connection, workspace_id: str, postal_code: str, country: str = "FI"
) -> tuple[float, float, str | None] | None:
    """(latitude, longitude, post office) of `postal_code`: from Polku's postal code data, or
    else the mean point of the workspace's own locations with that code, so the postal code
    of every location resolves. None when neither knows it."""
    area = postal_area(postal_code, country)
    if area is not None:
        return area.latitude, area.longitude, area.place
    normal = normalise_postal_code(postal_code, country)
    if normal is None:
        return None
    row = conn.execute(
        select(
            func.avg(locations.c.latitude).label("latitude"),
            func.avg(locations.c.longitude).label("longitude"),
            func.min(locations.c.city).label("city"),
        ).where(
            locations.c.workspace_id == workspace_id,
            # "111 47" and "11147" are the same code: compare without the spaces
            func.replace(locations.c.postal_code, " ", "") == normal.replace(" ", ""),
            locations.c.country == country.upper(),
        )
    ).one()
    if row.latitude is None:
        return None
    return float(row.latitude), float(row.longitude), row.city


def resolve_origin(
    conn: Connection,
    workspace_id: str,
    *,
    latitude: float | None = None,
    longitude: float | None = None,
    postal_code: str | None = None,
    country: str = "FI",
    location_id: str | None = None,
) -> Origin:
    """Where to search from: coordinates, a postal code (`locate`), or a location's own
    point (the customer's `preferred_store` trait, say). Exactly one of them must be given.

    Raises `InvalidField` for none or several, coordinates out of range, or a postal code
    nobody knows; `NotFound` for an unknown location.
    """
    given = [
        name
        for name, present in (
            ("lat", latitude is not None or longitude is not None),
            ("postal_code", postal_code is not None),
            ("location_id", location_id is not None),
        )
        if present
    ]
    if len(given) != 1:
        raise InvalidField(
            "Say where to search from: lat and lon, or postal_code, or location_id."
            if not given
            else f"Search from one place only, not from {' and '.join(given)}.",
            field=given[-1] if given else "lat",
            hint="e.g. ?lat=60.1699&lon=24.9384, or ?postal_code=00100, or "
            "?location_id=HEL-01 (the customer's preferred store).",
        )
    if location_id is not None:
        found = get_location(conn, workspace_id, location_id)
        if found is None:
            raise unknown_location(location_id)
        return Origin(
            found.latitude,
            found.longitude,
            "location",
            postal_code=found.postal_code,
            place=found.city,
            location_id=found.location_id,
        )
    if postal_code is not None:
        where = locate(conn, workspace_id, postal_code, country)
        if where is None:
            raise InvalidField(
                f"Polku does not know where the postal code {postal_code[:16]!r} "
                f"({country[:2]}) is.",
                field="postal_code",
                hint="Send a Finnish postal code of five digits (00100), or lat and lon.",
            )
        normal = normalise_postal_code(postal_code, country)
        return Origin(where[0], where[1], "postal_code", postal_code=normal, place=where[2])
    if latitude is None or longitude is None:
        missing = "lon" if longitude is None else "lat"
        raise InvalidField(
            f"{missing} is missing: coordinates need both lat and lon.",
            field=missing,
            hint="e.g. ?lat=60.1699&lon=24.9384.",
        )
    lat, lon = check_coordinates(latitude, longitude, ("lat", "lon"))
    return Origin(lat, lon, "coordinates")
