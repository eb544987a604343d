"""Reading routed signals: a queue's list, one signal, conversion rates, suppression.

A signal *converts* when its person places an order (any channel: web, app, till) within
the routing config's `conversion_days` after the signal's event time; rates are given per
queue, per routing rule and per kind. A person is *suppressed* (journeys should leave them
alone) while a staff member holds a claim on one of their signals, and for `hold_hours`
after the claim ends.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Connection, or_, select

from polku.commerce.catalog.queries import get_products
from polku.commerce.locations.queries import get_location
from polku.commerce.orders.facts import PLACING_EVENTS
from polku.commerce.orders.tables import orders
from polku.commerce.stock.tables import levels
from polku.errors import NotFound
from polku.events import to_iso
from polku.identity.tables import event_profiles
from polku.profiles.queries import resolve
from polku.profiles.tables import profiles
from polku.signals.routing import STORE_PREFIX, check_queue, config_of
from polku.signals.tables import claims, deliveries, delivery_attempts, routes, signals

__all__ = [
    "CONTACT_PURPOSE",
    "STATUSES",
    "Customer",
    "ProductStock",
    "Signal",
    "Suppression",
    "check_known_queue",
    "conversions",
    "deliveries_of",
    "get_signal",
    "is_suppressed",
    "list_signals",
    "newer_signals",
    "orders_placed_at",
    "queue_marker",
    "require_signal",
    "signal_customers",
    "signals_of",
    "stock_at",
]

STATUSES: Final = ("open", "claimed", "acknowledged", "closed")
_DAY_MS: Final = 86_400_000
_HOUR_MS: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class Signal:
    """A routed buying signal, as the API, the live feed and the webhooks show it."""

    signal_id: int
    workspace_id: str
    profile_id: str
    kind: str
    score: float
    products: tuple[str, ...]
    store_id: str | None
    channel: str | None
    session_id: str | None
    reasons: tuple[dict[str, Any], ...]
    details: dict[str, Any]
    event_id: str
    offset: int
    at: int
    dedupe_key: str
    status: str
    outcome: str | None
    claimed_by: str | None
    claimed_at: int | None
    closed_at: int | None
    queues: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.signal_id,
            "profile_id": self.profile_id,
            "kind": self.kind,
            "score": self.score,
            "products": list(self.products),
            "store_id": self.store_id,
            "channel": self.channel,
            "session_id": self.session_id,
            "reasons": list(self.reasons),
            "details": self.details,
            "event_id": self.event_id,
            "offset": self.offset,
            "at": to_iso(self.at),
            "dedupe_key": self.dedupe_key,
            "status": self.status,
            "outcome": self.outcome,
            "claimed_by": self.claimed_by,
            "claimed_at": None if self.claimed_at is None else to_iso(self.claimed_at),
            "closed_at": None if self.closed_at is None else to_iso(self.closed_at),
            "queues": list(self.queues),
        }


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why a person should not be messaged now: a staff member has them."""

    profile_id: str
    signal_id: int
    staff_id: str
    claimed_at: int
    released_at: int | None  # None: the claim is still open
    until: int | None  # when the suppression ends; None while the claim is open

    def as_dict(self) -> dict[str, Any]:
        return {
            "suppressed": True,
            "profile_id": self.profile_id,
            "signal_id": self.signal_id,
            "staff_id": self.staff_id,
            "claimed_at": to_iso(self.claimed_at),
            "released_at": None if self.released_at is None else to_iso(self.released_at),
            "until": None if self.until is None else to_iso(self.until),
        }


def _signals(conn: Connection, rows: Sequence[Any]) -> list[Signal]:
    if not rows:
        return []
    ids = [row.id for row in rows]
    queues: dict[int, list[str]] = defaultdict(list)
    for signal_id, queue in conn.execute(
        select(routes.c.signal_id, routes.c.queue)
        .where(routes.c.signal_id.in_(ids), routes.c.workspace_id == rows[0].workspace_id)
        .order_by(routes.c.signal_id, routes.c.queue)
    ):
        queues[signal_id].append(queue)
    return [
        Signal(
            signal_id=row.id,
            workspace_id=row.workspace_id,
            profile_id=row.profile_id,
            kind=row.kind,
            score=row.score,
            products=tuple(orjson.loads(row.products)),
            store_id=row.store_id,
            channel=row.channel,
            session_id=row.session_id,
            reasons=tuple(orjson.loads(row.reasons)),
            details=orjson.loads(row.details),
            event_id=row.event_id,
            offset=row.offset,
            at=row.at,
            dedupe_key=row.dedupe_key,
            status=row.status,
            outcome=row.outcome,
            claimed_by=row.claimed_by,
            claimed_at=row.claimed_at,
            closed_at=row.closed_at,
            queues=tuple(queues.get(row.id, ())),
        )
        for row in rows
    ]


