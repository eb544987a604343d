"""What recommendations learn from, kept from the log: interactions and live transitions.

`InteractionsConsumer` is a pipeline consumer. For each event that says something about a
person's taste it writes one `recommend_interactions` row per product, weighted by what it
says: a view 1, a cart add 3, a purchase 5 per line (online orders and till receipts alike,
with the receipt's store), a return or refund -5. And for every ``Product Viewed`` it
counts a transition from the same visitor's previous view (within `SESSION_GAP_MS`) into
`recommend_transitions`, the live "viewed next" / "viewed together" answer that serving reads
within a second of the event. Additions commute and rows are keyed by log offset, so it is
idempotent and safe with concurrent partitions (a visitor is one partition key).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, delete
from sqlalchemy.dialects import postgresql, sqlite

from polku.commerce.catalog.queries import get_variants
from polku.events import LoggedEvent
from polku.pipeline.consumer import Apply
from polku.recommend.tables import interactions, transitions, visitors
from polku.storage.bulk import fetch_in

__all__ = ["KINDS", "SESSION_GAP_MS", "WEIGHTS", "InteractionsConsumer", "read_events"]

WEIGHTS: Final = {"view": 1.0, "cart": 3.0, "purchase": 5.0, "return": -5.0}
"""How much each kind of interaction says about a person's taste."""

KINDS: Final = {
    "Product Viewed": "view",
    "Product Clicked": "view",
    "Product Added": "cart",
    "Order Completed": "purchase",
    "POS Order Completed": "purchase",
    "Order Refunded": "return",
    "Return Requested": "return",
}
SESSION_GAP_MS: Final = 30 * 60 * 1000
"""Two views further apart than this are not one session: no transition between them."""

_MAX_ID: Final = 200
_MAX_LINES: Final = 100


_LAST_VIEWS = (
    "SELECT visitor, product_id, at FROM recommend_visitors "
    "WHERE workspace_id = ? AND visitor IN (?*)"
)


@dataclass(frozen=True, slots=True)
class Touch:
    """One product an event touched."""

    offset: int
    line: int
    workspace_id: str
    visitor: str
    product_id: str | None
    sku: str | None
    kind: str
    quantity: float
    at: int
    store_id: str | None


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).replace("\x00", "").strip()
    return text if 0 < len(text) <= _MAX_ID else None


def read_events(events: Sequence[LoggedEvent]) -> list[Touch]:
    """The products each event of `events` touched, in log order."""
    found: list[Touch] = []
    for e in events:
        kind = KINDS.get(e.event or "")
        if kind is None or e.type != "track":
            continue
        props = e.message.get("properties")
        if not isinstance(props, dict):
            continue
        store = _id(props.get("store_id"))
        store = store if store is None or len(store) <= 100 else None
        listed = props.get("products")
        items = listed if isinstance(listed, list) else [props]
        for n, item in enumerate(items[:_MAX_LINES]):
            if not isinstance(item, dict):
                continue
            pid, sku = _id(item.get("product_id")), _id(item.get("sku"))
            if pid is None and sku is None:
                continue
            raw = item.get("quantity", 1)
            quantity = (
                float(raw)
                if isinstance(raw, int | float) and not isinstance(raw, bool) and raw == raw
                else 1.0
            )
            found.append(
                Touch(
                    e.offset,
                    n,
                    e.workspace_id,
                    e.partition_key,
                    pid,
                    sku,
                    kind,
                    min(abs(quantity), 1000.0) or 1.0,
                    e.timestamp,
                    store,
                )
            )
    return found


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


class InteractionsConsumer:
    """The pipeline consumer behind the recommendation tables (see the module doc)."""

    name = "recommend.interactions"

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        touches = read_events(events)
        by_sku: dict[tuple[str, str], str] = {}
        wanted: dict[str, set[str]] = {}
        for t in touches:
            if t.product_id is None and t.sku:
                wanted.setdefault(t.workspace_id, set()).add(t.sku)
        for ws, skus in wanted.items():
            for sku, v in get_variants(conn, ws, skus).items():
                by_sku[(ws, sku)] = v.product_id
        rows: list[dict[str, Any]] = []
        views: list[tuple[str, str, str, int]] = []
        for t in touches:
            pid = t.product_id or by_sku.get((t.workspace_id, t.sku or ""))
            if pid is None:
                continue
            weight = WEIGHTS[t.kind] * (t.quantity if t.kind in ("purchase", "return") else 1)
            rows.append(
                {
                    "offset": t.offset,
                    "line": t.line,
                    "workspace_id": t.workspace_id,
                    "product_id": pid,
                    "kind": t.kind,
                    "weight": weight,
                    "at": t.at,
                    "store_id": t.store_id,
                }
            )
            if t.kind == "view" and len(t.visitor) <= 300:
                views.append((t.workspace_id, t.visitor, pid, t.at))
        last: dict[tuple[str, str], tuple[str, int]] = {}
        by_workspace: dict[str, set[str]] = defaultdict(set)
        for view in views:
            by_workspace[view[0]].add(view[1])
        for space, visitors_seen in sorted(by_workspace.items()):
            # One workspace at a time: SQLite scans the table for a row-value IN list.
            for who, product, seen_at in fetch_in(
                conn, _LAST_VIEWS, sorted(visitors_seen), (space,)
            ):
                last[(space, who)] = (product, int(seen_at))
        counts: Counter[tuple[str, str, str]] = Counter()
        for ws, visitor, pid, at in views:
            before = last.get((ws, visitor))
            if before is not None and before[0] != pid and 0 <= at - before[1] <= SESSION_GAP_MS:
                counts[(ws, before[0], pid)] += 1
            if before is None or at >= before[1]:
                last[(ws, visitor)] = (pid, at)
        moved = [
            {"workspace_id": ws, "visitor": v, "product_id": p, "at": at}
            for (ws, v), (p, at) in sorted(last.items())
        ]
        pairs = [
            {"workspace_id": w, "product_id": a, "next_id": b, "count": n}
            for (w, a, b), n in sorted(counts.items())
        ]

        def apply(conn: Connection) -> None:
            insert = _insert(conn)
            if rows:
                conn.execute(insert(interactions).on_conflict_do_nothing(), rows)
            if pairs:
                statement = insert(transitions)
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["workspace_id", "product_id", "next_id"],
                        set_={"count": transitions.c.count + statement.excluded["count"]},
                    ),
                    pairs,
                )
            if moved:
                statement = insert(visitors)
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["workspace_id", "visitor"],
                        set_={
                            "product_id": statement.excluded.product_id,
                            "at": statement.excluded.at,
                        },
                    ),
                    moved,
                )

        return apply

    def reset(self, conn: Connection) -> None:
        conn.execute(delete(interactions))
        conn.execute(delete(transitions))
        conn.execute(delete(visitors))
