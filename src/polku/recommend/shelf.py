"""What is on the shelf: the candidates that can be sold, and where.

For a list of candidate products, `on_shelf` takes each active product with its active SKUs,
and then reads the sellable units of those SKUs at the given locations (the warehouses, which
sell online, and the person's store) in one indexed statement.

The catalogue side (active or not, name, category, attributes, SKUs) is kept for
`CATALOGUE_TTL` seconds per product: a home page walks through up to four windows of fifty
candidates (diversity defers the person's favourite categories), and reading their catalogue
rows was more than half of an answer's SQLite time. The cache only saves reads (the table
stays the truth, and every process's entries expire on their own): a product changed in any
process shows in every process's recommendations within `CATALOGUE_TTL` seconds, as a
location does in availability (`polku.commerce.stock.reference`). Stock is never cached: a
sold-out product leaves the answers at once. It reads only the columns the rules
and the answer need, and leaves JSON unparsed until an item is kept, so a window of fifty
candidates costs well under a millisecond on SQLite. The statements are plain SQL rendered once
(`polku.storage.bulk`): on a hot path, compiling SQLAlchemy expressions with their expanding
``IN`` lists costs more than running them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

import orjson
from sqlalchemy import Connection

from polku.commerce.catalog.tables import products, variants
from polku.commerce.stock.tables import levels
from polku.storage.bulk import fetch_in

__all__ = ["CATALOGUE_TTL", "Shelved", "forget", "names_of", "on_shelf"]

CATALOGUE_TTL: Final = 5.0
_MAX_LISTINGS: Final = 200_000  # per database and workspace; beyond it the cache starts over

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


# (database, workspace) -> product -> its listing as JSON: [expires, name, category,
# translations, attributes, sku, ...], or [expires] for a product that is inactive, has no
# active SKU or is unknown. Bytes rather than tuples or objects: the garbage collector does
# not track bytes, so tens of thousands of long-lived entries never trigger or lengthen a
# collection (as tuples they did: one 17 ms pause in 4,000 benchmark requests).
_Listings = dict[str, bytes]
_lock = threading.Lock()
_listings: dict[tuple[str, str], _Listings] = {}


def _cache_of(conn: Connection, ws: str) -> _Listings:
    key = (conn.engine.url.render_as_string(hide_password=True), ws)
    with _lock:
        found = _listings.get(key)
        if found is None or len(found) > _MAX_LISTINGS:
            found = _listings[key] = {}
        return found


def _listed(conn: Connection, ws: str, ids: Sequence[str]) -> dict[str, list[Any]]:
    """The listings ([expires, name, category, translations, attributes, sku, ...]) of the
    active products among `ids`, from the cache where fresh."""
    now = time.monotonic()
    cache = _cache_of(conn, ws)
    listed: dict[str, list[Any]] = {}
    missing: list[str] = []
    for pid in ids:
        hit = cache.get(pid)
        entry = None if hit is None else orjson.loads(hit)
        if entry is None or entry[0] <= now:
            missing.append(pid)
        elif len(entry) > 1:
            listed[pid] = entry
    if not missing:
        return listed
    expires = now + CATALOGUE_TTL
    read: dict[str, list[Any]] = {}
    for pid, name, translations, category, attributes, sku in fetch_in(
        conn, _PRODUCTS, missing, (ws, True, True)
    ):
        read.setdefault(pid, [expires, name, category or "", translations, attributes]).append(sku)
    for pid in missing:
        entry = read.get(pid)
        cache[pid] = orjson.dumps(entry or [expires])
        if entry is not None:
            listed[pid] = entry
    return listed


def on_shelf(
    conn: Connection, ws: str, ids: Sequence[str], locations: Sequence[str]
) -> dict[str, Shelved]:
    """The sellable ones among `ids`, each with its units at `locations` (zero or more)."""
    found: dict[str, Shelved] = {}
    if not ids:
        return found
    product_of: dict[str, str] = {}
    for pid, (_expires, name, category, translations, attributes, *skus) in _listed(
        conn, ws, ids
    ).items():
        found[pid] = Shelved(pid, name, category, translations, attributes)
        for sku in skus:
            product_of[sku] = pid
    if product_of and locations:
        sql = _STOCK.format(table=levels.name, locations=", ".join("?" * len(locations)))
        for sku, location, units in fetch_in(conn, sql, list(product_of), (ws, *locations)):
            item = found[product_of[sku]]
            item.units[location] = item.units.get(location, 0) + int(units)
    return found


def forget(url: str) -> None:
    """Drop the listings kept for the database at `url` (a closed runtime, a test's)."""
    with _lock:
        for key in [k for k in _listings if k[0] == url]:
            del _listings[key]


def names_of(conn: Connection, ws: str, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Each product's name in English and in Finnish (its own name where not translated)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {
        pid: (_name_in(name, raw, "en"), _name_in(name, raw, "fi"))
        for pid, name, raw in fetch_in(conn, _NAMES, wanted, (ws,))
    }