def get_signal(conn: Connection, workspace_id: str, signal_id: int) -> Signal | None:
    rows = conn.execute(
        select(signals).where(signals.c.workspace_id == workspace_id, signals.c.id == signal_id)
    ).all()
    found = _signals(conn, rows)
    return found[0] if found else None


def require_signal(conn: Connection, workspace_id: str, signal_id: int) -> Signal:
    found = get_signal(conn, workspace_id, signal_id)
    if found is None:
        raise NotFound(
            f"There is no signal {signal_id} in this workspace.",
            field="signal_id",
            code="unknown_signal",
            hint="List signals with GET /v1/signals?queue=...",
            params={"signal": signal_id},
        )
    return found


def check_known_queue(conn: Connection, workspace_id: str, queue: str) -> str:
    """`queue` if it is a well-formed queue of this workspace (a store queue needs the store);
    else 400 `invalid_queue` or 404 `unknown_queue`."""
    check_queue(queue)
    if queue.startswith(STORE_PREFIX):
        location_id = queue[len(STORE_PREFIX) :]
        if get_location(conn, workspace_id, location_id) is None:
            raise NotFound(
                f"There is no queue {queue!r}: the workspace has no location {location_id!r}.",
                field="queue",
                code="unknown_queue",
                hint="Queues are `agents`, `automation` and `store:<location_id>` for a "
                "location of GET /v1/locations.",
                params={"queue": queue, "location": location_id},
            )
    return queue


def list_signals(
    conn: Connection,
    workspace_id: str,
    *,
    queue: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    store: str | None = None,
    since: int | None = None,
    limit: int = 100,
) -> list[Signal]:
    """Signals newest first, filtered by queue, status, kind, routed store and event time."""
    query = select(signals).where(signals.c.workspace_id == workspace_id)
    if queue is not None:
        query = query.where(
            signals.c.id.in_(
                select(routes.c.signal_id).where(
                    routes.c.workspace_id == workspace_id, routes.c.queue == queue
                )
            )
        )
    if status is not None:
        query = query.where(signals.c.status == status)
    if kind is not None:
        query = query.where(signals.c.kind == kind)
    if store is not None:
        query = query.where(signals.c.store_id == store)
    if since is not None:
        query = query.where(signals.c.at >= since)
    rows = conn.execute(query.order_by(signals.c.id.desc()).limit(limit)).all()
    return _signals(conn, rows)


def signals_of(
    conn: Connection, workspace_id: str, profile_ids: Sequence[str], *, limit: int = 50
) -> list[Signal]:
    """The signals of a person (their profile and the profiles merged into it), newest
    first: what the console's customer page lists."""
    if not profile_ids:
        return []
    rows = conn.execute(
        select(signals)
        .where(signals.c.workspace_id == workspace_id, signals.c.profile_id.in_(list(profile_ids)))
        .order_by(signals.c.id.desc())
        .limit(limit)
    ).all()
    return _signals(conn, rows)


def newer_signals(
    conn: Connection, workspace_id: str, queue: str, after: int, recent_since: int, limit: int
) -> list[Signal]:
    """The live feed's read: signals on `queue` with an id above `after`, or written since
    `recent_since` (a later commit can hold a lower id); the caller drops those it sent."""
    rows = conn.execute(
        select(signals)
        .where(
            signals.c.workspace_id == workspace_id,
            or_(signals.c.id > after, signals.c.created_at >= recent_since),
            signals.c.id.in_(
                select(routes.c.signal_id).where(
                    routes.c.workspace_id == workspace_id, routes.c.queue == queue
                )
            ),
        )
        .order_by(signals.c.id)
        .limit(limit)
    ).all()
    return _signals(conn, rows)


