"""Orders: one row per order id (web, app and till), its lines, and what happened to it since
(cancellations, refunds).

The profile is not stored here: an order belongs to whoever identity says its completing
event belongs to (`identity_event_profiles`, by the order's `offset`), so merges and
un-merges re-attribute orders with no work in this package.

Amounts are exact decimal text as sent (``"129.9"``): events carry no minor-unit convention,
a refund may have either sign, and text keeps them exact on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from polku.storage.metadata import metadata

__all__ = ["order_changes", "order_lines", "orders"]

orders = Table(
    "orders",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    # Its order_id; a till receipt without one is "pos:<store_id>:<receipt_id>".
    Column("order_id", String(200), primary_key=True),
    # The completing event (the first by log offset when an order was sent twice): its
    # offset joins the order to its profile through identity_event_profiles.
    Column("offset", BigInteger, nullable=False),
    Column("message_id", String(200), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("store_id", String(100), nullable=True),
    Column("receipt_id", String(200), nullable=True),
    Column("placed_at", BigInteger, nullable=False),  # event time, epoch ms
    Column("currency", String(3), nullable=True),
    Column("total", String(40), nullable=True),
    Column("payment_method", String(200), nullable=True),  # a type or a token, never a card
    Column("shipping_method", String(200), nullable=True),
)
Index("ix_orders_offset", orders.c.offset)
Index("ix_orders_receipt", orders.c.workspace_id, orders.c.store_id, orders.c.receipt_id)

order_lines = Table(
    "order_lines",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("order_id", String(200), primary_key=True),
    Column("line", Integer, primary_key=True, autoincrement=False),  # position in `products`
    Column("sku", String(200), nullable=True),
    Column("product_id", String(200), nullable=True),
    Column("name", String(500), nullable=True),
    Column("quantity", Integer, nullable=False),
    Column("price", String(40), nullable=True),  # unit price
)

order_changes = Table(
    "order_changes",
    metadata,
    # One row per Order Cancelled / Order Refunded event, keyed by its messageId: insert-only,
    # so changes commute (a refund read before its order, from another partition, still
    # counts) and a redelivery adds nothing.
    Column("workspace_id", String(64), primary_key=True),
    Column("message_id", String(200), primary_key=True),
    Column("order_id", String(200), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # cancelled, refunded
    Column("at", BigInteger, nullable=False),  # event time, epoch ms
    Column("total", String(40), nullable=True),  # amount refunded, as a positive number
    # JSON [{"sku", "product_id", "quantity", "price"}]: the refunded lines, if listed
    Column("lines", Text, nullable=True),
)
Index("ix_order_changes_order", order_changes.c.workspace_id, order_changes.c.order_id)
