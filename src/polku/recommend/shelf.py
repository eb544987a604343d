"""What is on the shelf: the candidates that can be sold, and where.

For a list of candidate products, `on_shelf` reads each active product with its active SKUs,
and then the sellable units of those SKUs at the given locations (the warehouses, which sell
online, and the person's store): two indexed statements. It reads only the columns the rules
and the answer need, and leaves JSON unparsed until an item is kept, so a window of fifty
candidates costs well under a millisecond on SQLite. The statements are built once: on a hot
path, building SQLAlchemy expressions costs more than running them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

import orjson
from sqlalchemy import and_, bindparam, select

from polku.commerce.catalog.tables import products, variants
from polku.commerce.stock.tables import levels

__all__ = ["Shelved", "names_of", "on_shelf"]

_p, _v, _l = products.c, variants.c, levels.c

_PRODUCTS: Final = (
    select(_p.product_id, _p.name, _p.translations, _p.category_key, _p.attributes, _v.sku)
    .select_from(
        products.join(
            variants,
            and_(_v.workspace_id == _p.workspace_id, _v.product_id == _p.product_id),
        )
    )
    .where(
        _p.workspace_id == bindparam("ws"),
        _p.product_id.in_(bindparam("ids", expanding=True)),
        _p.active.is_(True),
        _v.active.is_(True),
    )
)
# Two plain indexed reads rather than one join: PostgreSQL's planner picked a poor plan for
# the join whenever its statistics lagged behind the stock table.
_STOCK: Final = select(_l.sku, _l.location_id, _l.on_hand - _l.reserved).where(
    _l.workspace_id == bindparam("ws"),
    _l.sku.in_(bindparam("skus", expanding=True)),
    _l.location_id.in_(bindparam("locations", expanding=True)),
    _l.on_hand > _l.reserved,
)

_NAMES: Final = select(_p.product_id, _p.name, _p.translations).where(
    _p.workspace_id == bindparam("ws"), _p.product_id.in_(bindparam("ids", expanding=True))
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
    conn: Any, ws: str, ids: Sequence[str], locations: Sequence[str]
) -> dict[str, Shelved]:
    """The sellable ones among `ids`, each with its units at `locations` (zero or more)."""
    found: dict[str, Shelved] = {}
    if not ids:
        return found
    product_of: dict[str, str] = {}
    for pid, name, translations, category, attributes, sku in conn.execute(
        _PRODUCTS, {"ws": ws, "ids": list(ids)}
    ).all():
        if pid not in found:
            found[pid] = Shelved(pid, name, category or "", translations, attributes)
        product_of[sku] = pid
    if product_of and locations:
        for sku, location, units in conn.execute(
            _STOCK, {"ws": ws, "skus": list(product_of), "locations": list(locations)}
        ).all():
            item = found[product_of[sku]]
            item.units[location] = item.units.get(location, 0) + int(units)
    return found


def names_of(conn: Any, ws: str, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Each product's name in English and in Finnish (its own name where not translated)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {
        pid: (_name_in(name, raw, "en"), _name_in(name, raw, "fi"))
        for pid, name, raw in conn.execute(_NAMES, {"ws": ws, "ids": wanted}).all()
    }
