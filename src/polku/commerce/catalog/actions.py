"""Every write to the catalogue (the API, the importer and the console call these).

The catalogue is reference data from the retailer's PIM or ERP: an action writes the
tables directly, rewrites the changed products' search index rows, and records the events
others react to (`polku.commerce.catalog.events`) in the same transaction, through
`Runtime.outbox`. Nothing is half done: a refused change writes and records nothing.

Decisions:

* **Upsert by the retailer's ids.** `put_product` creates or replaces a product's fields and
  upserts the variants it lists; variants it does not list are left as they are (a feed may
  send only what changed). A write that changes nothing writes nothing and records nothing,
  so importing the same file twice is harmless.
* **Deactivate, never delete.** Orders, receipts, carts, stock and the event log refer to
  products and SKUs for years; a deleted row would leave them pointing at nothing. "Delete"
  deactivates, and an inactive product leaves the search index at once. A SKU belongs to
  one product for good: sending it under another product is a conflict.
* **One writer per workspace's catalogue at a time** (a transaction-level advisory lock on
  PostgreSQL; SQLite has one writer anyway), so the events say exactly what changed, even
  when two feeds write the same product at once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson
from sqlalchemy import Connection, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from polku.commerce.catalog import events
from polku.commerce.catalog.analysis import warm, word_terms, words
from polku.commerce.catalog.money import from_minor, price_minor
from polku.commerce.catalog.queries import (
    Product,
    Variant,
    category_key,
    get_product,
    get_products,
    get_variant,
)
from polku.commerce.catalog.search import reindex
from polku.commerce.catalog.tables import products, variants
from polku.commerce.catalog.validation import (
    ProductInput,
    VariantInput,
    check_code,
)
from polku.errors import Conflict, InvalidField, NotFound, PolkuError
from polku.events import NewEvent

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = [
    "create_product",
    "deactivate_product",
    "deactivate_variant",
    "put_product",
    "put_variant",
    "save_products",
    "unknown_product",
    "unknown_sku",
    "update_product",
    "update_variant",
]

_CHUNK: Final = 500
_PRODUCT_CONTENT: Final = (
    "name",
    "description",
    "brand",
    "category",
    "category_key",
    "image_url",
    "attributes",
    "translations",
    "active",
)
_VARIANT_CONTENT: Final = (
    "product_id",
    "colour",
    "size",
    "price_minor",
    "currency",
    "image_url",
    "attributes",
    "active",
)


def unknown_product(product_id: str, field: str = "product_id") -> NotFound:
    return NotFound(
        f"Unknown product {product_id[:80]!r}.",
        field=field,
        code="unknown_product",
        hint="Create it first with PUT /v1/catalog/products/{product_id}, or check the id "
        "(GET /v1/catalog/products lists them).",
    )


def unknown_sku(sku: str, field: str = "sku") -> NotFound:
    return NotFound(
        f"Unknown SKU {sku[:80]!r}.",
        field=field,
        code="unknown_sku",
        hint="Add it to its product with PUT /v1/catalog/variants/{sku} (with product_id), "
        "or check the SKU.",
    )


@dataclass(frozen=True, slots=True)
class _Change:
    product_id: str
    product: ProductInput | None  # None: leave the product's fields as they are
    variants: tuple[VariantInput, ...]
    sku_field: str = "variants[{i}].sku"  # how a refused SKU's field is named
    create_only: bool = False


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _product_row(ws: str, product: ProductInput) -> dict[str, Any]:
    return {
        "workspace_id": ws,
        "product_id": product.product_id,
        "name": product.name,
        "description": product.description,
        "brand": product.brand,
        "category": _json(list(product.category)),
        "category_key": category_key(product.category),
        "image_url": product.image_url,
        "attributes": _json(dict(product.attributes)),
        "translations": _json({k: dict(v) for k, v in product.translations.items()}),
        "active": product.active,
    }


def _variant_row(ws: str, product_id: str, variant: VariantInput) -> dict[str, Any]:
    return {
        "workspace_id": ws,
        "sku": variant.sku,
        "product_id": product_id,
        "colour": variant.colour,
        "size": variant.size,
        "price_minor": variant.price_minor,
        "currency": variant.currency,
        "image_url": variant.image_url,
        "attributes": _json(dict(variant.attributes)),
        "active": variant.active,
    }


def _same(old: Mapping[str, Any] | None, new: Mapping[str, Any], columns: Iterable[str]) -> bool:
    return old is not None and all(old[c] == new[c] for c in columns)


def _lock(conn: Connection, ws: str) -> None:
    if conn.dialect.name == "postgresql":
        digest = hashlib.blake2b(f"polku.catalog\x00{ws}".encode(), digest_size=8).digest()
        conn.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True))))


def _upsert(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: tuple[str, ...]
) -> None:
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    keep = (*key, "created_at")
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={c.name: statement.excluded[c.name] for c in table.c if c.name not in keep},
    )
    conn.execute(statement, list(rows))


def _read(
    conn: Connection, ws: str, product_ids: Sequence[str], skus: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    found_products: dict[str, dict[str, Any]] = {}
    found_variants: dict[str, dict[str, Any]] = {}
    for start in range(0, len(product_ids), _CHUNK):
        chunk = list(product_ids[start : start + _CHUNK])
        for row in conn.execute(
            select(products).where(products.c.workspace_id == ws, products.c.product_id.in_(chunk))
        ):
            found_products[row.product_id] = dict(row._mapping)
        for row in conn.execute(
            select(variants).where(variants.c.workspace_id == ws, variants.c.product_id.in_(chunk))
        ):
            found_variants[row.sku] = dict(row._mapping)
    for start in range(0, len(skus), _CHUNK):
        chunk = list(skus[start : start + _CHUNK])
        for row in conn.execute(
            select(variants).where(variants.c.workspace_id == ws, variants.c.sku.in_(chunk))
        ):
            found_variants[row.sku] = dict(row._mapping)
    return found_products, found_variants


def _price(row: Mapping[str, Any]) -> float:
    return float(from_minor(int(row["price_minor"]), row["currency"]))


def _events(
    ws: str,
    product_id: str,
    before: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]],
    after: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]],
    at: int,
) -> list[NewEvent]:
    """What changed for one product, as events: its active flag, each SKU going on or off
    sale, and each SKU's price."""
    old_product, new_product = before[0].get(product_id), after[0][product_id]
    recorded: list[NewEvent] = []
    old_active = bool(old_product and old_product["active"])
    if old_product is None or old_active != bool(new_product["active"]):
        recorded.append(
            events.product_switched(
                ws,
                active=bool(new_product["active"]),
                product_id=product_id,
                name=new_product["name"],
                brand=new_product["brand"],
                category=new_product["category_key"],
                created=old_product is None,
                at=at,
            )
        )
    skus = sorted(sku for sku, row in after[1].items() if row["product_id"] == product_id)
    for sku in skus:
        old, new = before[1].get(sku), after[1][sku]
        was = bool(old and old["active"]) and old_active
        now = bool(new["active"]) and bool(new_product["active"])
        if old is None and not now:
            continue  # created inactive: nothing was or is on sale
        if was != now or old is None:
            own_change = old is None or bool(old["active"]) != bool(new["active"])
            recorded.append(
                events.variant_switched(
                    ws,
                    on_sale=now,
                    sku=sku,
                    product_id=product_id,
                    name=new_product["name"],
                    price=_price(new),
                    currency=new["currency"],
                    reason="variant" if own_change else "product",
                    created=old is None,
                    at=at,
                )
            )
        if old is not None and (old["price_minor"], old["currency"]) != (
            new["price_minor"],
            new["currency"],
        ):
            recorded.append(
                events.price_changed(
                    ws,
                    sku=sku,
                    product_id=product_id,
                    name=new_product["name"],
                    price=_price(new),
                    currency=new["currency"],
                    previous_price=_price(old),
                    previous_currency=old["currency"],
                    at=at,
                )
            )
    return recorded


