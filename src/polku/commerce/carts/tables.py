"""Carts: one row per cart owner, the lines of each, and the ledger of every change.

An owner is a profile id (``p_...``), or, while identity does not know the device yet, the
device's identifier (``anonymous_id:<value>`` or ``user_id:<value>``). Line quantities are
the sum of the changes the ledger holds for that owner; a person's cart is the sum of the
lines of every owner that is theirs (see `polku.commerce.carts.ownership`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from polku.storage.metadata import metadata

__all__ = ["OWNER_LENGTH", "carts", "changes", "lines"]

OWNER_LENGTH = 330  # "anonymous_id:" + an identifier of at most 255 characters, with room

carts = Table(
    "cart_owners",
    metadata,
    # The row that decisions and the consumer lock (PostgreSQL FOR UPDATE, in owner order)
    # before they change the owner's lines.
    Column("workspace_id", String(64), primary_key=True),
    Column("owner", String(OWNER_LENGTH), primary_key=True),
    Column("cart_id", String(40), nullable=False),  # derived from the owner (stable, public)
    # For a device's cart: its identifier, so a profile finds the carts of its devices.
    Column("id_type", String(64), nullable=True),
    Column("id_value", String(300), nullable=True),
    Column("created_at", BigInteger, nullable=False),  # event time of its first change, ms
    Column("updated_at", BigInteger, nullable=False),  # event time of its last change, ms
)
Index("ix_cart_owners_identifier", carts.c.workspace_id, carts.c.id_type, carts.c.id_value)

lines = Table(
    "cart_lines",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("owner", String(OWNER_LENGTH), primary_key=True),
    Column("sku", String(200), primary_key=True),
    Column("product_id", String(200), nullable=False),
    # The sum of the owner's changes to this SKU. Negative only for a moment, while the
    # consumer moves one device's changes to the profile that identity gave them to.
    Column("quantity", Integer, nullable=False),
    # The unit price when it was last added (minor units of `added_currency`), so a price
    # change since can be shown.
    Column("added_price_minor", BigInteger, nullable=True),
    Column("added_currency", String(3), nullable=True),
    Column("price_at", BigInteger, nullable=False),  # event time of that add, ms
    Column("added_at", BigInteger, nullable=False),  # event time of the first add, ms
    Column("updated_at", BigInteger, nullable=False),  # event time of the last change, ms
)

changes = Table(
    "cart_changes",
    metadata,
    # One row per applied `Product Added` / `Product Removed` event, keyed by its messageId:
    # the API decision that recorded it and the consumer that later reads it from the log
    # never apply it twice. `owner` is the cart whose lines hold its quantity now.
    Column("workspace_id", String(64), primary_key=True),
    Column("message_id", String(200), primary_key=True),
    Column("owner", String(OWNER_LENGTH), nullable=False),
    Column("sku", String(200), nullable=False),
    Column("product_id", String(200), nullable=False),
    Column("delta", Integer, nullable=False),  # units added (> 0) or removed (< 0)
    Column("price_minor", BigInteger, nullable=True),  # unit price of an add
    Column("currency", String(3), nullable=True),
    Column("at", BigInteger, nullable=False),  # event time, ms
)
Index("ix_cart_changes_owner", changes.c.workspace_id, changes.c.owner)
