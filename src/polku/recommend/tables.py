"""Recommendations: the interactions they learn from, the live session transitions, each
visitor's last item, and the trained models."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, LargeBinary, String, Table, Text

from polku.storage.metadata import OffsetType, metadata

__all__ = ["interactions", "models", "transitions", "visitors"]

interactions = Table(
    "recommend_interactions",
    metadata,
    # One row per product an event touched: a view, a cart add, an order or receipt line, a
    # return. The profile is not stored: it is the event's (identity_event_profiles by
    # `offset`), so merges and un-merges re-attribute interactions with no work here.
    Column("offset", OffsetType, primary_key=True, autoincrement=False),
    Column("line", BigInteger, primary_key=True, autoincrement=False),
    Column("workspace_id", String(64), nullable=False),
    Column("product_id", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # view, cart, purchase, return
    # How much it says about taste (a score, not money): negative for a return.
    Column("weight", Float, nullable=False),
    Column("at", BigInteger, nullable=False),  # event time, epoch ms
    Column("store_id", String(100), nullable=True),  # a till receipt's or pickup's store
)
Index("ix_recommend_interactions_workspace", interactions.c.workspace_id, interactions.c.offset)
# Who viewed a product lately: the journeys' back-in-stock and price-drop triggers.
Index(
    "ix_recommend_interactions_product",
    interactions.c.workspace_id,
    interactions.c.product_id,
    interactions.c.at,
)

transitions = Table(
    "recommend_transitions",
    metadata,
    # What visitors looked at next: views of `next_id` right after `product_id` by the same
    # visitor (within the session gap), counted as the events arrive.
    Column("workspace_id", String(64), primary_key=True),
    Column("product_id", String(200), primary_key=True),
    Column("next_id", String(200), primary_key=True),
    Column("count", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

visitors = Table(
    "recommend_visitors",
    metadata,
    # Each visitor's (partition key's) last viewed product, for the next transition.
    Column("workspace_id", String(64), primary_key=True),
    Column("visitor", String(300), primary_key=True),
    Column("product_id", String(200), nullable=False),
    Column("at", BigInteger, nullable=False),
)

models = Table(
    "recommend_models",
    metadata,
    # The newest trained models of a workspace: one bundle of numpy arrays (.npz), replaced
    # whole by each training run; serving loads it when `version` moves.
    Column("workspace_id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("trained_at", BigInteger, nullable=False),  # wall clock, epoch ms
    # Before the payload: SQLite stores a row's columns in order, and reading a column after
    # a large blob walks the blob's pages (migration 0018).
    Column("summary", Text, nullable=False),  # JSON: sizes, timings, interactions used
    Column("payload", LargeBinary, nullable=False),
)
