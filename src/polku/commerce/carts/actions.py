"""Every write to a cart, and the cart events Polku records for the shop's back end.

Each function validates its input first (a SKU known to the catalogue, and on sale to be
added; a whole quantity from 1 to `MAX_QUANTITY`; a known channel; a usable identifier),
then runs one transaction (`runtime.outbox`) that:

1. finds the person's cart (`owners.find_holder`), locks its owner rows (PostgreSQL
   ``FOR UPDATE`` in owner order; SQLite has one writer) and looks again until no new
   owner turns up;
2. folds every other owner of the person (a device cart the consumer has not moved yet, a
   merged profile's cart it has not folded yet) into the cart's home, so the decision sees
   the whole cart;
3. checks the request against the cart (the line limit, a line to change exists), builds
   the event with today's catalogue data, applies it through `projection.apply_event` (the
   same code the consumer and a replay run) and records it in the same transaction.

A refused or failed request changes nothing and records nothing. Two devices adding the
same SKU at once both count: the second waits for the first's lock and adds to its line.
A transaction that loses a deadlock on PostgreSQL is tried again.

The shop may send an idempotency key (`message_id`, the API's ``messageId``) with a line
change: a retry of a change that was applied answers the cart without changing it again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection

from polku.collect.internal import internal_event
from polku.commerce.carts.lines import LineState, fold, get_change
from polku.commerce.carts.owners import Holder, Shopper, find_holder, lock_owners
from polku.commerce.carts.projection import (
    ADDED,
    CHECKOUT_STARTED,
    REMOVED,
    VIEWED,
    apply_event,
)
from polku.commerce.carts.queries import MAX_LINES, MAX_QUANTITY, Cart, person_lines, view
from polku.commerce.catalog.queries import Variant, get_product, get_variant
from polku.errors import Conflict, InvalidField, NotFound, Unavailable
from polku.events import CHANNELS, NewEvent
from polku.identity.identifiers import IdentityConfig
from polku.log.outbox import Backends as Decides
from polku.storage.engine import snapshot, translate_errors

__all__ = [
    "Backends",
    "Outcome",
    "add",
    "checkout",
    "clear",
    "mark_viewed",
    "remove",
    "set_quantity",
]

_ATTEMPTS = 5
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
_KEY_PREFIX = "cart-"
MAX_KEY = 150


class Backends(Decides, Protocol):
    """What cart actions need: a decision's backends, and the identity configuration."""

    @property
    def identity(self) -> IdentityConfig: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """The cart after a request, and the events the request recorded."""

    cart: Cart
    recorded: Sequence[NewEvent]

    def as_dict(self) -> dict[str, Any]:
        body = self.cart.as_dict()
        body["recorded"] = [{"event": e.event, "messageId": e.message_id} for e in self.recorded]
        return body


# -- validation ------------------------------------------------------------------------------


def _channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise InvalidField(
            f"Unknown channel {channel[:40]!r}.",
            field="channel",
            code="invalid_channel",
            hint="Send where the customer is: " + ", ".join(CHANNELS) + ".",
        )
    return channel


def _quantity(quantity: int, field: str = "quantity") -> int:
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not (1 <= quantity <= MAX_QUANTITY)
    ):
        raise InvalidField(
            f"Quantity {quantity!r} is not allowed: a cart line holds 1 to {MAX_QUANTITY} units.",
            field=field,
            code="invalid_quantity",
            hint=f"Send a whole number from 1 to {MAX_QUANTITY}; to take a line out of the "
            "cart, DELETE /v1/carts/lines/{sku}.",
        )
    return quantity


def _known(conn: Connection, ws: str, sku: str) -> Variant:
    variant = get_variant(conn, ws, sku)
    if variant is None:
        raise InvalidField(
            f"Unknown SKU {sku[:80]!r}.",
            field="sku",
            code="unknown_sku",
            hint="Use a SKU from the catalogue (GET /v1/catalog/products/{product_id}).",
        )
    return variant


def _on_sale(variant: Variant) -> Variant:
    if not variant.active:
        raise InvalidField(
            f"SKU {variant.sku!r} is not sold any more (inactive in the catalogue).",
            field="sku",
            code="inactive_sku",
            hint="Offer the customer another variant of the product, or another product.",
        )
    return variant


def _key(message_id: str | None) -> str | None:
    if message_id is None:
        return None
    if not message_id or len(message_id) > MAX_KEY:
        raise InvalidField(
            f"messageId must be 1 to {MAX_KEY} characters.",
            field="messageId",
            code="invalid_field",
            hint="Send a unique id of this change (a UUID), the same one when you retry it.",
        )
    return _KEY_PREFIX + message_id


