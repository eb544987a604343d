"""Read the catalogue: one product with its variants, variants by SKU, and pages of products.

This is the catalogue's Python API for the rest of Polku (stock, carts, orders): every
function takes a connection and a workspace, and an id from another workspace reads as
unknown. `Variant.active` answers "is this SKU on sale?": the variant and its product are
both active.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Row, and_, or_, select

from polku.commerce.catalog.money import from_minor
from polku.commerce.catalog.tables import products, variants
from polku.errors import InvalidField

__all__ = [
    "CATEGORY_SEPARATOR",
    "Product",
    "ProductFilter",
    "ProductPage",
    "Variant",
    "category_key",
    "get_product",
    "get_products",
    "get_variant",
    "get_variants",
    "list_products",
]

CATEGORY_SEPARATOR: Final = " > "
"""Joins a category path in its one-string form: ``Naiset > Takit > Talvitakit``."""

_MAX_ID: Final = 200  # width of the product_id and sku columns
_IN_CHUNK: Final = 500  # ids per IN (...) list


@dataclass(frozen=True, slots=True)
class Variant:
    """One SKU of a product: its colour and size, its exact price, and whether it is on sale.

    `active` is True when the SKU can be sold: the variant and its product are both active
    (`own_active` is the variant's own flag, as set through the API).
    """

    sku: str
    product_id: str
    colour: str | None
    size: str | None
    price: Decimal  # exact, with the currency's number of decimals (49.90 EUR, 1200 JPY)
    currency: str  # ISO 4217, upper case
    image_url: str | None
    attributes: Mapping[str, Any]
    active: bool
    own_active: bool = True
    created_at: int = 0  # epoch ms
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class Product:
    """A product as the shop shows it, with all its variants (active or not), by SKU."""

    product_id: str
    name: str
    description: str
    brand: str | None
    category: tuple[str, ...]  # root first: ("Naiset", "Takit", "Talvitakit")
    image_url: str | None
    attributes: Mapping[str, Any]
    active: bool
    variants: tuple[Variant, ...]
    # {"fi": {"name": ..., "description": ...}, "en": {...}}: what the shop shows per language
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    created_at: int = 0  # epoch ms
    updated_at: int = 0

    def name_in(self, lang: str | None) -> str:
        """The name to show in `lang` (its translation, else the default name)."""
        return (self.translations.get(lang or "") or {}).get("name") or self.name

    def description_in(self, lang: str | None) -> str:
        return (self.translations.get(lang or "") or {}).get("description") or self.description


def category_key(path: Sequence[str]) -> str:
    """The one-string form of a category path (stored, and used to filter by category)."""
    return CATEGORY_SEPARATOR.join(path)


def _plausible(identifier: str) -> bool:
    return 0 < len(identifier) <= _MAX_ID and "\x00" not in identifier


def _variant(row: Row[Any], product_active: bool) -> Variant:
    return Variant(
        sku=row.sku,
        product_id=row.product_id,
        colour=row.colour,
        size=row.size,
        price=from_minor(int(row.price_minor), row.currency),
        currency=row.currency,
        image_url=row.image_url,
        attributes=orjson.loads(row.attributes),
        active=bool(row.active) and product_active,
        own_active=bool(row.active),
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
    )


def _product(row: Row[Any], variant_rows: Iterable[Row[Any]]) -> Product:
    active = bool(row.active)
    return Product(
        product_id=row.product_id,
        name=row.name,
        description=row.description,
        brand=row.brand,
        category=tuple(orjson.loads(row.category)),
        image_url=row.image_url,
        attributes=orjson.loads(row.attributes),
        active=active,
        variants=tuple(_variant(v, active) for v in variant_rows),
        translations=orjson.loads(row.translations),
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
    )


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield list(items[start : start + _IN_CHUNK])


def _with_variants(conn: Connection, workspace_id: str, rows: Sequence[Row[Any]]) -> list[Product]:
    """`rows` of the products table as `Product`s, their variants read in one query."""
    by_product: dict[str, list[Row[Any]]] = {}
    ids = [row.product_id for row in rows]
    for chunk in _chunks(ids):
        for v in conn.execute(
            select(variants)
            .where(variants.c.workspace_id == workspace_id, variants.c.product_id.in_(chunk))
            .order_by(variants.c.product_id, variants.c.sku)
        ):
            by_product.setdefault(v.product_id, []).append(v)
    return [_product(row, by_product.get(row.product_id, ())) for row in rows]


def get_products(
    conn: Connection, workspace_id: str, product_ids: Iterable[str]
) -> dict[str, Product]:
    """The products among `product_ids` that exist, by id, each with its variants."""
    wanted = sorted({p for p in product_ids if _plausible(p)})
    found: dict[str, Product] = {}
    for chunk in _chunks(wanted):
        rows = conn.execute(
            select(products).where(
                products.c.workspace_id == workspace_id, products.c.product_id.in_(chunk)
            )
        ).all()
        found.update((p.product_id, p) for p in _with_variants(conn, workspace_id, rows))
    return found


def get_product(conn: Connection, workspace_id: str, product_id: str) -> Product | None:
    """The product `product_id` with all its variants (by SKU); None when unknown."""
    return get_products(conn, workspace_id, [product_id]).get(product_id)


def get_variants(conn: Connection, workspace_id: str, skus: Iterable[str]) -> dict[str, Variant]:
    """The variants among `skus` that exist, by SKU (unknown SKUs are simply absent)."""
    wanted = sorted({s for s in skus if _plausible(s)})
    found: dict[str, Variant] = {}
    for chunk in _chunks(wanted):
        rows = conn.execute(
            select(variants, products.c.active.label("product_active"))
            .join(
                products,
                and_(
                    products.c.workspace_id == variants.c.workspace_id,
                    products.c.product_id == variants.c.product_id,
                ),
            )
            .where(variants.c.workspace_id == workspace_id, variants.c.sku.in_(chunk))
        )
        for row in rows:
            found[row.sku] = _variant(row, bool(row.product_active))
    return found


def get_variant(conn: Connection, workspace_id: str, sku: str) -> Variant | None:
    """The variant `sku`; None when unknown."""
    return get_variants(conn, workspace_id, [sku]).get(sku)


# -- pages of products ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductFilter:
    """Which products a listing shows; every condition given must hold."""

    active: bool | None = None  # None: active and inactive
    category: tuple[str, ...] = ()  # this category and those below it
    brand: str | None = None
    updated_since: int | None = None  # epoch ms, inclusive


@dataclass(frozen=True, slots=True)
class ProductPage:
    products: list[Product]
    next_cursor: str | None  # None on the last page


def _encode_cursor(product_id: str) -> str:
    return base64.urlsafe_b64encode(product_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        after = ""
    if not _plausible(after):
        raise InvalidField(
            "cursor is not one this API gave out.",
            field="cursor",
            code="invalid_cursor",
            hint="Send the next_cursor of the previous page unchanged, or leave it out to "
            "start from the first page.",
        )
    return after


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_products(
    conn: Connection,
    workspace_id: str,
    only: ProductFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> ProductPage:
    """Products matching `only`, by product id, `limit` at a time.

    Keyset paging: `cursor` is the previous page's `next_cursor`; a page never repeats or
    skips a product that existed when the listing started, whatever is written meanwhile."""
    query = select(products).where(products.c.workspace_id == workspace_id)
    if only.active is not None:
        query = query.where(products.c.active == only.active)
    if only.category:
        key = category_key(only.category)
        query = query.where(
            or_(
                products.c.category_key == key,
                products.c.category_key.like(
                    _escape_like(key + CATEGORY_SEPARATOR) + "%", escape="\\"
                ),
            )
        )
    if only.brand is not None:
        query = query.where(products.c.brand == only.brand)
    if only.updated_since is not None:
        query = query.where(products.c.updated_at >= only.updated_since)
    if cursor is not None:
        query = query.where(products.c.product_id > _decode_cursor(cursor))
    rows = conn.execute(query.order_by(products.c.product_id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    page = _with_variants(conn, workspace_id, rows)
    return ProductPage(page, _encode_cursor(rows[-1].product_id) if more and rows else None)
