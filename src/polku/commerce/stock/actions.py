"""Every write to stock: facts reported through the API, and Polku's own decisions.

Each function validates its input first (unknown location or SKU, a zero or negative
quantity: a 4xx naming the field), then runs one transaction that locks the levels it
reads, checks, applies the event through `projection.apply_event` (the same code the
consumer and a replay run) and records the event in the same transaction
(`runtime.outbox`). A refused or failed operation changes no stock and records nothing.

Decisions against concurrent requests: a reservation takes the level rows' locks
(PostgreSQL `FOR UPDATE`, in key order; SQLite admits one writer), so two reservations of
the last unit cannot both see it free. Facts are never refused for lack of stock (a till
sale or a transfer out already happened), except a transfer that would take units held for
customers, which is refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, select

from polku.collect.internal import internal_event
from polku.commerce.catalog.queries import get_variants
from polku.commerce.locations.queries import get_location
from polku.commerce.stock.levels import lock_levels
from polku.commerce.stock.projection import PICKED_UP, READY, RELEASED, RESERVED, apply_event
from polku.commerce.stock.tables import reservation_lines, reservations
from polku.errors import Conflict, InvalidField, NotFound
from polku.events import NewEvent, to_iso
from polku.log.outbox import Backends, Outbox

__all__ = [
    "Backends",
    "Line",
    "Reservation",
    "adjust",
    "collect",
    "count",
    "get_reservation",
    "mark_ready",
    "receive",
    "release",
    "release_expired",
    "reserve",
    "transfer",
]

MAX_QUANTITY = 1_000_000


MAX_HOLD = timedelta(days=14)
DEFAULT_HOLD = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: str
    location_id: str
    status: str
    lines: tuple[Line, ...]
    created_at: int
    expires_at: int
    ready_at: int | None
    closed_at: int | None
    close_reason: str | None
    user_id: str | None
    anonymous_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reservation_id": self.reservation_id,
            "location_id": self.location_id,
            "status": self.status,
            "lines": [{"sku": line.sku, "quantity": line.quantity} for line in self.lines],
            "created_at": to_iso(self.created_at),
            "expires_at": to_iso(self.expires_at),
            "ready_at": to_iso(self.ready_at) if self.ready_at is not None else None,
            "closed_at": to_iso(self.closed_at) if self.closed_at is not None else None,
            "close_reason": self.close_reason,
            "user_id": self.user_id,
            "anonymous_id": self.anonymous_id,
        }


# -- validation ----------------------------------------------------------------------------


def _location(
    conn: Connection, ws: str, location_id: str, field: str, *, collect: bool = False
) -> None:
    found = get_location(conn, ws, location_id)
    if found is None or not found.active:
        raise InvalidField(
            f"Unknown location {location_id!r}.",
            field=field,
            code="unknown_location",
            hint="Use a location id from GET /v1/locations.",
            params={"location": location_id},
        )
    if collect and not found.click_and_collect:
        raise InvalidField(
            f"{found.name} ({location_id}) does not offer click and collect.",
            field=field,
            code="no_click_and_collect",
            hint="Choose a store with click_and_collect: GET /v1/locations?click_and_collect=true.",
            params={"store": found.name, "location": location_id},
        )


def _lines(
    conn: Connection,
    ws: str,
    lines: Sequence[Line],
    *,
    signed: bool = False,
    zero: bool = False,
    active: bool = False,
) -> list[Line]:
    """The lines checked: known SKUs, whole quantities (positive unless `signed`/`zero`),
    each SKU once."""
    if not lines:
        raise InvalidField(
            "No lines: send at least one {sku, quantity}.",
            field="lines",
            code="empty_lines",
            message_id="stock_empty_lines",
        )
    seen: set[str] = set()
    for i, line in enumerate(lines):
        field = f"lines[{i}]"
        if line.sku in seen:
            raise InvalidField(
                f"SKU {line.sku!r} appears twice.",
                field=f"{field}.sku",
                code="duplicate_sku",
                hint="Send each SKU once, with the total quantity.",
                message_id="stock_duplicate_sku",
                params={"sku": line.sku},
            )
        seen.add(line.sku)
        q = line.quantity
        bad = abs(q) > MAX_QUANTITY or (q == 0 and not zero) or (q < 0 and not signed)
        if bad:
            need = "a whole number" + ("" if signed else " of units, 1 or more")
            if zero:
                need = "a whole number of units, 0 or more"
            raise InvalidField(
                f"Quantity {q} is not allowed here; send {need}.",
                field=f"{field}.quantity",
                code="invalid_quantity",
                message_id="stock_invalid_quantity",
                params={"quantity": q},
            )
    known = get_variants(conn, ws, [line.sku for line in lines])
    for i, line in enumerate(lines):
        variant = known.get(line.sku)
        if variant is None:
            raise InvalidField(
                f"Unknown SKU {line.sku!r}.",
                field=f"lines[{i}].sku",
                code="unknown_sku",
                hint="Use a SKU from the catalogue (GET /v1/catalog/...).",
                params={"sku": line.sku},
            )
        if active and not variant.active:
            raise InvalidField(
                f"SKU {line.sku!r} is not sold any more (inactive in the catalogue).",
                field=f"lines[{i}].sku",
                code="inactive_sku",
                params={"sku": line.sku},
            )
    return list(lines)


def _products(lines: Sequence[Line]) -> list[dict[str, Any]]:
    return [{"sku": line.sku, "quantity": line.quantity} for line in lines]


def _decide(outbox: Outbox, ws: str, event: NewEvent, check: Any = None) -> None:
    """Apply `event` to stock and record it, in one transaction; `check(conn)` runs first,
    after the levels are locked, and raises to refuse."""
    with outbox.transaction() as tx:
        if check is not None:
            check(tx.conn)
        apply_event(tx.conn, event, _message(event))
        tx.record(event)


def _message(event: NewEvent) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(event.payload)
    return message


# -- facts through the API -----------------------------------------------------------------


def receive(
    runtime: Backends,
    ws: str,
    location_id: str,
    lines: Sequence[Line],
    delivery_id: str | None = None,
) -> str:
    """A delivery arrived: on-hand up. Returns the event's messageId."""
    with runtime.engine.connect() as conn:
        _location(conn, ws, location_id, "location_id")
        checked = _lines(conn, ws, lines)
    properties: dict[str, Any] = {"location_id": location_id, "products": _products(checked)}
    if delivery_id:
        properties["delivery_id"] = delivery_id
    event = internal_event(
        ws, "Stock Received", properties, partition_key=f"location:{location_id}"
    )
    _decide(runtime.outbox, ws, event)
    return event.message_id


