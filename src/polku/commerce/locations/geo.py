"""The geography behind "the nearest store": distances on the Earth, and where a postal code is.

Postal codes are placed from data shipped in the package (`postal_codes_fi`: GeoNames,
CC BY 4.0), so a lookup works offline and nothing is ever downloaded. Finland's codes (Åland's
included) are covered; other countries' codes are unknown here, and a workspace's own
locations fill in their codes (`polku.commerce.locations.queries.locate`).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Final

from polku.commerce.locations.postal_codes_fi import ROWS
from polku.errors import InvalidField

__all__ = [
    "COVERED_COUNTRIES",
    "EARTH_RADIUS_KM",
    "PostalArea",
    "check_coordinates",
    "distance_km",
    "locate_postal_code",
    "normalise_postal_code",
    "postal_area",
]

EARTH_RADIUS_KM: Final = 6371.0088
"""The Earth's mean radius (IUGG); haversine distances are good to about 0.5 %."""

COVERED_COUNTRIES: Final = frozenset({"FI", "AX"})
"""Countries whose postal codes `postal_area` knows (Åland, AX, uses Finland's codes)."""

_FINNISH: Final = re.compile(r"(?:FI|AX)?-?(\d{5})")
_OTHER: Final = re.compile(r"[A-Z0-9][A-Z0-9 -]{0,10}[A-Z0-9]")


@dataclass(frozen=True, slots=True)
class PostalArea:
    """Where a postal code's area is: a point in it (WGS84 degrees) and its post office."""

    code: str
    latitude: float
    longitude: float
    place: str


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two points given in degrees (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def check_coordinates(
    latitude: object, longitude: object, names: tuple[str, str] = ("latitude", "longitude")
) -> tuple[float, float]:
    """(latitude, longitude) as floats when they are WGS84 degrees; InvalidField naming the
    one at fault otherwise."""
    checked: list[float] = []
    for value, name, limit in ((latitude, names[0], 90.0), (longitude, names[1], 180.0)):
        number = float(value) if isinstance(value, (int, float)) else math.nan
        if isinstance(value, bool) or not -limit <= number <= limit:
            raise InvalidField(
                f"{name} {str(value)[:40]} is not between -{limit:g} and {limit:g}.",
                field=name,
                hint="Send WGS84 decimal degrees, latitude first: Helsinki is "
                "latitude 60.17, longitude 24.94.",
            )
        checked.append(number)
    return checked[0], checked[1]


def normalise_postal_code(code: str, country: str = "FI") -> str | None:
    """`code` as stored and looked up (``"00 100"``, ``"FI-00100"`` → ``"00100"``), or None
    when it cannot be a postal code of `country` (Finland and Åland: five digits)."""
    text = " ".join(code.upper().split())
    if country.upper() in COVERED_COUNTRIES:
        found = _FINNISH.fullmatch(text.replace(" ", ""))
        return found.group(1) if found else None
    return text if _OTHER.fullmatch(text) else None


@functools.cache
def _areas() -> dict[str, PostalArea]:
    """The shipped table, parsed on first use (about 3,600 codes)."""
    areas: dict[str, PostalArea] = {}
    for line in ROWS.splitlines():
        code, latitude, longitude, place = line.split(" ", 3)
        areas[code] = PostalArea(code, float(latitude), float(longitude), place)
    return areas


def postal_area(code: str, country: str = "FI") -> PostalArea | None:
    """The area of postal code `code` in `country` (ISO 3166 alpha-2), or None when the code is
    malformed, unknown, or of a country whose codes are not shipped."""
    if country.upper() not in COVERED_COUNTRIES:
        return None
    normal = normalise_postal_code(code, country)
    return None if normal is None else _areas().get(normal)


def locate_postal_code(code: str, country: str = "FI") -> tuple[float, float] | None:
    """(latitude, longitude) of a point in the area of postal code `code`, or None (see
    `postal_area`)."""
    area = postal_area(code, country)
    return None if area is None else (area.latitude, area.longitude)
