"""Every write to returns: request, receive, inspect, refund, cancel, and the policy.

Each function validates its input first (an unknown order, a SKU never bought, a reason not
on the list: a 4xx naming the field and what to do), then decides in one transaction
(`runtime.outbox`) that locks what it reads (the order's returns under a transaction-level
advisory lock, the return's row `FOR UPDATE` on PostgreSQL; SQLite admits one writer),
checks, applies each event through the consumers' own `apply_event` (returns, stock, gift
cards: the same code the pipeline and a replay run) and records the events in the same
transaction. A refused or failed step changes no return, no stock and no gift card, and
records nothing.

A return's events are track events of the order's customer (the userId or anonymousId of
the event that placed it), so they join the customer's timeline and journeys, and stay in
the customer's partition in the order they were decided.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

import orjson
from sqlalchemy import Connection, delete, func, insert, select

from polku.collect.internal import internal_event
from polku.commerce.catalog.money import from_minor, minor_digits
from polku.commerce.catalog.queries import get_products, get_variants
from polku.commerce.giftcards import actions as giftcards
from polku.commerce.giftcards.projection import apply_event as apply_giftcard
from polku.commerce.locations.queries import get_location
from polku.commerce.orders.queries import Order, get_order
from polku.commerce.returns.policy import DAY_MS, REASONS, Policy, get_policy
from polku.commerce.returns.projection import (
    CANCELLED,
    INSPECTED,
    OUTCOMES,
    RECEIVED,
    REFUNDED,
    REQUESTED,
    apply_event,
)
from polku.commerce.returns.queries import Return, get_return, returned_units
from polku.commerce.returns.refunds import Bought, bought_of
from polku.commerce.returns.tables import policies, returns, windows
from polku.commerce.stock.projection import apply_event as apply_stock
from polku.errors import Conflict, InvalidField, NotFound
from polku.events import NewEvent, to_iso
from polku.log.outbox import Backends, Transaction
from polku.log.tables import log_events

__all__ = [
    "CHANNELS",
    "REFUND_METHODS",
    "Backends",
    "Inspection",
    "Refunded",
    "RequestLine",
    "cancel",
    "inspect",
    "receive",
    "refund",
    "request",
    "set_policy",
]

CHANNELS: Final = ("web", "app", "store", "phone")
RETURN_METHODS: Final = ("store", "post", "courier", "locker")
REFUND_METHODS: Final = ("original_payment", "gift_card")
MAX_QUANTITY: Final = 10_000
MAX_WINDOW_DAYS: Final = 3660


@dataclass(frozen=True, slots=True)
class RequestLine:
    sku: str
    quantity: int
    reason: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Inspection:
    """What became of `quantity` units of a returned SKU."""

    sku: str
    quantity: int
    outcome: str  # restock, outlet, dispose
    condition: str | None = None


@dataclass(frozen=True, slots=True)
class Refunded:
    ret: Return
    giftcard: giftcards.Issued | None  # a refund as a gift card: the card and its code


def _now() -> int:
    return int(time.time() * 1000)


def _message(event: NewEvent) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(event.payload)
    return message


def _number(minor: int, currency: str) -> float:
    return float(from_minor(minor, currency))


def _date(ms: int) -> str:
    return to_iso(ms)[:10]


# -- the policy ----------------------------------------------------------------------------


def _percent(value: int, field: str, *, most: int = 100) -> int:
    if not 0 <= value <= most:
        raise InvalidField(
            f"{field} {value} is out of range; send a whole percent from 0 to {most}.",
            field=field,
            code="invalid_percent",
            params={"name": field, "value": value, "most": most},
        )
    return value


def _days(value: int, field: str) -> int:
    if not 1 <= value <= MAX_WINDOW_DAYS:
        raise InvalidField(
            f"{field} {value} is out of range; send a number of days from 1 to {MAX_WINDOW_DAYS}.",
            field=field,
            code="invalid_days",
            params={"name": field, "value": value, "most": MAX_WINDOW_DAYS},
        )
    return value


def set_policy(
    runtime: Backends,
    ws: str,
    *,
    default_window_days: int,
    category_windows: Sequence[tuple[Sequence[str], int]],
    outlet_discount_percent: int,
    gift_card_bonus_percent: int,
    gift_card_validity_days: int,
) -> Policy:
    """Replace the workspace's return policy (its rules, not a decision: no event). Only
    returns requested afterwards are judged by it; each return carries its own deadlines."""
    _days(default_window_days, "default_window_days")
    _percent(outlet_discount_percent, "outlet_discount_percent", most=99)
    _percent(gift_card_bonus_percent, "gift_card_bonus_percent")
    _days(gift_card_validity_days, "gift_card_validity_days")
    found: dict[str, int] = {}
    for i, (path, days) in enumerate(category_windows):
        parts = [part.strip() for part in path]
        if not parts or not all(parts):
            raise InvalidField(
                'A category is a path of names, e.g. ["Naiset", "Takit"] or "Naiset > Takit".',
                field=f"category_windows[{i}].category",
                code="invalid_category",
                message_id="invalid_category",
            )
        key = " > ".join(parts)
        if key in found:
            raise InvalidField(
                f"Category {key!r} appears twice.",
                field=f"category_windows[{i}].category",
                code="duplicate_category",
                params={"category": key},
            )
        found[key] = _days(days, f"category_windows[{i}].days")
    now = _now()
    with runtime.outbox.transaction() as tx:
        conn = tx.conn
        conn.execute(delete(policies).where(policies.c.workspace_id == ws))
        conn.execute(
            insert(policies).values(
                workspace_id=ws,
                default_window_days=default_window_days,
                outlet_discount_percent=outlet_discount_percent,
                gift_card_bonus_percent=gift_card_bonus_percent,
                gift_card_validity_days=gift_card_validity_days,
                updated_at=now,
            )
        )
        conn.execute(delete(windows).where(windows.c.workspace_id == ws))
        if found:
            conn.execute(
                insert(windows),
                [{"workspace_id": ws, "category": k, "days": d} for k, d in found.items()],
            )
        return get_policy(conn, ws)


# -- requesting ----------------------------------------------------------------------------


def _customer(conn: Connection, ws: str, order: Order) -> tuple[str | None, str | None]:
    """The userId and anonymousId of the event that placed the order."""
    payload = conn.execute(
        select(log_events.c.payload).where(
            log_events.c.workspace_id == ws, log_events.c.message_id == order.message_id
        )
    ).scalar()
    if payload is None:
        return None, None
    message = orjson.loads(bytes(payload))
    user_id, anonymous_id = message.get("userId"), message.get("anonymousId")
    return (
        user_id if isinstance(user_id, str) and user_id else None,
        anonymous_id if isinstance(anonymous_id, str) and anonymous_id else None,
    )


def _lock_order(conn: Connection, ws: str, order_id: str) -> None:
    """Serialise the decisions about one order's returns (PostgreSQL; SQLite has one writer):
    two requests at once cannot both return the last unit."""
    if conn.dialect.name == "postgresql":
        digest = hashlib.blake2b(f"polku.returns\x00{ws}\x00{order_id}".encode(), digest_size=8)
        key = int.from_bytes(digest.digest(), "big", signed=True)
        conn.execute(select(func.pg_advisory_xact_lock(key)))


def _order(conn: Connection, ws: str, order_id: str) -> Order:
    order = get_order(conn, ws, order_id)
    if order is None:
        raise NotFound(
            f"No order {order_id!r}: nothing was bought under that id.",
            field="order_id",
            code="unknown_order",
            hint="Use the order id of the receipt or the order confirmation; a till receipt "
            "without one is pos:<store_id>:<receipt_id>.",
            params={"order": order_id},
        )
    if order.status in ("cancelled", "refunded"):
        raise Conflict(
            f"Order {order_id!r} is {order.status}; there is nothing left to return.",
            field="order_id",
            code="order_not_returnable",
            params={"order": order_id, "status": order.status},
        )
    return order


def _check_lines(lines: Sequence[RequestLine]) -> None:
    if not lines:
        raise InvalidField(
            "No lines: send at least one {sku, quantity, reason}.",
            field="lines",
            code="empty_lines",
            message_id="return_empty_lines",
        )
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if line.sku in seen:
            raise InvalidField(
                f"SKU {line.sku!r} appears twice.",
                field=f"lines[{i}].sku",
                code="duplicate_sku",
                hint="Send each SKU once, with the total quantity.",
                message_id="return_duplicate_sku",
                params={"sku": line.sku},
            )
        seen.add(line.sku)
        if not 1 <= line.quantity <= MAX_QUANTITY:
            raise InvalidField(
                f"Quantity {line.quantity} is not allowed; send a whole number of units, 1 or "
                "more.",
                field=f"lines[{i}].quantity",
                code="invalid_quantity",
                message_id="return_invalid_quantity",
                params={"quantity": line.quantity},
            )
        if line.reason not in REASONS:
            raise InvalidField(
                f"Unknown reason {line.reason!r}.",
                field=f"lines[{i}].reason",
                code="invalid_reason",
                hint="Send one of: " + ", ".join(REASONS) + " (GET /v1/returns/policy lists "
                "what each means).",
                message_id="return_invalid_reason",
                params={"reason": line.reason, "reasons": ", ".join(REASONS)},
            )


def _categories(conn: Connection, ws: str, bought: dict[str, Bought]) -> dict[str, tuple[str, ...]]:
    """The catalogue's category path of each SKU (by its product); () when unknown."""
    variants = get_variants(conn, ws, list(bought))
    product_of = {
        key: (variants[key].product_id if key in variants else b.product_id)
        for key, b in bought.items()
    }
    products = get_products(conn, ws, [p for p in product_of.values() if p])
    return {
        key: (products[p].category if p and p in products else ()) for key, p in product_of.items()
    }


