"""What is on the shelf: the candidates that can be sold, and where.

For a list of candidate products, `on_shelf` reads each active product with its active SKUs,
and then the sellable units of those SKUs at the given locations (the warehouses, which sell
online, and the person's store): two indexed statements. It reads only the columns the rules
and the answer need, and leaves JSON unparsed until an item is kept, so a window of fifty
candidates costs well under a millisecond on SQLite. The statements are plain SQL rendered once
(`polku.storage.bulk`): on a hot path, compiling SQLAlchemy expressions with their expanding
``IN`` lists costs more than running them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

import orjson
from sqlalchemy import Connection

from polku.commerce.catalog.tables import products, variants
from polku.commerce.stock.tables import levels
from polku.storage.bulk import fetch_in

__all__ = ["Shelved", "names_of", "on_shelf"]

# ``?`` markers and one ``IN (?*)`` list each, for `fetch_in`; booleans are bound (True), so
# both dialects compare them natively.
_PRODUCTS: Final = (
    "SELECT p.product_id, p.name, p.translations, p.category_key, p.attributes, v.sku"
    f" FROM {products.name} p JOIN {variants.name} v"
    f" ON v.workspace_id = p.workspace_id AND v.product_id = p.product_id"
    " WHERE p.workspace_id = ? AND p.active = ? AND v.active = ? AND p.product_id IN (?*)"
)
# Two plain indexed reads rather than one join: PostgreSQL's planner picked a poor plan for
# the join whenever its statistics lagged behind the stock table. The locations (the
# warehouses and the person's store) are a fixed list; the SKUs are the `IN` list.
_STOCK: Final = (
    "SELECT sku, location_id, on_hand - reserved FROM {table}"
    " WHERE workspace_id = ? AND location_id IN ({locations}) AND on_hand > reserved"
    " AND sku IN (?*)"
)
_NAMES: Final = (
    f"SELECT product_id, name, translations FROM {products.name}"
    " WHERE workspace_id = ? AND product_id IN (?*)"
)


@dataclass(slots=False)
class Shelved:
    """An active product with at least one active SKU, and its sellable units by location."""

    product_id: str
    name: str
    category: str
    raw_translations: str
    raw_attributes: str
    units: dict[str, int] = field(default_factory=dict)

    @cached_property
    def attributes(self) -> dict[str, Any]:
        found = orjson.loads(self.raw_attributes or "{}")
        return found if isinstance(found, dict) else {}

    def name_in(self, lang: str) -> str:
        return _name_in(self.name, self.raw_translations, lang)

    def category_path(self) -> list[str]:
        return self.category.split(" > ") if self.category else []


def _name_in(name: str, raw: str, lang: str) -> str:
    if not raw or raw == "{}":
        return name
    found = orjson.loads(raw).get(lang) or {}
    return str(found.get("name") or name)


def on_shelf(
    conn: Connection, ws: str, ids: Sequence[str], locations: Sequence[str]
) -> dict[str, Shelved]:
    """The sellable ones among `ids`, each with its units at `locations` (zero or more)."""
    found: dict[str, Shelved] = {}
    if not ids:
        return found
    product_of: dict[str, str] = {}
    for pid, name, translations, category, attributes, sku in fetch_in(
        conn, _PRODUCTS, ids, (ws, True, True)
    ):
        if pid not in found:
            found[pid] = Shelved(pid, name, category or "", translations, attributes)
        product_of[sku] = pid
    if product_of and locations:
        sql = _STOCK.format(table=levels.name, locations=", ".join("?" * len(locations)))
        for sku, location, units in fetch_in(conn, sql, list(product_of), (ws, *locations)):
            item = found[product_of[sku]]
            item.units[location] = item.units.get(location, 0) + int(units)
    return found


def names_of(conn: Connection, ws: str, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Each product's name in English and in Finnish (its own name where not translated)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {
        pid: (_name_in(name, raw, "en"), _name_in(name, raw, "fi"))
        for pid, name, raw in fetch_in(conn, _NAMES, wanted, (ws,))
    }
