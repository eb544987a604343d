"""HTTP routes for locations (admin token): create, change and close stores and warehouses,
set their opening hours, and ask which are nearest and whether they are open.

Each handler translates the request, calls `actions`, `queries` or `hours`, and shapes the
answer; the rules live there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from polku.commerce.locations import actions
from polku.commerce.locations.hours import (
    OpeningStatus,
    opening_status,
    opening_statuses,
    schedule_of,
)
from polku.commerce.locations.queries import (
    Location,
    Origin,
    get_location,
    list_locations,
    nearest,
    resolve_origin,
    unknown_location,
)
from polku.commerce.locations.schedule import WEEKDAYS, Schedule, format_interval
from polku.events import to_iso
from polku.http import AdminWorkspace, runtime
from polku.profiles.queries import parse_time
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter(tags=["locations"])

REQUESTED_BY = "admin_api"

Week = dict[str, list[list[str]]]
_WEEK_DOC = (
    'By weekday (mon..sun), the intervals ["opens", "closes"] in local time. A closing time '
    'before the opening time runs past midnight (["22:00", "02:00"]); "24:00" is midnight; '
    "a day left out or [] is closed."
)
_AT_DOC = "The instant to ask about: ISO-8601 (no offset means UTC) or epoch ms; default now."
_Responses = dict[int | str, dict[str, Any]]
_UNKNOWN: _Responses = {404: {"description": "No such location in this workspace."}}
_BAD: _Responses = {400: {"description": "A bad value (the field is named)."}}

# -- request and response shapes ----------------------------------------------------------


class ExceptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: str = Field(description="The local date, YYYY-MM-DD.")
    hours: list[list[str]] | None = Field(
        default=None, description='That day\'s intervals, e.g. [["08:00", "14:00"]].'
    )
    closed: StrictBool | None = Field(default=None, description="true: closed all day.")
    note: str | None = Field(default=None, description='Why, e.g. "Christmas Eve".')


class LocationFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Shown to customers, e.g. Kamppi.")
    kind: str | None = Field(default=None, description="store (default) or warehouse.")
    address: list[str] | None = Field(
        default=None, description="Street lines, without postal code and city (at most 4)."
    )
    postal_code: str | None = None
    city: str | None = None
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2; default FI.")
    latitude: float | None = Field(
        default=None,
        description="WGS84 degrees; with longitude. Leave both out to place the location at "
        "its postal code's point.",
    )
    longitude: float | None = None
    timezone: str | None = Field(
        default=None, description="IANA time zone of its hours; default Europe/Helsinki."
    )
    click_and_collect: StrictBool | None = Field(
        default=None, description="Whether customers can collect online orders here."
    )
    phone: str | None = None
    email: str | None = None
    active: StrictBool | None = Field(
        default=None, description="false: closed for good (kept, but left out of searches)."
    )
    hours: Week | None = Field(default=None, description=_WEEK_DOC)


class LocationCreate(LocationFields):
    location_id: str | None = Field(
        default=None,
        description="The retailer's own id (e.g. HEL-01): letters, digits, '.', '_', '-'. "
        "Made up when left out.",
    )
    exceptions: list[ExceptionIn] | None = Field(
        default=None, description="Dates with other hours than their weekday's."
    )


class ExceptionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exceptions: list[ExceptionIn] = Field(description="Set these dates; others keep theirs.")


class LocationOut(BaseModel):
    location_id: str
    name: str
    kind: str
    address: list[str]
    postal_code: str
    city: str
    country: str
    latitude: float
    longitude: float
    coordinates_source: str = Field(
        description="given, or postal_code when placed at its postal code's point."
    )
    timezone: str
    click_and_collect: bool
    phone: str | None = Field(description="E.164.")
    email: str | None
    active: bool
    created_at: str
    updated_at: str


class ExceptionOut(BaseModel):
    date: str
    closed: bool
    hours: list[list[str]]
    note: str | None


class LocationDetail(LocationOut):
    hours: Week = Field(description=_WEEK_DOC)
    exceptions: list[ExceptionOut] = Field(description="Upcoming dates with other hours.")


class LocationList(BaseModel):
    locations: list[LocationOut]


class StatusOut(BaseModel):
    open_now: bool
    closes_at: str | None = Field(
        description="When open: when it closes (local time, ISO-8601); null: not within a year."
    )
    next_opening: str | None = Field(
        description="When it opens next (after closes_at when open now); null: not within a year."
    )
    note: str | None = Field(description="The exception of the day, e.g. Christmas Eve.")


class LocationStatus(StatusOut):
    location_id: str
    timezone: str
    at: str = Field(description="The instant asked about, in the location's time zone.")


class NearbyOut(LocationOut):
    distance_km: float = Field(description="Great-circle distance from the origin.")
    status: StatusOut


class OriginOut(BaseModel):
    latitude: float
    longitude: float
    source: str = Field(description="coordinates, postal_code or location.")
    postal_code: str | None
    place: str | None = Field(description="The post office or city of the origin, if known.")
    location_id: str | None


class NearestOut(BaseModel):
    origin: OriginOut
    at: str = Field(description="The instant the statuses are for (UTC).")
    locations: list[NearbyOut] = Field(description="Nearest first.")


# -- shaping ------------------------------------------------------------------------------


def _location(place: Location) -> dict[str, Any]:
    return {
        "location_id": place.location_id,
        "name": place.name,
        "kind": place.kind,
        "address": list(place.address),
        "postal_code": place.postal_code,
        "city": place.city,
        "country": place.country,
        "latitude": place.latitude,
        "longitude": place.longitude,
        "coordinates_source": place.coordinates_source,
        "timezone": place.timezone,
        "click_and_collect": place.click_and_collect,
        "phone": place.phone,
        "email": place.email,
        "active": place.active,
        "created_at": to_iso(place.created_at),
        "updated_at": to_iso(place.updated_at),
    }


def _detail(place: Location, schedule: Schedule) -> LocationDetail:
    return LocationDetail(
        **_location(place),
        hours={
            day: [format_interval(i) for i in schedule.week[n]] for n, day in enumerate(WEEKDAYS)
        },
        exceptions=[
            ExceptionOut(
                date=item.day.isoformat(),
                closed=item.closed,
                hours=[format_interval(i) for i in item.intervals],
                note=item.note,
            )
            for item in schedule.exceptions.values()
        ],
    )


def _status(status: OpeningStatus) -> StatusOut:
    return StatusOut(
        open_now=status.open_now,
        closes_at=None if status.closes_at is None else status.closes_at.isoformat(),
        next_opening=None if status.next_opening is None else status.next_opening.isoformat(),
        note=status.note,
    )


def _origin(origin: Origin) -> OriginOut:
    return OriginOut(
        latitude=origin.latitude,
        longitude=origin.longitude,
        source=origin.source,
        postal_code=origin.postal_code,
        place=origin.place,
        location_id=origin.location_id,
    )


def _at(raw: str | None) -> datetime:
    if raw is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(parse_time(raw, "at") / 1000, tz=UTC)


def _read_detail(request: Request, workspace: str, location_id: str) -> LocationDetail:
    rt = runtime(request)
    with translate_errors("reading a location"), rt.engine.connect() as conn:
        place = get_location(conn, workspace, location_id)
        if place is None:
            raise unknown_location(location_id)
        schedule = schedule_of(conn, workspace, location_id, datetime.now(UTC))
    return _detail(place, schedule)


def _fields(body: LocationFields) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True, exclude={"hours", "exceptions"})


def _dumped(items: list[ExceptionIn] | None) -> list[dict[str, Any]] | None:
    return None if items is None else [item.model_dump(exclude_unset=True) for item in items]


# -- routes (the fixed path /nearest before /{location_id}) -------------------------------


@router.get("/v1/locations", response_model=LocationList, responses=_BAD)
def read_locations(
    request: Request,
    workspace: AdminWorkspace,
    kind: Annotated[Literal["store", "warehouse"] | None, Query()] = None,
    click_and_collect: Annotated[bool | None, Query()] = None,
    active: Annotated[
        Literal["true", "false", "any"],
        Query(description="true (default): open ones; false: closed for good; any: both."),
    ] = "true",
) -> LocationList:
    """The workspace's stores and warehouses, by id."""
    rt = runtime(request)
    with translate_errors("listing locations"), rt.engine.connect() as conn:
        found = list_locations(
            conn,
            workspace,
            kind=kind,
            click_and_collect=click_and_collect,
            active=None if active == "any" else active == "true",
        )
    return LocationList(locations=[LocationOut(**_location(place)) for place in found])