def request(
    runtime: Backends,
    ws: str,
    order_id: str,
    lines: Sequence[RequestLine],
    *,
    channel: str = "web",
    return_method: str | None = None,
    location_id: str | None = None,
    return_id: str | None = None,
    staff_id: str | None = None,
) -> Return:
    """Ask to return units of an order (`Return Requested`): only what it holds, less what
    is already being returned, within each product's return window. With `location_id` (a
    store's till taking the goods back) the return is received there at once."""
    _check_lines(lines)
    if channel not in CHANNELS:
        raise InvalidField(
            f"Unknown channel {channel!r}.",
            field="channel",
            code="invalid_channel",
            hint="Send one of: " + ", ".join(CHANNELS) + ".",
            message_id="return_invalid_channel",
            params={"channel": channel, "channels": ", ".join(CHANNELS)},
        )
    method = return_method or ("store" if channel == "store" or location_id else "post")
    if method not in RETURN_METHODS:
        raise InvalidField(
            f"Unknown return_method {method!r}.",
            field="return_method",
            code="invalid_return_method",
            hint="Send one of: " + ", ".join(RETURN_METHODS) + ".",
            params={"method": method, "methods": ", ".join(RETURN_METHODS)},
        )
    now = _now()
    rid = return_id or f"rma-{uuid.uuid4().hex[:16]}"
    with runtime.engine.connect() as conn:
        order = _order(conn, ws, order_id)
        kind = None if location_id is None else _location(conn, ws, location_id)
        bought = bought_of(order)
        categories = _categories(conn, ws, bought)
        policy = get_policy(conn, ws)
        user_id, anonymous_id = _customer(conn, ws, order)
    products: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        held = bought.get(line.sku)
        if held is None:
            raise InvalidField(
                f"Order {order_id!r} has no {line.sku!r}: it was never bought in this order.",
                field=f"lines[{i}].sku",
                code="not_in_order",
                hint="Return only SKUs of the order's lines; an item from another purchase "
                "is returned against that order.",
                params={"order": order_id, "sku": line.sku},
            )
        if line.quantity > held.quantity:
            raise InvalidField(
                f"Order {order_id!r} has {held.quantity} of {line.sku!r}; {line.quantity} "
                "cannot be returned.",
                field=f"lines[{i}].quantity",
                code="exceeds_quantity_bought",
                hint=f"Return at most {held.quantity}.",
                params={
                    "order": order_id,
                    "bought": held.quantity,
                    "sku": line.sku,
                    "quantity": line.quantity,
                },
            )
        days, category = policy.window_for(categories.get(line.sku, ()))
        deadline = order.placed_at + days * DAY_MS
        if now > deadline:
            promise = f"{days} days" + (f" for {category}" if category else "")
            raise Conflict(
                f"The return window of {line.sku!r} closed on {to_iso(deadline)} ({promise} "
                f"from the order of {_date(order.placed_at)}).",
                field=f"lines[{i}].sku",
                code="return_window_closed",
                hint="It can no longer be returned for a refund; a fault is a warranty claim "
                "for customer service.",
                params={
                    "sku": line.sku,
                    "closed_at": deadline,
                    "days": days,
                    "ordered_at": order.placed_at,
                },
            )
        item: dict[str, Any] = {
            "sku": line.sku,
            "quantity": line.quantity,
            "reason": line.reason,
            "return_by": to_iso(deadline),
        }
        if held.product_id:
            item["product_id"] = held.product_id
        if held.name:
            item["name"] = held.name
        if held.unit_paid_minor is not None and order.currency:
            item["price"] = _number(held.unit_paid_minor, order.currency)
        if line.note:
            item["note"] = line.note
        products.append(item)
    properties: dict[str, Any] = {
        "order_id": order_id,
        "return_id": rid,
        "return_method": method,
        "products": products,
        "return_by": max(p["return_by"] for p in products),
    }
    reasons = {line.reason for line in lines}
    if len(reasons) == 1:
        properties["reason"] = lines[0].reason
    if order.currency:
        properties["currency"] = order.currency
        paid = [bought[line.sku].unit_paid_minor for line in lines]
        if all(p is not None for p in paid):
            total = sum((p or 0) * line.quantity for p, line in zip(paid, lines, strict=True))
            properties["total"] = _number(total, order.currency)
    if location_id is not None and kind == "store":
        properties["store_id"] = location_id
    key = _partition(user_id, anonymous_id, order_id)
    event = internal_event(
        ws,
        REQUESTED,
        properties,
        user_id=user_id,
        anonymous_id=anonymous_id,
        partition_key=key,
        channel=channel,
        at_ms=now,
    )

    def check(conn: Connection) -> None:
        _lock_order(conn, ws, order_id)
        if get_return(conn, ws, rid) is not None:
            raise Conflict(
                f"Return {rid!r} exists already.",
                field="return_id",
                code="duplicate_return",
                hint="Leave return_id out to get a new one, or use another.",
                params={"ret": rid},
            )
        already = returned_units(conn, ws, order_id)
        for i, line in enumerate(lines):
            held = bought[line.sku].quantity
            left = held - already.get(line.sku, 0)
            if line.quantity > left:
                raise Conflict(
                    f"Order {order_id!r} has {held} of {line.sku!r} and "
                    f"{already.get(line.sku, 0)} are already returned or on their way back; "
                    f"{line.quantity} more cannot be returned.",
                    field=f"lines[{i}].quantity",
                    code="already_returned",
                    hint=f"Return at most {max(0, left)} (GET /v1/returns?order_id={order_id}).",
                    params={
                        "order": order_id,
                        "bought": held,
                        "sku": line.sku,
                        "returned": already.get(line.sku, 0),
                        "quantity": line.quantity,
                    },
                )

    with runtime.outbox.transaction() as tx:
        check(tx.conn)
        _decide(tx, event)
        if location_id is not None:
            found = get_return(tx.conn, ws, rid)
            assert found is not None
            _decide(tx, _received_event(ws, found, location_id, kind, staff_id, now))
    with runtime.engine.connect() as conn:
        made = get_return(conn, ws, rid)
    assert made is not None
    return made


