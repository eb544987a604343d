"""Gift cards and their ledgers.

The ledger (`giftcard_entries`) is the truth: one row per event that changed a card, signed
amounts in minor units, keyed by the event's messageId. The card's `balance_minor` is the sum
of its entries, written in the same transaction as each entry (never on its own), so a
balance is read without summing and locked with the card's row.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from polku.storage.metadata import metadata

__all__ = ["entries", "giftcards"]

giftcards = Table(
    "giftcards",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("giftcard_id", String(64), primary_key=True),  # public id, e.g. gc-4f0c...; not the code
    # SHA-256 (hex) of the normalised code: the code is a bearer credential, never stored.
    Column("code_hash", String(64), nullable=False),
    Column("code_last4", String(4), nullable=False),  # shown as **** **** **** 7KQ2
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # issued value, bonus included
    Column("balance_minor", BigInteger, nullable=False),  # = sum of its entries
    Column("status", String(16), nullable=False),  # active, expired, cancelled
    Column("reason", String(16), nullable=False),  # refund, sale, goodwill
    Column("issued_at", BigInteger, nullable=False),  # event time, ms
    Column("expires_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger, nullable=True),  # expired or cancelled
    Column("user_id", String(300), nullable=True),  # the owner, when there is one
    Column("anonymous_id", String(300), nullable=True),
    Column("partition_key", String(300), nullable=False),  # every event of the card uses it
    Column("order_id", String(200), nullable=True),
    Column("return_id", String(200), nullable=True),
    Column("note", String(500), nullable=True),
)
Index("uq_giftcards_code", giftcards.c.workspace_id, giftcards.c.code_hash, unique=True)
Index("ix_giftcards_due", giftcards.c.status, giftcards.c.expires_at)
Index("ix_giftcards_owner", giftcards.c.workspace_id, giftcards.c.user_id)

entries = Table(
    "giftcard_entries",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("entry_id", String(200), primary_key=True),  # the event's messageId
    Column("giftcard_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),  # 1, 2, ... per card: the ledger's order
    Column("kind", String(16), nullable=False),  # issued, redeemed, expired, cancelled
    Column("amount_minor", BigInteger, nullable=False),  # signed: + issued, - the others
    Column("balance_minor", BigInteger, nullable=False),  # the card's balance after it
    Column("redemption_id", String(200), nullable=True),  # the caller's idempotency key
    Column("order_id", String(200), nullable=True),
    Column("store_id", String(100), nullable=True),
    Column("note", String(500), nullable=True),
    Column("at", BigInteger, nullable=False),  # event time, ms
)
Index("ix_giftcard_entries_card", entries.c.workspace_id, entries.c.giftcard_id, entries.c.seq)