def queue_marker(conn: Connection, workspace_id: str, queue: str, limit: int = 100) -> str:
    """A short fingerprint of what a queue's list shows (its newest `limit` signals with
    their status, holder and outcome): it changes when a signal is routed to the queue,
    claimed, acknowledged, closed or given an outcome. The console's live stream compares
    it once a second, reading only these four columns through the queue's index."""
    rows = conn.execute(
        select(signals.c.id, signals.c.status, signals.c.claimed_by, signals.c.outcome)
        .where(
            signals.c.workspace_id == workspace_id,
            signals.c.id.in_(
                select(routes.c.signal_id).where(
                    routes.c.workspace_id == workspace_id, routes.c.queue == queue
                )
            ),
        )
        .order_by(signals.c.id.desc())
        .limit(limit)
    ).all()
    digest = hashlib.blake2b(digest_size=8)
    for row in rows:
        digest.update(f"{row.id}|{row.status}|{row.claimed_by}|{row.outcome};".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Customer:
    """Who a signal is about, as staff address them: the profile's name and email traits,
    and the phone and email staff may contact them at (the person granted consent for
    `CONTACT_PURPOSE` on that channel, or on every channel)."""

    profile_id: str  # the surviving profile, when the signal's was merged
    name: str | None
    email: str | None
    contact_phone: str | None
    contact_email: str | None


CONTACT_PURPOSE: Final = "marketing"


def _granted(consent: dict[str, Any], *channels: str) -> bool:
    """Whether the stored consent grants `CONTACT_PURPOSE` on one of `channels` (a
    channel's own answer first, else the answer for every channel)."""
    by_channel = consent.get(CONTACT_PURPOSE)
    if not isinstance(by_channel, dict):
        return False
    for channel in channels:
        entry = by_channel.get(channel) or by_channel.get("*")
        if isinstance(entry, dict) and entry.get("granted"):
            return True
    return False


def signal_customers(
    conn: Connection, workspace_id: str, profile_ids: Sequence[str]
) -> dict[str, Customer]:
    """The customer of each of `profile_ids` (merged profiles resolved to their survivor),
    by the id asked for; unknown profiles are left out."""
    holders = {pid: resolve(conn, workspace_id, pid) or pid for pid in set(profile_ids)}
    if not holders:
        return {}
    rows = {
        row.profile_id: row
        for row in conn.execute(
            select(
                profiles.c.profile_id,
                profiles.c.name,
                profiles.c.email,
                profiles.c.phone,
                profiles.c.consent,
            ).where(
                profiles.c.workspace_id == workspace_id,
                profiles.c.profile_id.in_(sorted(set(holders.values()))),
            )
        )
    }
    found: dict[str, Customer] = {}
    for pid, holder in holders.items():
        if holder not in rows:
            continue
        row = rows[holder]
        consent = orjson.loads(row.consent) if row.consent else {}
        found[pid] = Customer(
            profile_id=holder,
            name=row.name,
            email=row.email,
            contact_phone=row.phone if _granted(consent, "sms", "phone") else None,
            contact_email=row.email if _granted(consent, "email") else None,
        )
    return found


@dataclass(frozen=True, slots=True)
class ProductStock:
    """A signal's product at a store: its name, the units sellable there, and the SKUs
    that have units (what a clerk may reserve for pickup)."""

    name: str
    sellable: int
    skus: tuple[str, ...]


def stock_at(
    conn: Connection,
    workspace_id: str,
    location_id: str,
    product_ids: Sequence[str],
    lang: str | None = None,
) -> dict[str, ProductStock]:
    """Each known product of `product_ids` → its name (in `lang` when translated) and the
    units sellable at `location_id` over its active variants, for a signal's card."""
    found = get_products(conn, workspace_id, product_ids)
    skus = [v.sku for p in found.values() for v in p.variants if v.active]
    sellable: dict[str, int] = {}
    if skus:
        for sku, on_hand, reserved in conn.execute(
            select(levels.c.sku, levels.c.on_hand, levels.c.reserved).where(
                levels.c.workspace_id == workspace_id,
                levels.c.location_id == location_id,
                levels.c.sku.in_(skus),
            )
        ):
            sellable[sku] = max(0, int(on_hand) - int(reserved))
    return {
        pid: ProductStock(
            name=p.name_in(lang),
            sellable=sum(sellable.get(v.sku, 0) for v in p.variants if v.active),
            skus=tuple(v.sku for v in p.variants if v.active and sellable.get(v.sku, 0) > 0),
        )
        for pid, p in found.items()
    }


# -- conversion ------------------------------------------------------------------------------


def _order_times(conn: Connection, workspace_id: str, holder: str, first: int) -> list[int]:
    ep = event_profiles.c
    return [
        int(at)
        for (at,) in conn.execute(
            select(orders.c.placed_at)
            .select_from(event_profiles.join(orders, orders.c.offset == ep.offset))
            .where(
                ep.workspace_id == workspace_id,
                ep.profile_id == holder,
                ep.event.in_(sorted(PLACING_EVENTS)),
                # (no orders.workspace_id: the offset implies it; see orders_of)
                orders.c.placed_at >= first,
            )
        )
    ]


def orders_placed_at(conn: Connection, workspace_id: str, holder: str, first: int) -> list[int]:
    """When the profile `holder` placed orders (any channel), from `first` (epoch ms) on:
    what makes its signals convert."""
    return _order_times(conn, workspace_id, holder, first)


def _rate(signals_n: int, converted: int) -> dict[str, Any]:
    return {
        "signals": signals_n,
        "conversions": converted,
        "rate": round(converted / signals_n, 4) if signals_n else 0.0,
    }


def conversions(
    conn: Connection,
    workspace_id: str,
    *,
    days: int | None = None,
    since: int | None = None,
    until: int | None = None,
) -> dict[str, Any]:
    """Signals, conversions and the rate overall, per queue, per routing rule and per kind;
    `days` defaults to the routing config's `conversion_days`."""
    window = days if days is not None else config_of(conn, workspace_id).conversion_days
    query = select(signals.c.id, signals.c.profile_id, signals.c.kind, signals.c.at).where(
        signals.c.workspace_id == workspace_id
    )
    if since is not None:
        query = query.where(signals.c.at >= since)
    if until is not None:
        query = query.where(signals.c.at < until)
    rows = conn.execute(query).all()
    on: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if rows:
        first_id = min(row.id for row in rows)
        for signal_id, queue, rule in conn.execute(
            select(routes.c.signal_id, routes.c.queue, routes.c.rule).where(
                routes.c.workspace_id == workspace_id, routes.c.signal_id >= first_id
            )
        ):
            on[signal_id].append((queue, rule))
    by_profile: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_profile[row.profile_id].append(row)
    converted: set[int] = set()
    span = window * _DAY_MS
    for profile_id, items in by_profile.items():
        holder = resolve(conn, workspace_id, profile_id) or profile_id
        times = _order_times(conn, workspace_id, holder, min(r.at for r in items))
        for row in items:
            if any(row.at <= t <= row.at + span for t in times):
                converted.add(row.id)
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        hit = int(row.id in converted)
        keys = [("kind", row.kind)]
        keys += [("queue", q) for q, _ in on.get(row.id, ())]
        keys += [("rule", r) for r in {r for _, r in on.get(row.id, ())}]
        for key in keys:
            totals[key][0] += 1
            totals[key][1] += hit

    def group(name: str) -> list[dict[str, Any]]:
        return [
            {name: value, **_rate(n, c)}
            for (what, value), (n, c) in sorted(totals.items())
            if what == name
        ]

    return {
        "days": window,
        "since": None if since is None else to_iso(since),
        "until": None if until is None else to_iso(until),
        "total": _rate(len(rows), len(converted)),
        "by_queue": group("queue"),
        "by_rule": group("rule"),
        "by_kind": group("kind"),
    }


# -- suppression -----------------------------------------------------------------------------


def _profiles(conn: Connection, workspace_id: str, profile_id: str) -> list[str]:
    holder = resolve(conn, workspace_id, profile_id)
    return sorted({profile_id} | ({holder} if holder else set()))


def is_suppressed(
    conn: Connection, workspace_id: str, profile_id: str, at_ms: int
) -> Suppression | None:
    """The claim that suppresses messages to `profile_id` at `at_ms`, or None: a claim
    made by then and not yet ended, or ended less than the config's `hold_hours` before."""
    hold = int(config_of(conn, workspace_id).hold_hours * _HOUR_MS)
    c = claims.c
    row = conn.execute(
        select(claims)
        .where(
            c.workspace_id == workspace_id,
            c.profile_id.in_(_profiles(conn, workspace_id, profile_id)),
            c.claimed_at <= at_ms,
            or_(c.released_at.is_(None), c.released_at > at_ms - hold),
        )
        .order_by(c.released_at.is_(None).desc(), c.claimed_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Suppression(
        profile_id=row.profile_id,
        signal_id=row.signal_id,
        staff_id=row.staff_id,
        claimed_at=row.claimed_at,
        released_at=row.released_at,
        until=None if row.released_at is None else row.released_at + hold,
    )


# -- webhook deliveries ----------------------------------------------------------------------


def deliveries_of(
    conn: Connection,
    workspace_id: str,
    *,
    endpoint_id: str | None = None,
    signal_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The delivery log: each webhook delivery, newest first, with every attempt."""
    query = select(deliveries).where(deliveries.c.workspace_id == workspace_id)
    if endpoint_id is not None:
        query = query.where(deliveries.c.endpoint_id == endpoint_id)
    if signal_id is not None:
        query = query.where(deliveries.c.signal_id == signal_id)
    rows = conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit)).all()
    tries: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if rows:
        for a in conn.execute(
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id.in_([r.id for r in rows]))
            .order_by(delivery_attempts.c.delivery_id, delivery_attempts.c.attempt)
        ):
            tries[a.delivery_id].append(
                {
                    "attempt": a.attempt,
                    "at": to_iso(a.at),
                    "status_code": a.status_code,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
            )
    return [
        {
            "id": r.id,
            "endpoint_id": r.endpoint_id,
            "signal_id": r.signal_id,
            "status": r.status,
            "attempts": r.attempts,
            "next_attempt_at": to_iso(r.due_at) if r.status == "pending" else None,
            "created_at": to_iso(r.created_at),
            "delivered_at": None if r.delivered_at is None else to_iso(r.delivered_at),
            "log": tries.get(r.id, []),
        }
        for r in rows
    ]
