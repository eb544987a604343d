"""Changing cart lines: every change is a ledger row keyed by the event that made it.

A line's quantity is the sum of its owner's changes (`Product Added` +n, `Product Removed`
-n). Whoever applies an event first (the API decision that recorded it, or the consumer
that reads it from the log) writes the change; anyone after finds it and does not apply it
again. Because quantities are sums, the order in which changes, merges (`fold`) and moves
(`move`) are applied does not change the result: the live projection and a replay agree.

What a line remembers besides its quantity: the unit price of its latest add (so a price
change since can be shown), when it was first added and last changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from polku.commerce.carts.owners import ensure_owners
from polku.commerce.carts.tables import carts, changes, lines

__all__ = [
    "Change",
    "LineState",
    "apply_change",
    "combine",
    "fold",
    "get_change",
    "get_changes",
    "move",
    "read_lines",
    "rebuild",
]

_IN_CHUNK = 400


@dataclass(frozen=True, slots=True)
class Change:
    """One applied event's effect on one SKU of one owner's cart."""

    message_id: str
    owner: str
    sku: str
    product_id: str
    delta: int
    at: int
    price_minor: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class LineState:
    """An owner's line of one SKU (or the sum of a person's lines of it)."""

    sku: str
    product_id: str
    quantity: int
    added_price_minor: int | None
    added_currency: str | None
    price_at: int
    added_at: int
    updated_at: int


def _step(line: LineState | None, change: Change) -> LineState | None:
    """`line` after `change`; None when its quantity comes to zero."""
    priced = change.delta > 0 and change.price_minor is not None
    if line is None:
        line = LineState(
            sku=change.sku,
            product_id=change.product_id,
            quantity=change.delta,
            added_price_minor=change.price_minor if priced else None,
            added_currency=change.currency if priced else None,
            price_at=change.at if priced else 0,
            added_at=change.at,
            updated_at=change.at,
        )
    else:
        line = replace(
            line,
            product_id=change.product_id,
            quantity=line.quantity + change.delta,
            added_at=min(line.added_at, change.at) if change.delta > 0 else line.added_at,
            updated_at=max(line.updated_at, change.at),
        )
        if priced and change.at >= line.price_at:
            line = replace(
                line,
                added_price_minor=change.price_minor,
                added_currency=change.currency,
                price_at=change.at,
            )
    return line if line.quantity != 0 else None


def combine(a: LineState | None, b: LineState) -> LineState | None:
    """Two lines of one SKU as one: the quantities summed, the newer add's price, the earlier
    first add. Used by a merge of two carts and to show a person's cart spread over owners."""
    if a is None:
        return b
    newer = b if b.price_at > a.price_at else a
    quantity = a.quantity + b.quantity
    if quantity == 0:
        return None
    return LineState(
        sku=a.sku,
        product_id=a.product_id,
        quantity=quantity,
        added_price_minor=newer.added_price_minor,
        added_currency=newer.added_currency,
        price_at=newer.price_at,
        added_at=min(a.added_at, b.added_at),
        updated_at=max(a.updated_at, b.updated_at),
    )


# -- reading and writing lines ---------------------------------------------------------------


def read_lines(conn: Connection, ws: str, owners: Iterable[str]) -> dict[str, dict[str, LineState]]:
    """The lines of each of `owners` by SKU (an owner without lines maps to {})."""
    wanted = sorted(set(owners))
    found: dict[str, dict[str, LineState]] = {owner: {} for owner in wanted}
    for start in range(0, len(wanted), _IN_CHUNK):
        rows = conn.execute(
            select(lines).where(
                lines.c.workspace_id == ws, lines.c.owner.in_(wanted[start : start + _IN_CHUNK])
            )
        )
        for r in rows:
            found[r.owner][r.sku] = LineState(
                sku=r.sku,
                product_id=r.product_id,
                quantity=int(r.quantity),
                added_price_minor=r.added_price_minor,
                added_currency=r.added_currency,
                price_at=int(r.price_at),
                added_at=int(r.added_at),
                updated_at=int(r.updated_at),
            )
    return found


def _values(line: LineState) -> dict[str, object]:
    return {
        "product_id": line.product_id,
        "quantity": line.quantity,
        "added_price_minor": line.added_price_minor,
        "added_currency": line.added_currency,
        "price_at": line.price_at,
        "added_at": line.added_at,
        "updated_at": line.updated_at,
    }


def _save(
    conn: Connection,
    ws: str,
    owner: str,
    before: Mapping[str, LineState],
    after: Mapping[str, LineState | None],
) -> None:
    """Write the lines of `owner` that changed from `before` to `after` (None: deleted)."""
    for sku in sorted(after):
        new, old = after[sku], before.get(sku)
        key = and_(lines.c.workspace_id == ws, lines.c.owner == owner, lines.c.sku == sku)
        if new is None:
            if old is not None:
                conn.execute(delete(lines).where(key))
        elif old is None:
            conn.execute(
                insert(lines).values(workspace_id=ws, owner=owner, sku=sku, **_values(new))
            )
        elif new != old:
            conn.execute(update(lines).where(key).values(**_values(new)))
    touched = [line.updated_at for line in after.values() if line is not None]
    if touched:
        conn.execute(
            update(carts)
            .where(
                carts.c.workspace_id == ws,
                carts.c.owner == owner,
                carts.c.updated_at < max(touched),
            )
            .values(updated_at=max(touched))
        )