@router.post(
    "/v1/locations",
    status_code=201,
    response_model=LocationDetail,
    responses={**_BAD, 409: {"description": "The location_id is taken."}},
)
def create(body: LocationCreate, request: Request, workspace: AdminWorkspace) -> LocationDetail:
    """Create a store or warehouse, optionally with its week's hours and dated exceptions.
    `name`, `postal_code` and `city` are required. Records `Location Opened` when active."""
    place = actions.create_location(
        runtime(request),
        workspace,
        _fields(body),
        hours=body.hours,
        exceptions=_dumped(body.exceptions),
        requested_by=REQUESTED_BY,
    )
    return _read_detail(request, workspace, place.location_id)


@router.get("/v1/locations/nearest", response_model=NearestOut, responses=_BAD)
def read_nearest(
    request: Request,
    workspace: AdminWorkspace,
    lat: Annotated[float | None, Query(description="Latitude of the origin (WGS84).")] = None,
    lon: Annotated[float | None, Query(description="Longitude of the origin.")] = None,
    postal_code: Annotated[
        str | None, Query(description="Search from this postal code instead (e.g. 00100).")
    ] = None,
    country: Annotated[str, Query(description="Country of postal_code.")] = "FI",
    location_id: Annotated[
        str | None,
        Query(description="Search from this location instead (a preferred store)."),
    ] = None,
    k: Annotated[int, Query(ge=1, le=50, description="How many locations.")] = 5,
    kind: Annotated[Literal["store", "warehouse", "any"], Query()] = "store",
    click_and_collect: Annotated[
        bool | None, Query(description="true: only those that offer click and collect.")
    ] = None,
    max_km: Annotated[float | None, Query(gt=0, description="No farther than this.")] = None,
    at: Annotated[str | None, Query(description=_AT_DOC)] = None,
) -> NearestOut:
    """The open-for-business locations nearest to a point, a postal code or a location, with
    their distance and whether they are open at `at`."""
    moment = _at(at)
    rt = runtime(request)
    with translate_errors("finding the nearest locations"), rt.engine.connect() as conn:
        origin = resolve_origin(
            conn,
            workspace,
            latitude=lat,
            longitude=lon,
            postal_code=postal_code,
            country=country,
            location_id=location_id,
        )
        found = nearest(
            conn,
            workspace,
            origin.latitude,
            origin.longitude,
            k=k,
            kind=None if kind == "any" else kind,
            click_and_collect=click_and_collect,
            max_km=max_km,
        )
        statuses = opening_statuses(
            conn, workspace, [near.location.location_id for near in found], moment
        )
    return NearestOut(
        origin=_origin(origin),
        at=to_iso(int(moment.timestamp() * 1000)),
        locations=[
            NearbyOut(
                **_location(near.location),
                distance_km=round(near.distance_km, 3),
                status=_status(statuses[near.location.location_id]),
            )
            for near in found
        ],
    )


