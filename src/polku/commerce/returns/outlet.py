"""Writes to outlet listings: reserve a returned unit for a customer, release it, sell it.

A listing is one returned unit, priced at the catalogue price less the policy's discount
when it was inspected, and sellable only in the store that received it. Each step is one
transaction that locks the listing's row, checks, applies its event through
`projection.apply_event` and records it. A reservation ends by itself at its time
(`reserved_until`: read as available after it), so it needs no timer.

Outlet units are not in the stock levels (they are not new goods), so a sale moves no
stock: a till that rings the unit should send its line under the listing id, not the SKU.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Final

import orjson

from polku.collect.internal import internal_event
from polku.commerce.catalog.money import from_minor
from polku.commerce.returns.actions import Backends
from polku.commerce.returns.projection import (
    OUTLET_RELEASED,
    OUTLET_RESERVED,
    OUTLET_SOLD,
    apply_event,
)
from polku.commerce.returns.queries import Listing, get_listing
from polku.errors import Conflict, InvalidField, NotFound
from polku.events import NewEvent, to_iso
from polku.log.outbox import Transaction

__all__ = ["DEFAULT_HOLD", "MAX_HOLD", "release", "reserve", "sell"]

DEFAULT_HOLD: Final = timedelta(hours=24)
MAX_HOLD: Final = timedelta(days=7)


def _now() -> int:
    return int(time.time() * 1000)


def _locked(tx: Transaction, ws: str, listing_id: str) -> Listing:
    found = get_listing(tx.conn, ws, listing_id, lock=True)
    if found is None:
        raise NotFound(
            f"No outlet listing {listing_id!r}.",
            field="listing_id",
            code="unknown_listing",
            hint="GET /v1/outlet?location_id=... lists a store's outlet units.",
        )
    return found


def _record(
    tx: Transaction,
    ws: str,
    found: Listing,
    name: str,
    properties: dict[str, Any],
    at: int,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
) -> None:
    event: NewEvent = internal_event(
        ws,
        name,
        {
            "listing_id": found.listing_id,
            "store_id": found.location_id,
            "sku": found.sku,
            "price": float(from_minor(found.price_minor, found.currency)),
            "currency": found.currency,
            **properties,
        },
        user_id=user_id,
        anonymous_id=None if user_id else anonymous_id,
        partition_key=None if (user_id or anonymous_id) else f"outlet:{found.listing_id}",
        channel="store",
        at_ms=at,
    )
    message: dict[str, Any] = orjson.loads(event.payload)
    apply_event(tx.conn, event, message)
    tx.record(event)


def _refuse_taken(
    found: Listing, now: int, *, user_id: str | None, anonymous_id: str | None
) -> None:
    status = found.status_at(now)
    if status == "sold":
        raise Conflict(
            f"Outlet unit {found.listing_id!r} was sold already.",
            field="listing_id",
            code="outlet_sold",
        )
    if status == "reserved":
        mine = (user_id and user_id == found.reserved_user_id) or (
            anonymous_id and anonymous_id == found.reserved_anonymous_id
        )
        if not mine:
            raise Conflict(
                f"Outlet unit {found.listing_id!r} is reserved for another customer until "
                f"{to_iso(found.reserved_until or now)}.",
                field="listing_id",
                code="outlet_reserved",
                hint="Choose another unit, or wait until the reservation ends.",
            )


def reserve(
    runtime: Backends,
    ws: str,
    listing_id: str,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    hold: timedelta = DEFAULT_HOLD,
) -> Listing:
    """Hold an outlet unit for a customer until `hold` runs out (`Outlet Item Reserved`)."""
    if not (user_id or anonymous_id):
        raise InvalidField(
            "A reservation belongs to a customer: send userId or anonymousId.",
            field="userId",
            code="missing_identity",
        )
    if not timedelta(minutes=1) <= hold <= MAX_HOLD:
        raise InvalidField(
            f"Hold {hold} is out of range; hold between 1 minute and {MAX_HOLD.days} days.",
            field="hold_hours",
            code="invalid_hold",
        )
    now = _now()
    until = now + int(hold.total_seconds() * 1000)
    with runtime.outbox.transaction() as tx:
        found = _locked(tx, ws, listing_id)
        _refuse_taken(found, now, user_id=None, anonymous_id=None)
        _record(
            tx,
            ws,
            found,
            OUTLET_RESERVED,
            {"reserved_until": to_iso(until)},
            now,
            user_id=user_id,
            anonymous_id=anonymous_id,
        )
    return _read(runtime, ws, listing_id)


def release(runtime: Backends, ws: str, listing_id: str, reason: str = "cancelled") -> Listing:
    """End a reservation before its time (`Outlet Item Released`)."""
    now = _now()
    with runtime.outbox.transaction() as tx:
        found = _locked(tx, ws, listing_id)
        if found.status_at(now) != "reserved":
            raise Conflict(
                f"Outlet unit {listing_id!r} is {found.status_at(now)}, not reserved.",
                field="listing_id",
                code="outlet_not_reserved",
            )
        _record(
            tx,
            ws,
            found,
            OUTLET_RELEASED,
            {"reason": reason},
            now,
            user_id=found.reserved_user_id,
            anonymous_id=found.reserved_anonymous_id,
        )
    return _read(runtime, ws, listing_id)


def sell(
    runtime: Backends,
    ws: str,
    listing_id: str,
    store_id: str,
    *,
    receipt_id: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
) -> Listing:
    """Sell an outlet unit at its outlet price (`Outlet Item Sold`): only in the store that
    received it, and a reserved unit only to the customer it is held for."""
    now = _now()
    with runtime.outbox.transaction() as tx:
        found = _locked(tx, ws, listing_id)
        if store_id != found.location_id:
            raise Conflict(
                f"Outlet unit {listing_id!r} is sold only at {found.location_id}, where it "
                "was returned.",
                field="store_id",
                code="wrong_store",
                hint=f"Sell it at {found.location_id}, or sell a new unit here.",
            )
        _refuse_taken(found, now, user_id=user_id, anonymous_id=anonymous_id)
        if found.status_at(now) == "reserved":
            user_id = user_id or found.reserved_user_id
            anonymous_id = anonymous_id or found.reserved_anonymous_id
        properties: dict[str, Any] = {"receipt_id": receipt_id} if receipt_id else {}
        _record(
            tx,
            ws,
            found,
            OUTLET_SOLD,
            properties,
            now,
            user_id=user_id,
            anonymous_id=anonymous_id,
        )
    return _read(runtime, ws, listing_id)


def _read(runtime: Backends, ws: str, listing_id: str) -> Listing:
    with runtime.engine.connect() as conn:
        found = get_listing(conn, ws, listing_id)
    assert found is not None
    return found