def _partition(user_id: str | None, anonymous_id: str | None, order_id: str) -> str:
    return user_id or anonymous_id or f"order:{order_id}"


def _decide(tx: Transaction, event: NewEvent) -> None:
    """Apply `event` to every projection it changes, and record it, in `tx`."""
    message = _message(event)
    apply_event(tx.conn, event, message)
    apply_stock(tx.conn, event, message)
    apply_giftcard(tx.conn, event, message)
    tx.record(event)


def _event(
    ws: str, found: Return, name: str, properties: dict[str, Any], at: int, channel: str | None
) -> NewEvent:
    return internal_event(
        ws,
        name,
        {"return_id": found.return_id, "order_id": found.order_id, **properties},
        user_id=found.user_id,
        anonymous_id=None if found.user_id else found.anonymous_id,
        partition_key=found.partition_key,
        channel=channel,
        at_ms=at,
    )


def _location(conn: Connection, ws: str, location_id: str, field: str = "location_id") -> str:
    found = get_location(conn, ws, location_id)
    if found is None or not found.active:
        raise InvalidField(
            f"Unknown location {location_id!r}.",
            field=field,
            code="unknown_location",
            hint="Use a location id from GET /v1/locations.",
            params={"location": location_id},
        )
    return found.kind


def _lines_of(found: Return) -> list[dict[str, Any]]:
    return [
        {"sku": line.sku, "quantity": line.quantity}
        | ({"product_id": line.product_id} if line.product_id else {})
        for line in found.lines
    ]