@router.get("/v1/locations/{location_id}", response_model=LocationDetail, responses=_UNKNOWN)
def read_location(location_id: str, request: Request, workspace: AdminWorkspace) -> LocationDetail:
    """One location with its week's hours and the exceptions of the next 90 days."""
    return _read_detail(request, workspace, location_id)


@router.patch(
    "/v1/locations/{location_id}",
    response_model=LocationDetail,
    responses={**_BAD, **_UNKNOWN},
)
def change(
    location_id: str,
    body: Annotated[LocationFields, Body()],
    request: Request,
    workspace: AdminWorkspace,
) -> LocationDetail:
    """Change the fields sent; the others keep their values. `hours` replaces the week.
    `active: false` closes the location for good (`Location Closed`), `true` reopens it
    (`Location Opened`); switching `click_and_collect` records
    `Location Click and Collect Changed`."""
    actions.update_location(
        runtime(request),
        workspace,
        location_id,
        _fields(body),
        hours=body.hours,
        requested_by=REQUESTED_BY,
    )
    return _read_detail(request, workspace, location_id)


@router.post(
    "/v1/locations/{location_id}/deactivate", response_model=LocationDetail, responses=_UNKNOWN
)
def deactivate(location_id: str, request: Request, workspace: AdminWorkspace) -> LocationDetail:
    """Close the location for good (records `Location Closed` once). It is kept, with its
    history, but left out of lists and searches; reopen it with `PATCH {"active": true}`."""
    actions.deactivate_location(runtime(request), workspace, location_id, requested_by=REQUESTED_BY)
    return _read_detail(request, workspace, location_id)


