"""HTTP routes of stock: availability for a product page, stock facts from stores and
warehouses, and click-and-collect reservations.

Every route needs an admin token (the shop's and the tills' back ends call these; a browser
asks its shop, which asks Polku). Handlers translate: request → `actions` or `queries` →
response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, StrictInt, StrictStr
from starlette.concurrency import run_in_threadpool

from polku.commerce.locations.geo import locate_postal_code
from polku.commerce.orders.preferences import preferred_store
from polku.commerce.stock import actions, queries
from polku.errors import InvalidField, NotFound
from polku.http import AdminWorkspace, json_response, runtime
from polku.profiles.queries import get_profile
from polku.storage.engine import translate_errors

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = ["router"]

router = APIRouter(tags=["stock"])

_LIVE_POLL_SECONDS = 1.0
_ID = Field(min_length=1, max_length=100)


class LineIn(BaseModel):
    sku: StrictStr = Field(min_length=1, max_length=200)
    quantity: StrictInt


class Receipt(BaseModel):
    location_id: StrictStr = _ID
    lines: list[LineIn] = Field(max_length=1000)
    delivery_id: StrictStr | None = Field(None, max_length=200)


class Adjustment(BaseModel):
    location_id: StrictStr = _ID
    lines: list[LineIn] = Field(max_length=1000)
    reason: StrictStr = Field("correction", max_length=100)


class Count(BaseModel):
    location_id: StrictStr = _ID
    lines: list[LineIn] = Field(max_length=5000)
    count_id: StrictStr | None = Field(None, max_length=200)


class Transfer(BaseModel):
    from_location_id: StrictStr = _ID
    to_location_id: StrictStr = _ID
    lines: list[LineIn] = Field(max_length=1000)
    transfer_id: StrictStr | None = Field(None, max_length=200)


class ReservationIn(BaseModel):
    location_id: StrictStr = _ID
    lines: list[LineIn] = Field(max_length=100)
    userId: StrictStr | None = Field(None, max_length=300)
    anonymousId: StrictStr | None = Field(None, max_length=300)
    hold_hours: float = Field(72.0, description="How long the units are held (default 3 days).")
    reservation_id: StrictStr | None = Field(None, max_length=200)
    channel: StrictStr = Field("web", max_length=16)


class ReadyIn(BaseModel):
    collect_by: datetime | None = None


class CollectIn(BaseModel):
    staff_id: StrictStr | None = Field(None, max_length=100)


class ReleaseIn(BaseModel):
    reason: StrictStr = Field("cancelled", max_length=32)


def _lines(lines: list[LineIn]) -> list[actions.Line]:
    return [actions.Line(line.sku, line.quantity) for line in lines]


# -- availability ----------------------------------------------------------------------------


def _near(
    lat: float | None, lon: float | None, postal_code: str | None
) -> tuple[float, float] | None:
    if (lat is None) != (lon is None):
        raise InvalidField(
            "Send both lat and lon, or neither.", field="lat" if lat is None else "lon"
        )
    if lat is not None and lon is not None:
        return (lat, lon)
    if postal_code is not None:
        point = locate_postal_code(postal_code)
        if point is None:
            raise InvalidField(
                f"Unknown postal code {postal_code!r}.",
                field="postal_code",
                code="unknown_postal_code",
                hint="Send a five-digit Finnish postal code, or lat and lon.",
            )
        return point
    return None


def _preferred(rt: Runtime, ws: str, store: str | None, profile: str | None) -> str | None:
    if store is not None or profile is None:
        return store
    with translate_errors("reading the profile"), rt.engine.connect() as conn:
        found = get_profile(conn, ws, profile, rt.identity)
        if found is None:
            raise NotFound(f"Unknown profile {profile!r}.", field="profile", code="unknown_profile")
        value = found.traits.get("preferred_store")
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        # No store stated: the one the person's orders, pickups and visits point to.
        return preferred_store(conn, ws, found.profile_id, rt.identity)


@router.get("/v1/availability")
def get_availability(
    request: Request,
    workspace: AdminWorkspace,
    product_id: str | None = Query(None, max_length=200),
    sku: str | None = Query(None, max_length=200),
    lat: float | None = Query(None, ge=-90, le=90),
    lon: float | None = Query(None, ge=-180, le=180),
    postal_code: str | None = Query(None, max_length=20),
    store: str | None = Query(None, max_length=100, description="The preferred store."),
    profile: str | None = Query(None, max_length=64, description="Use the profile's store."),
    k: int = Query(5, ge=1, le=50, description="How many nearest stores with stock."),
) -> Response:
    """Per variant: units sellable online and in every store ("only 2 left" below
    `low_stock_threshold`), and the nearest stores that have it, with distance and opening
    status, from lat/lon, a postal code, or the preferred store (given, or the profile's)."""
    if (product_id is None) == (sku is None):
        raise InvalidField(
            "Ask for a product_id or a sku (one of them).",
            field="product_id",
            code="missing_product",
        )
    rt = runtime(request)
    near = _near(lat, lon, postal_code)
    preferred = _preferred(rt, workspace, store, profile)
    with translate_errors("reading availability"), rt.engine.connect() as conn:
        body = queries.availability(
            conn,
            workspace,
            product_id=product_id,
            sku=sku,
            near=near,
            preferred_store=preferred,
            k=k,
            at=datetime.now(UTC),
        )
    return json_response(body)


@router.get(
    "/v1/availability/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def live_availability(
    request: Request,
    workspace: AdminWorkspace,
    product_id: str | None = Query(None, max_length=200),
    sku: str | None = Query(None, max_length=200),
    seconds: float | None = Query(None, gt=0, le=86_400, description="Stop after this long."),
) -> StreamingResponse:
    """Server-sent events for a product page: `event: availability` with the per-variant,
    per-store sellable units, first at once, then whenever they change (from any process)."""
    if (product_id is None) == (sku is None):
        raise InvalidField(
            "Ask for a product_id or a sku (one of them).",
            field="product_id",
            code="missing_product",
        )
    rt = runtime(request)

    def snapshot() -> dict[str, Any]:
        with translate_errors("reading availability"), rt.engine.connect() as conn:
            full = queries.availability(
                conn, workspace, product_id=product_id, sku=sku, at=datetime.now(UTC)
            )
        return {
            "product_id": full["product_id"],
            "variants": [
                {
                    "sku": v["sku"],
                    "online": v["online"]["sellable"],
                    "stores": {s["location_id"]: s["sellable"] for s in v["stores"]},
                }
                for v in full["variants"]
            ],
        }

    first = await run_in_threadpool(snapshot)  # an unknown product fails here, as a 404

    async def stream() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        current = first
        yield b"retry: 2000\n\n"
        yield b"event: availability\ndata: " + orjson.dumps(current) + b"\n\n"
        while deadline is None or loop.time() < deadline:
            wait = _LIVE_POLL_SECONDS
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - loop.time()))
            await asyncio.sleep(wait)
            latest = await run_in_threadpool(snapshot)
            if latest != current:
                current = latest
                yield b"event: availability\ndata: " + orjson.dumps(current) + b"\n\n"
            else:
                yield b": keep-alive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# -- levels and facts ------------------------------------------------------------------------


