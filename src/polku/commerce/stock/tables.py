"""Stock: what each location holds, every change to it, and the units held for customers."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from polku.storage.metadata import metadata

__all__ = ["levels", "movements", "reservation_lines", "reservations"]

levels = Table(
    "stock_levels",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("location_id", String(100), primary_key=True),
    Column("sku", String(200), primary_key=True),
    # Units physically at the location; negative when tills sold more than was on record
    # (the shelf was right, the record was not: a count puts it right).
    Column("on_hand", Integer, nullable=False, server_default="0"),
    # Units of `on_hand` held for reservations; sellable = on_hand - reserved.
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("updated_at", BigInteger, nullable=False),  # event time of the last movement, ms
)
Index("ix_stock_levels_sku", levels.c.workspace_id, levels.c.sku)

movements = Table(
    "stock_movements",
    metadata,
    # One row per SKU and location an event changed; the event's messageId is the key, so a
    # decision and the consumer that later reads its event never apply it twice.
    Column("workspace_id", String(64), primary_key=True),
    Column("movement_id", String(200), primary_key=True),
    Column("line", Integer, primary_key=True, autoincrement=False),
    Column("location_id", String(100), nullable=False),
    Column("sku", String(200), nullable=False),
    Column("on_hand_delta", Integer, nullable=False),
    Column("reserved_delta", Integer, nullable=False),
    Column("kind", String(32), nullable=False),  # received, sold, counted, reserved, ...
    Column("reference", String(200), nullable=True),  # receipt, delivery, reservation id
    Column("at", BigInteger, nullable=False),  # event time, ms
)
Index(
    "ix_stock_movements_sku_at",
    movements.c.workspace_id,
    movements.c.sku,
    movements.c.location_id,
    movements.c.at,
)

reservations = Table(
    "stock_reservations",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("reservation_id", String(200), primary_key=True),
    Column("location_id", String(100), nullable=False),
    Column("status", String(16), nullable=False),  # held, ready, collected, released
    Column("user_id", String(300), nullable=True),
    Column("anonymous_id", String(300), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # the durable timer: released after this
    Column("ready_at", BigInteger, nullable=True),
    Column("closed_at", BigInteger, nullable=True),
    Column("close_reason", String(32), nullable=True),  # collected, expired, cancelled
)
Index("ix_stock_reservations_due", reservations.c.status, reservations.c.expires_at)

reservation_lines = Table(
    "stock_reservation_lines",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("reservation_id", String(200), primary_key=True),
    Column("sku", String(200), primary_key=True),
    Column("quantity", Integer, nullable=False),
)