@router.put(
    "/v1/locations/{location_id}/hours",
    response_model=LocationDetail,
    responses={**_BAD, **_UNKNOWN},
)
def put_hours(
    location_id: str,
    body: Annotated[Week, Body(description=_WEEK_DOC)],
    request: Request,
    workspace: AdminWorkspace,
) -> LocationDetail:
    """Replace the location's weekly opening hours."""
    actions.set_weekly_hours(runtime(request), workspace, location_id, body)
    return _read_detail(request, workspace, location_id)


@router.post(
    "/v1/locations/{location_id}/exceptions",
    response_model=LocationDetail,
    responses={**_BAD, **_UNKNOWN},
)
def post_exceptions(
    location_id: str, body: ExceptionsIn, request: Request, workspace: AdminWorkspace
) -> LocationDetail:
    """Set the hours of some dates instead of their weekdays' (holidays, Christmas Eve's early
    close); a date already set is replaced, other dates keep theirs."""
    actions.set_exceptions(runtime(request), workspace, location_id, _dumped(body.exceptions))
    return _read_detail(request, workspace, location_id)


@router.delete(
    "/v1/locations/{location_id}/exceptions/{day}",
    response_model=LocationDetail,
    responses={**_BAD, **_UNKNOWN},
)
def delete_exception(
    location_id: str, day: str, request: Request, workspace: AdminWorkspace
) -> LocationDetail:
    """Give a date (YYYY-MM-DD) its weekday's hours again. Nothing to remove is fine."""
    actions.remove_exception(runtime(request), workspace, location_id, day)
    return _read_detail(request, workspace, location_id)


@router.get(
    "/v1/locations/{location_id}/status",
    response_model=LocationStatus,
    responses={**_BAD, **_UNKNOWN},
)
def read_status(
    location_id: str,
    request: Request,
    workspace: AdminWorkspace,
    at: Annotated[str | None, Query(description=_AT_DOC)] = None,
) -> LocationStatus:
    """Whether the location is open at `at` (default now), when it closes, and when it opens
    next, in its own time zone, with its exceptions (holidays, early closing) applied."""
    moment = _at(at)
    rt = runtime(request)
    with translate_errors("reading opening hours"), rt.engine.connect() as conn:
        place = get_location(conn, workspace, location_id)
        if place is None:
            raise unknown_location(location_id)
        status = opening_status(conn, workspace, location_id, moment)
    return LocationStatus(
        **_status(status).model_dump(),
        location_id=place.location_id,
        timezone=place.timezone,
        at=moment.astimezone(ZoneInfo(place.timezone)).isoformat(),
    )