def adjust(runtime: Backends, ws: str, location_id: str, lines: Sequence[Line], reason: str) -> str:
    """A correction (damaged, lost, found): on-hand changes by each signed quantity."""
    with runtime.engine.connect() as conn:
        _location(conn, ws, location_id, "location_id")
        checked = _lines(conn, ws, lines, signed=True)
    event = internal_event(
        ws,
        "Stock Adjusted",
        {"location_id": location_id, "reason": reason, "products": _products(checked)},
        partition_key=f"location:{location_id}",
    )
    _decide(runtime.outbox, ws, event)
    return event.message_id


def count(
    runtime: Backends, ws: str, location_id: str, lines: Sequence[Line], count_id: str | None = None
) -> str:
    """A stock count: on-hand becomes the units counted."""
    with runtime.engine.connect() as conn:
        _location(conn, ws, location_id, "location_id")
        checked = _lines(conn, ws, lines, zero=True)
    properties: dict[str, Any] = {"location_id": location_id, "products": _products(checked)}
    if count_id:
        properties["count_id"] = count_id
    event = internal_event(ws, "Stock Counted", properties, partition_key=f"location:{location_id}")
    _decide(runtime.outbox, ws, event)
    return event.message_id


def transfer(
    runtime: Backends,
    ws: str,
    source: str,
    target: str,
    lines: Sequence[Line],
    transfer_id: str | None = None,
) -> str:
    """Units moved between locations; refused if it would take units held for customers."""
    if source == target:
        raise InvalidField(
            "A transfer needs two different locations.",
            field="to_location_id",
            code="same_location",
        )
    with runtime.engine.connect() as conn:
        _location(conn, ws, source, "from_location_id")
        _location(conn, ws, target, "to_location_id")
        checked = _lines(conn, ws, lines)
    properties: dict[str, Any] = {
        "from_location_id": source,
        "to_location_id": target,
        "products": _products(checked),
    }
    if transfer_id:
        properties["transfer_id"] = transfer_id

    def check(conn: Connection) -> None:
        _enough(conn, ws, source, checked, what="transfer")

    event = internal_event(ws, "Stock Transferred", properties, partition_key=f"location:{source}")
    _decide(runtime.outbox, ws, event, check)
    return event.message_id


