"""The carts consumer: keep every person's cart from the cart events Polku recorded.

`apply_event` is the one place an event changes a cart. A decision of the carts API calls
it inside its own transaction for the event it records (so the cart and the event commit
together, and any device reads the change at once); the consumer calls it again when the
event comes through the log and finds it applied; a replay calls it for every event in
order and rebuilds every cart.

Which cart an event belongs to is identity's answer (`identity_event_profiles`), as for
profiles: the consumer runs after identity. An event the API applied to a device's cart,
or to a profile that identity has since given the event away from, is moved to the cart of
the profile identity chose (`lines.move`). A merge recorded in `identity_merges` by an event
of the batch folds the merged profile's cart into the survivor's (`lines.fold`: the same
SKU twice becomes one line with the quantities summed). An un-merge (`polku.unmerge`)
recomputes both carts from their changes, each following its event to the side identity
gave it: the device that was merged by mistake gets its own cart back.

Only Polku's own events change carts (an internal event has no source): `Product Added`
or `Product Removed` sent by the shop's tracking stays on the timeline but does not change
Polku's cart, which the shop changes through the carts API. `Cart Viewed` and `Checkout
Started` change nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, select

from polku.commerce.carts.lines import (
    Change,
    apply_change,
    fold,
    get_change,
    get_changes,
    move,
    rebuild,
)
from polku.commerce.carts.owners import event_device_owner, lock_owners
from polku.commerce.carts.tables import carts, changes, lines
from polku.commerce.catalog.money import price_minor
from polku.errors import InvalidField
from polku.events import LoggedEvent, NewEvent
from polku.identity.identifiers import IdentityConfig
from polku.identity.projection import UNMERGE, canonical
from polku.identity.tables import event_profiles, merges
from polku.log.tables import log_events
from polku.pipeline.consumer import Apply

__all__ = [
    "ADDED",
    "CHANGE_EVENTS",
    "CHECKOUT_STARTED",
    "REMOVED",
    "VIEWED",
    "CartsConsumer",
    "apply_event",
    "change_of",
]

ADDED = "Product Added"
REMOVED = "Product Removed"
VIEWED = "Cart Viewed"
CHECKOUT_STARTED = "Checkout Started"
CHANGE_EVENTS = frozenset({ADDED, REMOVED})

_IN_CHUNK = 400


def _text(value: Any, limit: int = 200) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)[:limit]
    return None


def _units(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value) if value >= 1 else None


def change_of(
    event: LoggedEvent | NewEvent, message: Mapping[str, Any], owner: str
) -> Change | None:
    """The change a cart event makes to `owner`'s cart; None for any other event, and for
    a cart event another system sent (it has a source)."""
    if event.event not in CHANGE_EVENTS or event.source_id:
        return None
    properties = message.get("properties")
    if not isinstance(properties, Mapping):
        return None
    sku = _text(properties.get("sku"))
    quantity = _units(properties.get("quantity"))
    if sku is None or quantity is None:
        return None
    product_id = _text(properties.get("product_id")) or sku
    price: int | None = None
    currency = properties.get("currency")
    currency = currency.upper() if isinstance(currency, str) and len(currency) == 3 else None
    if event.event == ADDED and currency is not None:
        try:
            price = price_minor(properties.get("price"), currency, "price")
        except (InvalidField, KeyError):
            price = None
    return Change(
        message_id=event.message_id,
        owner=owner,
        sku=sku,
        product_id=product_id,
        delta=quantity if event.event == ADDED else -quantity,
        at=event.timestamp,
        price_minor=price,
        currency=currency if price is not None else None,
    )


def apply_event(
    conn: Connection, event: LoggedEvent | NewEvent, message: Mapping[str, Any], owner: str
) -> bool:
    """Apply one event to `owner`'s cart; False when it changes no cart or was applied
    before. Call with the owner locked (`owners.lock_owners`)."""
    change = change_of(event, message, owner)
    return change is not None and apply_change(conn, event.workspace_id, change)


# -- the consumer ------------------------------------------------------------------------------

_Owner = tuple[str, str]  # (workspace_id, owner)


@dataclass
class _Plan:
    """What one batch does, and the owners it touches (to lock them first)."""

    merges: list[tuple[str, str, str, int]] = field(default_factory=list)  # ws, winner, loser, at
    owner_of: dict[int, str] = field(default_factory=dict)  # event offset -> its cart's owner
    applied: dict[str, Change] = field(default_factory=dict)  # messageId -> its change
    owners: set[_Owner] = field(default_factory=set)


class CartsConsumer:
    """Keeps every cart from the log (see the module doc)."""

    name = "carts"

    def __init__(self, identity: IdentityConfig) -> None:
        self._identity = identity

    def reset(self, conn: Connection) -> None:
        for table in (changes, lines, carts):
            conn.execute(delete(table))

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        # A cart is changed by API decisions as well as by this consumer, so what a snapshot
        # read would be stale by the time it is written: all the work is in `apply`, in the
        # writing transaction (which, with `shared`, is `conn` itself).
        if len(events) == 1 and events[0].type == UNMERGE:
            event = events[0]
            return lambda writer: self._unmerge(writer, event, shared=shared)
        relevant = [e for e in events if e.event in CHANGE_EVENTS and not e.source_id]
        offsets = [e.offset for e in events]

        def apply(writer: Connection) -> None:
            self._apply(writer, offsets, relevant, shared=shared)

        return apply

    def _plan(
        self, conn: Connection, offsets: Sequence[int], relevant: Sequence[LoggedEvent]
    ) -> _Plan:
        plan = _Plan()
        wanted = set(offsets)
        rows = conn.execute(
            select(
                merges.c.evidence_offset,
                merges.c.workspace_id,
                merges.c.winner_id,
                merges.c.loser_id,
                merges.c.merged_at,
            ).where(merges.c.evidence_offset.between(offsets[0], offsets[-1]))
        )
        found = sorted(
            (int(offset), ws, winner, loser, int(at))
            for offset, ws, winner, loser, at in rows
            if offset in wanted
        )
        if found:
            losers: dict[str, set[str]] = defaultdict(set)
            for _, ws, _, loser, _ in found:
                losers[ws].add(loser)
            with_carts = {
                (ws, owner)
                for ws, owners in losers.items()
                for (owner,) in conn.execute(
                    select(carts.c.owner).where(
                        carts.c.workspace_id == ws, carts.c.owner.in_(sorted(owners))
                    )
                )
            }
            for _, ws, winner, loser, at in found:
                if (ws, loser) in with_carts:
                    target = canonical(conn, winner)
                    plan.merges.append((ws, target, loser, at))
                    plan.owners.update({(ws, target), (ws, loser)})
        if not relevant:
            return plan
        given: dict[int, str] = {}
        wanted_offsets = [e.offset for e in relevant]
        for start in range(0, len(wanted_offsets), _IN_CHUNK):
            given.update(
                conn.execute(
                    select(event_profiles.c.offset, event_profiles.c.profile_id).where(
                        event_profiles.c.offset.in_(wanted_offsets[start : start + _IN_CHUNK])
                    )
                ).all()
            )
        by_workspace: dict[str, list[str]] = defaultdict(list)
        for event in relevant:
            owner = given.get(event.offset) or event_device_owner(event.message, self._identity)
            if owner is None:
                continue
            plan.owner_of[event.offset] = owner
            plan.owners.add((event.workspace_id, owner))
            by_workspace[event.workspace_id].append(event.message_id)
        for ws, ids in by_workspace.items():
            for change in get_changes(conn, ws, ids).values():
                plan.applied[change.message_id] = change
                plan.owners.add((ws, change.owner))
        return plan

    def _apply(
        self,
        conn: Connection,
        offsets: Sequence[int],
        relevant: Sequence[LoggedEvent],
        *,
        shared: bool,
    ) -> None:
        plan = self._plan(conn, offsets, relevant)
        if shared:
            # Other partitions' workers change carts at the same moment, and identity may
            # re-point an event or merge a profile meanwhile: lock what the plan touches,
            # then plan again, until no new owner turns up.
            locked: set[_Owner] = set()
            at = max((e.timestamp for e in relevant), default=0)
            while plan.owners - locked:
                missing = plan.owners - locked
                for ws in sorted({ws for ws, _ in missing}):
                    lock_owners(conn, ws, [o for w, o in missing if w == ws], at)
                locked |= missing
                plan = self._plan(conn, offsets, relevant)
        for ws, winner, loser, at in plan.merges:
            fold(conn, ws, loser, winner, at)
        for event in relevant:
            owner = plan.owner_of.get(event.offset)
            if owner is None:
                continue
            ws = event.workspace_id
            applied = get_change(conn, ws, event.message_id)
            if applied is not None:
                move(conn, ws, applied, owner)
            else:
                apply_event(conn, event, event.message, owner)

    def _unmerge(self, conn: Connection, event: LoggedEvent, *, shared: bool) -> None:
        merge_id = (event.message.get("properties") or {}).get("merge_id")
        row = conn.execute(
            select(merges).where(
                merges.c.merge_id == merge_id, merges.c.workspace_id == event.workspace_id
            )
        ).first()
        if row is None:
            return
        ws = event.workspace_id
        sides = sorted({canonical(conn, row.winner_id), row.loser_id})
        if shared:
            lock_owners(conn, ws, sides, event.timestamp)

        def owner_of(message_ids: Sequence[str]) -> dict[str, str]:
            found: dict[str, str] = {}
            for start in range(0, len(message_ids), _IN_CHUNK):
                rows = conn.execute(
                    select(log_events.c.message_id, event_profiles.c.profile_id)
                    .join(event_profiles, event_profiles.c.offset == log_events.c.offset)
                    .where(
                        log_events.c.workspace_id == ws,
                        log_events.c.message_id.in_(list(message_ids[start : start + _IN_CHUNK])),
                    )
                )
                found.update((mid, pid) for mid, pid in rows if pid in sides)
            return found

        rebuild(conn, ws, sides, owner_of)
