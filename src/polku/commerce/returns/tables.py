"""Returns, their lines and history, outlet listings, and each workspace's return policy.

`return_policies` and `return_windows` are reference data (the retailer's rules, written
through the API, not rebuilt by a replay). The other tables are a projection of the returns'
events (`projection.py`): a replay rebuilds them from the log alone, since every event
carries what was decided (deadlines, unit prices paid, outlet prices).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from polku.storage.metadata import metadata

__all__ = [
    "history",
    "lines",
    "outlet_listings",
    "policies",
    "returns",
    "windows",
]

policies = Table(
    "return_policies",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("default_window_days", Integer, nullable=False),
    Column("outlet_discount_percent", Integer, nullable=False),
    Column("gift_card_bonus_percent", Integer, nullable=False),
    Column("gift_card_validity_days", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),  # epoch ms
)

windows = Table(
    "return_windows",
    metadata,
    # A category (and everything below it) on a return promise other than the default.
    Column("workspace_id", String(64), primary_key=True),
    Column("category", String(500), primary_key=True),  # "Naiset > Takit"
    Column("days", Integer, nullable=False),
)

returns = Table(
    "returns",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("return_id", String(200), primary_key=True),
    Column("order_id", String(200), nullable=False),
    Column("channel", String(16), nullable=False),  # where it was requested: web, app, store
    Column(
        "status", String(16), nullable=False
    ),  # requested, received, inspected, refunded, cancelled
    Column("user_id", String(300), nullable=True),  # the order's customer
    Column("anonymous_id", String(300), nullable=True),
    Column("partition_key", String(300), nullable=False),  # every event of the return uses it
    Column("currency", String(3), nullable=True),
    Column("return_method", String(16), nullable=True),  # store, post, courier, locker
    Column("requested_at", BigInteger, nullable=False),  # event times, ms
    Column("received_at", BigInteger, nullable=True),
    Column("inspected_at", BigInteger, nullable=True),
    Column("refunded_at", BigInteger, nullable=True),
    Column("cancelled_at", BigInteger, nullable=True),
    Column("location_id", String(100), nullable=True),  # where it was received
    Column("refund_method", String(32), nullable=True),  # original_payment, gift_card
    Column("refund_minor", BigInteger, nullable=True),  # refunded to the customer
    Column("giftcard_id", String(64), nullable=True),
    Column("refund_message_id", String(200), nullable=True),  # its Order Refunded event
)
Index("ix_returns_order", returns.c.workspace_id, returns.c.order_id)
Index("ix_returns_status", returns.c.workspace_id, returns.c.status, returns.c.requested_at)

lines = Table(
    "return_lines",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("return_id", String(200), primary_key=True),
    Column("sku", String(200), primary_key=True),  # the order line's SKU, else its product_id
    Column("product_id", String(200), nullable=True),
    Column("name", String(500), nullable=True),
    Column("quantity", Integer, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("note", String(500), nullable=True),
    Column("unit_paid_minor", BigInteger, nullable=True),  # None: the order named no price
    Column("return_by", BigInteger, nullable=False),  # the window's end, ms
    # Inspection: how many units went back to stock, to the outlet, or were disposed of.
    Column("restocked", Integer, nullable=False, server_default="0"),
    Column("outlet", Integer, nullable=False, server_default="0"),
    Column("disposed", Integer, nullable=False, server_default="0"),
    Column("condition", String(500), nullable=True),
)
Index("ix_return_lines_sku", lines.c.workspace_id, lines.c.sku)
Index("ix_return_lines_product", lines.c.workspace_id, lines.c.product_id)

history = Table(
    "return_history",
    metadata,
    # Every event applied to returns or outlet listings, keyed by messageId: a return's
    # history, and what makes applying an event twice a no-op.
    Column("workspace_id", String(64), primary_key=True),
    Column("message_id", String(200), primary_key=True),
    Column("event", String(64), nullable=False),
    Column("return_id", String(200), nullable=True),
    Column("listing_id", String(200), nullable=True),
    Column("seq", Integer, nullable=False),  # 1, 2, ... per return (or listing): their order
    Column("at", BigInteger, nullable=False),
)
Index("ix_return_history_return", history.c.workspace_id, history.c.return_id, history.c.seq)

outlet_listings = Table(
    "outlet_listings",
    metadata,
    # One returned unit sold at a discount, only in the store that received it.
    Column("workspace_id", String(64), primary_key=True),
    Column("listing_id", String(200), primary_key=True),
    Column("return_id", String(200), nullable=False),
    Column("sku", String(200), nullable=False),
    Column("product_id", String(200), nullable=True),
    Column("name", String(500), nullable=True),
    Column("location_id", String(100), nullable=False),
    Column("condition", String(500), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("price_minor", BigInteger, nullable=False),  # the outlet price
    Column("original_price_minor", BigInteger, nullable=False),  # the catalogue's, when listed
    Column("discount_percent", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # available, reserved, sold
    Column("listed_at", BigInteger, nullable=False),
    Column("reserved_until", BigInteger, nullable=True),
    Column("reserved_user_id", String(300), nullable=True),
    Column("reserved_anonymous_id", String(300), nullable=True),
    Column("sold_at", BigInteger, nullable=True),
    Column("receipt_id", String(200), nullable=True),
)
Index(
    "ix_outlet_listings_store",
    outlet_listings.c.workspace_id,
    outlet_listings.c.location_id,
    outlet_listings.c.status,
)
Index("ix_outlet_listings_sku", outlet_listings.c.workspace_id, outlet_listings.c.sku)
