"""Routed buying signals: the signals, the queues they are on, claims, outcomes, each
workspace's routing rules, and the CRM webhooks with their delivery log.

Times named ``at``/``*_at`` are epoch ms. A signal's `at` is its event's time (replay gives
the same signals); `created_at` is when routing wrote it (the wall clock, for the feed).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from polku.storage.metadata import OffsetType, metadata

__all__ = [
    "claims",
    "deliveries",
    "delivery_attempts",
    "outcomes",
    "routes",
    "routing_configs",
    "signals",
    "webhooks",
]

signals = Table(
    "signals",
    metadata,
    # Increasing (not gap-free, and with several writers not in commit order): the live
    # feed's cursor, and the id the API shows.
    Column("id", OffsetType, primary_key=True, autoincrement=True),
    Column("workspace_id", String(64), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("kind", String(100), nullable=False),
    Column("score", Float, nullable=False),
    Column("products", Text, nullable=False),  # JSON list of product ids
    Column("store_id", String(100), nullable=True),  # the store it was routed to, if any
    Column("channel", String(16), nullable=True),
    Column("session_id", String(200), nullable=True),
    Column("reasons", Text, nullable=False),  # JSON [{code, en, fi, weight}]
    Column("details", Text, nullable=False),  # JSON {feature: value}
    Column("event_id", String(200), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("dedupe_key", String(300), nullable=False),
    Column("status", String(16), nullable=False),  # open, claimed, acknowledged, closed
    Column("outcome", String(32), nullable=True),  # contacted, reserved, sold, not_interested
    Column("claimed_by", String(100), nullable=True),
    Column("claimed_at", BigInteger, nullable=True),
    Column("closed_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "dedupe_key"),
)
Index("ix_signals_profile", signals.c.workspace_id, signals.c.profile_id, signals.c.at)
Index("ix_signals_created", signals.c.created_at)

routes = Table(
    "signal_routes",
    metadata,
    # One row per queue a signal is on: "store:<location_id>", "agents", "automation".
    Column("workspace_id", String(64), primary_key=True),
    Column("signal_id", BigInteger, primary_key=True, autoincrement=False),
    Column("queue", String(120), primary_key=True),
    Column("rule", String(100), nullable=False),  # the routing rule that put it there
)
Index("ix_signal_routes_queue", routes.c.workspace_id, routes.c.queue, routes.c.signal_id)

claims = Table(
    "signal_claims",
    metadata,
    # Who works on which customer; open while `released_at` is null. Suppression reads it.
    Column("workspace_id", String(64), primary_key=True),
    Column("signal_id", BigInteger, primary_key=True, autoincrement=False),
    Column("claim", Integer, primary_key=True, autoincrement=False),  # 1, 2, ... per signal
    Column("profile_id", String(64), nullable=False),
    Column("staff_id", String(100), nullable=False),
    Column("claimed_at", BigInteger, nullable=False),
    Column("released_at", BigInteger, nullable=True),
)
Index("ix_signal_claims_profile", claims.c.workspace_id, claims.c.profile_id)

outcomes = Table(
    "signal_outcomes",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("signal_id", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("outcome", String(32), nullable=False),
    Column("staff_id", String(100), nullable=True),
    Column("note", String(1000), nullable=True),
    Column("at", BigInteger, nullable=False),
)

routing_configs = Table(
    "signal_routing_configs",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("config", Text, nullable=False),  # JSON, as `routing.parse_config` accepts it
    Column("updated_at", BigInteger, nullable=False),
)

webhooks = Table(
    "signal_webhooks",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("endpoint_id", String(40), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),  # the HMAC key; shown once, at creation
    Column("queues", Text, nullable=False),  # JSON list of queues; [] is every queue
    Column("active", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

deliveries = Table(
    "signal_deliveries",
    metadata,
    # One webhook call to make: a durable timer, due at `due_at`, until delivered or given up.
    Column("id", OffsetType, primary_key=True, autoincrement=True),
    Column("workspace_id", String(64), nullable=False),
    Column("endpoint_id", String(40), nullable=False),
    Column("signal_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("due_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    UniqueConstraint("endpoint_id", "signal_id"),
)
Index("ix_signal_deliveries_due", deliveries.c.status, deliveries.c.due_at)

delivery_attempts = Table(
    "signal_delivery_attempts",
    metadata,
    Column("delivery_id", BigInteger, primary_key=True, autoincrement=False),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),  # None: no answer (refused, timed out)
    Column("error", String(500), nullable=True),
    Column("duration_ms", Integer, nullable=False),
)
