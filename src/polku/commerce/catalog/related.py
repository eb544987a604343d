"""Bought together: how many orders held both of two products, kept from the log.

`BoughtTogether` is a pipeline consumer: for every ``Order Completed`` (online) and ``POS
Order Completed`` (a till receipt) it adds one to each pair of distinct products in the
order's ``products`` (by ``product_id``, or by the product of the ``sku`` when only that is
sent). It is incremental (each event is read once, after its checkpoint, like every
projection) and bounded: an order counts its first 30 distinct products (at most 435 pairs),
so one huge order cannot flood the table. Catalogue search reads the pairs of its top hits
(`polku.commerce.catalog.search`). Additions commute, so in the production mode partitions
apply their orders concurrently; rows are written in key order so they cannot deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Connection, delete
from sqlalchemy.dialects import postgresql, sqlite

from polku.commerce.catalog.queries import get_variants
from polku.commerce.catalog.tables import pairs
from polku.events import LoggedEvent
from polku.pipeline.consumer import Apply

__all__ = ["ORDER_EVENTS", "BoughtTogether"]

ORDER_EVENTS: Final = frozenset({"Order Completed", "POS Order Completed"})
_MAX_PRODUCTS: Final = 30
_MAX_ID: Final = 200


def _lines(message: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """(product_id, sku) of each line of an order message."""
    properties = message.get("properties")
    listed = properties.get("products") if isinstance(properties, dict) else None
    found: list[tuple[str | None, str | None]] = []
    for item in listed if isinstance(listed, list) else ():
        if not isinstance(item, dict):
            continue
        pid, sku = item.get("product_id"), item.get("sku")
        pid = str(pid) if isinstance(pid, str | int) and not isinstance(pid, bool) else None
        sku = str(sku) if isinstance(sku, str | int) and not isinstance(sku, bool) else None
        if pid or sku:
            found.append((pid, sku))
    return found


class BoughtTogether:
    """The pipeline consumer behind ``catalog_pairs`` (see the module doc)."""

    name = "catalog.bought_together"

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        orders = [(e.workspace_id, _lines(e.message)) for e in events if e.event in ORDER_EVENTS]
        by_sku: dict[str, dict[str, str]] = {}
        wanted: dict[str, set[str]] = {}
        for workspace, lines in orders:
            wanted.setdefault(workspace, set()).update(s for p, s in lines if p is None and s)
        for workspace, skus in wanted.items():
            known = get_variants(conn, workspace, skus)
            by_sku[workspace] = {sku: v.product_id for sku, v in known.items()}
        counts: Counter[tuple[str, str, str]] = Counter()
        for workspace, lines in orders:
            ids: list[str] = []
            for pid, sku in lines:
                product = pid or by_sku.get(workspace, {}).get(sku or "")
                if product and len(product) <= _MAX_ID and product not in ids:
                    ids.append(product)
            ids = ids[:_MAX_PRODUCTS]
            for a in ids:
                for b in ids:
                    if a != b:
                        counts[(workspace, a, b)] += 1
        rows = [
            {"workspace_id": w, "product_id": a, "other_id": b, "orders": n}
            for (w, a, b), n in sorted(counts.items())
        ]

        def apply(conn: Connection) -> None:
            if not rows:
                return
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            statement = insert(pairs)
            statement = statement.on_conflict_do_update(
                index_elements=["workspace_id", "product_id", "other_id"],
                set_={"orders": pairs.c.orders + statement.excluded.orders},
            )
            conn.execute(statement, rows)

        return apply

    def reset(self, conn: Connection) -> None:
        conn.execute(delete(pairs))