def _received_event(
    ws: str, found: Return, location_id: str, kind: str | None, staff_id: str | None, at: int
) -> NewEvent:
    properties: dict[str, Any] = {"location_id": location_id, "products": _lines_of(found)}
    if kind == "store":  # as the store events name stores; absent for a warehouse
        properties["store_id"] = location_id
    if staff_id:
        properties["staff_id"] = staff_id
    return _event(ws, found, RECEIVED, properties, at, "store")


# -- the steps of a return -----------------------------------------------------------------


def _locked(tx: Transaction, ws: str, return_id: str, *, allowed: str, verb: str) -> Return:
    found = get_return(tx.conn, ws, return_id, lock=True)
    if found is None:
        raise NotFound(
            f"No return {return_id!r}.",
            field="return_id",
            code="unknown_return",
            params={"ret": return_id},
        )
    if found.status != allowed:
        raise Conflict(
            f"Return {return_id!r} is {found.status}; it cannot be {verb} now.",
            field="return_id",
            code="return_" + found.status,
            hint=f"Only a return that is {allowed} can be {verb}.",
            message_id="return_wrong_status",
            params={"ret": return_id, "status": found.status, "action": verb},
        )
    return found


def receive(
    runtime: Backends, ws: str, return_id: str, location_id: str, staff_id: str | None = None
) -> Return:
    """The goods arrived at a store or the warehouse (`Return Received`)."""
    with runtime.engine.connect() as conn:
        kind = _location(conn, ws, location_id)
    with runtime.outbox.transaction() as tx:
        found = _locked(tx, ws, return_id, allowed="requested", verb="received")
        _decide(tx, _received_event(ws, found, location_id, kind, staff_id, _now()))
    return _read(runtime, ws, return_id)