def _not_in_cart(sku: str) -> NotFound:
    return NotFound(
        f"The cart has no line of SKU {sku[:80]!r}.",
        field="sku",
        code="not_in_cart",
        hint="Read the cart with GET /v1/carts to see its lines; add one with "
        "POST /v1/carts/lines.",
    )


# -- the decision transaction -----------------------------------------------------------------

_Decide = Callable[[Connection, Holder, dict[str, LineState], str], list[NewEvent]]
"""Builds a request's events from the locked cart; the first one takes the messageId given."""


class _NothingToDo(Exception):
    """The request changes nothing (the line holds that many already, a retry)."""


def _retryable(exc: Unavailable) -> bool:
    cause = exc.__cause__
    return getattr(getattr(cause, "orig", None), "sqlstate", None) in _RETRY_SQLSTATES


def _hold(
    conn: Connection, ws: str, shopper: Shopper, config: IdentityConfig, message_id: str
) -> Holder:
    """The shopper's cart, its owners locked and gathered into its home (see the module doc);
    a new cart is made for the event `message_id`."""
    now = int(time.time() * 1000)
    locked: set[str] = set()
    holder = find_holder(conn, ws, shopper, config)
    while set(holder.owners) - locked:
        missing = set(holder.owners) - locked
        lock_owners(conn, ws, missing, now, first_message_id=message_id)
        locked |= missing
        holder = find_holder(conn, ws, shopper, config)
    for other in holder.owners[1:]:
        fold(conn, ws, other, holder.owner, now)
    return holder


def _decide(
    runtime: Backends,
    ws: str,
    shopper: Shopper,
    decide: _Decide,
    *,
    store: str | None,
    key: str | None = None,
) -> Outcome:
    message_id = key or f"polku-{uuid.uuid4().hex}"
    attempt = 0
    while True:
        try:
            with runtime.outbox.transaction() as tx:
                holder = _hold(tx.conn, ws, shopper, runtime.identity, message_id)
                held = person_lines(tx.conn, ws, holder)
                events = decide(tx.conn, holder, held, message_id)
                if not events:
                    raise _NothingToDo  # roll back: a request that changes nothing writes nothing
                for event in events:
                    apply_event(tx.conn, event, orjson.loads(event.payload), holder.owner)
                tx.record(*events)
            return Outcome(_read(runtime, ws, shopper, store), events)
        except _NothingToDo:
            return Outcome(_read(runtime, ws, shopper, store), ())
        except Unavailable as exc:
            attempt += 1
            if attempt == _ATTEMPTS or not _retryable(exc):
                raise
            time.sleep(0.01 * attempt)


def _read(runtime: Backends, ws: str, shopper: Shopper, store: str | None) -> Cart:
    """The cart as it is now: where it is found again, since the pipeline may have moved
    it (identity joined the device to a person) since the decision committed."""
    with translate_errors("reading the cart"), snapshot(runtime.engine) as conn:
        return view(
            conn,
            ws,
            find_holder(conn, ws, shopper, runtime.identity),
            runtime.identity,
            store=store,
        )


def _applied(runtime: Backends, ws: str, key: str | None) -> bool:
    if key is None:
        return False
    with translate_errors("reading the cart"), runtime.engine.connect() as conn:
        return get_change(conn, ws, key) is not None


def _again(runtime: Backends, ws: str, shopper: Shopper, store: str | None) -> Outcome:
    """The answer to a retry of a change that was applied: the cart, nothing recorded."""
    with translate_errors("reading the cart"), snapshot(runtime.engine) as conn:
        holder = find_holder(conn, ws, shopper, runtime.identity)
        return Outcome(view(conn, ws, holder, runtime.identity, store=store), ())


def _product_properties(
    conn: Connection,
    ws: str,
    holder: Holder,
    sku: str,
    variant: Variant | None,
    line: LineState | None,
) -> dict[str, Any]:
    """A Product object for a cart event, from the catalogue (the line when it left it)."""
    properties: dict[str, Any] = {"sku": sku}
    if holder.cart_id is not None:
        properties["cart_id"] = holder.cart_id
    if variant is None:
        properties["product_id"] = line.product_id if line else sku
        properties["name"] = sku
        return properties
    product = get_product(conn, ws, variant.product_id)
    properties.update(
        product_id=variant.product_id,
        name=product.name if product else sku,
        price=float(variant.price),
        currency=variant.currency,
    )
    shown = " / ".join(v for v in (variant.colour, variant.size) if v)
    extras = {
        "variant": shown,
        "brand": product.brand if product else None,
        "category": " > ".join(product.category) if product and product.category else None,
        "image_url": variant.image_url or (product.image_url if product else None),
    }
    properties.update({k: v for k, v in extras.items() if v})
    return properties


