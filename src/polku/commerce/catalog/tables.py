"""Products, their variants (one per SKU), the search index kept with them, and which
products are bought together."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    String,
    Table,
    Text,
)

from polku.storage.metadata import metadata

__all__ = ["TERM_TYPE", "pairs", "products", "search_terms", "variants"]

products = Table(
    "catalog_products",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("product_id", String(200), primary_key=True),  # the retailer's own id
    Column("name", String(500), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("brand", String(200), nullable=True),
    Column("category", Text, nullable=False, default="[]"),  # JSON list, root first
    # The category path joined with " > " (names never contain ">"): equality finds the
    # same category, a prefix the ones below it.
    Column("category_key", String(1000), nullable=False, default=""),
    Column("image_url", String(2000), nullable=True),
    Column("attributes", Text, nullable=False, default="{}"),  # JSON object
    Column("translations", Text, nullable=False, default="{}"),  # {"fi": {"name", ...}}
    Column("active", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),  # epoch ms
    Column("updated_at", BigInteger, nullable=False),
)
Index("ix_catalog_products_category", products.c.workspace_id, products.c.category_key)

variants = Table(
    "catalog_variants",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("sku", String(200), primary_key=True),  # unique per workspace; never moves
    Column("product_id", String(200), nullable=False),
    Column("colour", String(100), nullable=True),
    Column("size", String(100), nullable=True),
    # Exact money: minor units of `currency` (cents for EUR, yen for JPY), never a float.
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),  # ISO 4217, upper case
    Column("image_url", String(2000), nullable=True),
    Column("attributes", Text, nullable=False, default="{}"),
    Column("active", Boolean, nullable=False),  # its own flag; on sale = this and the product's
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["workspace_id", "product_id"],
        [products.c.workspace_id, products.c.product_id],
        ondelete="CASCADE",
    ),
)
# With the SKU, so a product's variants come in order from the index alone (without it,
# SQLite prefers walking the whole workspace by SKU).
Index(
    "ix_catalog_variants_product",
    variants.c.workspace_id,
    variants.c.product_id,
    variants.c.sku,
)

TERM_TYPE = String(120).with_variant(String(120, collation="C"), "postgresql")
"""Search terms compare by code point on both backends (SQLite's default), so a range
``term >= 'fi:tak' AND term < 'fi:tal'`` is exactly the terms that start with ``fi:tak``."""

search_terms = Table(
    "catalog_search_terms",
    metadata,
    # The inverted index of active products, rewritten with the product in the transaction
    # that changes it (see polku.commerce.catalog.search). `term` is ``<lang>:<lemma>``, or
    # ``#<sku or product id>`` for exact codes.
    Column("workspace_id", String(64), primary_key=True),
    Column("term", TERM_TYPE, primary_key=True),
    Column("product_id", String(200), primary_key=True),
    # Length-normalised, field-weighted term frequency (a score, not money: float is right).
    Column("weight", Float, nullable=False),
    Column("in_name", Boolean, nullable=False),  # the term is in the name (or brand)
    # Clustered by term on SQLite: a query reads its terms' rows in one range, not a rowid
    # lookup per row (5x faster for a term in a thousand products).
    sqlite_with_rowid=False,
)
Index("ix_catalog_search_terms_product", search_terms.c.workspace_id, search_terms.c.product_id)

pairs = Table(
    "catalog_pairs",
    metadata,
    # Bought together: how many orders (online and till receipts) held both products; both
    # directions are stored, so one product's partners are one index range.
    Column("workspace_id", String(64), primary_key=True),
    Column("product_id", String(200), primary_key=True),
    Column("other_id", String(200), primary_key=True),
    Column("orders", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)
