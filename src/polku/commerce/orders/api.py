"""HTTP routes of orders: a person's order history across channels, one order, the
preferences learnt from them, and the defaults a checkout preselects.

Every route needs an admin token (the shop's, the app's and the tills' back ends call these).
A profile id that was merged into another profile keeps working, as in the profiles API: the
answer names the surviving profile, with ``redirected_from`` set to the id asked for.
Handlers translate: request → `queries` / `preferences` → response.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from polku.commerce.orders import preferences
from polku.commerce.orders.queries import Order, OrderLine, get_order, orders_of
from polku.errors import InvalidField, NotFound
from polku.events import to_iso
from polku.http import AdminWorkspace, json_response, runtime
from polku.identity.queries import unknown_profile
from polku.profiles.queries import resolve
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter(tags=["orders"])


# -- shaping ----------------------------------------------------------------------------------


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _line(line: OrderLine) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "product_id": line.product_id,
        "name": line.name,
        "quantity": line.quantity,
        "price": _money(line.price),
    }


def order_body(order: Order) -> dict[str, Any]:
    """An order as the API shows it: amounts as exact decimal strings, times in ISO-8601."""
    return {
        "order_id": order.order_id,
        "channel": order.channel,
        "store_id": order.store_id,
        "receipt_id": order.receipt_id,
        "placed_at": to_iso(order.placed_at),
        "status": order.status,
        "currency": order.currency,
        "total": _money(order.total),
        "payment_method": order.payment_method,
        "shipping_method": order.shipping_method,
        "lines": [_line(line) for line in order.lines],
        "cancelled_at": None if order.cancelled_at is None else to_iso(order.cancelled_at),
        "refunded_total": _money(order.refunded_total),
        "refunds": [
            {
                "message_id": refund.message_id,
                "at": to_iso(refund.at),
                "total": _money(refund.total),
                "lines": [_line(line) for line in refund.lines],
            }
            for refund in order.refunds
        ],
        "profile_id": order.profile_id,
        "message_id": order.message_id,
    }


def _encode_cursor(order: Order) -> str:
    raw = f"{order.placed_at}.{order.offset}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        placed_at, offset = raw.split(".")
        if not (placed_at.isdigit() and offset.isdigit()) or len(raw) > 40:
            raise ValueError(raw)
        return int(placed_at), int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidField(
            "cursor is not a cursor this API handed out.",
            field="cursor",
            hint="Pass next_cursor from the previous page unchanged, or leave cursor out for "
            "the newest orders.",
        ) from None


# -- orders -----------------------------------------------------------------------------------


@router.get(
    "/v1/profiles/{profile_id}/orders",
    responses={
        400: {"description": "A bad limit or cursor (the field is named)."},
        404: {"description": "No such profile in this workspace."},
    },
)
def list_orders(
    profile_id: str,
    request: Request,
    workspace: AdminWorkspace,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=100, description="`next_cursor` of the previous page.")
    ] = None,
) -> Response:
    """The person's orders from every channel (web, app, store tills), newest first, each
    with its lines, status (completed, cancelled, refunded, partly_refunded) and refunds.
    Page with `next_cursor`; the cursor stays valid while new orders arrive."""
    before = None if cursor is None else _decode_cursor(cursor)
    rt = runtime(request)
    with translate_errors("reading orders"), rt.engine.connect() as conn:
        holder = resolve(conn, workspace, profile_id)
        if holder is None:
            raise unknown_profile(profile_id)
        found = orders_of(conn, workspace, holder, limit=limit + 1, before=before)
    page = found[:limit]
    return json_response(
        {
            "profile_id": holder,
            "redirected_from": profile_id if holder != profile_id else None,
            "orders": [order_body(order) for order in page],
            "next_cursor": _encode_cursor(page[-1]) if len(found) > limit else None,
        }
    )


@router.get(
    "/v1/orders/{order_id}",
    responses={404: {"description": "No order with this id in this workspace."}},
)
def read_order(order_id: str, request: Request, workspace: AdminWorkspace) -> Response:
    """One order from any channel. A till receipt sent without an order id is
    `pos:<store_id>:<receipt_id>` (e.g. `pos:HEL-01:HEL-01-03-000731`)."""
    rt = runtime(request)
    with translate_errors("reading an order"), rt.engine.connect() as conn:
        found = get_order(conn, workspace, order_id)
    if found is None:
        raise NotFound(
            f"There is no order {order_id[:80]!r} in this workspace.",
            field="order_id",
            code="unknown_order",
            hint="A till receipt without an order id is pos:<store_id>:<receipt_id>; a new "
            "order appears once the pipeline has processed its event. List a person's "
            "orders with GET /v1/profiles/{profile_id}/orders.",
        )
    return json_response(order_body(found))


# -- preferences and checkout defaults --------------------------------------------------------


@router.get(
    "/v1/profiles/{profile_id}/preferences",
    responses={404: {"description": "No such profile in this workspace."}},
)
def read_preferences(profile_id: str, request: Request, workspace: AdminWorkspace) -> Response:
    """What the person prefers, learnt from their orders, click-and-collect reservations and
    store visits across channels (recency-weighted), or stated in their traits
    (`preferred_store`, `preferred_delivery_method`, `preferred_payment_method`), which win.
    Each preference has its confidence, its evidence and the reason in words."""
    rt = runtime(request)
    with translate_errors("reading preferences"), rt.engine.connect() as conn:
        found = preferences.preferences_of(conn, workspace, profile_id, rt.identity)
    if found is None:
        raise unknown_profile(profile_id)
    return json_response(preferences.preferences_body(found, profile_id))


@router.get(
    "/v1/checkout/defaults",
    responses={
        400: {"description": "Not exactly one of profile, userId, anonymousId."},
        404: {"description": "No such profile (for `profile`)."},
    },
)
def checkout_defaults(
    request: Request,
    workspace: AdminWorkspace,
    profile: Annotated[str | None, Query(max_length=64)] = None,
    userId: Annotated[str | None, Query(max_length=255)] = None,
    anonymousId: Annotated[str | None, Query(max_length=255)] = None,
    channel: Annotated[
        str, Query(pattern="^(web|app)$", description="Where the checkout is: web or app.")
    ] = "web",
) -> Response:
    """What a checkout preselects for this customer: the delivery method, the store to
    collect from (with its click-and-collect and opening status now) and the payment method
    type, each with the reason in words. A shopper Polku does not know yet (by userId or
    anonymousId) gets no defaults (200, every choice null)."""
    given = [
        (name, value)
        for name, value in (("profile", profile), ("userId", userId), ("anonymousId", anonymousId))
        if value is not None
    ]
    if len(given) != 1:
        raise InvalidField(
            "Name the customer with exactly one of profile, userId or anonymousId.",
            field="profile" if not given else given[1][0],
            code="missing_customer" if not given else "invalid_field",
            hint="Call /v1/checkout/defaults?userId=... for a signed-in customer, "
            "?anonymousId=... for a guest.",
        )
    name, value = given[0]
    rt = runtime(request)
    with translate_errors("reading checkout defaults"), rt.engine.connect() as conn:
        found = preferences.checkout_defaults(
            conn,
            workspace,
            rt.identity,
            profile_id=value if name == "profile" else None,
            user_id=value if name == "userId" else None,
            anonymous_id=value if name == "anonymousId" else None,
            channel=channel,
            at=datetime.now(UTC),
        )
    if found is None:
        raise unknown_profile(value)
    return json_response(found)