def cancel(runtime: Backends, ws: str, return_id: str, reason: str | None = None) -> Return:
    """The customer will not send it after all (`Return Cancelled`): its units can be
    returned again."""
    with runtime.outbox.transaction() as tx:
        found = _locked(tx, ws, return_id, allowed="requested", verb="cancelled")
        properties: dict[str, Any] = {"reason": reason} if reason else {}
        _decide(tx, _event(ws, found, CANCELLED, properties, _now(), None))
    return _read(runtime, ws, return_id)


def _read(runtime: Backends, ws: str, return_id: str) -> Return:
    with runtime.engine.connect() as conn:
        found = get_return(conn, ws, return_id)
    assert found is not None
    return found


def _outlet_price(price_minor: int, percent: int) -> int:
    """The catalogue price less `percent`, rounded to the minor unit (half up)."""
    exact = Decimal(price_minor) * (100 - percent) / 100
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP))


def inspect(
    runtime: Backends,
    ws: str,
    return_id: str,
    outcomes: Sequence[Inspection],
    staff_id: str | None = None,
) -> Return:
    """Decide every received unit (`Return Inspected`): back on hand as new at the receiving
    location (`restock`, through stock), to that store's outlet at the policy's discount
    (`outlet`, one listing per unit), or `dispose`d (recorded only). Every unit of the
    return needs an outcome; a refused inspection moves no stock and lists nothing."""
    if not outcomes:
        raise InvalidField(
            "No lines: send {sku, quantity, outcome} for every returned unit.",
            field="lines",
            code="empty_lines",
            message_id="inspect_empty_lines",
        )
    for i, item in enumerate(outcomes):
        if item.outcome not in OUTCOMES:
            raise InvalidField(
                f"Unknown outcome {item.outcome!r}.",
                field=f"lines[{i}].outcome",
                code="invalid_outcome",
                hint="Send restock (back on hand as new), outlet (sold at a discount in this "
                "store) or dispose.",
                message_id="inspect_invalid_outcome",
                params={"outcome": item.outcome},
            )
        if not 1 <= item.quantity <= MAX_QUANTITY:
            raise InvalidField(
                f"Quantity {item.quantity} is not allowed; send 1 or more.",
                field=f"lines[{i}].quantity",
                code="invalid_quantity",
                message_id="inspect_invalid_quantity",
                params={"quantity": item.quantity},
            )
    now = _now()
    with runtime.outbox.transaction() as tx:
        found = _locked(tx, ws, return_id, allowed="received", verb="inspected")
        returned = {line.sku: line for line in found.lines}
        decided: dict[str, int] = {}
        for i, item in enumerate(outcomes):
            if item.sku not in returned:
                raise InvalidField(
                    f"Return {return_id!r} has no {item.sku!r}.",
                    field=f"lines[{i}].sku",
                    code="not_in_return",
                    hint="Inspect the SKUs of the return: " + ", ".join(sorted(returned)) + ".",
                    params={"ret": return_id, "sku": item.sku, "skus": ", ".join(sorted(returned))},
                )
            decided[item.sku] = decided.get(item.sku, 0) + item.quantity
        for sku, line in sorted(returned.items()):
            if decided.get(sku, 0) != line.quantity:
                raise InvalidField(
                    f"Return {return_id!r} has {line.quantity} of {sku!r}, and the inspection "
                    f"decides {decided.get(sku, 0)}.",
                    field="lines",
                    code="inspection_incomplete",
                    hint="Give every returned unit exactly one outcome (restock, outlet or "
                    "dispose), splitting a SKU's units between outcomes if need be.",
                    params={
                        "ret": return_id,
                        "returned": line.quantity,
                        "sku": sku,
                        "decided": decided.get(sku, 0),
                    },
                )
        location = found.location_id or ""
        listings = _listings(tx.conn, ws, found, outcomes, location)
        products = [
            {"sku": item.sku, "quantity": item.quantity, "outcome": item.outcome}
            | ({"condition": item.condition} if item.condition else {})
            | (
                {"product_id": returned[item.sku].product_id}
                if returned[item.sku].product_id
                else {}
            )
            for item in outcomes
        ]
        properties: dict[str, Any] = {
            "location_id": location,
            "products": products,
            "outlet": listings,
        }
        if found.currency:
            properties["currency"] = found.currency
        if staff_id:
            properties["staff_id"] = staff_id
        _decide(tx, _event(ws, found, INSPECTED, properties, now, "store"))
    return _read(runtime, ws, return_id)