@router.get("/v1/stock")
def get_levels(
    request: Request,
    workspace: AdminWorkspace,
    sku: str | None = Query(None, max_length=200),
    location_id: str | None = Query(None, max_length=100),
) -> Response:
    """Stock levels (on hand, reserved, sellable) by SKU and/or location."""
    if sku is None and location_id is None:
        raise InvalidField(
            "Filter by sku or location_id (or both).", field="sku", code="missing_filter"
        )
    rt = runtime(request)
    with translate_errors("reading stock"), rt.engine.connect() as conn:
        found = queries.levels_of(conn, workspace, sku=sku, location_id=location_id)
    return json_response({"levels": found})


@router.get("/v1/stock/movements")
def get_movements(
    request: Request,
    workspace: AdminWorkspace,
    sku: str = Query(max_length=200),
    location_id: str | None = Query(None, max_length=100),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    """A SKU's stock history, newest first, each change with the event that made it."""
    rt = runtime(request)
    with translate_errors("reading stock"), rt.engine.connect() as conn:
        found = queries.movements_of(conn, workspace, sku, location_id=location_id, limit=limit)
    return json_response({"movements": found})


@router.post("/v1/stock/receipts", status_code=201)
def post_receipt(request: Request, workspace: AdminWorkspace, body: Receipt) -> Response:
    """A delivery arrived at a store or warehouse (`Stock Received`)."""
    message_id = actions.receive(
        runtime(request), workspace, body.location_id, _lines(body.lines), body.delivery_id
    )
    return json_response({"messageId": message_id}, 201)


@router.post("/v1/stock/adjustments", status_code=201)
def post_adjustment(request: Request, workspace: AdminWorkspace, body: Adjustment) -> Response:
    """A correction of on-hand units, up or down (`Stock Adjusted`)."""
    message_id = actions.adjust(
        runtime(request), workspace, body.location_id, _lines(body.lines), body.reason
    )
    return json_response({"messageId": message_id}, 201)


@router.post("/v1/stock/counts", status_code=201)
def post_count(request: Request, workspace: AdminWorkspace, body: Count) -> Response:
    """A stock count: on-hand becomes what was counted (`Stock Counted`)."""
    message_id = actions.count(
        runtime(request), workspace, body.location_id, _lines(body.lines), body.count_id
    )
    return json_response({"messageId": message_id}, 201)


@router.post("/v1/stock/transfers", status_code=201)
def post_transfer(request: Request, workspace: AdminWorkspace, body: Transfer) -> Response:
    """Units moved between locations (`Stock Transferred`); refused if they are held."""
    message_id = actions.transfer(
        runtime(request),
        workspace,
        body.from_location_id,
        body.to_location_id,
        _lines(body.lines),
        body.transfer_id,
    )
    return json_response({"messageId": message_id}, 201)


# -- reservations ----------------------------------------------------------------------------


@router.post("/v1/reservations", status_code=201)
def post_reservation(request: Request, workspace: AdminWorkspace, body: ReservationIn) -> Response:
    """Reserve units at a store for the customer to collect (click and collect). 409
    `insufficient_stock` when fewer are sellable; released automatically after `hold_hours`."""
    found = actions.reserve(
        runtime(request),
        workspace,
        body.location_id,
        _lines(body.lines),
        user_id=body.userId,
        anonymous_id=body.anonymousId,
        hold=timedelta(hours=body.hold_hours),
        reservation_id=body.reservation_id,
        channel=body.channel,
    )
    return json_response(found.as_dict(), 201)


@router.get("/v1/reservations")
def get_reservations(
    request: Request,
    workspace: AdminWorkspace,
    location_id: str | None = Query(None, max_length=100),
    status: str | None = Query(None, pattern="^(held|ready|collected|released)$"),
    limit: int = Query(200, ge=1, le=1000),
) -> Response:
    """Reservations, the soonest due first: a store's list to prepare and hand over."""
    rt = runtime(request)
    with translate_errors("reading reservations"), rt.engine.connect() as conn:
        found = queries.list_reservations(
            conn, workspace, location_id=location_id, status=status, limit=limit
        )
    return json_response({"reservations": found})


@router.get("/v1/reservations/{reservation_id}")
def get_reservation(request: Request, workspace: AdminWorkspace, reservation_id: str) -> Response:
    rt = runtime(request)
    with translate_errors("reading reservations"), rt.engine.connect() as conn:
        found = actions.get_reservation(conn, workspace, reservation_id)
    if found is None:
        raise NotFound(
            f"No reservation {reservation_id!r}.",
            field="reservation_id",
            code="unknown_reservation",
        )
    return json_response(found.as_dict())


@router.post("/v1/reservations/{reservation_id}/ready")
def post_ready(
    request: Request, workspace: AdminWorkspace, reservation_id: str, body: ReadyIn | None = None
) -> Response:
    """The store has picked the items (`Click and Collect Ready`)."""
    found = actions.mark_ready(
        runtime(request), workspace, reservation_id, body.collect_by if body else None
    )
    return json_response(found.as_dict())


@router.post("/v1/reservations/{reservation_id}/collect")
def post_collect(
    request: Request, workspace: AdminWorkspace, reservation_id: str, body: CollectIn | None = None
) -> Response:
    """The customer collected it (`Click and Collect Picked Up`): units leave the shelf."""
    found = actions.collect(
        runtime(request), workspace, reservation_id, body.staff_id if body else None
    )
    return json_response(found.as_dict())


@router.post("/v1/reservations/{reservation_id}/release")
def post_release(
    request: Request, workspace: AdminWorkspace, reservation_id: str, body: ReleaseIn | None = None
) -> Response:
    """Give the units back (`Click and Collect Released`)."""
    found = actions.release(
        runtime(request), workspace, reservation_id, body.reason if body else "cancelled"
    )
    return json_response(found.as_dict())
