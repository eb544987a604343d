"""HTTP routes of carts: the shop's back end reads and changes its customers' carts.

Every route needs an admin token (a browser asks its shop, which asks Polku). The customer
is named by `userId` and/or `anonymousId` (as the shop's tracking sends them), or by a
`profile` id; the same cart answers from any device of the person. Every change answers
with the whole cart. Handlers translate: request → `actions` or `queries` → response.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from polku.commerce.carts import actions
from polku.commerce.carts.owners import Shopper
from polku.commerce.carts.queries import MAX_QUANTITY, get_cart
from polku.http import AdminWorkspace, json_response, runtime
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter(tags=["carts"])

_USER = Field(None, max_length=300, description="The signed-in customer's userId.")
_ANONYMOUS = Field(None, max_length=300, description="The device's anonymousId.")
_PROFILE = Field(None, max_length=64, description="A profile id, instead of the identifiers.")
_CHANNEL = Field("web", max_length=16, description="context.channel of the events: web, app, ...")
_STORE = Field(None, max_length=100, description="Judge availability at this store.")
_KEY = Field(None, max_length=150, description="Idempotency key: a retry changes nothing twice.")


class ShopperIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    userId: StrictStr | None = _USER
    anonymousId: StrictStr | None = _ANONYMOUS
    profile: StrictStr | None = _PROFILE
    channel: StrictStr = _CHANNEL
    store: StrictStr | None = _STORE

    def shopper(self) -> Shopper:
        return Shopper(self.userId, self.anonymousId, self.profile)


class LineIn(ShopperIn):
    sku: StrictStr = Field(min_length=1, max_length=200)
    quantity: StrictInt = Field(1, description=f"Units to add, 1 to {MAX_QUANTITY}.")
    messageId: StrictStr | None = _KEY


class QuantityIn(ShopperIn):
    quantity: StrictInt = Field(description=f"Units the line holds, 1 to {MAX_QUANTITY}.")
    messageId: StrictStr | None = _KEY


@router.get("/v1/carts")
def read_cart(
    request: Request,
    workspace: AdminWorkspace,
    userId: str | None = Query(None, max_length=300),
    anonymousId: str | None = Query(None, max_length=300),
    profile: str | None = Query(None, max_length=64),
    store: str | None = Query(None, max_length=100),
) -> Response:
    """The customer's cart: lines with today's prices and the price when added,
    availability (`available`, `reason`), and totals per currency. Records nothing."""
    rt = runtime(request)
    with translate_errors("reading the cart"), rt.engine.connect() as conn:
        cart = get_cart(
            conn, workspace, Shopper(userId, anonymousId, profile), rt.identity, store=store
        )
    return json_response(cart.as_dict())


@router.post("/v1/carts/lines")
def add_line(request: Request, workspace: AdminWorkspace, body: LineIn) -> Response:
    """Add units of a SKU (`Product Added`); added to its line if the cart has one."""
    done = actions.add(
        runtime(request),
        workspace,
        body.shopper(),
        body.sku,
        body.quantity,
        channel=body.channel,
        message_id=body.messageId,
        store=body.store,
    )
    return json_response(done.as_dict())


@router.put("/v1/carts/lines/{sku:path}")
def set_line(request: Request, workspace: AdminWorkspace, sku: str, body: QuantityIn) -> Response:
    """Make a line hold this many units (`Product Added` or `Product Removed` for the
    difference)."""
    done = actions.set_quantity(
        runtime(request),
        workspace,
        body.shopper(),
        sku,
        body.quantity,
        channel=body.channel,
        message_id=body.messageId,
        store=body.store,
    )
    return json_response(done.as_dict())


@router.delete("/v1/carts/lines/{sku:path}")
def remove_line(
    request: Request,
    workspace: AdminWorkspace,
    sku: str,
    userId: str | None = Query(None, max_length=300),
    anonymousId: str | None = Query(None, max_length=300),
    profile: str | None = Query(None, max_length=64),
    channel: str = Query("web", max_length=16),
    messageId: str | None = Query(None, max_length=150),
    store: str | None = Query(None, max_length=100),
) -> Response:
    """Take a line out of the cart (`Product Removed` with all its units)."""
    done = actions.remove(
        runtime(request),
        workspace,
        Shopper(userId, anonymousId, profile),
        sku,
        channel=channel,
        message_id=messageId,
        store=store,
    )
    return json_response(done.as_dict())


@router.post("/v1/carts/clear")
def clear_cart(request: Request, workspace: AdminWorkspace, body: ShopperIn) -> Response:
    """Empty the cart (one `Product Removed` per line)."""
    done = actions.clear(
        runtime(request), workspace, body.shopper(), channel=body.channel, store=body.store
    )
    return json_response(done.as_dict())


@router.post("/v1/carts/viewed")
def cart_viewed(request: Request, workspace: AdminWorkspace, body: ShopperIn) -> Response:
    """The customer looked at the cart: records `Cart Viewed` with its products."""
    done = actions.mark_viewed(
        runtime(request), workspace, body.shopper(), channel=body.channel, store=body.store
    )
    return json_response(done.as_dict())


@router.post("/v1/carts/checkout")
def start_checkout(request: Request, workspace: AdminWorkspace, body: ShopperIn) -> Response:
    """The customer starts checkout: records `Checkout Started` with the products and the
    total. 409 `empty_cart`, `unavailable_items` or `mixed_currencies` records nothing."""
    done = actions.checkout(
        runtime(request), workspace, body.shopper(), channel=body.channel, store=body.store
    )
    return json_response(done.as_dict())
