"""HTTP routes of returns and the outlet: the policy, requests, receipt, inspection, refund,
the return rate of a product, and the outlet listings of each store.

Every route needs an admin token (the shop's back end, the app's and the tills'). Handlers
translate: request → `actions`, `outlet` or `queries` → response.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictInt, StrictStr

from polku.commerce.returns import actions, outlet, queries
from polku.commerce.returns.policy import get_policy
from polku.errors import InvalidField, NotFound
from polku.http import AdminWorkspace, json_response, runtime
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter(tags=["returns"])

_ID = Field(min_length=1, max_length=200)
_STATUS = "^(requested|received|inspected|refunded|cancelled)$"


class CategoryWindowIn(BaseModel):
    category: StrictStr | list[StrictStr] = Field(
        description='A category path: "Naiset > Takit" or ["Naiset", "Takit"].'
    )
    days: StrictInt


class PolicyIn(BaseModel):
    default_window_days: StrictInt = 30
    category_windows: list[CategoryWindowIn] = Field(default_factory=list, max_length=1000)
    outlet_discount_percent: StrictInt = 30
    gift_card_bonus_percent: StrictInt = 0
    gift_card_validity_days: StrictInt = 730


class ReturnLineIn(BaseModel):
    sku: StrictStr = _ID
    quantity: StrictInt = 1
    reason: StrictStr = Field(max_length=32)
    note: StrictStr | None = Field(None, max_length=500)


class ReturnIn(BaseModel):
    order_id: StrictStr = _ID
    lines: list[ReturnLineIn] = Field(max_length=1000)
    channel: StrictStr = Field("web", max_length=16)
    return_method: StrictStr | None = Field(None, max_length=16)
    location_id: StrictStr | None = Field(
        None, max_length=100, description="A store taking the goods back now: received at once."
    )
    return_id: StrictStr | None = Field(None, max_length=200)
    staff_id: StrictStr | None = Field(None, max_length=100)


class ReceiveIn(BaseModel):
    location_id: StrictStr = Field(min_length=1, max_length=100)
    staff_id: StrictStr | None = Field(None, max_length=100)


class InspectionLineIn(BaseModel):
    sku: StrictStr = _ID
    quantity: StrictInt = 1
    outcome: StrictStr = Field(max_length=16, description="restock, outlet or dispose.")
    condition: StrictStr | None = Field(None, max_length=500)


class InspectIn(BaseModel):
    lines: list[InspectionLineIn] = Field(max_length=1000)
    staff_id: StrictStr | None = Field(None, max_length=100)


class RefundIn(BaseModel):
    method: StrictStr = Field(
        "original_payment", max_length=32, description="original_payment or gift_card."
    )


class CancelIn(BaseModel):
    reason: StrictStr | None = Field(None, max_length=200)


class OutletReserveIn(BaseModel):
    userId: StrictStr | None = Field(None, max_length=300)
    anonymousId: StrictStr | None = Field(None, max_length=300)
    hold_hours: float = Field(24.0, description="How long it is held (default a day).")


class OutletReleaseIn(BaseModel):
    reason: StrictStr = Field("cancelled", max_length=32)


class OutletSellIn(BaseModel):
    store_id: StrictStr = Field(min_length=1, max_length=100)
    receipt_id: StrictStr | None = Field(None, max_length=200)
    userId: StrictStr | None = Field(None, max_length=300)
    anonymousId: StrictStr | None = Field(None, max_length=300)


def _now() -> int:
    return int(time.time() * 1000)


def _path(category: str | list[str]) -> list[str]:
    return category.split(">") if isinstance(category, str) else category


def _detail(request: Request, workspace: str, found: queries.Return) -> dict[str, Any]:
    rt = runtime(request)
    with translate_errors("reading returns"), rt.engine.connect() as conn:
        events = queries.history_of(conn, workspace, found.return_id)
    return {**found.as_dict(), "history": events}


# -- the policy and the figures --------------------------------------------------------------


@router.get("/v1/returns/policy")
def get_return_policy(request: Request, workspace: AdminWorkspace) -> Response:
    """The return windows (default and per category), the reason codes, the outlet discount
    and the gift card bonus."""
    rt = runtime(request)
    with translate_errors("reading the return policy"), rt.engine.connect() as conn:
        policy = get_policy(conn, workspace)
    return json_response(policy.as_dict())


@router.put("/v1/returns/policy")
def put_return_policy(request: Request, workspace: AdminWorkspace, body: PolicyIn) -> Response:
    """Replace the return policy; it applies to returns requested from now on."""
    policy = actions.set_policy(
        runtime(request),
        workspace,
        default_window_days=body.default_window_days,
        category_windows=[(_path(w.category), w.days) for w in body.category_windows],
        outlet_discount_percent=body.outlet_discount_percent,
        gift_card_bonus_percent=body.gift_card_bonus_percent,
        gift_card_validity_days=body.gift_card_validity_days,
    )
    return json_response(policy.as_dict())


@router.get("/v1/returns/stats")
def get_return_stats(
    request: Request,
    workspace: AdminWorkspace,
    product_id: str | None = Query(None, max_length=200),
    sku: str | None = Query(None, max_length=200),
) -> Response:
    """Return rate (units returned / units sold) and the reasons, of a product (with each of
    its SKUs) or one SKU."""
    if (product_id is None) == (sku is None):
        raise InvalidField(
            "Ask for a product_id or a sku (one of them).",
            field="product_id",
            code="missing_product",
        )
    rt = runtime(request)
    with translate_errors("reading return figures"), rt.engine.connect() as conn:
        body = queries.return_stats(conn, workspace, product_id=product_id, sku=sku)
    return json_response(body)


# -- returns ---------------------------------------------------------------------------------


@router.post("/v1/returns", status_code=201)
def post_return(request: Request, workspace: AdminWorkspace, body: ReturnIn) -> Response:
    """Request a return against an order (`Return Requested`): the shop's returns page, the
    app, or a store's till (with `location_id`: received there at once)."""
    found = actions.request(
        runtime(request),
        workspace,
        body.order_id,
        [actions.RequestLine(x.sku, x.quantity, x.reason, x.note) for x in body.lines],
        channel=body.channel,
        return_method=body.return_method,
        location_id=body.location_id,
        return_id=body.return_id,
        staff_id=body.staff_id,
    )
    return json_response(_detail(request, workspace, found), 201)


