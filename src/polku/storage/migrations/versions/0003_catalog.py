"""commerce: the catalogue (products, variants), its search index, bought-together pairs

Revision ID: 0003_catalog
Revises: 0002
Create Date: 2026-12-01 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_catalog"
down_revision = "0002"
branch_labels = None
depends_on = None

_TERM = sa.String(length=120).with_variant(sa.String(length=120, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "catalog_products",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("brand", sa.String(length=200), nullable=True),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("category_key", sa.String(length=1000), nullable=False),
        sa.Column("image_url", sa.String(length=2000), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("translations", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "product_id", name=op.f("pk_catalog_products")),
    )
    op.create_index(
        "ix_catalog_products_category", "catalog_products", ["workspace_id", "category_key"]
    )
    op.create_table(
        "catalog_variants",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("colour", sa.String(length=100), nullable=True),
        sa.Column("size", sa.String(length=100), nullable=True),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("image_url", sa.String(length=2000), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "product_id"],
            ["catalog_products.workspace_id", "catalog_products.product_id"],
            name=op.f("fk_catalog_variants_workspace_id_catalog_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "sku", name=op.f("pk_catalog_variants")),
    )
    op.create_index(
        "ix_catalog_variants_product", "catalog_variants", ["workspace_id", "product_id", "sku"]
    )
    op.create_table(
        "catalog_search_terms",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("term", _TERM, nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("in_name", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "term", "product_id", name=op.f("pk_catalog_search_terms")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_catalog_search_terms_product", "catalog_search_terms", ["workspace_id", "product_id"]
    )
    op.create_table(
        "catalog_pairs",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("other_id", sa.String(length=200), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "product_id", "other_id", name=op.f("pk_catalog_pairs")
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("catalog_pairs")
    op.drop_index("ix_catalog_search_terms_product", table_name="catalog_search_terms")
    op.drop_table("catalog_search_terms")
    op.drop_index("ix_catalog_variants_product", table_name="catalog_variants")
    op.drop_table("catalog_variants")
    op.drop_index("ix_catalog_products_category", table_name="catalog_products")
    op.drop_table("catalog_products")