def _listing_id(return_id: str, n: int) -> str:
    """The n-th outlet listing of a return: ``ol-<return_id>-<n>``, or with a digest of a
    return id too long to fit."""
    listing_id = f"ol-{return_id}-{n}"
    if len(listing_id) > 200:
        digest = hashlib.blake2b(return_id.encode(), digest_size=10).hexdigest()
        listing_id = f"ol-{digest}-{n}"
    return listing_id


def _listings(
    conn: Connection,
    ws: str,
    found: Return,
    outcomes: Sequence[Inspection],
    location_id: str,
) -> list[dict[str, Any]]:
    """One outlet listing per unit going to the outlet, priced from the catalogue."""
    wanted = [(i, item) for i, item in enumerate(outcomes) if item.outcome == "outlet"]
    if not wanted:
        return []
    location = get_location(conn, ws, location_id)
    if location is None or location.kind != "store":
        raise InvalidField(
            f"Return {found.return_id!r} was received at {location_id!r}, which is not a store: "
            "outlet units are sold in the store that received them.",
            field=f"lines[{wanted[0][0]}].outcome",
            code="outlet_needs_store",
            hint="Restock or dispose of units received at a warehouse; outlet units come from "
            "returns that a store receives.",
            params={"ret": found.return_id, "location": location_id},
        )
    policy = get_policy(conn, ws)
    percent = policy.outlet_discount_percent
    variants = get_variants(conn, ws, [item.sku for _, item in wanted])
    by_sku = {line.sku: line for line in found.lines}
    listed: list[dict[str, Any]] = []
    for i, item in wanted:
        line = by_sku[item.sku]
        variant = variants.get(item.sku)
        if variant is not None:
            currency = variant.currency
            original = int(variant.price.scaleb(minor_digits(currency)))
        elif line.unit_paid_minor is not None and found.currency:
            currency, original = found.currency, line.unit_paid_minor
        else:
            raise InvalidField(
                f"{item.sku!r} has no price in the catalogue or the order to list it at.",
                field=f"lines[{i}].sku",
                code="unknown_price",
                hint="Add the SKU to the catalogue, or restock or dispose of it.",
                message_id="outlet_unknown_price",
                params={"sku": item.sku},
            )
        for _ in range(item.quantity):
            entry: dict[str, Any] = {
                "listing_id": _listing_id(found.return_id, len(listed) + 1),
                "sku": item.sku,
                "price": _number(_outlet_price(original, percent), currency),
                "original_price": _number(original, currency),
                "discount_percent": percent,
                "currency": currency,
            }
            if line.product_id:
                entry["product_id"] = line.product_id
            if line.name:
                entry["name"] = line.name
            if item.condition:
                entry["condition"] = item.condition
            listed.append(entry)
    return listed


