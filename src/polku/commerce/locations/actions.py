"""Changes to locations: create, update, close for good, weekly hours and dated exceptions.

Locations are reference data from the retailer's systems (docs/architecture.md, "Commerce"):
an action writes the tables directly, in `runtime.outbox.transaction()`, after locking the
location's row, and records in the same transaction an event for every change others react
to, so journeys and signals see them as they see any event:

- ``Location Opened``: a location became active (created active, or reopened);
- ``Location Closed``: it closed for good (deactivated; it is kept for history);
- ``Location Click and Collect Changed``: an active location started or stopped offering
  click and collect.

They are track events about no customer (no userId or anonymousId: identity and profiles
pass them by), with the partition key ``location:<id>`` so one location's events stay in
order. Changes to opening hours record none: they are read when asked about.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from polku.collect.internal import internal_event
from polku.commerce.locations.fields import check_location_id, location_values
from polku.commerce.locations.queries import Location, location_of, unknown_location
from polku.commerce.locations.schedule import (
    CLOSED_WEEK,
    DayException,
    Week,
    encode_intervals,
    encode_week,
    parse_date,
    parse_exceptions,
    parse_week,
)
from polku.commerce.locations.tables import exceptions, locations
from polku.errors import Conflict, InvalidField
from polku.events import NewEvent

if TYPE_CHECKING:
    from polku.log.outbox import Transaction
    from polku.runtime import Runtime

__all__ = [
    "CLICK_AND_COLLECT_CHANGED",
    "LOCATION_CLOSED",
    "LOCATION_OPENED",
    "create_location",
    "deactivate_location",
    "remove_exception",
    "set_exceptions",
    "set_weekly_hours",
    "update_location",
]

LOCATION_OPENED: Final = "Location Opened"
LOCATION_CLOSED: Final = "Location Closed"
CLICK_AND_COLLECT_CHANGED: Final = "Location Click and Collect Changed"


def _event(workspace_id: str, name: str, place: Location, requested_by: str) -> NewEvent:
    properties: dict[str, Any] = {
        "location_id": place.location_id,
        "name": place.name,
        "kind": place.kind,
        "click_and_collect": place.click_and_collect,
        "postal_code": place.postal_code,
        "city": place.city,
        "country": place.country,
        "requested_by": requested_by,
    }
    if place.kind == "store":
        properties["store_id"] = place.location_id  # as the store events name stores
    return internal_event(
        workspace_id,
        name,
        properties,
        partition_key=f"location:{place.location_id}",
        message_id=f"polku-location-{uuid.uuid4().hex}",
    )


def _changes(before: Location | None, after: Location) -> list[str]:
    """The events a change from `before` (None: it did not exist) to `after` calls for."""
    was_active = before is not None and before.active
    if after.active and not was_active:
        return [LOCATION_OPENED]
    if was_active and not after.active:
        return [LOCATION_CLOSED]
    if before is not None and after.active and before.click_and_collect != after.click_and_collect:
        return [CLICK_AND_COLLECT_CHANGED]
    return []


def _locked(conn: Connection, workspace_id: str, location_id: str) -> Location:
    """The location's row, locked until the transaction ends (SQLite: its one writer)."""
    row = conn.execute(
        select(locations)
        .where(locations.c.workspace_id == workspace_id, locations.c.location_id == location_id)
        .with_for_update()
    ).first()
    if row is None:
        raise unknown_location(location_id)
    return location_of(row)


def _read(conn: Connection, workspace_id: str, location_id: str) -> Location:
    row = conn.execute(
        select(locations).where(
            locations.c.workspace_id == workspace_id, locations.c.location_id == location_id
        )
    ).one()
    return location_of(row)


def _write_week(conn: Connection, workspace_id: str, location_id: str, week: Week) -> None:
    conn.execute(
        update(locations)
        .where(locations.c.workspace_id == workspace_id, locations.c.location_id == location_id)
        .values(weekly_hours=encode_week(week))
    )


def _write_exceptions(
    conn: Connection, workspace_id: str, location_id: str, found: Sequence[DayException]
) -> None:
    if not found:
        return
    conn.execute(
        delete(exceptions).where(
            exceptions.c.workspace_id == workspace_id,
            exceptions.c.location_id == location_id,
            exceptions.c.day.in_([item.day for item in found]),
        )
    )
    conn.execute(
        insert(exceptions),
        [
            {
                "workspace_id": workspace_id,
                "location_id": location_id,
                "day": item.day,
                "intervals": encode_intervals(item.intervals),
                "note": item.note,
            }
            for item in found
        ],
    )


def _record(
    tx: Transaction, workspace_id: str, before: Location | None, after: Location, by: str
) -> None:
    for name in _changes(before, after):
        tx.record(_event(workspace_id, name, after, by))


