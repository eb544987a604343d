"""Moving stock: every change is a movement keyed by the event that caused it.

A movement row per SKU and location, with the event's messageId as its key, and the level
rows updated in the same transaction. Whoever applies an event first (the decision that
recorded it, or the pipeline consumer that reads it from the log) moves the stock; anyone
after finds the movement and does nothing, so stock never moves twice for one event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Insert, and_, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from polku.commerce.stock.tables import levels, movements
from polku.storage.bulk import insert_rows

__all__ = [
    "Level",
    "Move",
    "apply_moves",
    "is_applied",
    "lock_batch",
    "lock_levels",
    "read_levels",
]

_IN_CHUNK = 400
_Key = tuple[str, str]  # (location_id, sku)


@dataclass(frozen=True, slots=True)
class Move:
    """A change of one SKU's units at one location."""

    location_id: str
    sku: str
    on_hand: int = 0
    reserved: int = 0


@dataclass(frozen=True, slots=True)
class Level:
    on_hand: int = 0
    reserved: int = 0

    @property
    def sellable(self) -> int:
        """Units a customer can buy or reserve now (never below zero)."""
        return max(0, self.on_hand - self.reserved)


def read_levels(conn: Connection, workspace_id: str, keys: Iterable[_Key]) -> dict[_Key, Level]:
    """Levels of these (location, SKU) pairs; a pair never stocked has `Level()`."""
    return _levels(conn, workspace_id, keys, lock=False)


def lock_levels(conn: Connection, workspace_id: str, keys: Iterable[_Key]) -> dict[_Key, Level]:
    """`read_levels`, with the rows locked until the transaction ends (PostgreSQL; SQLite's
    write transaction already excludes other writers). Rows are locked in key order, so two
    decisions on overlapping SKUs wait for each other instead of deadlocking."""
    return _levels(conn, workspace_id, keys, lock=conn.dialect.name == "postgresql")


def _levels(
    conn: Connection, workspace_id: str, keys: Iterable[_Key], *, lock: bool
) -> dict[_Key, Level]:
    wanted = sorted(set(keys))
    found: dict[_Key, Level] = {key: Level() for key in wanted}
    for start in range(0, len(wanted), _IN_CHUNK):
        part = wanted[start : start + _IN_CHUNK]
        query = (
            select(levels.c.location_id, levels.c.sku, levels.c.on_hand, levels.c.reserved)
            .where(
                levels.c.workspace_id == workspace_id,
                or_(*(and_(levels.c.location_id == loc, levels.c.sku == sku) for loc, sku in part)),
            )
            .order_by(levels.c.location_id, levels.c.sku)
        )
        if lock:
            query = query.with_for_update()
        for location_id, sku, on_hand, reserved in conn.execute(query):
            found[(location_id, sku)] = Level(int(on_hand), int(reserved))
    return found


def lock_batch(conn: Connection, keys: Iterable[tuple[str, str, str]]) -> None:
    """Lock every (workspace, location, SKU) level a batch of events will move, all at once
    and in key order, creating the missing rows first (PostgreSQL only).

    Workers project several partitions at once, and one batch moves the levels of many SKUs
    in the order of its events; two batches moving the same two SKUs in opposite orders
    would deadlock. Taking every row lock up front, sorted, makes them queue instead."""
    if conn.dialect.name != "postgresql":
        return
    wanted = sorted(set(keys))
    if not wanted:
        return
    now = 0
    for start in range(0, len(wanted), _IN_CHUNK):
        part = wanted[start : start + _IN_CHUNK]
        missing = postgresql.insert(levels).on_conflict_do_nothing(
            index_elements=["workspace_id", "location_id", "sku"]
        )
        conn.execute(
            missing,
            [
                {"workspace_id": ws, "location_id": loc, "sku": sku, "updated_at": now}
                for ws, loc, sku in part
            ],
        )
    by_workspace: dict[str, list[_Key]] = defaultdict(list)
    for ws, loc, sku in wanted:
        by_workspace[ws].append((loc, sku))
    for ws in sorted(by_workspace):
        _levels(conn, ws, by_workspace[ws], lock=True)


def is_applied(conn: Connection, workspace_id: str, movement_id: str) -> bool:
    """Whether the event `movement_id` has moved stock already."""
    query = select(
        exists().where(
            movements.c.workspace_id == workspace_id, movements.c.movement_id == movement_id
        )
    )
    return bool(conn.execute(query).scalar())


def apply_moves(
    conn: Connection,
    workspace_id: str,
    movement_id: str,
    kind: str,
    moves: Sequence[Move],
    *,
    at: int,
    reference: str | None = None,
) -> bool:
    """Record the movements of one event and update the levels; False (and nothing done)
    when this event moved stock before. Call inside the write transaction that decided it."""
    if not moves or is_applied(conn, workspace_id, movement_id):
        return False
    insert_rows(
        conn,
        movements,
        (
            "workspace_id",
            "movement_id",
            "line",
            "location_id",
            "sku",
            "on_hand_delta",
            "reserved_delta",
            "kind",
            "reference",
            "at",
        ),
        [
            (
                workspace_id,
                movement_id,
                line,
                m.location_id,
                m.sku,
                m.on_hand,
                m.reserved,
                kind,
                reference[:200] if reference else None,
                at,
            )
            for line, m in enumerate(moves)
        ],
    )
    totals: dict[_Key, list[int]] = defaultdict(lambda: [0, 0])
    for m in moves:
        total = totals[(m.location_id, m.sku)]
        total[0] += m.on_hand
        total[1] += m.reserved
    rows = [
        {
            "workspace_id": workspace_id,
            "location_id": location_id,
            "sku": sku,
            "on_hand": on_hand,
            "reserved": reserved,
            "updated_at": at,
        }
        for (location_id, sku), (on_hand, reserved) in sorted(totals.items())
    ]
    conn.execute(_upsert(conn), rows)
    return True


def _upsert(conn: Connection) -> Insert:
    """INSERT a level, or add the deltas to the existing one."""
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(levels)
        return pg.on_conflict_do_update(
            index_elements=["workspace_id", "location_id", "sku"],
            set_={
                "on_hand": levels.c.on_hand + pg.excluded.on_hand,
                "reserved": levels.c.reserved + pg.excluded.reserved,
                "updated_at": pg.excluded.updated_at,
            },
        )
    lite = sqlite.insert(levels)
    return lite.on_conflict_do_update(
        index_elements=["workspace_id", "location_id", "sku"],
        set_={
            "on_hand": levels.c.on_hand + lite.excluded.on_hand,
            "reserved": levels.c.reserved + lite.excluded.reserved,
            "updated_at": lite.excluded.updated_at,
        },
    )