def _save(
    conn: Connection, ws: str, changes: Sequence[_Change], now: int
) -> tuple[list[PolkuError | None], list[NewEvent]]:
    """Apply `changes` in order within `conn`'s transaction; a refused change (its error in
    the list) writes nothing. Returns the errors and the events to record."""
    _lock(conn, ws)
    before = _read(
        conn,
        ws,
        sorted({c.product_id for c in changes}),
        sorted({v.sku for c in changes for v in c.variants}),
    )
    state = ({k: dict(v) for k, v in before[0].items()}, {k: dict(v) for k, v in before[1].items()})
    product_rows: dict[str, dict[str, Any]] = {}
    variant_rows: dict[str, dict[str, Any]] = {}
    changed: set[str] = set()
    errors: list[PolkuError | None] = []
    for change in changes:
        pid = change.product_id
        current = state[0].get(pid)
        error: PolkuError | None = None
        if change.create_only and current is not None:
            error = Conflict(
                f"Product {pid[:80]!r} exists already.",
                field="product_id",
                code="product_exists",
                hint="Replace it with PUT /v1/catalog/products/{product_id}, or change "
                "fields with PATCH.",
            )
        elif change.product is None and current is None:
            error = unknown_product(pid)
        else:
            for i, variant in enumerate(change.variants):
                owner = state[1].get(variant.sku, {}).get("product_id", pid)
                if owner != pid:
                    error = Conflict(
                        f"SKU {variant.sku[:80]!r} belongs to product {owner[:80]!r}.",
                        field=change.sku_field.format(i=i),
                        code="sku_taken",
                        hint="A SKU belongs to one product for good: give this variant its "
                        "own SKU, or deactivate the other one and use a new SKU.",
                    )
                    break
        errors.append(error)
        if error is not None:
            continue
        if change.product is not None:
            row = _product_row(ws, change.product)
            if not _same(current, row, _PRODUCT_CONTENT):
                row["created_at"] = current["created_at"] if current else now
                row["updated_at"] = now
                product_rows[pid] = state[0][pid] = row
                changed.add(pid)
        for variant in change.variants:
            old = state[1].get(variant.sku)
            row = _variant_row(ws, pid, variant)
            if not _same(old, row, _VARIANT_CONTENT):
                row["created_at"] = old["created_at"] if old else now
                row["updated_at"] = now
                variant_rows[variant.sku] = state[1][variant.sku] = row
                changed.add(pid)
    _upsert(conn, products, list(product_rows.values()), ("workspace_id", "product_id"))
    _upsert(conn, variants, list(variant_rows.values()), ("workspace_id", "sku"))
    recorded = [e for pid in sorted(changed) for e in _events(ws, pid, before, state, now)]
    reindex(conn, ws, get_products(conn, ws, changed).values())
    return errors, recorded