def create_location(
    runtime: Runtime,
    workspace_id: str,
    fields: Mapping[str, object],
    *,
    hours: object = None,
    exceptions: object = None,
    requested_by: str = "admin_api",
) -> Location:
    """Create a store or warehouse from `fields` (see `fields.FIELDS`; `name`, `postal_code` and
    `city` are required; without `location_id` one is made), optionally with its week's
    `hours` and dated `exceptions` (formats in `polku.commerce.locations.schedule`).

    Without coordinates the location is placed at its postal code's point. Records
    ``Location Opened`` when it is created active.

    Raises `InvalidField` naming the field at fault, `Conflict` when the id is taken.
    """
    location_id = (
        check_location_id(fields["location_id"])
        if fields.get("location_id") is not None
        else f"loc-{uuid.uuid4().hex[:12]}"
    )
    values = location_values(fields, None)
    week = None if hours is None else parse_week(hours)
    dated = [] if exceptions is None else parse_exceptions(exceptions)
    now = int(time.time() * 1000)
    taken = Conflict(
        f"There is already a location {location_id!r} in this workspace.",
        field="location_id",
        hint=f"Change it with PATCH /v1/locations/{location_id}, or choose another id.",
    )
    try:
        with runtime.outbox.transaction() as tx:
            exists = tx.conn.execute(
                select(locations.c.location_id).where(
                    locations.c.workspace_id == workspace_id,
                    locations.c.location_id == location_id,
                )
            ).first()
            if exists is not None:
                raise taken
            tx.conn.execute(
                insert(locations).values(
                    workspace_id=workspace_id,
                    location_id=location_id,
                    created_at=now,
                    updated_at=now,
                    weekly_hours=encode_week(CLOSED_WEEK if week is None else week),
                    **{**values, "address": orjson.dumps(values["address"]).decode()},
                )
            )
            _write_exceptions(tx.conn, workspace_id, location_id, dated)
            created = _read(tx.conn, workspace_id, location_id)
            _record(tx, workspace_id, None, created, requested_by)
    except IntegrityError:  # another request created the same id at the same moment
        raise taken from None
    return created


def update_location(
    runtime: Runtime,
    workspace_id: str,
    location_id: str,
    fields: Mapping[str, object],
    *,
    hours: object = None,
    requested_by: str = "admin_api",
) -> Location:
    """Change the `fields` given (others keep their values; see `fields.FIELDS`, without
    `location_id`), and replace the week's `hours` when given. ``active: false`` closes the
    location for good, ``true`` reopens it. Records the events the change calls for.

    Raises `InvalidField` naming the field at fault, `NotFound` for an unknown location.
    """
    if "location_id" in fields and fields["location_id"] != location_id:
        raise InvalidField(
            "location_id cannot be changed.",
            field="location_id",
            hint="Create a new location with the new id and deactivate this one.",
        )
    week = None if hours is None else parse_week(hours)
    with runtime.outbox.transaction() as tx:
        before = _locked(tx.conn, workspace_id, location_id)
        values = location_values(fields, before)
        values["address"] = orjson.dumps(values["address"]).decode()
        tx.conn.execute(
            update(locations)
            .where(locations.c.workspace_id == workspace_id, locations.c.location_id == location_id)
            .values(updated_at=int(time.time() * 1000), **values)
        )
        if week is not None:
            _write_week(tx.conn, workspace_id, location_id, week)
        after = _read(tx.conn, workspace_id, location_id)
        _record(tx, workspace_id, before, after, requested_by)
    return after


def deactivate_location(
    runtime: Runtime, workspace_id: str, location_id: str, *, requested_by: str = "admin_api"
) -> Location:
    """Close a location for good: it leaves lists and searches but is kept, with its
    history. Records ``Location Closed`` unless it was closed already."""
    return update_location(
        runtime, workspace_id, location_id, {"active": False}, requested_by=requested_by
    )


def set_weekly_hours(runtime: Runtime, workspace_id: str, location_id: str, week: object) -> None:
    """Replace the location's week (``{"mon": [["09:00", "21:00"]], ...}``; a day left out
    is closed). Raises `InvalidField` for malformed or overlapping intervals."""
    parsed = parse_week(week)
    with runtime.outbox.transaction() as tx:
        _locked(tx.conn, workspace_id, location_id)
        _write_week(tx.conn, workspace_id, location_id, parsed)


def set_exceptions(runtime: Runtime, workspace_id: str, location_id: str, items: object) -> None:
    """Set the hours of the dates in `items` instead of their weekdays' (see
    `schedule.parse_exceptions`); other dates keep theirs."""
    parsed = parse_exceptions(items)
    with runtime.outbox.transaction() as tx:
        _locked(tx.conn, workspace_id, location_id)
        _write_exceptions(tx.conn, workspace_id, location_id, parsed)


def remove_exception(runtime: Runtime, workspace_id: str, location_id: str, day: object) -> None:
    """Give date `day` (``YYYY-MM-DD``) its weekday's hours again; nothing to remove is fine."""
    parsed = parse_date(day)
    with runtime.outbox.transaction() as tx:
        _locked(tx.conn, workspace_id, location_id)
        tx.conn.execute(
            delete(exceptions).where(
                exceptions.c.workspace_id == workspace_id,
                exceptions.c.location_id == location_id,
                exceptions.c.day == parsed,
            )
        )