def _enough(
    conn: Connection, ws: str, location_id: str, lines: Sequence[Line], *, what: str
) -> None:
    current = lock_levels(conn, ws, [(location_id, line.sku) for line in lines])
    for i, line in enumerate(lines):
        sellable = current[(location_id, line.sku)].sellable
        if line.quantity > sellable:
            raise Conflict(
                f"Only {sellable} of {line.sku!r} available at {location_id}; cannot {what} "
                f"{line.quantity}.",
                field=f"lines[{i}].quantity",
                code="insufficient_stock",
                hint=f"{what.capitalize()} at most {sellable}, or choose another location "
                f"(GET /v1/availability?sku={line.sku}).",
                params={
                    "sellable": sellable,
                    "sku": line.sku,
                    "location": location_id,
                    "quantity": line.quantity,
                    "action": what,
                },
            )


# -- reservations (click and collect) --------------------------------------------------------


def reserve(
    runtime: Backends,
    ws: str,
    location_id: str,
    lines: Sequence[Line],
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    hold: timedelta = DEFAULT_HOLD,
    reservation_id: str | None = None,
    channel: str = "web",
) -> Reservation:
    """Hold units at a store for the customer to collect; refused (409) when fewer are
    sellable than asked for, and released automatically when `hold` runs out."""
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
            params={"days": MAX_HOLD.days},
        )
    rid = reservation_id or f"r-{uuid.uuid4().hex[:16]}"
    with runtime.engine.connect() as conn:
        _location(conn, ws, location_id, "location_id", collect=True)
        checked = _lines(conn, ws, lines, active=True)
    expires = datetime.now(UTC) + hold
    event = internal_event(
        ws,
        RESERVED,
        {
            "order_id": rid,
            "store_id": location_id,
            "products": _products(checked),
            "collect_by": expires.isoformat().replace("+00:00", "Z"),
        },
        user_id=user_id,
        anonymous_id=anonymous_id,
        channel=channel,
    )

    def check(conn: Connection) -> None:
        if _find(conn, ws, rid) is not None:
            raise Conflict(
                f"Reservation {rid!r} exists already.",
                field="reservation_id",
                code="duplicate_reservation",
                hint="Leave reservation_id out to get a new one, or use another.",
                params={"reservation": rid},
            )
        _enough(conn, ws, location_id, checked, what="reserve")

    _decide(runtime.outbox, ws, event, check)
    with runtime.engine.connect() as conn:
        found = _find(conn, ws, rid)
    assert found is not None
    return found


def mark_ready(
    runtime: Backends, ws: str, reservation_id: str, collect_by: datetime | None = None
) -> Reservation:
    """The store has picked the items: ready for pick-up (until `collect_by`, if given)."""
    properties: dict[str, Any] = {}
    if collect_by is not None:
        properties["collect_by"] = collect_by.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return _close_or_step(runtime, ws, reservation_id, READY, properties, allowed={"held"})


def collect(
    runtime: Backends, ws: str, reservation_id: str, staff_id: str | None = None
) -> Reservation:
    """The customer collected it: the units leave the shelf (on-hand and reserved down)."""
    properties: dict[str, Any] = {"staff_id": staff_id} if staff_id else {}
    return _close_or_step(
        runtime, ws, reservation_id, PICKED_UP, properties, allowed={"held", "ready"}
    )