def _prime(inputs: Iterable[ProductInput]) -> None:
    """Analyse the words of `inputs` before the write transaction, so the index rows are
    computed from cached analyses while the write lock is held."""
    warm()
    for product in inputs:
        translated = " ".join(
            text for entry in product.translations.values() for text in entry.values()
        )
        texts = (product.name, product.description, product.brand or "", translated)
        colours = (v.colour or "" for v in product.variants)
        for word in words(" ".join((*texts, *product.category, *colours))):
            for lang in ("fi", "en"):
                word_terms(word, lang)


def _run(runtime: Runtime, ws: str, changes: Sequence[_Change]) -> list[PolkuError | None]:
    now = int(time.time() * 1000)
    with runtime.outbox.transaction() as tx:
        errors, recorded = _save(tx.conn, ws, changes, now)
        tx.record(*recorded)
    return errors


def _run_one(runtime: Runtime, ws: str, change: _Change) -> None:
    """Apply one change, raising its error (then nothing was written)."""
    error = _run(runtime, ws, [change])[0]
    if error is not None:
        raise error


def _product(runtime: Runtime, ws: str, product_id: str) -> Product:
    with runtime.engine.connect() as conn:
        found = get_product(conn, ws, product_id)
    if found is None:  # pragma: no cover - just written
        raise unknown_product(product_id)
    return found


# -- products -------------------------------------------------------------------------------


def save_products(
    runtime: Runtime, ws: str, batch: Sequence[ProductInput]
) -> list[PolkuError | None]:
    """Upsert `batch` in one transaction (the importer's path); each product's error, or
    None. A product whose SKU belongs to another product is refused whole; the others are
    written."""
    _prime(batch)
    return _run(runtime, ws, [_Change(p.product_id, p, p.variants) for p in batch])


def put_product(runtime: Runtime, ws: str, product: ProductInput) -> tuple[Product, bool]:
    """Create or replace `product` (its fields; the variants it lists are upserted, others
    are left as they are). Returns the product as stored and whether it was created.

    Raises `Conflict` (``sku_taken``) when a listed SKU belongs to another product."""
    _prime([product])
    with runtime.engine.connect() as conn:
        existed = get_product(conn, ws, product.product_id) is not None
    _run_one(runtime, ws, _Change(product.product_id, product, product.variants))
    return _product(runtime, ws, product.product_id), not existed


def create_product(runtime: Runtime, ws: str, product: ProductInput) -> Product:
    """Create `product` with its variants; `Conflict` (``product_exists``) if it exists."""
    _prime([product])
    _run_one(runtime, ws, _Change(product.product_id, product, product.variants, create_only=True))
    return _product(runtime, ws, product.product_id)