@router.get("/v1/returns")
def get_returns(
    request: Request,
    workspace: AdminWorkspace,
    order_id: str | None = Query(None, max_length=200),
    status: str | None = Query(None, pattern=_STATUS),
    location_id: str | None = Query(None, max_length=100),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    """Returns, newest first: an order's, or a store's to inspect (`status=received`)."""
    rt = runtime(request)
    with translate_errors("reading returns"), rt.engine.connect() as conn:
        found = queries.list_returns(
            conn, workspace, order_id=order_id, status=status, location_id=location_id, limit=limit
        )
    return json_response({"returns": [r.as_dict() for r in found]})


@router.get("/v1/returns/{return_id}")
def get_return(request: Request, workspace: AdminWorkspace, return_id: str) -> Response:
    """One return with its lines, their deadlines and outcomes, the refund and the history."""
    rt = runtime(request)
    with translate_errors("reading returns"), rt.engine.connect() as conn:
        found = queries.get_return(conn, workspace, return_id)
    if found is None:
        raise NotFound(f"No return {return_id!r}.", field="return_id", code="unknown_return")
    return json_response(_detail(request, workspace, found))


@router.post("/v1/returns/{return_id}/receive")
def post_receive(
    request: Request, workspace: AdminWorkspace, return_id: str, body: ReceiveIn
) -> Response:
    """The goods arrived at a store or the warehouse (`Return Received`)."""
    found = actions.receive(runtime(request), workspace, return_id, body.location_id, body.staff_id)
    return json_response(_detail(request, workspace, found))


@router.post("/v1/returns/{return_id}/inspect")
def post_inspect(
    request: Request, workspace: AdminWorkspace, return_id: str, body: InspectIn
) -> Response:
    """Every unit's outcome (`Return Inspected`): `restock` (on hand again where received),
    `outlet` (a listing at the discount, in that store), `dispose`."""
    found = actions.inspect(
        runtime(request),
        workspace,
        return_id,
        [actions.Inspection(x.sku, x.quantity, x.outcome, x.condition) for x in body.lines],
        body.staff_id,
    )
    return json_response(_detail(request, workspace, found))


@router.post("/v1/returns/{return_id}/refund")
def post_refund(
    request: Request, workspace: AdminWorkspace, return_id: str, body: RefundIn | None = None
) -> Response:
    """Refund what was paid for the returned units (`Order Refunded`), to the original
    payment method or as a gift card with the policy's bonus (`Gift Card Issued`; its full
    `code` is in this answer only)."""
    done = actions.refund(
        runtime(request), workspace, return_id, body.method if body else "original_payment"
    )
    answer = _detail(request, workspace, done.ret)
    if done.giftcard is not None:
        answer["giftcard"] = {**done.giftcard.card.as_dict(_now()), "code": done.giftcard.code}
    return json_response(answer)


@router.post("/v1/returns/{return_id}/cancel")
def post_cancel(
    request: Request, workspace: AdminWorkspace, return_id: str, body: CancelIn | None = None
) -> Response:
    """The customer will not send it after all (`Return Cancelled`)."""
    found = actions.cancel(runtime(request), workspace, return_id, body.reason if body else None)
    return json_response(_detail(request, workspace, found))


# -- the outlet ------------------------------------------------------------------------------


@router.get("/v1/outlet")
def get_outlet(
    request: Request,
    workspace: AdminWorkspace,
    location_id: str | None = Query(None, max_length=100),
    sku: str | None = Query(None, max_length=200),
    status: str | None = Query(None, pattern="^(available|reserved|sold)$"),
    return_id: str | None = Query(None, max_length=200),
    limit: int = Query(200, ge=1, le=1000),
) -> Response:
    """Outlet units, oldest first: a store's outlet shelf (`location_id`, `status=available`)."""
    rt = runtime(request)
    now = _now()
    with translate_errors("reading the outlet"), rt.engine.connect() as conn:
        found = queries.list_listings(
            conn,
            workspace,
            now_ms=now,
            location_id=location_id,
            sku=sku,
            status=status,
            return_id=return_id,
            limit=limit,
        )
    return json_response({"listings": [x.as_dict(now) for x in found]})


@router.get("/v1/outlet/{listing_id}")
def get_outlet_listing(request: Request, workspace: AdminWorkspace, listing_id: str) -> Response:
    rt = runtime(request)
    with translate_errors("reading the outlet"), rt.engine.connect() as conn:
        found = queries.get_listing(conn, workspace, listing_id)
    if found is None:
        raise NotFound(
            f"No outlet listing {listing_id!r}.", field="listing_id", code="unknown_listing"
        )
    return json_response(found.as_dict(_now()))


@router.post("/v1/outlet/{listing_id}/reserve")
def post_outlet_reserve(
    request: Request, workspace: AdminWorkspace, listing_id: str, body: OutletReserveIn
) -> Response:
    """Hold an outlet unit for a customer (`Outlet Item Reserved`)."""
    found = outlet.reserve(
        runtime(request),
        workspace,
        listing_id,
        user_id=body.userId,
        anonymous_id=body.anonymousId,
        hold=timedelta(hours=body.hold_hours),
    )
    return json_response(found.as_dict(_now()))


@router.post("/v1/outlet/{listing_id}/release")
def post_outlet_release(
    request: Request,
    workspace: AdminWorkspace,
    listing_id: str,
    body: OutletReleaseIn | None = None,
) -> Response:
    """End a reservation early (`Outlet Item Released`)."""
    found = outlet.release(
        runtime(request), workspace, listing_id, body.reason if body else "cancelled"
    )
    return json_response(found.as_dict(_now()))


@router.post("/v1/outlet/{listing_id}/sell")
def post_outlet_sell(
    request: Request, workspace: AdminWorkspace, listing_id: str, body: OutletSellIn
) -> Response:
    """Sold at its outlet price (`Outlet Item Sold`), only in the store that received it."""
    found = outlet.sell(
        runtime(request),
        workspace,
        listing_id,
        body.store_id,
        receipt_id=body.receipt_id,
        user_id=body.userId,
        anonymous_id=body.anonymousId,
    )
    return json_response(found.as_dict(_now()))