def _event(
    ws: str,
    name: str,
    holder: Holder,
    properties: dict[str, Any],
    channel: str,
    message_id: str | None = None,
) -> NewEvent:
    return internal_event(
        ws,
        name,
        properties,
        user_id=holder.user_id,
        anonymous_id=holder.anonymous_id,
        channel=channel,
        message_id=message_id,
    )


# -- line changes ------------------------------------------------------------------------------


def add(
    runtime: Backends,
    ws: str,
    shopper: Shopper,
    sku: str,
    quantity: int,
    *,
    channel: str = "web",
    message_id: str | None = None,
    store: str | None = None,
) -> Outcome:
    """Add `quantity` units of `sku` to the shopper's cart (`Product Added`); on a line of
    the SKU already there, the units are added to it."""
    _quantity(quantity)
    _channel(channel)
    key = _key(message_id)
    with translate_errors("reading the catalogue"), runtime.engine.connect() as conn:
        _on_sale(_known(conn, ws, sku))
    if _applied(runtime, ws, key):
        return _again(runtime, ws, shopper, store)

    def decide(
        conn: Connection, holder: Holder, held: dict[str, LineState], mid: str
    ) -> list[NewEvent]:
        if get_change(conn, ws, mid) is not None:
            return []
        variant = _on_sale(_known(conn, ws, sku))
        line = held.get(sku)
        if line is None and len(held) >= MAX_LINES:
            raise Conflict(
                f"The cart holds {len(held)} different products, the most it can.",
                field="sku",
                code="cart_full",
                hint="Remove a line first (DELETE /v1/carts/lines/{sku}).",
            )
        current = line.quantity if line else 0
        if current + quantity > MAX_QUANTITY:
            room = max(0, MAX_QUANTITY - current)
            raise Conflict(
                f"The cart has {current} of {sku!r}; {quantity} more would pass the limit of "
                f"{MAX_QUANTITY} units per line.",
                field="quantity",
                code="quantity_limit",
                hint=f"Add at most {room}." if room else "The line is full.",
            )
        properties = _product_properties(conn, ws, holder, sku, variant, line)
        properties["quantity"] = quantity
        return [_event(ws, ADDED, holder, properties, channel, mid)]

    return _decide(runtime, ws, shopper, decide, store=store, key=key)


def set_quantity(
    runtime: Backends,
    ws: str,
    shopper: Shopper,
    sku: str,
    quantity: int,
    *,
    channel: str = "web",
    message_id: str | None = None,
    store: str | None = None,
) -> Outcome:
    """Make the line of `sku` hold `quantity` units: `Product Added` with the units added,
    or `Product Removed` with the units taken off (nothing when it holds that many)."""
    _quantity(quantity)
    _channel(channel)
    key = _key(message_id)
    with translate_errors("reading the catalogue"), runtime.engine.connect() as conn:
        _known(conn, ws, sku)
    if _applied(runtime, ws, key):
        return _again(runtime, ws, shopper, store)

    def decide(
        conn: Connection, holder: Holder, held: dict[str, LineState], mid: str
    ) -> list[NewEvent]:
        if get_change(conn, ws, mid) is not None:
            return []
        line = held.get(sku)
        if line is None:
            raise _not_in_cart(sku)
        delta = quantity - line.quantity
        if delta == 0:
            return []
        variant = _on_sale(_known(conn, ws, sku)) if delta > 0 else get_variant(conn, ws, sku)
        properties = _product_properties(conn, ws, holder, sku, variant, line)
        properties["quantity"] = abs(delta)
        return [_event(ws, ADDED if delta > 0 else REMOVED, holder, properties, channel, mid)]

    return _decide(runtime, ws, shopper, decide, store=store, key=key)