def _as_input(product: Product, changes: Mapping[str, Any]) -> ProductInput:
    fields: dict[str, Any] = {
        "product_id": product.product_id,
        "name": product.name,
        "description": product.description,
        "brand": product.brand,
        "category": product.category,
        "image_url": product.image_url,
        "attributes": product.attributes,
        "translations": product.translations,
        "active": product.active,
    }
    fields.update(changes)
    return ProductInput(**fields)


def update_product(
    runtime: Runtime, ws: str, product_id: str, changes: Mapping[str, Any]
) -> Product:
    """Change some fields of a product (`changes` from `validation.product_changes`)."""
    warm()
    with runtime.outbox.transaction() as tx:
        _lock(tx.conn, ws)
        current = get_product(tx.conn, ws, product_id)
        if current is None:
            raise unknown_product(product_id)
        change = _Change(product_id, _as_input(current, changes), ())
        errors, recorded = _save(tx.conn, ws, [change], int(time.time() * 1000))
        if errors[0] is not None:  # pragma: no cover - a product change has no conflicts
            raise errors[0]
        tx.record(*recorded)
    return _product(runtime, ws, product_id)


def deactivate_product(runtime: Runtime, ws: str, product_id: str) -> Product:
    """Take a product off sale (with all its SKUs); it stays readable, and can be
    activated again with ``active: true``."""
    return update_product(runtime, ws, product_id, {"active": False})


# -- variants -------------------------------------------------------------------------------


def put_variant(
    runtime: Runtime, ws: str, product_id: Any, variant: VariantInput
) -> tuple[Variant, bool]:
    """Create or replace the variant `variant.sku` of `product_id` (which may be None for a
    SKU that exists: it stays with its product). Returns the variant and whether it was
    created.

    Raises `NotFound` (``unknown_product``) for a product that does not exist, `Conflict`
    (``sku_taken``) when the SKU belongs to another product."""
    warm()
    with runtime.engine.connect() as conn:
        existing = get_variant(conn, ws, variant.sku)
    if product_id is None:
        if existing is None:
            raise InvalidField(
                f"product_id is required to add the new SKU {variant.sku[:80]!r}.",
                field="product_id",
                code="missing_field",
                hint="Send the product_id of the product this variant belongs to.",
            )
        pid = existing.product_id
    else:
        pid = check_code(product_id, "product_id")
    _run_one(runtime, ws, _Change(pid, None, (variant,), sku_field="sku"))
    with runtime.engine.connect() as conn:
        stored = get_variant(conn, ws, variant.sku)
    assert stored is not None
    return stored, existing is None


def update_variant(runtime: Runtime, ws: str, sku: str, changes: Mapping[str, Any]) -> Variant:
    """Change some fields of a variant (`changes` from `validation.variant_changes`); a new
    price is read in the currency sent with it, else the variant's own."""
    warm()
    with runtime.outbox.transaction() as tx:
        _lock(tx.conn, ws)
        current = get_variant(tx.conn, ws, sku)
        if current is None:
            raise unknown_sku(sku)
        currency = changes.get("currency", current.currency)
        if "price" in changes:
            minor = price_minor(changes["price"], currency, "price")
        elif currency != current.currency:
            raise InvalidField(
                "Changing the currency needs the price in the new currency.",
                field="price",
                code="missing_field",
                hint='Send both, e.g. {"price": 1690, "currency": "SEK"}.',
            )
        else:
            minor = price_minor(current.price, currency, "price")
        fields: dict[str, Any] = {
            "sku": sku,
            "price_minor": minor,
            "currency": currency,
            "colour": changes.get("colour", current.colour),
            "size": changes.get("size", current.size),
            "image_url": changes.get("image_url", current.image_url),
            "attributes": changes.get("attributes", current.attributes),
            "active": changes.get("active", current.own_active),
        }
        change = _Change(current.product_id, None, (VariantInput(**fields),), sku_field="sku")
        errors, recorded = _save(tx.conn, ws, [change], int(time.time() * 1000))
        if errors[0] is not None:  # pragma: no cover - the SKU stays with its product
            raise errors[0]
        tx.record(*recorded)
    with runtime.engine.connect() as conn:
        stored = get_variant(conn, ws, sku)
    assert stored is not None
    return stored


def deactivate_variant(runtime: Runtime, ws: str, sku: str) -> Variant:
    """Take one SKU off sale; it stays readable, and can be activated again."""
    return update_variant(runtime, ws, sku, {"active": False})