# -- the ledger ----------------------------------------------------------------------------------


def _change(row: Any) -> Change:
    return Change(
        message_id=row.message_id,
        owner=row.owner,
        sku=row.sku,
        product_id=row.product_id,
        delta=int(row.delta),
        at=int(row.at),
        price_minor=row.price_minor,
        currency=row.currency,
    )


def get_change(conn: Connection, ws: str, message_id: str) -> Change | None:
    """The change event `message_id` made, if it was applied."""
    row = conn.execute(
        select(changes).where(changes.c.workspace_id == ws, changes.c.message_id == message_id)
    ).first()
    return None if row is None else _change(row)


def get_changes(conn: Connection, ws: str, message_ids: Sequence[str]) -> dict[str, Change]:
    """The changes of those of `message_ids` that were applied, by messageId."""
    found: dict[str, Change] = {}
    ids = sorted(set(message_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        rows = conn.execute(
            select(changes).where(
                changes.c.workspace_id == ws,
                changes.c.message_id.in_(ids[start : start + _IN_CHUNK]),
            )
        )
        found.update((r.message_id, _change(r)) for r in rows)
    return found


def apply_change(conn: Connection, ws: str, change: Change) -> bool:
    """Record `change` in the ledger and add it to its owner's line; False (and nothing
    done) when its event was applied before. Call with the owner locked."""
    if get_change(conn, ws, change.message_id) is not None:
        return False
    ensure_owners(conn, ws, [change.owner], change.at, first_message_id=change.message_id)
    conn.execute(
        insert(changes).values(
            workspace_id=ws,
            message_id=change.message_id,
            owner=change.owner,
            sku=change.sku,
            product_id=change.product_id,
            delta=change.delta,
            price_minor=change.price_minor,
            currency=change.currency,
            at=change.at,
        )
    )
    before = read_lines(conn, ws, [change.owner])[change.owner]
    _save(conn, ws, change.owner, before, {change.sku: _step(before.get(change.sku), change)})
    return True


def fold(conn: Connection, ws: str, source: str, target: str, at: int) -> bool:
    """Move every line and change of `source` into `target`'s cart (a merge of two
    profiles, or a device's cart joining its person's); False when `source` had none.
    Call with both owners locked."""
    if source == target:
        return False
    held = read_lines(conn, ws, [source, target])
    moved = conn.execute(
        update(changes)
        .where(changes.c.workspace_id == ws, changes.c.owner == source)
        .values(owner=target)
    ).rowcount
    if not held[source] and not moved:
        return False
    ensure_owners(conn, ws, [target], at)
    merged: dict[str, LineState | None] = dict(held[target])
    for sku, line in held[source].items():
        merged[sku] = combine(merged.get(sku), line)
    _save(conn, ws, target, held[target], merged)
    _save(conn, ws, source, held[source], dict.fromkeys(held[source]))
    return True


def move(conn: Connection, ws: str, change: Change, target: str) -> None:
    """Move one applied change to `target`'s cart: identity gave its event to another
    profile than the one it was applied to (a device it did not know yet, a shared browser).
    Call with both owners locked."""
    if change.owner == target:
        return
    ensure_owners(conn, ws, [target], change.at, first_message_id=change.message_id)
    held = read_lines(conn, ws, [change.owner, target])
    undo = replace(change, delta=-change.delta, price_minor=None, currency=None)
    source_line = held[change.owner].get(change.sku)
    _save(conn, ws, change.owner, held[change.owner], {change.sku: _step(source_line, undo)})
    target_line = held[target].get(change.sku)
    _save(conn, ws, target, held[target], {change.sku: _step(target_line, change)})
    conn.execute(
        update(changes)
        .where(changes.c.workspace_id == ws, changes.c.message_id == change.message_id)
        .values(owner=target)
    )


def rebuild(
    conn: Connection,
    ws: str,
    owners: Sequence[str],
    owner_of: Callable[[Sequence[str]], Mapping[str, str]],
) -> None:
    """Recompute the carts of `owners` from their changes, each change going to the owner
    `owner_of(message_ids)` names for its event (unnamed: it stays where it is). This is an
    un-merge: identity gave some events back to the merged profile, and their changes follow
    them. Call with every owner involved locked."""
    rows = conn.execute(
        select(changes)
        .where(changes.c.workspace_id == ws, changes.c.owner.in_(list(owners)))
        .order_by(changes.c.at, changes.c.message_id)
    ).all()
    found = [_change(r) for r in rows]
    given = owner_of([c.message_id for c in found])
    placed = [replace(c, owner=given.get(c.message_id, c.owner)) for c in found]
    was = {c.message_id: c.owner for c in found}
    involved = sorted(set(owners) | {c.owner for c in placed})
    before = read_lines(conn, ws, involved)
    after: dict[str, dict[str, LineState | None]] = {o: dict.fromkeys(before[o]) for o in involved}
    for c in placed:
        after[c.owner][c.sku] = _step(after[c.owner].get(c.sku), c)
    ensure_owners(conn, ws, involved, max((c.at for c in placed), default=0))
    for owner in involved:
        _save(conn, ws, owner, before[owner], after[owner])
    for c in placed:
        if c.owner != was[c.message_id]:
            conn.execute(
                update(changes)
                .where(changes.c.workspace_id == ws, changes.c.message_id == c.message_id)
                .values(owner=c.owner)
            )