def remove(
    runtime: Backends,
    ws: str,
    shopper: Shopper,
    sku: str,
    *,
    channel: str = "web",
    message_id: str | None = None,
    store: str | None = None,
) -> Outcome:
    """Take the line of `sku` out of the cart (`Product Removed` with all its units)."""
    _channel(channel)
    key = _key(message_id)
    if _applied(runtime, ws, key):
        return _again(runtime, ws, shopper, store)

    def decide(
        conn: Connection, holder: Holder, held: dict[str, LineState], mid: str
    ) -> list[NewEvent]:
        if get_change(conn, ws, mid) is not None:
            return []
        line = held.get(sku)
        if line is None:
            raise _not_in_cart(sku)
        properties = _product_properties(conn, ws, holder, sku, get_variant(conn, ws, sku), line)
        properties["quantity"] = line.quantity
        return [_event(ws, REMOVED, holder, properties, channel, mid)]

    return _decide(runtime, ws, shopper, decide, store=store, key=key)


def clear(
    runtime: Backends,
    ws: str,
    shopper: Shopper,
    *,
    channel: str = "web",
    store: str | None = None,
) -> Outcome:
    """Empty the cart: one `Product Removed` per line, all in one transaction."""
    _channel(channel)

    def decide(
        conn: Connection, holder: Holder, held: dict[str, LineState], mid: str
    ) -> list[NewEvent]:
        ordered = sorted(held.values(), key=lambda line: (line.added_at, line.sku))
        variants = {line.sku: get_variant(conn, ws, line.sku) for line in ordered}
        events = []
        for i, line in enumerate(ordered):
            properties = _product_properties(conn, ws, holder, line.sku, variants[line.sku], line)
            properties["quantity"] = line.quantity
            events.append(_event(ws, REMOVED, holder, properties, channel, None if i else mid))
        return events

    return _decide(runtime, ws, shopper, decide, store=store)


# -- events about the cart as a whole ----------------------------------------------------------


def _record_about(
    runtime: Backends,
    ws: str,
    shopper: Shopper,
    store: str | None,
    build: Callable[[Holder, Cart], NewEvent],
) -> Outcome:
    """Record one event built from the cart as it is (the cart does not change)."""
    with runtime.outbox.transaction() as tx:
        holder = find_holder(tx.conn, ws, shopper, runtime.identity)
        cart = view(tx.conn, ws, holder, runtime.identity, store=store)
        event = build(holder, cart)
        tx.record(event)
    return Outcome(cart, [event])


def mark_viewed(
    runtime: Backends, ws: str, shopper: Shopper, *, channel: str = "web", store: str | None = None
) -> Outcome:
    """The customer looked at their cart: record `Cart Viewed` with its products. (Reading
    the cart records nothing, so a read stays a read.)"""
    _channel(channel)

    def build(holder: Holder, cart: Cart) -> NewEvent:
        products = [line.as_product(i + 1) for i, line in enumerate(cart.lines)]
        properties: dict[str, Any] = {"products": products}
        if cart.cart_id is not None:
            properties["cart_id"] = cart.cart_id
        return _event(ws, VIEWED, holder, properties, channel)

    return _record_about(runtime, ws, shopper, store, build)


def checkout(
    runtime: Backends, ws: str, shopper: Shopper, *, channel: str = "web", store: str | None = None
) -> Outcome:
    """The customer starts checkout: record `Checkout Started` with every product and the
    total. Refused (409, nothing recorded) for an empty cart, a line that cannot be bought
    now, or lines in more than one currency. The cart stays as it is until the order."""
    _channel(channel)

    def build(holder: Holder, cart: Cart) -> NewEvent:
        if not cart.lines:
            raise Conflict(
                "The cart is empty.",
                field="cart",
                code="empty_cart",
                hint="Add a line first (POST /v1/carts/lines).",
            )
        for i, line in enumerate(cart.lines):
            if not line.available:
                raise Conflict(
                    f"{line.name} ({line.sku}) cannot be bought now: {line.message}",
                    field=f"lines[{i}].sku",
                    code="unavailable_items",
                    hint="Remove the line or lower its quantity, then start the checkout again.",
                )
        if len(cart.totals) != 1:
            currencies = ", ".join(t.currency for t in cart.totals)
            raise Conflict(
                f"The cart's lines are priced in several currencies ({currencies}).",
                field="lines",
                code="mixed_currencies",
                hint="Check out the lines of one currency at a time.",
            )
        total = cart.totals[0]
        properties = {
            "cart_id": cart.cart_id,
            "value": float(total.subtotal),
            "revenue": float(total.subtotal),
            "currency": total.currency,
            "products": [line.as_product(i + 1) for i, line in enumerate(cart.lines)],
        }
        return _event(ws, CHECKOUT_STARTED, holder, properties, channel)

    return _record_about(runtime, ws, shopper, store, build)
