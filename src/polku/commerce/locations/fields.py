"""What a location is made of, as the API names it, and the check of every field.

`location_values` turns the fields a request gives (over the location's current values, for
a change) into a row for the locations table, or raises `InvalidField` naming the field and
what to send instead. Postal codes and phone numbers are read for the location's country.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import phonenumbers

from polku.commerce.locations.geo import (
    COVERED_COUNTRIES,
    check_coordinates,
    normalise_postal_code,
    postal_area,
)
from polku.commerce.locations.queries import KINDS, Location, plausible_id
from polku.commerce.locations.schedule import check_timezone
from polku.errors import InvalidField

__all__ = ["DEFAULTS", "FIELDS", "check_location_id", "location_values"]

FIELDS: Final = (
    "location_id",
    "name",
    "kind",
    "address",
    "postal_code",
    "city",
    "country",
    "latitude",
    "longitude",
    "timezone",
    "click_and_collect",
    "phone",
    "email",
    "active",
)
"""What a location is made of, as the API names it."""

DEFAULTS: Final[Mapping[str, object]] = {
    "kind": "store",
    "address": [],
    "country": "FI",
    "timezone": "Europe/Helsinki",
    "click_and_collect": False,
    "phone": None,
    "email": None,
    "active": True,
}
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_COUNTRY: Final = re.compile(r"[A-Z]{2}")


def _text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(
            f"{name} is required and must be non-empty text.",
            field=name,
            hint=f"Send {name} as a JSON string.",
        )
    text = " ".join(value.split())
    if len(text) > limit or not text.isprintable():
        raise InvalidField(
            f"{name} must be at most {limit} printable characters.",
            field=name,
            hint="Send a shorter value without control characters.",
        )
    return text


def _optional(value: object, name: str, limit: int) -> str | None:
    return None if value is None or value == "" else _text(value, name, limit)


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidField(f"{name} must be true or false.", field=name, hint="Send a boolean.")
    return value


def check_location_id(value: object) -> str:
    if not isinstance(value, str) or not plausible_id(value):
        raise InvalidField(
            f"location_id {str(value)[:40]!r} is not a usable id.",
            field="location_id",
            hint="Use the retailer's own store code: 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. HEL-01); or leave it out for a new id.",
        )
    return value


def _kind(value: object) -> str:
    if value not in KINDS:
        raise InvalidField(
            f"kind {str(value)[:20]!r} is not a kind of location.",
            field="kind",
            hint=f"Use one of {', '.join(KINDS)}.",
        )
    return str(value)


def _country(value: object) -> str:
    text = value.strip().upper() if isinstance(value, str) else ""
    if _COUNTRY.fullmatch(text) is None:
        raise InvalidField(
            f"country {str(value)[:20]!r} is not a country code.",
            field="country",
            hint="Send the ISO 3166-1 alpha-2 code, e.g. FI, SE, EE.",
        )
    return text


def _postal_code(value: object, country: str) -> str:
    normal = normalise_postal_code(value, country) if isinstance(value, str) else None
    if normal is None:
        raise InvalidField(
            f"postal_code {str(value)[:20]!r} is not a postal code of {country}.",
            field="postal_code",
            hint="A Finnish postal code has five digits, e.g. 00100."
            if country in COVERED_COUNTRIES
            else "Send the postal code as the post uses it, e.g. 111 22 or SW1A 1AA.",
        )
    return normal


def _address(value: object) -> list[str]:
    lines = [value] if isinstance(value, str) else value
    if not isinstance(lines, (list, tuple)) or len(lines) > 4:
        raise InvalidField(
            "address must be a list of at most 4 lines.",
            field="address",
            hint='Send the street lines, e.g. ["Urho Kekkosen katu 1"]; postal code and city '
            "have their own fields.",
        )
    return [_text(line, f"address[{i}]", 200) for i, line in enumerate(lines)]


def _phone(value: object, country: str) -> str | None:
    text = _optional(value, "phone", 40)
    if text is None:
        return None
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise InvalidField(
            f"phone {text!r} is not a phone number.",
            field="phone",
            hint="Send it with the country code (+358 9 1234 5678) or as dialled in the "
            "location's country.",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(value: object) -> str | None:
    text = _optional(value, "email", 254)
    if text is not None and _EMAIL.fullmatch(text) is None:
        raise InvalidField(
            f"email {text!r} is not an email address.",
            field="email",
            hint="Send an address such as kamppi@example.fi.",
        )
    return text


def _coordinates(
    given: Mapping[str, object], values: dict[str, Any], current: Location | None
) -> None:
    """Set `values`' coordinates: the ones given, else the postal code's point (on creation,
    or when the postal code changes under coordinates that came from it)."""
    lat_given, lon_given = "latitude" in given, "longitude" in given
    if lat_given != lon_given:
        missing = "longitude" if lat_given else "latitude"
        raise InvalidField(
            f"{missing} is missing: coordinates need both latitude and longitude.",
            field=missing,
            hint="Send both, or neither to place the location at its postal code's point.",
        )
    if lat_given and (given["latitude"] is not None or given["longitude"] is not None):
        values["latitude"], values["longitude"] = check_coordinates(
            given["latitude"], given["longitude"]
        )
        values["coordinates_source"] = "given"
        return
    moved = current is not None and (
        values["postal_code"] != current.postal_code or values["country"] != current.country
    )
    if (
        current is not None
        and not lat_given
        and not (moved and current.coordinates_source == "postal_code")
    ):
        return  # keep what it has
    area = postal_area(values["postal_code"], values["country"])
    if area is None:
        raise InvalidField(
            f"latitude and longitude are needed: Polku does not know where the postal code "
            f"{values['postal_code']} ({values['country']}) is.",
            field="latitude",
            hint="Send the location's latitude and longitude (WGS84 degrees).",
        )
    values["latitude"], values["longitude"] = area.latitude, area.longitude
    values["coordinates_source"] = "postal_code"


def location_values(given: Mapping[str, object], current: Location | None) -> dict[str, Any]:
    """The full row for a location from the fields `given` over `current` (None: new)."""
    unknown = sorted(str(key) for key in given if key not in FIELDS)
    if unknown:
        raise InvalidField(
            f"A location has no field {unknown[0][:40]!r}.",
            field=unknown[0][:40],
            hint=f"The fields are {', '.join(FIELDS)}.",
        )
    base: dict[str, object] = dict(DEFAULTS)
    if current is not None:
        base = {name: getattr(current, name) for name in FIELDS if name != "location_id"}
        base["address"] = list(current.address)
    merged = {**base, **{k: v for k, v in given.items() if k != "location_id"}}
    country = _country(merged.get("country"))
    values: dict[str, Any] = {
        "name": _text(merged.get("name"), "name", 200),
        "kind": _kind(merged.get("kind")),
        "address": _address(merged.get("address")),
        "postal_code": _postal_code(merged.get("postal_code"), country),
        "city": _text(merged.get("city"), "city", 100),
        "country": country,
        "timezone": check_timezone(merged.get("timezone")),
        "click_and_collect": _bool(merged.get("click_and_collect"), "click_and_collect"),
        "phone": _phone(merged.get("phone"), country),
        "email": _email(merged.get("email")),
        "active": _bool(merged.get("active"), "active"),
    }
    if current is not None:
        values["latitude"], values["longitude"] = current.latitude, current.longitude
        values["coordinates_source"] = current.coordinates_source
    _coordinates(given, values, current)
    return values