def release(
    runtime: Backends, ws: str, reservation_id: str, reason: str = "cancelled"
) -> Reservation:
    """Give the units back (cancelled by the customer or the store, or expired)."""
    return _close_or_step(
        runtime, ws, reservation_id, RELEASED, {"reason": reason}, allowed={"held", "ready"}
    )


def _close_or_step(
    runtime: Backends,
    ws: str,
    reservation_id: str,
    event_name: str,
    properties: dict[str, Any],
    *,
    allowed: set[str],
) -> Reservation:
    with runtime.outbox.transaction() as tx:
        found = _find(tx.conn, ws, reservation_id, lock=True)
        if found is None:
            raise NotFound(
                f"No reservation {reservation_id!r}.",
                field="reservation_id",
                code="unknown_reservation",
                params={"reservation": reservation_id},
            )
        if found.status not in allowed:
            raise Conflict(
                f"Reservation {reservation_id!r} is {found.status}"
                + (f" ({found.close_reason})" if found.close_reason else "")
                + f"; it cannot be {_VERB[event_name]} now.",
                field="reservation_id",
                code="reservation_closed" if found.closed_at else "reservation_not_ready",
                message_id="reservation_wrong_status",
                params={
                    "reservation": reservation_id,
                    "status": found.status,
                    "action": _ACTION[event_name],
                },
            )
        event = internal_event(
            ws,
            event_name,
            {
                "order_id": reservation_id,
                "store_id": found.location_id,
                "products": _products(found.lines),
                **properties,
            },
            user_id=found.user_id,
            anonymous_id=found.anonymous_id,
            channel="store",
        )
        apply_event(tx.conn, event, _message(event))
        tx.record(event)
    with runtime.engine.connect() as conn:
        after = _find(conn, ws, reservation_id)
    assert after is not None
    return after


_VERB = {READY: "marked ready", PICKED_UP: "collected", RELEASED: "released"}
_ACTION = {READY: "ready", PICKED_UP: "collect", RELEASED: "release"}
"""The step of each event, as the console names it (`commerce_step_<action>`)."""


def release_expired(runtime: Backends, *, now_ms: int | None = None, limit: int = 200) -> int:
    """Release the reservations whose time ran out (the durable timer: reservation rows with a
    due time, looked at by whoever runs the pipeline). Returns how many were released."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    with runtime.engine.connect() as conn:
        due = conn.execute(
            select(reservations.c.workspace_id, reservations.c.reservation_id)
            .where(reservations.c.status.in_(("held", "ready")), reservations.c.expires_at <= now)
            .order_by(reservations.c.expires_at)
            .limit(limit)
        ).all()
    released = 0
    for ws, rid in due:
        try:
            release(runtime, ws, rid, reason="expired")
        except Conflict:
            continue  # collected or released meanwhile
        released += 1
    return released


def get_reservation(conn: Connection, ws: str, reservation_id: str) -> Reservation | None:
    return _find(conn, ws, reservation_id)


def _find(
    conn: Connection, ws: str, reservation_id: str, *, lock: bool = False
) -> Reservation | None:
    query = select(reservations).where(
        reservations.c.workspace_id == ws, reservations.c.reservation_id == reservation_id
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return None
    lines = conn.execute(
        select(reservation_lines.c.sku, reservation_lines.c.quantity)
        .where(
            reservation_lines.c.workspace_id == ws,
            reservation_lines.c.reservation_id == reservation_id,
        )
        .order_by(reservation_lines.c.sku)
    )
    return Reservation(
        reservation_id=row.reservation_id,
        location_id=row.location_id,
        status=row.status,
        lines=tuple(Line(sku, int(q)) for sku, q in lines),
        created_at=row.created_at,
        expires_at=row.expires_at,
        ready_at=row.ready_at,
        closed_at=row.closed_at,
        close_reason=row.close_reason,
        user_id=row.user_id,
        anonymous_id=row.anonymous_id,
    )