# -- refunding -----------------------------------------------------------------------------


def refund(
    runtime: Backends,
    ws: str,
    return_id: str,
    method: str,
) -> Refunded:
    """Pay back what was paid for the returned units (`Order Refunded`): to the original
    payment method, or as a gift card with the policy's bonus (`Gift Card Issued`, in the
    same transaction). Never more than was paid for them, nor more than the order has left
    unrefunded."""
    if method not in REFUND_METHODS:
        raise InvalidField(
            f"Unknown refund method {method!r}.",
            field="method",
            code="invalid_refund_method",
            hint="Send original_payment or gift_card.",
            params={"method": method},
        )
    now = _now()
    with runtime.outbox.transaction() as tx:
        conn = tx.conn
        found = _locked(tx, ws, return_id, allowed="inspected", verb="refunded")
        currency = found.currency
        unknown = [line.sku for line in found.lines if line.unit_paid_minor is None]
        if currency is None or unknown:
            raise Conflict(
                f"Order {found.order_id!r} names "
                + (f"no price for {', '.join(map(repr, unknown))}" if unknown else "no currency")
                + ": Polku cannot tell what was paid.",
                field="return_id",
                code="unknown_price",
                hint="Refund it in the payment system, and send Order Refunded yourself.",
                message_id="refund_unknown_price" if unknown else "refund_no_currency",
                params={"order": found.order_id, "skus": ", ".join(unknown)},
            )
        amount = sum((line.unit_paid_minor or 0) * line.quantity for line in found.lines)
        _lock_order(conn, ws, found.order_id)
        left = _unrefunded(conn, ws, found, currency)
        if left is not None:
            amount = min(amount, left)
        products = [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "price": _number(line.unit_paid_minor or 0, currency),
            }
            | ({"product_id": line.product_id} if line.product_id else {})
            for line in found.lines
        ]
        properties: dict[str, Any] = {
            "total": _number(amount, currency),
            "currency": currency,
            "products": products,
            "refund_method": method,
        }
        order = get_order(conn, ws, found.order_id)
        if order is not None and order.payment_method:
            properties["payment_method"] = order.payment_method
        card: giftcards.Issued | None = None
        if method == "gift_card":
            if amount <= 0:
                raise Conflict(
                    "Nothing was paid for these units: there is nothing to put on a gift card.",
                    field="method",
                    code="nothing_to_refund",
                    hint="Refund with method original_payment to close the return.",
                )
            policy = get_policy(conn, ws)
            bonus = amount * policy.gift_card_bonus_percent // 100
            extra: dict[str, Any] = {}
            if bonus:
                extra = {
                    "bonus": _number(bonus, currency),
                    "bonus_percent": policy.gift_card_bonus_percent,
                }
            card = giftcards.issue_within(
                tx,
                ws,
                amount + bonus,
                currency,
                reason="refund",
                expires_at=now + policy.gift_card_validity_days * DAY_MS,
                owner=giftcards.Owner(found.user_id, found.anonymous_id),
                at_ms=now,
                order_id=found.order_id,
                return_id=found.return_id,
                extra=extra,
            )
            properties["giftcard_id"] = card.card.giftcard_id
        _decide(tx, _event(ws, found, REFUNDED, properties, now, None))
    return Refunded(_read(runtime, ws, return_id), card)


def _unrefunded(conn: Connection, ws: str, found: Return, currency: str) -> int | None:
    """What the order has left to refund: its total less every refund so far (Polku's,
    and those other systems sent); None when the order names no total."""
    order = get_order(conn, ws, found.order_id)
    if order is None or order.total is None or order.currency != currency:
        return None
    digits = minor_digits(currency)
    total = int(order.total.scaleb(digits))
    mine = {
        row.refund_message_id: int(row.refund_minor or 0)
        for row in conn.execute(
            select(returns.c.refund_message_id, returns.c.refund_minor).where(
                returns.c.workspace_id == ws,
                returns.c.order_id == found.order_id,
                returns.c.refund_message_id.is_not(None),
            )
        )
    }
    others = sum(
        int(r.total.scaleb(digits))
        for r in order.refunds
        if r.total is not None and r.message_id not in mine
    )
    return max(0, total - sum(mine.values()) - others)
